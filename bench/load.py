"""Load test: N concurrent gradio_client users against a launched app on loopback, with bad
inputs mixed in.

    python -m bench.load [--clients 4] [--requests 3] [--seconds 4]
    python -m bench.load --soak 100 [--seconds 4]

Prints requests served, failures (a bad input answered with a clear error counts as
served correctly), p50/p95 latency, the server's peak resident memory, and the work files
left on disk afterwards.

--soak N: N sequential requests from one client instead, the server's resident memory (RSS)
after each; passes (exit 0) if the RSS after the last is within SOAK_TOLERANCE_MB of the RSS
after the tenth, i.e. memory does not grow with the number of requests served.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil
from gradio_client import Client, handle_file

from .harness import LaunchedApp, scene_frames, write_video


def make_inputs(folder: Path, seconds: float) -> dict[str, Path]:
    fps = 12
    frames = scene_frames(frames=int(seconds * fps), size=128)
    good = write_video(folder / "good.mp4", frames, fps=fps)
    data = good.read_bytes()
    bad = {
        "empty.mp4": b"",
        "random.mp4": np.random.default_rng(0).bytes(20_000),
        "truncated.mp4": data[: len(data) // 3],
        "mutated.mp4": data[:64] + bytes(b ^ 0x5A for b in data[64:512]) + data[512:],
    }
    inputs = {"good": good}
    for name, content in bad.items():
        (folder / name).write_bytes(content)
        inputs[name] = folder / name
    return inputs


SOAK_TOLERANCE_MB = 100
SOAK_BASELINE = 10  # requests after which the caches and allocator have warmed up


def soak(requests: int, seconds: float) -> bool:
    """Sequential requests; prints the RSS after each; True if it stays flat."""
    with tempfile.TemporaryDirectory() as tmp:
        good = make_inputs(Path(tmp), seconds)["good"]
        app = LaunchedApp()
        try:
            server = psutil.Process(app.proc.pid)
            client = Client(app.url, verbose=False)
            rss = []
            for i in range(requests):
                start = time.perf_counter()
                client.predict(video=handle_file(str(good)), api_name="/decompose")
                rss.append(server.memory_info().rss / 2**20)
                print(
                    f"request {i + 1:3d}: {time.perf_counter() - start:5.2f} s, RSS {rss[-1]:.0f} MB"
                )
        finally:
            app.stop()
    base = rss[min(SOAK_BASELINE, len(rss)) - 1]
    slope = np.polyfit(np.arange(len(rss)), rss, 1)[0] if len(rss) > 1 else 0.0
    ok = rss[-1] - base <= SOAK_TOLERANCE_MB
    print(
        f"RSS after request {min(SOAK_BASELINE, len(rss))}: {base:.0f} MB, after {len(rss)}: "
        f"{rss[-1]:.0f} MB (max {max(rss):.0f} MB, fitted slope {slope:+.2f} MB/request): "
        f"{'PASS' if ok else 'FAIL'} (bar: within {SOAK_TOLERANCE_MB} MB)"
    )
    return ok


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--clients", type=int, default=4)
    p.add_argument(
        "--requests", type=int, default=3, help="good requests per client (one bad one is added)"
    )
    p.add_argument("--seconds", type=float, default=4.0, help="length of the good clip")
    p.add_argument("--soak", type=int, default=0, help="N sequential requests, RSS after each")
    args = p.parse_args()
    if args.soak:
        sys.exit(0 if soak(args.soak, args.seconds) else 1)

    with tempfile.TemporaryDirectory() as tmp:
        inputs = make_inputs(Path(tmp), args.seconds)
        work_root = Path(tempfile.gettempdir()) / "slot-studio"
        before = set(work_root.glob("*")) if work_root.exists() else set()
        app = LaunchedApp()
        server = psutil.Process(app.proc.pid)
        peak = [server.memory_info().rss]
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                peak[0] = max(peak[0], server.memory_info().rss)
                time.sleep(0.2)

        threading.Thread(target=watch, daemon=True).start()
        bad_names = [n for n in inputs if n != "good"]

        def user(i: int) -> list[tuple[str, bool, float, str]]:
            client = Client(app.url, verbose=False)
            plan = ["good"] * args.requests
            plan.insert(i % (len(plan) + 1), bad_names[i % len(bad_names)])
            rows = []
            for name in plan:
                start = time.perf_counter()
                try:
                    client.predict(video=handle_file(str(inputs[name])), api_name="/decompose")
                    ok, note = True, "served"  # a damaged file FFmpeg can still read is fine too
                except Exception as err:  # gradio_client raises AppError with the server's message
                    note = " ".join(str(err).split())[:110]
                    ok = (
                        name != "good" and "Processing failed" not in note
                    )  # bad input: a clear refusal
                rows.append((name, ok, time.perf_counter() - start, note))
            return rows

        start = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            rows = [r for rs in pool.map(user, range(args.clients)) for r in rs]
        wall = time.perf_counter() - start
        stop.set()
        alive = app.proc.poll() is None
        server_log = app.stop()

        good = [r[2] for r in rows if r[0] == "good" and r[1]]
        failures = [r for r in rows if not r[1]]
        after = set(work_root.glob("*")) if work_root.exists() else set()
        print(
            f"{args.clients} clients x ({args.requests} good + 1 bad) requests, {args.seconds:g} s clips, in {wall:.1f} s"
        )
        print(
            f"served: {len(rows) - len(failures)}/{len(rows)}   failures: {len(failures)}   server alive: {alive}"
        )
        if good:
            q = statistics.quantiles(good, n=20) if len(good) > 1 else [good[0]] * 19
            print(f"good-request latency: p50 {statistics.median(good):.2f} s   p95 {q[18]:.2f} s")
        print(f"server peak RSS: {peak[0] / 2**20:.0f} MB")
        for name, ok, latency, note in rows:
            if name != "good":
                print(f"  {name:14s} -> {'ok ' if ok else 'BAD'} {latency:5.2f} s  {note}")
        for r in failures:
            print("FAILED:", r)
        if failures:
            print("server log (tail):\n" + server_log[-3000:])
        print(
            f"work folders left by this run: {len(after - before)} (each kept for the session, removed when it ends or after 1 h)"
        )


if __name__ == "__main__":
    main()
