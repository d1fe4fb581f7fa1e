"""Shared fixtures: tiny data sets rendered by the project's own generator."""

from __future__ import annotations

import os

import pytest

# tests never reach the Hub: weights and data are all local
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory):
    """6 clips of 6 frames at 32x32, rendered once per test session."""
    from model.synth import SceneConfig, write_dataset

    out = tmp_path_factory.mktemp("synth")
    write_dataset(
        out, videos=6, seed=7, cfg=SceneConfig(size=32, frames=6, min_objects=2, max_objects=4)
    )
    return out
