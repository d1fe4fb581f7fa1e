"""Test clips and a launched app, shared by the app tests (defined in bench/harness.py, which
the benchmarks use too), and a reader for the videos the app writes."""

import av
import numpy as np

from bench.harness import ROOT, LaunchedApp, free_port, scene_frames, write_video

__all__ = ["ROOT", "LaunchedApp", "decoded_frames", "free_port", "scene_frames", "write_video"]


def decoded_frames(path) -> np.ndarray:
    """Every frame of a video file: (T, H, W, 3) uint8 RGB."""
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
