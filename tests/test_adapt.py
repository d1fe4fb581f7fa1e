"""Adapting to one video (model/adapt.py): a copy learns the clip, the original is never
touched, a seed gives the same weights, the copy round-trips through from_pretrained, and
the command line does the same with the training entry point (--depth-from-init)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model import OCSlotSSM
from model.adapt import adapt, adaptation_clip, seconds_per_step
from model.data import load_folder
from model.precision import training_precision
from model.train import teacher_depth

from .test_model import TINY
from .test_train import train


@pytest.fixture(scope="module")
def clip_rgb(tiny_synth) -> np.ndarray:
    return load_folder(tiny_synth, 32, limit=1)[0].rgb  # (6, 32, 32, 3)


@pytest.fixture(scope="module")
def base() -> OCSlotSSM:
    torch.manual_seed(0)
    return OCSlotSSM(TINY).eval()


def state(model: OCSlotSSM) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_adapting_learns_the_clip_and_leaves_the_original_alone(base, clip_rgb):
    before = state(base)
    adapted, report = adapt(base, clip_rgb, steps=40, lr=3e-3, batch=4, frames=4)
    assert all(torch.equal(v, base.state_dict()[k]) for k, v in before.items())
    assert not adapted.training and report.steps == 40 and report.device == "cpu"
    assert report.precision == training_precision("cpu")  # bf16 where the CPU has it natively
    # the reconstruction of this very clip is better after than before
    video = torch.from_numpy(clip_rgb).permute(0, 3, 1, 2).float().div(255)[None]
    target = torch.nn.functional.avg_pool2d(video[0], 2)
    with torch.no_grad():
        err = [((m(video).rgb[0] - target) ** 2).mean().item() for m in (base, adapted)]
    assert err[1] < 0.85 * err[0], err
    assert report.loss_last < report.loss_first


def test_same_seed_same_weights_other_seed_other_weights(base, clip_rgb):
    runs = [adapt(base, clip_rgb, steps=3, seed=s, batch=2, frames=3)[0] for s in (1, 1, 2)]
    a, b, c = (r.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_adapted_weights_round_trip(base, clip_rgb, tmp_path):
    adapted, _ = adapt(base, clip_rgb, steps=2, batch=2, frames=3)
    adapted.save_pretrained(tmp_path / "adapted")
    loaded = OCSlotSSM.from_pretrained(tmp_path / "adapted")
    video = torch.rand(1, 3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(video).masks, adapted(video).masks)


def test_time_budget_stops_early_and_inference_mode_is_no_obstacle(base, clip_rgb):
    with torch.inference_mode():  # as a server may call it
        _, report = adapt(base, clip_rgb, steps=1000, max_seconds=0.0, batch=2, frames=3)
    assert report.steps == 1 and report.steps_asked == 1000


def test_depth_target_is_what_the_original_predicts(base, clip_rgb):
    clip = adaptation_clip(base, clip_rgb)
    assert clip.depth.shape == clip_rgb.shape[:3] and clip.masks is None
    with torch.no_grad():
        direct = base(torch.from_numpy(clip_rgb).permute(0, 3, 1, 2).float().div(255)[None])
    # the network's depth at the frames' size (bilinear in log depth), pixel for pixel
    log_depth = direct.log_depth[0][:, None]
    up = torch.nn.functional.interpolate(log_depth, size=clip.depth.shape[1:], mode="bilinear")
    np.testing.assert_allclose(clip.depth, up[:, 0].exp().numpy(), rtol=1e-5)
    assert np.log(clip.depth).std(axis=(1, 2)).min() > 1e-3  # a depth map, not a constant
    # streamed in chunks: the same as one pass
    np.testing.assert_allclose(teacher_depth(base, clip_rgb, chunk=2), clip.depth, rtol=1e-4)
    with pytest.raises(ValueError, match="uint8"):
        adaptation_clip(base, clip_rgb.astype(np.float32))
    with pytest.raises(ValueError, match="at least 2 frames"):
        adaptation_clip(base, clip_rgb[:1])
    assert seconds_per_step(base, (32, 32), batch=2, frames=3) > 0


def test_cli_adapts_to_a_folder_of_videos(tmp_path):
    """The command line: the training entry point on videos without depth, starting from
    weights, with those weights' depth as the target."""
    import imageio.v3 as iio

    rng = np.random.default_rng(0)
    iio.imwrite(tmp_path / "mine.mp4", (rng.random((6, 32, 32, 3)) * 255).astype(np.uint8), fps=10)
    train([tmp_path], tmp_path / "base", 2, "--eval-every", "2")
    train(
        [tmp_path],
        tmp_path / "adapted",
        5,
        "--init",
        str(tmp_path / "base" / "weights"),
        "--depth-from-init",
        "--eval-every",
        "5",
    )
    rows = (tmp_path / "adapted" / "log.csv").read_text().splitlines()
    depth_loss = float(rows[1].split(",")[rows[0].split(",").index("depth_loss")])
    assert depth_loss > 0  # the clip has a depth target now (without one it would be 0)
    with pytest.raises(SystemExit, match="needs --init"):
        train([tmp_path], tmp_path / "bad", 1, "--depth-from-init")
