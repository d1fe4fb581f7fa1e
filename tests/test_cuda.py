"""On a CUDA device only (skipped elsewhere; CI has none): the model's two modes agree with
TF32 off as the app pins it, and the app's request path gives the CPU's slot IDs.
scripts/gpu_check.sh runs these on a GPU host."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from app.export import DEPTH_MANTISSA_BITS
from app.limits import CHUNK_FRAMES
from app.session import Decomposer, Settings, pin_precision
from model import OCSlotSSM

from .app_helpers import scene_frames, write_video
from .test_model import rel_err

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


@pytest.fixture
def cuda_fp32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    pin_precision(torch.device("cuda"))
    yield torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_parallel_equals_recurrent_on_cuda(cuda_fp32):
    """The shipped weights, a 16:9 clip at the model's size, whole vs in the app's chunks."""
    model = OCSlotSSM.from_pretrained(str(WEIGHTS)).to(cuda_fp32).eval()
    video = torch.rand(2, 40, 3, 64, 112, generator=torch.Generator().manual_seed(0))
    video = video.to(cuda_fp32)
    with torch.inference_mode():
        whole = model(video)
        cache = model.alloc_cache(batch=2)
        parts = [model(video[:, t : t + CHUNK_FRAMES], cache=cache) for t in range(0, 40, 16)]
    for name in ("masks", "log_depth", "attention", "slots"):
        streamed = torch.cat([getattr(p, name) for p in parts], dim=1)
        assert rel_err(streamed, getattr(whole, name)) < 1e-4, name


def test_cuda_gives_the_cpu_slot_ids(cuda_fp32, tmp_path):
    """The app's whole request path on each device: slot IDs agree on >= 99.5% of pixels (the
    issue's bar for a precision change; measured 99.70% and 99.97% in two runs on an H200, as
    tracking turns a near tie into a whole region), depth within one of the archive's rounding
    steps (a value near a rounding boundary lands on either side)."""
    clip = write_video(tmp_path / "scene.mp4", scene_frames(frames=32, size=96, seed=2))
    got = {}
    for device in ("cpu", "cuda"):
        dec = Decomposer.from_weights(WEIGHTS, torch.device(device))
        result = dec.run(clip, Settings(), tmp_path / device)
        with np.load(result.npz) as z:
            got[device] = z["slot_ids"], z["depth"].astype(np.float32)
    (ids_cpu, depth_cpu), (ids_cuda, depth_cuda) = got["cpu"], got["cuda"]
    assert (ids_cpu == ids_cuda).mean() >= 0.995
    np.testing.assert_allclose(depth_cuda, depth_cpu, rtol=2.0**-DEPTH_MANTISSA_BITS)
    assert (depth_cuda == depth_cpu).mean() >= 0.99
