"""Hostile files: random bytes and mutated mp4s never crash or hang the decoder, and a
corrupted weights file stops the app at start with a clear message."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from app.video_io import TruncatedVideo, VideoError, iter_frames, probe

from .app_helpers import ROOT, scene_frames, write_video

MUTANTS = 40


@pytest.fixture(scope="module")
def good_bytes(tmp_path_factory):
    path = write_video(
        tmp_path_factory.mktemp("fuzz") / "good.mp4", scene_frames(frames=12, size=48), fps=12
    )
    return path.read_bytes()


def mutants(data: bytes, rng: np.random.Generator):
    """Byte flips in the header, in random places, truncations, and pure noise."""
    for i in range(MUTANTS):
        b = bytearray(data)
        kind = i % 4
        if kind == 0:  # the moov/ftyp header area
            for pos in rng.integers(0, min(len(b), 600), size=8):
                b[pos] = rng.integers(256)
        elif kind == 1:
            for pos in rng.integers(0, len(b), size=30):
                b[pos] = rng.integers(256)
        elif kind == 2:
            b = b[: int(rng.integers(1, len(b)))]
        else:
            b = bytearray(rng.bytes(int(rng.integers(1, 4000))))
        yield bytes(b)


@pytest.mark.timeout(180)
def test_fuzzed_videos_fail_cleanly(tmp_path, good_bytes):
    rng = np.random.default_rng(1234)
    outcomes = {"refused": 0, "decoded": 0, "truncated": 0}
    for i, data in enumerate(mutants(good_bytes, rng)):
        path = tmp_path / f"m{i}.mp4"
        path.write_bytes(data)
        try:
            info = probe(path)
            frames = list(iter_frames(path, info, fps=12, max_seconds=5, size=(48, 48)))
            assert len(frames) <= 13  # never invents frames
            outcomes["decoded"] += 1
        except VideoError as err:
            assert str(err)  # a message for the person
            outcomes["refused"] += 1
        except TruncatedVideo:
            outcomes["truncated"] += 1
    assert sum(outcomes.values()) == MUTANTS and outcomes["refused"] > 0


def test_corrupted_weights_stop_the_app_clearly(tmp_path):
    weights = tmp_path / "weights"
    shutil.copytree(ROOT / "weights", weights)
    data = bytearray((weights / "model.safetensors").read_bytes())
    data[10:200] = b"\x00" * 190  # break the header
    (weights / "model.safetensors").write_bytes(bytes(data))
    result = subprocess.run(
        [sys.executable, "app.py", "--weights", str(weights), "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "could not load weights" in result.stderr and "Traceback" not in result.stderr
