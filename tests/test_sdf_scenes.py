"""The second, independent renderer (bench/sdf_scenes.py): distances sphere tracing can trust,
geometry where it should be, reproducible clips that model.evaluate's loader reads."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from bench import sdf_scenes as sdf
from model.data import load_folder


@pytest.mark.parametrize("kind", sdf.SHAPES)
def test_every_shape_is_a_signed_distance_sphere_tracing_can_trust(kind):
    rng = np.random.default_rng(0)
    for _ in range(5):
        params = sdf.draw_shape(kind, rng, 1.0)
        f = sdf.SDF[kind]
        a, b = rng.uniform(-1, 1, (2, 4000, 3))
        # 1-Lipschitz: a step of f(p) along the ray never passes through the surface
        assert np.all(
            np.abs(f(a, **params) - f(b, **params)) <= np.linalg.norm(a - b, axis=1) + 1e-9
        )
        g = np.linspace(-0.8, 0.8, 41)
        grid = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
        assert f(grid, **params).min() < 0 < f(np.array([[3.0, 3.0, 3.0]]), **params)[0]


def one_ball_scene(distance: float, radius: float, size: int = 64) -> sdf.Scene:
    """A ball of `radius` resting on the ground, seen level from `distance` metres away."""
    scene = sdf.sample_scene(np.random.default_rng(0), 1, size, size, 12.0)
    ball = replace(
        scene.objects[0],
        kind="capsule",
        params={"half": 0.0, "radius": radius},  # a capsule without length is a ball
        rot=np.eye(3)[None],
        pos=np.array([[0.0, radius, 0.0]]),
    )
    pos, target = np.array([[0.0, radius, distance]]), np.array([[0.0, radius, 0.0]])
    camera = sdf.Camera(pos, *sdf.look_at(pos, target, 0.0), tan_half_fov=np.tan(np.radians(20)))
    return replace(scene, objects=[ball], camera=camera, backdrop="sky")


def test_a_ball_lands_where_the_camera_geometry_puts_it():
    D, r, size = 4.0, 0.5, 64
    rgb, depth, ids = sdf.render_frame(one_ball_scene(D, r, size), 0)
    c = size // 2
    # the pixel centres next to the optical axis are a hair off it: the depth there is D - r
    assert depth[c, c] == pytest.approx(D - r, abs=2e-3)
    assert ids[c, c] == 1 and ids[0, 0] == 0 and depth[0, 0] == 0  # sky above: unknown depth
    # the ball's silhouette subtends asin(r / D) either side of the axis
    half_width = np.tan(np.arcsin(r / D)) / np.tan(np.radians(20)) * size / 2
    assert (ids[c] == 1).sum() == pytest.approx(2 * half_width, abs=1.5)
    assert (depth[ids == 1] > D - r - 1e-3).all() and (depth[ids == 1] < D).all()
    assert rgb.dtype == np.uint8 and rgb[ids == 1].std() > 0  # shaded, not flat
    # depth is along the optical axis, not along the ray: the ground at the bottom centre
    # pixel (camera at height r, level) lies r / (v tan(fov / 2)) metres ahead
    v = (size - 0.5 - size / 2) / (size / 2)
    assert depth[-1, c] == pytest.approx(r / (v * np.tan(np.radians(20))), rel=1e-4)


def test_clips_are_reproducible_and_read_as_evaluation_data(tmp_path):
    args = ["--videos", "2", "--size", "32", "--frames", "3", "--seed", "5"]
    sdf.main(["--out", str(tmp_path / "a"), *args])
    sdf.main(["--out", str(tmp_path / "b"), *args])
    sdf.main(["--out", str(tmp_path / "c"), *args[:-1], "6"])
    for name in ("rgb", "depth", "masks"):
        a, b, c = (np.load(tmp_path / d / "clip_00001.npz")[name] for d in "abc")
        assert np.array_equal(a, b) and not np.array_equal(a, c)
    meta = json.loads((tmp_path / "a" / "meta.json").read_text())
    assert meta["renderer"] == "bench.sdf_scenes" and len(meta["clips"]) == 2
    assert set(meta["clips"][0]["objects"]) <= set(sdf.SHAPES)

    clips = load_folder(tmp_path / "a", 64)
    assert len(clips) == 2
    for clip in clips:
        assert clip.rgb.shape == (3, 64, 64, 3) and clip.masks.max() >= 1
        assert (clip.depth[clip.masks > 0] > 0).all()  # every object pixel has a depth


def test_bad_arguments_exit_with_a_message(tmp_path, capsys):
    with pytest.raises(SystemExit):
        sdf.main(["--out", str(tmp_path), "--videos", "0"])
    assert "--videos" in capsys.readouterr().err
