"""Frame encoder: a small CNN that turns each frame into L = (H/s) * (W/s) feature tokens of
width D (s = 4; 2 for a finer grid, 8 for larger frames), with a 2-D position embedding, for
the slot encoder to attend to."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn


def coordinate_grid(h: int, w: int, device=None) -> Tensor:
    """(h*w, 4) with channels (x, y, 1-x, 1-y) in [0, 1]: the soft position of Slot Attention.
    Defined for any grid size, so the model runs at any resolution divisible by the stride."""
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
    """(B, 3, H, W) in [0, 1] -> tokens (B, H/stride * W/stride, D), stride 2, 4 or 8. The
    same parameters at every stride: only which convolutions stride 2 changes."""

    def __init__(self, dim: int, channels: int, stride: int):
        super().__init__()
        # which convolutions halve the frame: stride 2 the first, 4 the first two, 8 all three
        s1, s2, s3 = 2, min(stride // 2, 2), max(stride // 4, 1)
        self.cnn = nn.Sequential(
            nn.Conv2d(3, channels // 2, 3, stride=s1, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels // 2, channels, 3, stride=s2, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=s3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, dim, 3, padding=1),
        )
        self.pos = SoftPositionEmbed(dim)
        self.mlp = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim)
        )

    def forward(self, frames: Tensor) -> Tensor:
        x = self.cnn((frames - 0.5) * 2.0)  # (B, D, H/stride, W/stride)
        h, w = x.shape[-2:]
        tokens = self.pos(rearrange(x, "b d h w -> b (h w) d"), h, w)
        return tokens + self.mlp(tokens)
