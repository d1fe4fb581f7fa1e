"""ZeroGPU on Hugging Face Spaces: a shared GPU is lent to each run for a duration asked for
up front, so the app asks for what the clip needs (a short clip waits less in the queue and
costs the visitor less of their daily GPU quota). Everywhere else `spaces` is absent, or
present with its decorator a no-op, and the app runs as it is."""

from __future__ import annotations

import math
from pathlib import Path

from .limits import (
    ON_ZEROGPU,
    ZEROGPU_BASE_SECONDS,
    ZEROGPU_MAX_SECONDS,
    ZEROGPU_SECONDS_PER_ADAPT_STEP,
    ZEROGPU_SECONDS_PER_FRAME,
)
from .video_io import VideoError, probe


def gpu_seconds(path: str | Path, settings, workdir: Path | None = None) -> int:
    """Seconds of GPU to ask for one run of Decomposer.stream(path, settings, workdir): a
    fixed start plus a cost per frame the run will sample and per adaptation step, at most
    ZEROGPU_MAX_SECONDS."""
    try:
        duration = probe(path).duration or settings.max_seconds
    except VideoError:  # the run itself will say what is wrong, at once
        return ZEROGPU_BASE_SECONDS
    frames = math.ceil(min(duration, settings.max_seconds) * settings.fps)
    need = ZEROGPU_BASE_SECONDS + frames * ZEROGPU_SECONDS_PER_FRAME
    need += settings.adapt_steps * ZEROGPU_SECONDS_PER_ADAPT_STEP
    return min(ZEROGPU_MAX_SECONDS, math.ceil(need))


def on_gpu(stream):
    """`spaces.GPU` around the session's stream (a generator), with the duration from the
    clip; the stream itself where `spaces` is not installed. Returns (function, what it is)."""
    try:
        import spaces
    except ImportError:
        return stream, "spaces not installed"
    mode = "ZeroGPU on" if ON_ZEROGPU else "ZeroGPU off: its decorator is a no-op"
    return spaces.GPU(stream, duration=gpu_seconds), f"spaces {spaces_version()}, {mode}"


def spaces_version() -> str:
    from importlib.metadata import version

    return version("spaces")
