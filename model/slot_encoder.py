"""Slot encoder: slots read the frame's tokens by inverted cross-attention (OC-SlotSSM).

The softmax runs over the *slot* axis, so slots compete for every token; each slot's weights
are then renormalised over the tokens, so its update is a weighted mean of the tokens it won.
One head. The first block may iterate this several times with a GRU, as in Slot Attention
(Locatello et al. 2020, Algorithm 1), to let slots settle on objects within a frame.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

EPS = 1e-8  # keeps the renormalisation finite for a slot that won no token


def mlp(dim: int, ratio: float) -> nn.Sequential:
    hidden = int(dim * ratio)
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class InvertedAttention(nn.Module):
    """slots (B, N, D), tokens (B, L, D) -> updates (B, N, D), attention (B, N, L).

    The returned attention is the softmax over slots (sums to 1 over N for each token):
    each slot's share of each token, the map the app shows."""

    def __init__(self, dim: int):
        super().__init__()
        self.scale = dim**-0.5
        self.norm_slots = nn.LayerNorm(dim)
        self.norm_tokens = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_kv = nn.Linear(dim, 2 * dim, bias=False)

    def forward(self, slots: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor]:
        q = self.to_q(self.norm_slots(slots))
        k, v = self.to_kv(self.norm_tokens(tokens)).chunk(2, dim=-1)
        logits = torch.einsum("bnd,bld->bnl", q, k) * self.scale
        attn = logits.softmax(dim=1)  # over slots: slots compete for each token
        weights = (attn + EPS) / (attn + EPS).sum(
            dim=-1, keepdim=True
        )  # over tokens: a weighted mean
        return torch.einsum("bnl,bld->bnd", weights, v), attn


class SlotEncoder(nn.Module):
    """One read of the frame by the slots: (B, N, D) -> (B, N, D), attention (B, N, L).

    iters == 1: residual update (the SlotSSM block). iters > 1: GRU refinement loop."""

    def __init__(self, dim: int, iters: int, mlp_ratio: float):
        super().__init__()
        self.iters = iters
        self.attn = InvertedAttention(dim)
        if iters > 1:
            self.gru = nn.GRUCell(dim, dim)
            self.norm_mlp = nn.LayerNorm(dim)
            self.mlp = mlp(dim, mlp_ratio)
        else:
            self.out = nn.Linear(dim, dim)

    def forward(self, slots: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor]:
        if self.iters == 1:
            updates, attn = self.attn(slots, tokens)
            return slots + self.out(updates), attn
        b, n, d = slots.shape
        init = slots
        for i in range(self.iters):
            if i == self.iters - 1:  # straight-through: the last step's gradient reaches the init
                slots = slots.detach() + init - init.detach()
            updates, attn = self.attn(slots, tokens)
            slots = self.gru(updates.reshape(b * n, d), slots.reshape(b * n, d)).reshape(b, n, d)
            slots = slots + self.mlp(self.norm_mlp(slots))
        return slots, attn
