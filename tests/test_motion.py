"""The motion score for real footage without ground truth (model/motion.py): the region that
moves on its own, found from optical flow alone, and the best single slot's IoU with it."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import imageio.v3 as iio
import numpy as np
import pytest

from model.motion import best_label_iou, grid_ids, moving_regions

from .app_helpers import ROOT

SIZE, SIDE, STEP = 96, 24, 3  # frame size, square side, square motion in px per frame


def texture(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Smooth random colour texture, (H, W, 3) uint8: flow can lock onto it."""
    noise = np.random.default_rng(seed).random((*shape, 3)).astype(np.float32)
    return (255 * cv2.GaussianBlur(noise, (0, 0), 1.5).clip(0, 1)).astype(np.uint8)


def moving_square(frames: int = 8, pan: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured square moving STEP px per frame to the right over a textured background
    that pans `pan` px per frame to the left (a camera following it). Returns frames
    (T, SIZE, SIZE, 3) uint8 and the square's pixels (T, SIZE, SIZE) bool."""
    ground = texture((SIZE, SIZE + pan * frames), seed=0)
    patch = texture((SIDE, SIDE), seed=1)
    video = np.empty((frames, SIZE, SIZE, 3), np.uint8)
    square = np.zeros((frames, SIZE, SIZE), bool)
    for t in range(frames):
        video[t] = ground[:, pan * t : pan * t + SIZE]
        x = 20 + STEP * t
        video[t, 40 : 40 + SIDE, x : x + SIDE] = patch
        square[t, 40 : 40 + SIDE, x : x + SIDE] = True
    return video, square


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / (a | b).sum()


@pytest.mark.parametrize("pan", [0, 2])
def test_moving_region_is_the_object_not_the_camera(pan):
    video, square = moving_square(pan=pan)
    moving, scored = moving_regions(video)
    assert not scored[0] and scored[1:].all()  # frame 0 has no previous frame
    assert iou(moving[1:], square[1:]) > 0.6, iou(moving[1:], square[1:])
    # the background is explained by the camera's motion (none, or the pan)
    assert moving[1:][~square[1:]].mean() < 0.03


def test_a_still_video_has_nothing_to_score():
    video = np.repeat(texture((SIZE, SIZE), seed=0)[None], 5, 0)
    moving, scored = moving_regions(video)
    assert not scored.any() and not moving.any()
    assert np.isnan(best_label_iou(grid_ids(moving.shape), moving, scored))


def test_best_label_iou_on_known_slot_maps():
    _, square = moving_square()
    scored = np.ones(len(square), bool)
    ids = np.zeros(square.shape, np.int64)
    ids[square] = 2  # slot 2 is exactly the object, in every frame
    assert best_label_iou(ids, square, scored) == 1.0
    half = ids.copy()
    half[4:][square[4:]] = 1  # the object handed to slot 1 half way
    assert best_label_iou(half, square, scored) == pytest.approx(0.5)
    wide = ids.copy()
    wide[:, 40 : 40 + SIDE, :20] = 2  # slot 2 also holds as much background as object
    got = best_label_iou(wide, square, scored)
    assert got == pytest.approx(square.sum() / (square.sum() + (wide == 2).sum() - square.sum()))
    scored[4:] = False  # frames not scored do not count
    assert best_label_iou(half, square, scored) == 1.0
    grid = grid_ids(square.shape)
    assert sorted(np.unique(grid)) == list(range(9))
    assert np.bincount(grid[0].ravel()).min() >= (SIZE // 3) ** 2
    assert 0 < best_label_iou(grid, square, np.ones(len(square), bool)) < 0.5


def test_evaluate_scores_a_folder_of_videos(tmp_path):
    video, _ = moving_square(frames=10)
    (tmp_path / "clips").mkdir()
    iio.imwrite(tmp_path / "clips" / "square.mp4", video, fps=10, codec="libx264")
    out = tmp_path / "motion.json"
    cmd = [sys.executable, "-m", "model.evaluate", "--videos", str(tmp_path / "clips")]
    result = subprocess.run(
        [*cmd, "--json", str(out), "--motion-size", str(SIZE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads(out.read_text())
    clip = metrics["clips"]["square"]
    assert metrics["num_videos"] == 1 and clip["frames"] == 10
    for key in ("motion_iou", "decoder_motion_iou", "grid_motion_iou"):
        assert 0 < clip[key] <= 1 and metrics[key] == clip[key]
    bad = subprocess.run(
        [*cmd[:-1], str(tmp_path / "missing"), "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr
