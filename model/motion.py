"""A score for real footage without ground truth: does one slot keep what moves?

Motion grouping (Yang et al. 2021) segments independently moving objects from optical flow
alone. Here, for every frame t >= 1, the flow since frame t - 1 (OpenCV DIS, model/flow.py)
is explained by the camera as well as one affine motion field can (a least-squares fit,
refitted a few times on the pixels it explains, so moving objects do not pull it); pixels
whose flow differs from it by more than MOTION_THRESHOLD pixels move on their own: the
"moving region". Frames where almost nothing moves on its own are left out.

The score of a slot map is the video IoU of its best single label with the moving region
(one label for all scored frames: a slot that hands the object to another slot half way
loses half of it), and the same score of a fixed 3x3 grid of image cells, a slot map that
knows nothing about the video, tells what the number is worth. Everything is deterministic
(DIS and least squares), so anyone with the clips gets the same numbers.
"""

from __future__ import annotations

import numpy as np

from .flow import dis_flow

MOTION_THRESHOLD = 1.0  # pixels per frame (at the analysed size) beyond the camera's motion
FIT_ROUNDS = 4  # refits of the camera's motion on the pixels the previous fit explains
MIN_MOVING_SHARE = 0.005  # frames where less of the frame moves on its own are not scored
GRID_CELLS = 3  # the baseline: a fixed GRID_CELLS x GRID_CELLS grid of image cells


def camera_motion(flow: np.ndarray, threshold: float = MOTION_THRESHOLD) -> np.ndarray:
    """flow (H, W, 2) -> (H, W, 2): the affine motion field (pan, zoom, rotation, shear) that
    agrees with most of the frame. Starts from the median motion (a pan), then refits on the
    pixels within threshold of the last fit."""
    h, w = flow.shape[:2]
    y, x = np.mgrid[0:h, 0:w]
    coords = np.stack([x.ravel() / w, y.ravel() / h, np.ones(h * w)], 1)  # (P, 3)
    f = flow.reshape(-1, 2).astype(np.float64)
    fit = np.broadcast_to(np.median(f, 0), f.shape)
    for _ in range(FIT_ROUNDS):
        agree = np.linalg.norm(f - fit, axis=1) < threshold
        if agree.sum() < 0.1 * len(f):  # nothing agrees: keep the last fit
            break
        coef, *_ = np.linalg.lstsq(coords[agree], f[agree], rcond=None)
        fit = coords @ coef
    return fit.reshape(h, w, 2)


def moving_regions(
    frames: np.ndarray, threshold: float = MOTION_THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """frames (T, H, W, 3) uint8 -> moving (T, H, W) bool, pixels that move on their own
    since the previous frame, and scored (T,) bool, the frames with a moving region (never
    frame 0: it has no previous frame)."""
    flow = dis_flow(frames).astype(np.float32)
    moving = np.zeros(frames.shape[:3], bool)
    for t in range(1, len(frames)):
        moving[t] = np.linalg.norm(flow[t] - camera_motion(flow[t], threshold), axis=-1) > threshold
    scored = moving.mean(axis=(1, 2)) >= MIN_MOVING_SHARE
    scored[0] = False
    moving[~scored] = False
    return moving, scored


def best_label_iou(ids: np.ndarray, moving: np.ndarray, scored: np.ndarray) -> float:
    """ids (T, H, W) int labels, moving (T, H, W) bool, scored (T,) bool -> the highest video
    IoU of one label with the moving region over the scored frames (NaN if none)."""
    ids, moving = ids[scored].ravel(), moving[scored].ravel()
    if not moving.any():
        return float("nan")
    count = int(ids.max()) + 1
    inter = np.bincount(ids[moving], minlength=count)
    union = np.bincount(ids, minlength=count) + moving.sum() - inter
    return float((inter / np.maximum(union, 1)).max())


def grid_ids(shape: tuple[int, int, int], cells: int = GRID_CELLS) -> np.ndarray:
    """(T, H, W) labels of a fixed cells x cells grid of image cells, the same every frame."""
    t, h, w = shape
    rows = np.arange(h) * cells // h
    cols = np.arange(w) * cells // w
    return np.broadcast_to(rows[:, None] * cells + cols[None, :], (t, h, w))
