"""A launched app and test clips, shared by the benchmarks and the tests (tests import
these from here; bench/ never imports tests/)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def scene_frames(frames: int = 12, size: int = 64, seed: int = 0) -> np.ndarray:
    """(T, S, S, 3) uint8 frames of a scene from the project's renderer."""
    from model.synth import SceneConfig, clip_seed, render_clip

    return render_clip(
        clip_seed(seed, 0), SceneConfig(size=size, frames=frames, min_objects=3, max_objects=4)
    )["rgb"]


def write_video(
    path: Path, frames: np.ndarray, fps: int = 10, codec: str = "libx264", pix_fmt: str = "yuv420p"
) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.height, s.width = frames.shape[1:3]
        s.pix_fmt = pix_fmt
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LaunchedApp:
    """`python app.py` in a subprocess on a free port, like a user would start it."""

    def __init__(self, *args: str, tmpdir: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = os.environ | {"HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
        if tmpdir is not None:  # the app's work folders and Gradio's cache go here
            tmpdir.mkdir(parents=True, exist_ok=True)
            env |= {"TMPDIR": str(tmpdir), "GRADIO_TEMP_DIR": str(tmpdir / "gradio")}
        self.proc = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(self.port), *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app exited: {self.proc.stdout.read()}")
            try:
                urllib.request.urlopen(self.url, timeout=2)
                return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("app did not start within 120 s")

    def stop(self) -> str:
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out or ""
