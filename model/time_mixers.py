"""Time mixers: the only step of a SlotSSM block that moves information through time.

Every mixer maps slots (B, T, N, D) -> (B, T, N, D) causally, starting from and returning a
carried state (None = a fresh video), so the same weights run on a whole clip (parallel) or
on consecutive chunks of any size (recurrent) with the same result. `Config.time_mixer`
picks one; the default is the model that ships, the others are the paper's baselines:

| name         | baseline name      | temporal part                                  | state carried     |
|--------------|--------------------|------------------------------------------------|-------------------|
| `ssm`        | `slotssm`          | selective SSM along time, per slot (the paper) | fixed size        |
| `gru`        | `slot_rnn`         | GRU along time, per slot (SAVi-style)          | fixed size        |
| `attention`  | `slot_transformer` | causal self-attention along time, per slot     | grows with T (KV) |
| `single_ssm` | `single_ssm`       | one SSM over all slots concatenated            | fixed size        |

Per-slot mixers share their parameters across slots, so any number of slots works.
`single_ssm` has one monolithic state per frame of the slots' total size (N * D, as the
paper's single-state baseline), so it only runs with the number of slots it was built for.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .config import Config
from .ssm import SelectiveSSM, SSMState


class PerSlotSSM(SelectiveSSM):
    """The SlotSSM time mixer: the selective SSM run along time for each slot independently,
    parameters shared across slots. Same parameters (and names) as SelectiveSSM."""

    def __init__(self, cfg: Config):
        super().__init__(cfg.dim, cfg.d_state, cfg.headdim, cfg.expand, cfg.d_conv)

    def forward(self, slots: Tensor, state: SSMState | None = None) -> tuple[Tensor, SSMState]:
        b = slots.shape[0]
        s = rearrange(slots, "b t n d -> (b n) t d")  # each slot is a sequence over time
        y, state = super().forward(s, state)
        return rearrange(y, "(b n) t d -> b t n d", b=b), state


class SlotGRU(nn.Module):
    """Slot-RNN baseline: a GRU along time for each slot (SAVi's recurrence), shared across
    slots. Sequential by nature: frame t waits for frame t - 1, in training too."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.gru = nn.GRU(cfg.dim, cfg.dim, batch_first=True)
        self.out_proj = nn.Linear(cfg.dim, cfg.dim, bias=False)  # like the SSM's output projection

    def forward(self, slots: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """state: (1, B*N, D), the hidden state after the last frame."""
        b = slots.shape[0]
        y, state = self.gru(rearrange(slots, "b t n d -> (b n) t d"), state)
        return rearrange(self.out_proj(y), "(b n) t d -> b t n d", b=b), state


@dataclass
class KVState:
    """The slot-Transformer's memory: every past frame's keys and values, per slot."""

    k: Tensor  # (B*N, heads, frames so far, D / heads), rotated to its frame's position
    v: Tensor  # (B*N, heads, frames so far, D / heads)

    @property
    def frames(self) -> int:
        return self.k.shape[2]


# rotary position embedding over time (RoPE, Su et al. 2021): wavelengths up to this base
ROPE_BASE = 10_000.0


def rotate(x: Tensor, start: int) -> Tensor:
    """x (..., T, hd) with frame positions start .. start + T - 1 encoded by rotation."""
    T, hd = x.shape[-2], x.shape[-1]
    freqs = ROPE_BASE ** (-torch.arange(0, hd, 2, device=x.device, dtype=x.dtype) / hd)
    angles = torch.arange(start, start + T, device=x.device, dtype=x.dtype)[:, None] * freqs
    cos, sin = angles.cos(), angles.sin()  # (T, hd / 2)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)


class SlotCausalAttention(nn.Module):
    """Slot-Transformer baseline: causal multi-head self-attention along time for each slot,
    shared across slots (frames as tokens, rotary positions). Quadratic in T in parallel mode;
    in recurrent mode a KV cache that grows with the video."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.heads = cfg.mixer_heads
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim, bias=False)
        self.out_proj = nn.Linear(cfg.dim, cfg.dim, bias=False)

    def forward(self, slots: Tensor, state: KVState | None = None) -> tuple[Tensor, KVState]:
        b, T = slots.shape[:2]
        q, k, v = rearrange(
            self.qkv(slots), "b t n (three h e) -> three (b n) h t e", three=3, h=self.heads
        )
        past = state.frames if state is not None else 0
        q, k = rotate(q, past), rotate(k, past)
        if state is not None:
            k, v = torch.cat([state.k, k], dim=2), torch.cat([state.v, v], dim=2)
        if past:  # frame past + i sees frames 0 .. past + i
            seen = torch.ones(T, past + T, dtype=torch.bool, device=slots.device).tril(past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=seen)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = rearrange(y, "(b n) h t e -> b t n (h e)", b=b)
        return self.out_proj(y), KVState(k=k, v=v)


class SingleStateSSM(nn.Module):
    """Single-state SSM baseline: the N slots of a frame concatenated into one vector of
    size N * D and one selective SSM along time over it; the output is split back into slots.
    No slot structure in the temporal part: every state channel may mix every slot."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.num_slots = cfg.num_slots
        self.ssm = SelectiveSSM(
            cfg.num_slots * cfg.dim,
            cfg.d_state,
            cfg.headdim,
            cfg.expand,
            cfg.d_conv,
        )

    def forward(self, slots: Tensor, state: SSMState | None = None) -> tuple[Tensor, SSMState]:
        n = slots.shape[2]
        if n != self.num_slots:
            raise ValueError(
                f"time_mixer='single_ssm' has one state for exactly {self.num_slots} slots "
                f"(the trained number), got {n}"
            )
        y, state = self.ssm(rearrange(slots, "b t n d -> b t (n d)"), state)
        return rearrange(y, "b t (n d) -> b t n d", n=n), state


def time_mixer(cfg: Config) -> nn.Module:
    """The temporal step of a SlotSSM block, as the config names it (Config.time_mixer)."""
    return {
        "ssm": PerSlotSSM,
        "gru": SlotGRU,
        "attention": SlotCausalAttention,
        "single_ssm": SingleStateSSM,
    }[cfg.time_mixer](cfg)
