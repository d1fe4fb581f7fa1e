"""OC-SlotSSM (Jiang et al., "Slot State Space Models", NeurIPS 2024), trained to predict depth.

    video ─► FrameEncoder ─► tokens ─┐
                                     ▼
    initial slots ─► [SlotSSM block] x num_blocks ─► SlotDecoder ─► masks, depth (, rgb)
                     slot encoder  (inverted cross-attention to the frame's tokens)
                     time mixer    (selective SSM along time, per slot, shared weights)
                     slot mixer    (self-attention across the slots of a frame)
                     MLP

Shapes: B clips, T frames, N slots, D width, L tokens, (H, W) input, (h, w) = (H/2, W/2).

The same weights run in two modes that agree to float precision:
- parallel (training): `model(video)` on whole clips, SSM by the chunked SSD scan;
- recurrent (serving): `cache = model.alloc_cache(...)`, then `model(chunk, cache=cache)`
  for consecutive chunks of any size (1 frame included); memory does not grow with length.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from einops import rearrange, repeat
from huggingface_hub import PyTorchModelHubMixin
from torch import Tensor, nn

from .config import Config
from .decoder import SlotDecoder, slot_frames
from .encoder import FrameEncoder
from .slot_encoder import SlotEncoder, mlp
from .slot_mixer import SlotMixer
from .time_mixers import time_mixer


@dataclass
class InferenceCache:
    """Everything carried between chunks of one video: one time-mixer state per block (for
    the SlotSSM, a (conv, SSM) state for each of the batch * num_slots slot sequences; see
    model/time_mixers.py for the baselines'). One per request, never stored on the model."""

    batch: int
    num_slots: int
    layers: list[object | None] = field(default_factory=list)  # None: no frame seen yet
    frames: int = 0  # frames seen so far
    carried: Tensor | None = None  # (B, N, D) last frame's first-read slots (Config.slot_carry)


@dataclass
class SlotOutput:
    masks: Tensor  # (B, T, N, h, w): softmax over slots of the decoder's alpha logits
    log_depth: Tensor  # (B, T, h, w): mask-weighted sum of the slots' log-depths
    attention: Tensor  # (B, T, N, H/4, W/4): last slot encoder's softmax over slots per token
    slots: Tensor  # (B, T, N, D)
    positions: Tensor  # (B, T, N, 2): centre (x, y) in [-1, 1] of each slot's attention
    rgb: Tensor | None = None  # (B, T, 3, h, w) reconstruction, if the model has an RGB head
    flow: Tensor | None = None  # (B, T, 2, h, w) motion since the previous frame, if a flow head
    # with forward(..., predict_next=True): frame t + 1 as decoded from frame t's slots
    next_log_depth: Tensor | None = None  # (B, T, h, w)
    next_rgb: Tensor | None = None  # (B, T, 3, h, w)
    # slot IDs are not an output of the network: model/segment.py makes them from the masks

    @property
    def depth(self) -> Tensor:
        return self.log_depth.exp()


class SlotSSMBlock(nn.Module):
    """Pre-norm residual steps: slot encoder, time mixer, slot mixer, MLP. (B, T, N, D) -> same."""

    def __init__(self, cfg: Config, iters: int):
        super().__init__()
        self.encoder = SlotEncoder(cfg.dim, iters, cfg.mlp_ratio)
        self.norm_time = nn.LayerNorm(cfg.dim)
        self.time_mixer = time_mixer(cfg)  # per-slot SSM; the baselines swap only this
        self.norm_slots = nn.LayerNorm(cfg.dim)
        self.slot_mixer = SlotMixer(cfg.dim, cfg.mixer_heads)
        self.norm_mlp = nn.LayerNorm(cfg.dim)
        self.mlp = mlp(cfg.dim, cfg.mlp_ratio)

    def forward(self, slots: Tensor, tokens: Tensor, state: object | None):
        """slots (B, T, N, D), tokens (B*T, L, D) -> slots, attention (B*T, N, L), mixer state."""
        b = slots.shape[0]
        s, attn = self.encoder(rearrange(slots, "b t n d -> (b t) n d"), tokens)
        s, state = self.dynamics(rearrange(s, "(b t) n d -> b t n d", b=b), state)
        return s, attn, state

    def read_carried(
        self, init: Tensor, tokens: Tensor, carried: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Config.slot_carry: the slot encoder frame by frame, each frame starting from the
        previous frame's result (`carried`, or `init` (B, N, D) for a video's first frame).
        tokens (B, T, L, D) -> slots (B, T, N, D), attention (B*T, N, L), the last frame's slots."""
        slots, attn = [], []
        for t in range(tokens.shape[1]):
            carried, a = self.encoder(init if carried is None else carried, tokens[:, t])
            slots.append(carried)
            attn.append(a)
        return (
            torch.stack(slots, 1),
            rearrange(torch.stack(attn, 1), "b t n l -> (b t) n l"),
            carried,
        )

    def dynamics(self, slots: Tensor, state: object | None) -> tuple[Tensor, object]:
        """The steps after the slot encoder (the temporal core, benchmarked alone in bench/):
        slots (B, T, N, D) -> same, and the time mixer's state after the last frame."""
        b = slots.shape[0]
        y, state = self.time_mixer(self.norm_time(slots), state)  # the only step across time
        s = rearrange(slots + y, "b t n d -> (b t) n d")  # the slots of one frame together
        s = s + self.slot_mixer(self.norm_slots(s))
        s = s + self.mlp(self.norm_mlp(s))
        return rearrange(s, "(b t) n d -> b t n d", b=b), state


class OCSlotSSM(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="slot-studio",
    tags=["object-centric", "slot-ssm", "depth-estimation", "video"],
    license="mit",
    paper_url="https://arxiv.org/abs/2406.12272",
    pipeline_tag="depth-estimation",
):
    # modules that start as a no-op (a zero last layer), so a checkpoint without them loads into
    # a model with them and computes the same outputs at first (train.init_from)
    neutral_modules = ("predictor.", "predict_shift.", "decoder.depth_mlp.")

    # `config` is typed loosely on purpose: huggingface_hub would build a dataclass from the
    # saved JSON by silently dropping unknown keys; Config.from_dict refuses them instead.
    def __init__(self, config: Config | dict | None = None):
        super().__init__()
        if isinstance(config, dict):
            config = Config.from_dict(config)
        self.config = cfg = config or Config()
        self.encoder = FrameEncoder(cfg.dim, cfg.encoder_channels, cfg.encoder_stride)
        # learned initial slots, one per trained slot (BO-QSA, Jia et al. 2023): distinct from
        # the first step, so slots specialise instead of all decoding the same average
        self.slot_queries = nn.Parameter(torch.randn(cfg.num_slots, cfg.dim))
        self.blocks = nn.ModuleList(
            SlotSSMBlock(cfg, cfg.first_block_iters if i == 0 else 1) for i in range(cfg.num_blocks)
        )
        self.decoder = SlotDecoder(
            cfg.dim, cfg.decoder_hidden, cfg.rgb_head, cfg.flow_head, cfg.depth_head
        )
        if cfg.predict_next:
            # slots of frame t -> slots of frame t + 1, residual; and where each slot will be:
            # the decoder draws relative to a slot's position, so motion is a shift of that
            # position, which the slot vector alone cannot express. Both start as "no change"
            self.predictor = mlp(cfg.dim, cfg.mlp_ratio)
            self.predict_shift = nn.Linear(cfg.dim, 2)
            for layer in (self.predictor[-1], self.predict_shift):
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    # ---- inference state -------------------------------------------------------------
    def alloc_cache(self, batch: int = 1, num_slots: int | None = None) -> InferenceCache:
        n = self.config.num_slots if num_slots is None else num_slots
        if batch < 1 or n < 1:
            raise ValueError(f"batch and num_slots must be >= 1, got {batch} and {n}")
        return InferenceCache(batch=batch, num_slots=n, layers=[None] * len(self.blocks))

    def initial_slots(self, batch: int, n: int, device) -> Tensor:
        """(batch, n, D). The first n learned queries; beyond the trained number, extra slots
        are drawn from a Gaussian fitted to the queries, with a fixed seed (deterministic)."""
        q = self.slot_queries
        if n > len(q):
            gen = torch.Generator().manual_seed(self.config.slot_seed)
            noise = torch.randn(n - len(q), q.shape[1], generator=gen).to(q.device)
            q = torch.cat([q, q.mean(0) + q.std(0) * noise])
        return q[:n].to(device).expand(batch, n, -1)

    # ---- forward -----------------------------------------------------------------------
    def forward(
        self,
        video: Tensor,
        num_slots: int | None = None,
        cache: InferenceCache | None = None,
        predict_next: bool = False,
    ) -> SlotOutput:
        """video (B, T, 3, H, W) in [0, 1], H and W multiples of Config.encoder_stride.

        Without a cache: one whole clip in parallel. With one: the next chunk of a stream,
        continuing from (and updating) the cache; num_slots is then the cache's. predict_next
        (models with Config.predict_next): also decode each frame's successor from its slots."""
        self._check_video(video)
        B, T, _, H, W = video.shape
        if cache is not None:
            if cache.batch != B:
                raise ValueError(f"cache was allocated for batch {cache.batch}, got a batch of {B}")
            if num_slots not in (None, cache.num_slots):
                raise ValueError(f"cache holds {cache.num_slots} slots, asked for {num_slots}")
            n = cache.num_slots
        else:
            n = self.config.num_slots if num_slots is None else num_slots
            if n < 1:
                raise ValueError(f"num_slots must be >= 1, got {n}")

        frames_in = rearrange(video, "b t c h w -> (b t) c h w")
        tokens = self.encoder(frames_in)
        init = self.initial_slots(B, n, video.device)
        slots = repeat(init, "b n d -> b t n d", t=T)
        for i, block in enumerate(self.blocks):
            state = cache.layers[i] if cache else None
            if i == 0 and self.config.slot_carry:
                by_frame = rearrange(tokens, "(b t) l d -> b t l d", b=B)
                slots, attn, carried = block.read_carried(
                    init, by_frame, cache.carried if cache else None
                )
                slots, state = block.dynamics(slots, state)
                if cache is not None:
                    cache.carried = carried
            else:
                slots, attn, state = block(slots, tokens, state)
            if cache is not None:
                cache.layers[i] = state
        if cache is not None:
            cache.frames += T

        s = self.config.encoder_stride
        pos, scale = slot_frames(attn, (H // s, W // s))  # where each slot looked in this frame
        masks, log_depth, rgb, flow = self._decode(slots, pos, scale, H, W)

        def frames(x: Tensor) -> Tensor:
            return rearrange(x, "(b t) ... -> b t ...", b=B)

        out = SlotOutput(
            masks=frames(masks),
            log_depth=frames(log_depth),
            attention=frames(rearrange(attn, "bt n (y x) -> bt n y x", y=H // s)),
            slots=slots,
            positions=frames(pos),
            rgb=frames(rgb) if rgb is not None else None,
            flow=frames(flow) if flow is not None else None,
        )
        if predict_next:
            if not self.config.predict_next:
                raise ValueError("predict_next needs a model with Config.predict_next")
            ahead = slots + self.predictor(slots)
            shift = rearrange(self.predict_shift(slots), "b t n c -> (b t) n c")
            _, next_depth, next_rgb, _ = self._decode(ahead, pos + shift, scale, H, W)
            out.next_log_depth = frames(next_depth)
            out.next_rgb = frames(next_rgb) if next_rgb is not None else None
        return out

    def _decode(self, slots: Tensor, pos: Tensor, scale: Tensor, H: int, W: int):
        """slots (B, T, N, D), their positions and scales (B*T, N, 2) -> masks (B*T, N, h, w),
        log-depth (B*T, h, w), rgb and flow (B*T, C, h, w) or None."""
        stride = self.config.decoder_stride
        dec = self.decoder(
            rearrange(slots, "b t n d -> (b t) n d"),
            pos,
            scale,
            (H // stride, W // stride),
            (H // 2, W // 2),
        )
        masks = dec.mask_logits.softmax(dim=1)  # (B*T, N, h, w)
        log_depth = (masks * dec.log_depth).sum(dim=1)
        rgb = (masks.unsqueeze(2) * dec.rgb).sum(dim=1) if dec.rgb is not None else None
        flow = (masks.unsqueeze(2) * dec.flow).sum(dim=1) if dec.flow is not None else None
        return masks, log_depth, rgb, flow

    def _check_video(self, video: Tensor) -> None:
        if not isinstance(video, Tensor):
            raise TypeError(f"video must be a torch.Tensor, got {type(video).__name__}")
        if video.dim() != 5 or video.shape[2] != 3:
            raise ValueError(f"video must have shape (B, T, 3, H, W), got {tuple(video.shape)}")
        B, T, _, H, W = video.shape
        if B == 0 or T == 0:
            raise ValueError(f"video has no frames: shape {tuple(video.shape)}")
        s = self.config.encoder_stride
        if H % s or W % s or min(H, W) < 2 * s:
            raise ValueError(
                f"frame size must be multiples of {s} and at least {2 * s}, got {H}x{W}"
            )
        if not video.is_floating_point():
            raise TypeError(f"video must be a float tensor in [0, 1], got {video.dtype}")
        if not torch.isfinite(video).all():
            raise ValueError("video contains NaN or infinite values")

    # ---- loading -----------------------------------------------------------------------
    def with_config(self, **changes) -> OCSlotSSM:
        """The same weights under settings no parameter depends on (decoder_stride, mask
        refinement, ...), in the same mode and on the same device. Strict: a change
        that needs other weights is an error."""
        other = OCSlotSSM(Config(**self.config.to_dict() | changes))
        other.load_state_dict(self.state_dict())
        return other.to(next(self.parameters()).device).train(self.training)

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id,
        revision,
        cache_dir,
        force_download,
        local_files_only,
        token,
        map_location="cpu",
        strict=True,
        **model_kwargs,
    ):
        """Safetensors only (never pickle), strict: a checkpoint that does not match the config
        is an error naming the offending keys, not a silently half-loaded model."""
        from pathlib import Path

        from huggingface_hub import hf_hub_download
        from safetensors.torch import load_model

        model = cls(**model_kwargs)
        if Path(model_id).is_dir():
            path = Path(model_id) / "model.safetensors"
            if not path.is_file():
                raise FileNotFoundError(f"no model.safetensors in {model_id}")
        else:
            path = hf_hub_download(
                model_id,
                "model.safetensors",
                revision=revision,
                cache_dir=cache_dir,
                force_download=force_download,
                local_files_only=local_files_only,
                token=token,
            )
        try:
            load_model(model, str(path), strict=True, device=str(map_location))
        except RuntimeError as err:
            raise RuntimeError(f"weights in {path} do not match the model config: {err}") from None
        return model.eval()
