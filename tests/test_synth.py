"""The procedural renderer: deterministic, physically sensible, fast enough, with a CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model.synth import SceneConfig, clip_seed, load_clip, render_clip, write_dataset

ROOT = Path(__file__).resolve().parents[1]
CFG = SceneConfig(size=32, frames=4)


@pytest.fixture(scope="module")
def clips():
    return [render_clip(clip_seed(0, i), CFG) for i in range(8)]


def test_deterministic_by_seed():
    a, b = render_clip(clip_seed(5, 3), CFG), render_clip(clip_seed(5, 3), CFG)
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert not np.array_equal(a["rgb"], render_clip(clip_seed(5, 4), CFG)["rgb"])


def test_shapes_dtypes_and_depth(clips):
    for c in clips:
        assert c["rgb"].shape == (4, 32, 32, 3) and c["rgb"].dtype == np.uint8
        assert c["depth"].shape == (4, 32, 32) and c["depth"].dtype == np.float32
        assert c["masks"].shape == (4, 32, 32) and c["masks"].dtype == np.uint8
        assert c["flow"].shape == (4, 32, 32, 2)
        assert np.isfinite(c["depth"]).all() and c["depth"].min() > 0.5 and c["depth"].max() < 40


def test_objects_visible_and_in_front(clips):
    """Most clips show several objects; objects are nearer than the background around them."""
    counts = [len(np.unique(c["masks"][0])) - 1 for c in clips]
    assert np.mean(counts) >= 2 and max(counts) <= CFG.max_objects
    nearer = []
    for c in clips:
        d, m = c["depth"][0], c["masks"][0]
        for k in np.unique(m[m > 0]):
            ys, xs = np.nonzero(m == k)
            band = m[ys.min() : ys.max() + 1, :] == 0  # background beside the object, same rows
            if band.any():
                nearer.append(np.median(d[m == k]) < np.median(d[ys.min() : ys.max() + 1][band]))
    assert np.mean(nearer) > 0.8


def test_ids_are_stable_over_time(clips):
    for c in clips:
        for k in np.unique(c["masks"]):
            if k == 0:
                continue
            centres = [np.argwhere(m == k).mean(0) for m in c["masks"] if (m == k).sum() > 10]
            steps = np.linalg.norm(np.diff(centres, axis=0), axis=1) if len(centres) > 1 else [0]
            assert np.max(steps) < 6, (k, steps)  # pixels per frame at 32x32


def test_flow_carries_pixels_to_the_same_object():
    c = render_clip(clip_seed(1, 0), SceneConfig(size=48, frames=3, camera_motion=1.0))
    hits = []
    for t in range(2):
        ys, xs = np.nonzero(c["masks"][t] > 0)
        tx = np.round(xs + c["flow"][t][ys, xs, 0]).astype(int)
        ty = np.round(ys + c["flow"][t][ys, xs, 1]).astype(int)
        inside = (tx >= 0) & (tx < 48) & (ty >= 0) & (ty < 48)
        hits.append(
            c["masks"][t + 1][ty[inside], tx[inside]] == c["masks"][t][ys[inside], xs[inside]]
        )
    assert np.mean(np.concatenate(hits)) > 0.8


def test_static_camera_and_objects_have_zero_background_flow():
    c = render_clip(clip_seed(2, 0), SceneConfig(size=32, frames=3, camera_motion=0.0))
    background = c["masks"][0] == 0
    assert np.abs(c["flow"][0][background]).max() < 1e-3


def test_shadows_darken_the_ground():
    """Turning shadows off brightens some background pixels, and never darkens one."""
    cfg = SceneConfig(size=48, frames=1, texture_prob=0, photo_prob=0)
    shaded_pixels = 0
    for i in range(4):
        shaded = render_clip(clip_seed(3, i), cfg)
        lit = render_clip(clip_seed(3, i), SceneConfig(**{**cfg.__dict__, "shadows": False}))
        assert np.array_equal(shaded["masks"], lit["masks"])
        diff = lit["rgb"][0].astype(int) - shaded["rgb"][0].astype(int)
        assert diff.min() >= 0
        shaded_pixels += (diff.sum(-1) > 0)[shaded["masks"][0] == 0].sum()
    assert shaded_pixels > 20


def test_dataset_roundtrip_and_cli(tmp_path):
    meta = write_dataset(tmp_path / "a", videos=2, seed=9, cfg=CFG)
    assert meta["videos"] == 2 and meta["clips_per_second"] > 0
    clip = load_clip(tmp_path / "a" / "clip_00001.npz")
    ref = render_clip(clip_seed(9, 1), CFG)
    assert np.array_equal(clip["rgb"], ref["rgb"]) and np.array_equal(clip["masks"], ref["masks"])

    cmd = [
        sys.executable,
        "-m",
        "model.synth",
        "--out",
        str(tmp_path / "b"),
        "--videos",
        "2",
        "--seed",
        "9",
        "--size",
        "32",
        "--frames",
        "4",
        "--preview",
    ]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "clip_00000.npz",
        "clip_00001.npz",
        "meta.json",
        "preview.png",
    ]
    assert json.loads((tmp_path / "b" / "meta.json").read_text())["seed"] == 9
    assert np.array_equal(load_clip(tmp_path / "b" / "clip_00001.npz")["rgb"], clip["rgb"])


@pytest.mark.parametrize(
    "args",
    [
        ["--videos", "0"],
        ["--size", "8"],
        ["--min-objects", "5", "--max-objects", "2"],
        ["--frames", "0"],
    ],
)
def test_cli_refuses_bad_arguments(tmp_path, args):
    base = {"--videos": "1", "--size": "32", "--frames": "2"}
    for k in args[::2]:
        base.pop(k, None)
    cmd = [
        sys.executable,
        "-m",
        "model.synth",
        "--out",
        str(tmp_path),
        *[x for kv in base.items() for x in kv],
        *args,
    ]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "error:" in result.stderr and "Traceback" not in result.stderr
