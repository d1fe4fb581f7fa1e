"""Slot mixer: self-attention across the N slots of the same frame (objects interact)."""

from __future__ import annotations

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


class SlotMixer(nn.Module):
    """(B, N, D) -> (B, N, D), multi-head self-attention over the slot axis (no mask: slots
    are a set, not a sequence)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim)

    def forward(self, slots: Tensor) -> Tensor:
        q, k, v = rearrange(
            self.qkv(slots), "b n (three h e) -> three b h n e", three=3, h=self.heads
        )
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(rearrange(y, "b h n e -> b n (h e)"))
