"""What a camera does to the image after the scene: sensor noise and lossy compression."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np


def sensor_noise(rgb: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """rgb (T, H, W, 3) uint8 plus Gaussian noise of `level` 8-bit levels at mid grey: read
    noise in the dark, shot noise growing with the square root of the brightness."""
    x = rgb.astype(np.float32) / 255.0
    std = level * np.sqrt(0.25 + x) / np.sqrt(0.75)  # = level at x = 0.5
    noisy = rgb + std * rng.standard_normal(rgb.shape, dtype=np.float32)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def h264_roundtrip(rgb: np.ndarray, crf: int, fps: float) -> np.ndarray:
    """rgb (T, H, W, 3) uint8 encoded to H.264 (yuv420p, the app's writer) at quality `crf`
    and decoded back by the app's own reader (app.video_io), as a user's upload would be."""
    from app.video_io import Mp4Writer, iter_frames, probe  # the app's codec path, not a copy

    T, H, W = rgb.shape[:3]
    pad = ((0, 0), (0, H % 2), (0, W % 2), (0, 0))  # 4:2:0 chroma needs even sides
    frames = np.pad(rgb, pad, mode="edge")
    rate = max(1, round(fps))
    with tempfile.TemporaryDirectory(prefix="synth_h264_") as tmp:
        path = Path(tmp) / "clip.mp4"
        writer = Mp4Writer(path, rate, (frames.shape[2], frames.shape[1]), crf=crf)
        # x264's output depends on its thread count, which by default follows the machine's
        # cores: one thread keeps a data set the same on every machine
        writer.stream.codec_context.thread_count = 1
        with writer:
            for f in frames:
                writer.write(f)
        info = probe(path)
        size = (info.width, info.height)
        decoded = [f for _, f in iter_frames(path, info, rate, T / rate + 1.0, size)]
    if len(decoded) != T:
        raise RuntimeError(f"H.264 round trip returned {len(decoded)} of {T} frames")
    return np.stack(decoded)[:, :H, :W]
