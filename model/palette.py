"""A fixed palette for slot IDs, shared by training sheets and the app (stable colours)."""

from __future__ import annotations

import numpy as np

# 20 well-separated colours (Tableau 20 order, strong colours first)
PALETTE = np.array(
    [
        [31, 119, 180],
        [255, 127, 14],
        [44, 160, 44],
        [214, 39, 40],
        [148, 103, 189],
        [140, 86, 75],
        [227, 119, 194],
        [127, 127, 127],
        [188, 189, 34],
        [23, 190, 207],
        [174, 199, 232],
        [255, 187, 120],
        [152, 223, 138],
        [255, 152, 150],
        [197, 176, 213],
        [196, 156, 148],
        [247, 182, 210],
        [199, 199, 199],
        [219, 219, 141],
        [158, 218, 229],
    ],
    dtype=np.uint8,
)


def slot_color(i: int) -> tuple[int, int, int]:
    return tuple(int(c) for c in PALETTE[i % len(PALETTE)])


def colorize_ids(ids: np.ndarray) -> np.ndarray:
    """(..., H, W) integer ids -> (..., H, W, 3) uint8 colours."""
    return np.take(PALETTE, ids, axis=0, mode="wrap")  # 4x faster than PALETTE[ids % n]
