"""Image-guided masks: a learned term that lets each slot's alpha follow the frame's edges.

The decoder draws each slot's alpha from the slot vector and a pixel position alone, which
gives smooth blobs: the rims of objects fall into the background's slots, and a
weight-free guided filter (model/refine.py) re-fits them after the fact. Here the network
learns that step. A small CNN maps the frame to a key per mask pixel, each slot emits a
query, and their scaled dot product is added to the slot's alpha logit, as the masks of
Mask2Former or of Slot Attention's attention maps come from slot-feature similarity:

    alpha_logit[n, p] = decoder(slot_n, p) + <query(slot_n), key(frame)[p]> / sqrt(C)

The slot's depth and RGB still come from the slot vector alone, so a slot must still carry
its object's content; the image only sharpens where its mask ends. Only depth trains the
guide (OCSlotSSM._decode): trained by the RGB reconstruction too, it grouped pixels by
colour, the spots of a floor's texture into slots of their own (model card). The key's last
layer starts at zero: a model gains the term without its outputs changing (train --init).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class MaskGuide(nn.Module):
    """frames (B, 3, H, W) in [0, 1] and slots (B, N, D) -> alpha logits (B, N, H/2, W/2)."""

    def __init__(self, dim: int, channels: int, hidden: int = 32):
        super().__init__()
        self.key = nn.Sequential(  # a receptive field of 7 input pixels: colour edges, not objects
            nn.Conv2d(3, hidden, 3, stride=2, padding=1),  # the mask resolution, H/2
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, 1),
        )
        nn.init.zeros_(self.key[-1].weight)
        nn.init.zeros_(self.key[-1].bias)
        self.norm = nn.LayerNorm(dim)
        self.query = nn.Linear(dim, channels)
        self.scale = 1.0 / math.sqrt(channels)

    def forward(self, frames: Tensor, slots: Tensor) -> Tensor:
        keys = self.key((frames - 0.5) * 2.0)  # (B, C, H/2, W/2)
        queries = self.query(self.norm(slots))  # (B, N, C)
        return torch.einsum("bnc,bchw->bnhw", queries, keys) * self.scale
