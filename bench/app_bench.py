"""End-to-end speed and memory of the app's pipeline (decode, model, render, encode).

    python -m bench.app_bench [--seconds 10] [--memory]

Makes a 720p 30 fps clip from the project's renderer (upscaled), runs it through the same
Decomposer the app uses, with the app's default settings, and prints the per-stage
breakdown. --memory also runs a 5 s and a 60 s clip in fresh processes and prints their
peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

WIDTH, HEIGHT, FPS = 1280, 720, 30


def make_clip(path: Path, seconds: float) -> Path:
    from app.video_io import Mp4Writer
    from model.synth import SceneConfig, clip_seed, render_clip

    base = render_clip(clip_seed(777, 0), SceneConfig(size=160, frames=60, fps=FPS))["rgb"]
    frames = int(seconds * FPS)
    with Mp4Writer(path, FPS, (WIDTH, HEIGHT)) as w:
        for i in range(frames):
            k = i % (2 * len(base) - 2) if len(base) > 1 else 0  # play forwards then backwards
            frame = base[k if k < len(base) else 2 * len(base) - 2 - k]
            w.write(cv2.resize(frame, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR))
    return path


def run_once(path: Path, max_seconds: float) -> dict:
    from app.session import Decomposer, Settings, pick_device
    from model import OCSlotSSM

    model = OCSlotSSM.from_pretrained("weights")
    dec = Decomposer(model, pick_device(), Path("weights/model.safetensors"), "bench")
    with tempfile.TemporaryDirectory() as work:
        result = dec.run(path, Settings(max_seconds=max_seconds), Path(work))
    return {"frames": len(result.times), "size": result.size, **result.timings}


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument(
        "--memory", action="store_true", help="also compare peak memory of 5 s and 60 s clips"
    )
    p.add_argument("--_child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._child:  # a fresh process for one memory measurement
        run_once(Path(args._child[0]), float(args._child[1]))
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
        return

    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "clip.mp4", args.seconds)
        run_once(clip, args.seconds)  # warm-up (imports, first-call costs)
        start = time.perf_counter()
        t = run_once(clip, args.seconds)
        wall = time.perf_counter() - start
        print(
            f"{args.seconds:g} s of {WIDTH}x{HEIGHT} @ {FPS} fps -> {t['frames']} frames at {t['size'][0]}x{t['size'][1]}"
        )
        from app.session import STAGES

        for stage in STAGES:
            print(f"  {stage:8s} {t[stage]:6.2f} s")
        print(f"  {'total':8s} {t['total']:6.2f} s  (wall incl. model load {wall:.2f} s)")

        if args.memory:
            peaks = {}
            for seconds in (5, 60):
                long_clip = make_clip(Path(tmp) / f"clip_{seconds}.mp4", seconds)
                out = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "bench.app_bench",
                        "--_child",
                        str(long_clip),
                        str(seconds),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                peaks[seconds] = int(out.stdout.strip().splitlines()[-1])
                print(f"peak RSS, {seconds:2d} s clip: {peaks[seconds]} MB")
            print(f"60 s clip uses {peaks[60] - peaks[5]:+d} MB more than a 5 s clip")


if __name__ == "__main__":
    main()
