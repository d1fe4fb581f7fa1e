"""Decoder: each slot is decoded on its own; softmax over slots of the alpha logits gives masks.

- Content (log-depth and optionally RGB) comes from a spatial-broadcast MLP of the slot and
  the pixel position alone, at the token grid, then upsampled: a deliberately weak decoder, so
  one slot cannot draw a whole scene and slots must share it out.
- Alpha (how much slot k explains pixel p) compares the slot with the frame's fine features,
  like the encoder's attention, so masks follow image edges at half the input resolution.

Depth is the mask-weighted sum of the slots' log-depths; the slot ID of a pixel is the
argmax of the masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
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
        self.out_channels = 1 + (3 if rgb_head else 0)
        self.rgb_head = rgb_head
        # first layer split in two: W [slot; pos] = W_s slot + W_p pos, so the slot term is
        # computed once per slot, not once per pixel
        self.slot_in = nn.Linear(dim, hidden)
        self.pos_in = nn.Linear(4, hidden, bias=False)
        self.content = nn.Sequential(
            nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, self.out_channels)
        )
        self.norm_slots = nn.LayerNorm(dim)
        self.norm_feats = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.scale = dim**-0.5

    def forward(self, slots: Tensor, features: Tensor, size: tuple[int, int]) -> Decoded:
        """slots (B, N, D), features (B, h*w, D) at mask resolution size = (h, w)."""
        h, w = size
        ch, cw = h // 2, w // 2  # content grid = token grid
        pos = self.pos_in(coordinate_grid(ch, cw, slots.device))  # (ch*cw, hidden)
        content = self.content(self.slot_in(slots).unsqueeze(2) + pos)  # (B, N, ch*cw, C)
        content = rearrange(content, "b n (y x) c -> (b n) c y x", y=ch)
        content = F.interpolate(content, size=(h, w), mode="bilinear", align_corners=False)
        content = rearrange(content, "(b n) c y x -> b n c y x", n=slots.shape[1])

        q = self.to_q(self.norm_slots(slots))
        k = self.to_k(self.norm_feats(features))
        logits = torch.einsum("bnd,bpd->bnp", q, k) * self.scale
        logits = rearrange(logits, "b n (y x) -> b n y x", y=h)
        rgb = torch.sigmoid(content[:, :, 1:4]) if self.rgb_head else None
        return Decoded(mask_logits=logits, log_depth=content[:, :, 0], rgb=rgb)
