"""The motion score for real footage without ground truth (model/motion.py): the region that
moves on its own, found from optical flow alone, and the best single slot's IoU with it."""

from __future__ import annotations

import json

import cv2
import imageio.v3 as iio
import numpy as np
import pytest

from model.motion import best_label_iou, grid_ids, moving_regions

from .cli_helpers import assert_ran, assert_usage_error, run_module

SIZE, SIDE, STEP = 96, 24, 3  # frame size, square side, square motion in px per frame


def texture(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Smooth random colour texture, (H, W, 3) uint8: flow can lock onto it."""
    noise = np.random.default_rng(seed).random((*shape, 3)).astype(np.float32)
    return (255 * cv2.GaussianBlur(noise, (0, 0), 1.5).clip(0, 1)).astype(np.uint8)


def moving_square(
    frames: int = 8, pan: int = 0, zoom: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """A textured square moving STEP px per frame to the right over a textured background
    that pans `pan` px per frame to the left (a camera following it) and grows `zoom` times
    a frame about the centre (a camera zooming in). Returns frames (T, SIZE, SIZE, 3) uint8
    and the square's pixels (T, SIZE, SIZE) bool."""
    ground = texture((SIZE, SIZE + pan * frames), seed=0)
    patch = texture((SIDE, SIDE), seed=1)
    video = np.empty((frames, SIZE, SIZE, 3), np.uint8)
    square = np.zeros((frames, SIZE, SIZE), bool)
    for t in range(frames):
        video[t] = ground[:, pan * t : pan * t + SIZE]
        if zoom != 1.0:
            grow = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), 0, zoom**t)
            video[t] = cv2.warpAffine(video[t], grow, (SIZE, SIZE), borderMode=cv2.BORDER_REFLECT)
        x = 20 + STEP * t
        video[t, 40 : 40 + SIDE, x : x + SIDE] = patch
        square[t, 40 : 40 + SIDE, x : x + SIDE] = True
    return video, square


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / (a | b).sum()


@pytest.mark.parametrize("pan, zoom", [(0, 1.0), (2, 1.0), (0, 1.03)])
def test_moving_region_is_the_object_not_the_camera(pan, zoom):
    video, square = moving_square(pan=pan, zoom=zoom)
    moving, scored = moving_regions(video)
    assert not scored[0] and scored[1:].all()  # frame 0 has no previous frame
    assert iou(moving[1:], square[1:]) > 0.6, iou(moving[1:], square[1:])
    # the background is explained by the camera's motion (none, a pan, a zoom)
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
    result = run_module(
        "model.evaluate", "--videos", tmp_path / "clips", "--json", out, "--motion-size", SIZE
    )
    assert_ran(result)
    metrics = json.loads(out.read_text())
    clip = metrics["clips"]["square"]
    assert metrics["num_videos"] == 1 and clip["frames"] == 10
    for key in ("motion_iou", "decoder_motion_iou", "grid_motion_iou"):
        assert 0 < clip[key] <= 1 and metrics[key] == clip[key]
    bad = run_module("model.evaluate", "--videos", tmp_path / "missing", "--json", out)
    assert_usage_error(bad, "does not exist")


def test_held_object_score_is_one_slot_keeping_the_carried_object():
    """model.evaluate's held_iou (clips where a hand carries an object): the video IoU of the
    best single slot with that object, every stage of the slot IDs, beside a grid and k-means."""
    from model.data import Clip
    from model.evaluate import held_object_iou, held_object_scores

    video, square = moving_square()
    masks = square.astype(np.uint8)  # object 1 is carried ...
    masks[:, 10:30, 10:30] = 2  # ... past object 2, which stands still
    clip = Clip(video, None, masks, "hand", held=1)
    kept = masks.astype(np.int64)  # one slot per object, all the way
    handed_on = kept.copy()
    handed_on[4:][square[4:]] = 3  # the carried object goes to another slot half way
    assert held_object_iou(clip, kept) == 1.0
    assert held_object_iou(clip, handed_on) == pytest.approx(0.5)
    hidden = clip.masks.copy()
    hidden[6:][hidden[6:] == 1] = 0  # frames where it is out of sight do not count
    assert held_object_iou(Clip(video, None, hidden, "hand", held=1), kept) == 1.0
    pred = {"slot_ids": kept, "slot_ids_untracked": kept}
    pred |= {"slot_ids_decoded": handed_on, "slot_ids_memoryless": np.zeros_like(kept)}
    row = held_object_scores(clip, pred, k=4)
    assert row["shown"] == row["untracked"] == 1.0 and row["decoder"] == pytest.approx(0.5)
    assert row["memoryless"] == pytest.approx(square.sum() / square.size)
    assert 0 < row["grid_3x3"] < 0.5 and 0 < row["kmeans_colour_position"] <= 1
    assert "kmeans_colour_position" not in held_object_scores(clip, pred, k=4, kmeans=False)


def test_evaluate_reports_the_held_object_on_hand_scenes(tmp_path):
    """Only clips where a hand carries an object are scored, per clip and on average."""
    from dataclasses import replace

    import torch

    from model import OCSlotSSM
    from model.config import Config
    from model.data import load_folder
    from model.evaluate import evaluate
    from model.synth import SceneConfig, write_dataset

    write_dataset(tmp_path / "hand", 2, 3, SceneConfig(size=32, frames=4, scenes=("hand",)))
    write_dataset(tmp_path / "room", 1, 3, SceneConfig(size=32, frames=4))
    room = replace(load_folder(tmp_path / "room", 32)[0], name="room")  # not clip_00000 again
    clips = [*load_folder(tmp_path / "hand", 32), room]
    torch.manual_seed(0)
    model = OCSlotSSM(Config(dim=32, encoder_channels=16, num_slots=4, decoder_hidden=16)).eval()
    result = evaluate(model, clips, baselines=False, progress=False)
    held = result["held_object"]
    assert held["num_videos"] == 2
    per_clip = [c["held_iou"] for c in result["clips"].values() if "held_iou" in c]
    assert len(per_clip) == 2 and result["held_iou"] == pytest.approx(np.mean(per_clip))
    assert result["decoder_held_iou"] == held["decoder"]
    assert all(0 <= held[k] <= 1 for k in ("shown", "decoder", "memoryless", "grid_3x3"))
    rooms = evaluate(model, clips[2:], baselines=False, progress=False)
    assert "held_iou" not in rooms and "held_object" not in rooms
    # each clip also scored by a copy adapted to it alone; the model itself is not changed
    before = {k: v.clone() for k, v in model.state_dict().items()}
    both = evaluate(model, [clips[0], room], baselines=False, progress=False, adapt_steps=2)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert both["fg_ari"] == pytest.approx(
        np.mean([result["clips"][c]["fg_ari"] for c in ("clip_00000", "room")])
    )
    hand = both["clips"]["clip_00000"]
    assert 0 <= hand["adapted_held_iou"] <= 1 and "adapted_held_iou" not in both["clips"]["room"]
    assert both["adapted_held_iou"] == hand["adapted_held_iou"]
    assert both["adapted_fg_ari"] == pytest.approx(
        np.mean([c["adapted_fg_ari"] for c in both["clips"].values()])
    )
