"""Frame encoder: a small CNN that turns each frame into feature tokens with 2-D position.

Two outputs per frame, at two strides:
- tokens (stride 4): what the slot encoder attends to, L = (H/4) * (W/4) of width D;
- mask features (stride 2): finer features the decoder compares slots with to draw masks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


def coordinate_grid(h: int, w: int, device=None) -> Tensor:
    """(h*w, 4) with channels (x, y, 1-x, 1-y) in [0, 1]: the soft position of Slot Attention.
    Defined for any grid size, so the model runs at any resolution divisible by 4."""
    ys = torch.linspace(0.0, 1.0, h, device=device)
    xs = torch.linspace(0.0, 1.0, w, device=device)
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([x, y, 1 - x, 1 - y], dim=-1)
    return rearrange(grid, "h w c -> (h w) c")


class SoftPositionEmbed(nn.Module):
    """Adds a learned linear function of the (x, y, 1-x, 1-y) coordinates to a token map."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Linear(4, dim)

    def forward(self, tokens: Tensor, h: int, w: int) -> Tensor:
        return tokens + self.proj(coordinate_grid(h, w, tokens.device))


class FrameEncoder(nn.Module):
    """(B, 3, H, W) in [0, 1] -> tokens (B, H/4 * W/4, D), mask features (B, H/2 * W/2, D)."""

    def __init__(self, dim: int, channels: int):
        super().__init__()
        half = channels // 2
        self.stem = nn.Sequential(nn.Conv2d(3, half, 3, stride=2, padding=1), nn.ReLU())  # H/2
        self.body = nn.Sequential(
            nn.Conv2d(half, channels, 3, stride=2, padding=1),  # H/4
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, dim, 3, padding=1),
        )
        self.token_pos = SoftPositionEmbed(dim)
        self.token_mlp = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim)
        )
        # mask features: the stride-2 stem plus the upsampled stride-4 features
        self.fine = nn.Conv2d(half, dim, 1)
        self.fine_pos = SoftPositionEmbed(dim)

    def forward(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        x = (frames - 0.5) * 2.0
        stem = self.stem(x)  # (B, C/2, H/2, W/2)
        coarse = self.body(stem)  # (B, D, H/4, W/4)
        h, w = coarse.shape[-2:]
        tokens = self.token_pos(rearrange(coarse, "b d h w -> b (h w) d"), h, w)
        tokens = tokens + self.token_mlp(tokens)

        fine = self.fine(stem) + F.interpolate(
            coarse, scale_factor=2, mode="bilinear", align_corners=False
        )
        fh, fw = fine.shape[-2:]
        fine = self.fine_pos(rearrange(fine, "b d h w -> b (h w) d"), fh, fw)
        return tokens, fine
