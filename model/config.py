"""Hyper-parameters of OC-SlotSSM, saved beside the weights as config.json.

`Config(**json)` is how a checkpoint's config is read back, so a misspelled or unknown key
fails loudly instead of being silently dropped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

# keys a saved config may still hold. Experiments that lost, removed from the model (their
# numbers are in docs/experiments.md, the experiment log): a config still loads if it holds the value
# that ships, and is refused otherwise. None: any value loads, the key no longer means anything
# (chunk_size: the SSD scan picks its own chunk length, model/ssm.py SCAN_CHUNK)
RETIRED = {
    "slot_init": "queries",
    "slot_noise": 0.0,
    "chunk_size": None,
    "slot_carry_from": "encoder",
    "mask_guide_bound": 0.0,
    "mask_features": 0,
}

# the temporal step of a block (model/time_mixers.py): name -> the paper's name of that model.
# "ssm" is OC-SlotSSM; the others are its baselines, in the same codebase
TIME_MIXERS = {
    "ssm": "slotssm",  # selective SSM along time, per slot
    "gru": "slot_rnn",  # GRU along time, per slot (SAVi-style)
    "attention": "slot_transformer",  # causal self-attention along time, per slot
    "single_ssm": "single_ssm",  # one SSM over the slots concatenated: no slots in time
}


@dataclass
class Config:
    # frames
    image_size: int = 64  # frames are resized to image_size x image_size before encoding
    # frame encoder (CNN): tokens on an (image_size / encoder_stride)^2 grid, masks on
    # (image_size / 2)^2. Same parameters at any stride (only which convolutions stride 2
    # changes): 8 keeps a 16x16 token grid at 128 px, so slot attention and the SSM cost what
    # they cost at 64 px; 2 gives a 32x32 grid at 64 px, where a small object has more tokens
    dim: int = 64  # D: width of tokens and slots
    encoder_channels: int = 64
    encoder_stride: int = 4
    # slots
    num_slots: int = 7  # N: trained default; any N >= 1 works at inference
    # initial slots are learned queries, one per trained slot; slots beyond the trained number
    # (at inference) are drawn around them with this seed, so outputs are deterministic
    slot_seed: int = 0
    first_block_iters: int = 3  # slot-attention refinement iterations in the first block's encoder
    # frame t's slots start from frame t - 1's (the first block's slot-attention output) instead
    # of the learned queries, which only start frame 0: SAVi's conditioning (Kipf et al. 2022).
    # Each slot then looks first where its object was, so it keeps the object, not an image
    # region. Makes the first block's read sequential over time; the SSM stays a parallel scan
    slot_carry: bool = False
    # SlotSSM blocks
    num_blocks: int = 2
    mixer_heads: int = 4  # heads of the slot mixer (self-attention across slots)
    mlp_ratio: float = 2.0
    # selective SSM (Mamba-2 style), per slot over time
    d_state: int = 16  # size of the SSM state per head (N in Mamba-2)
    headdim: int = 32  # P: channels per SSM head
    expand: int = 2  # d_inner = expand * dim
    d_conv: int = 4  # width of the short causal convolution over time
    # the temporal step: a key of TIME_MIXERS, or the paper's name of the model (normalised)
    time_mixer: str = "ssm"
    # decoder
    decoder_hidden: int = 64
    # input pixels per decoded cell: 4 decodes on the token grid, 2 at the mask resolution
    # (image_size / 2). The decoder is a function of continuous position, so either works with
    # the same weights; 2 puts object boundaries between pixels instead of between tokens
    decoder_stride: int = 4
    # settings of the step from masks to slot IDs (model/segment.py), not of the network: the
    # masks re-fitted to the frame's colour edges by a guided filter (model/refine.py) in
    # windows of (2r+1)^2 mask pixels, at the input size; 0 = off. No weights: any checkpoint
    # can switch it on. eps: how closely a mask may follow colour (smaller: closer)
    mask_refine_radius: int = 0
    mask_refine_eps: float = 1e-4
    rgb_head: bool = True  # also reconstruct RGB, so that videos without depth can train
    flow_head: bool = False  # also predict optical flow: a target that groups pixels by motion
    # hidden units of a residual MLP for log-depth only (model/decoder.py), 0 = none: depth
    # capacity that the masks do not share
    depth_head: int = 0
    # also decode frame t + 1 from the slots of frame t, moved one step ahead by a small MLP and
    # shifted by a predicted motion (the paper's video prediction): a target that no single
    # frame can meet (train --predict-weight); the app never calls it
    predict_next: bool = False

    def __post_init__(self):
        if self.encoder_stride not in (2, 4, 8):
            raise ValueError(f"encoder_stride must be 2, 4 or 8, got {self.encoder_stride}")
        if self.image_size % self.encoder_stride:
            raise ValueError(
                f"image_size must be a multiple of encoder_stride {self.encoder_stride}, "
                f"got {self.image_size}"
            )
        aliases = {paper: name for name, paper in TIME_MIXERS.items()}
        self.time_mixer = aliases.get(self.time_mixer, self.time_mixer)
        if self.time_mixer not in TIME_MIXERS:
            raise ValueError(
                f"time_mixer must be one of {sorted(set(TIME_MIXERS) | set(aliases))}, "
                f"got {self.time_mixer!r}"
            )
        if self.decoder_stride not in (2, 4):
            raise ValueError(f"decoder_stride must be 2 or 4, got {self.decoder_stride}")
        if self.mask_refine_radius < 0 or self.mask_refine_eps <= 0:
            raise ValueError(
                "mask_refine_radius must be >= 0 and mask_refine_eps > 0, got "
                f"{self.mask_refine_radius} and {self.mask_refine_eps}"
            )
        if isinstance(self.depth_head, bool) or self.depth_head < 0:
            raise ValueError(
                f"depth_head is a number of hidden units >= 0, got {self.depth_head!r}"
            )
        if self.num_slots < 1:
            raise ValueError(f"num_slots must be >= 1, got {self.num_slots}")
        if (self.expand * self.dim) % self.headdim:
            raise ValueError("expand * dim must be a multiple of headdim")
        if self.dim % self.mixer_heads:
            raise ValueError("dim must be a multiple of mixer_heads")

    @property
    def d_inner(self) -> int:
        return self.expand * self.dim

    @property
    def ssm_heads(self) -> int:
        return self.d_inner // self.headdim

    @property
    def mask_size(self) -> int:
        return self.image_size // 2

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Config:
        for key, shipped in RETIRED.items():
            if shipped is not None and key in data and data[key] != shipped:
                raise ValueError(
                    f"config key {key}={data[key]!r} is an experiment that was removed (see the "
                    f"experiment log, docs/experiments.md); only {key}={shipped!r} still loads"
                )
        data = {k: v for k, v in data.items() if k not in RETIRED}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known keys are {sorted(known)}")
        return cls(**data)
