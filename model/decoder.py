"""Decoder: each slot is decoded on its own into alpha, log-depth (and RGB); a softmax over
slots of the alphas gives the masks.

A spatial-broadcast MLP (Watters et al. 2019) of the slot and the pixel position alone, at
the token grid, upsampled to half the input size. It is deliberately weak: a slot must
carry *where* its region is in its own vector, which is cheap for one compact object and
expensive for scattered pixels of one colour, so slots come to bind to objects.

Depth is the mask-weighted sum of the slots' log-depths; the slot ID of a pixel is the
argmax of the masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .encoder import coordinate_grid


@dataclass
class Decoded:
    mask_logits: Tensor  # (B, N, h, w), h, w = half the input size
    log_depth: Tensor  # (B, N, h, w) per slot
    rgb: Tensor | None  # (B, N, 3, h, w) per slot, in [0, 1]


class SlotDecoder(nn.Module):
    def __init__(self, dim: int, hidden: int, rgb_head: bool):
        super().__init__()
        self.rgb_head = rgb_head
        out_channels = 2 + (3 if rgb_head else 0)  # alpha, log-depth (, rgb)
        # first layer split in two: W [slot; pos] = W_s slot + W_p pos, so the slot term is
        # computed once per slot, not once per pixel
        self.norm = nn.LayerNorm(dim)  # the residual stream grows with depth; decode its direction
        self.slot_in = nn.Linear(dim, hidden)
        self.pos_in = nn.Linear(4, hidden, bias=False)
        self.mlp = nn.Sequential(
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, out_channels),
        )

    def forward(self, slots: Tensor, grid: tuple[int, int], size: tuple[int, int]) -> Decoded:
        """slots (B, N, D) decoded on a grid (gh, gw), upsampled to size (h, w)."""
        gh, gw = grid
        pos = self.pos_in(coordinate_grid(gh, gw, slots.device))  # (gh*gw, hidden)
        out = self.mlp(self.slot_in(self.norm(slots)).unsqueeze(2) + pos)  # (B, N, gh*gw, C)
        out = rearrange(out, "b n (y x) c -> (b n) c y x", y=gh)
        out = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
        out = rearrange(out, "(b n) c y x -> b n c y x", n=slots.shape[1])
        return Decoded(
            mask_logits=out[:, :, 0],
            log_depth=out[:, :, 1],
            rgb=out[:, :, 2:5].sigmoid() if self.rgb_head else None,
        )
