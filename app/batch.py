"""Decompose a whole collection of videos: what the app's download zip holds, for each one.

    python -m app.batch --input DIR --out DIR [--fps 10 --max-side 640 ...]
    accelerate launch -m app.batch --input DIR --out DIR        # several GPUs or machines

For every video under --input (mp4, mov, webm, mkv, avi, m4v; sub-folders too),
OUT/<its path>.zip is the zip the app's /decompose gives for it with the same settings (the
API's defaults unless told otherwise): the same steps of app/session.py, run the same way.
What is new here is only the scheduling around them:

- decoding runs in DataLoader worker processes (--workers), so the model is not starved;
- after each model pass, the clips' slot IDs, rendering, encoding and packaging run on
  threads, one clip each (--threads; on a GPU host these CPU steps are what limit the rate);
- clips of the same length whose frames the model sees at the same size share model passes:
  up to --clips-per-pass of them go through the recurrent mode side by side, chunk by chunk,
  in one (B, t, 3, h, w) batch with one cache, in the app's chunks. With --clips-per-pass 1
  every zip is bit for bit the app's (mp4s included); with more, the arithmetic of a batch
  differs from a batch of one in the last bits, and a few values next to a rounding step
  (masks in steps of 1/63, depth to 1.6%) move by one step;
- a finished zip is written atomically (renamed into place), so a run that stops, for any
  reason, resumes where it was: videos whose zip exists are skipped;
- a video that cannot be used costs one line (FAILED <video>: <why>) and the run goes on;
  OUT/failures.json lists them and OUT/summary.json holds the counts and the throughput;
- under `accelerate launch` (or torchrun) each process takes every num_processes-th video.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from .examples import is_metric
from .limits import DEFAULT_OUTPUT_SIDE, DEFAULT_SAMPLE_FPS, DEFAULT_SECONDS, MAX_SECONDS
from .session import (
    SLOT_ID_SOURCES,
    STAGES,
    Chunk,
    Decomposer,
    Job,
    Settings,
    as_video,
    model_frames,
    model_input_size,
    pick_device,
    sampling,
)
from .video_io import TruncatedVideo, VideoError, VideoInfo, iter_frames, probe

VIDEO_SUFFIXES = {".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v"}
WORK = ".work"  # OUT/.work/<name>/: a video's files while it is being processed
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


# ---- the collection ----------------------------------------------------------------------
def find_videos(root: Path, out: Path) -> list[Path]:
    """Every video file under root, sorted (the same order in every process), not under out."""
    out = out.resolve()
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in VIDEO_SUFFIXES
        and p.is_file()
        and out not in p.resolve().parents
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def zip_names(videos: list[Path], root: Path) -> list[str]:
    """OUT-relative zip name of each video: its path with .zip for the suffix (a.mp4 ->
    a.zip), or with the suffix kept (a.mp4.zip) where two videos would share a name."""
    short = [p.relative_to(root).with_suffix(".zip").as_posix() for p in videos]
    return [
        s if short.count(s) == 1 else p.relative_to(root).as_posix() + ".zip"
        for s, p in zip(short, videos, strict=True)
    ]


# ---- decode: in worker processes ------------------------------------------------------------
@dataclass
class Decoded:
    """One video read by a worker: every frame, at the rendered and at the model's size."""

    index: int  # into this process's list of videos
    info: VideoInfo | None = None
    frames: list[tuple[float, np.ndarray]] = field(default_factory=list)  # (time, RGB (H, W))
    small: np.ndarray | None = None  # (T, h, w, 3) uint8, the model's input
    truncated: bool = False  # the file is damaged after these frames
    seconds: float = 0.0  # decoding time
    error: str = ""  # why the video cannot be used

    def replay(self) -> Iterator[tuple[float, np.ndarray]]:
        """The frames as iter_frames yielded them, damage included (the session's decode
        step turns it into the app's warning)."""
        yield from self.frames
        if self.truncated:
            raise TruncatedVideo


class DecodeVideos(Dataset):
    """Item i: the i-th video probed and decoded as the app's decode step reads it."""

    def __init__(self, videos: list[Path], settings: Settings, image_size: int, stride: int):
        self.videos, self.settings = videos, settings
        self.image_size, self.stride = image_size, stride

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, i: int) -> Decoded:
        t0 = time.perf_counter()
        item = Decoded(index=i)
        path = self.videos[i]
        try:
            item.info = probe(path)
            fps, size = sampling(item.info, self.settings)
            try:
                for frame in iter_frames(path, item.info, fps, self.settings.max_seconds, size):
                    item.frames.append(frame)
            except TruncatedVideo:
                item.truncated = True
            if item.frames:
                item.small = model_frames(
                    item.frames, model_input_size(*size, self.image_size, self.stride)
                )
        except VideoError as err:
            item.error = str(err)
        except Exception as err:  # a worker must never die on one file
            item.error = f"could not be decoded ({type(err).__name__}: {err})"
        item.seconds = time.perf_counter() - t0
        return item


def as_is(item):
    return item


# ---- one video in flight ------------------------------------------------------------------
@dataclass
class Work:
    """A video between its decoding and its zip."""

    video: Path
    name: str  # its zip, relative to OUT
    decoded: Decoded
    job: Job
    frames: Iterator  # Decoded.replay()
    started: float  # time.perf_counter() at its Job
    done: int = 0  # frames through the model so far
    error: str = ""


class Batch:
    """The steps of app/session.py for many videos at once, on one process."""

    def __init__(
        self,
        decomposer: Decomposer,
        settings: Settings,
        out: Path,
        clips_per_pass: int,
        pool: ThreadPoolExecutor | None = None,
    ):
        self.dec, self.settings, self.out = decomposer, settings, out
        self.clips_per_pass = clips_per_pass
        # the clips of a group after the model pass (slot IDs, render, encode, package): one
        # thread each, as OpenCV, PyAV and zlib release the GIL; None runs them one by one
        self.pool = pool
        self.failures: list[dict] = []
        self.warnings: dict[str, list[str]] = {}
        self.finished = self.frames = 0
        self.stage_seconds = dict.fromkeys((*STAGES, "total"), 0.0)
        self.bar: tqdm | None = None

    def fail(self, name: str, video: Path, message: str) -> None:
        line = f"FAILED {video}: {message}"
        (self.bar.write if self.bar is not None else print)(line, file=sys.stderr)
        self.failures.append({"video": str(video), "zip": name, "error": message})

    def start(self, video: Path, name: str, decoded: Decoded) -> Work | None:
        """A Job for a decoded video (the app's checks run here: a too-long video may be
        refused), or None after reporting why not."""
        if decoded.error:
            self.fail(name, video, decoded.error)
            return None
        settings = Settings(**{**self.settings.__dict__, "metric_depth": is_metric(video)})
        workdir = self.out / WORK / name
        shutil.rmtree(workdir, ignore_errors=True)  # what a stopped run left
        try:
            job = Job(self.dec.model, decoded.info, settings, workdir)
        except VideoError as err:
            shutil.rmtree(workdir, ignore_errors=True)
            self.fail(name, video, str(err))
            return None
        job.timings["decode"] += decoded.seconds  # the worker's share of the decode step
        return Work(video, name, decoded, job, decoded.replay(), time.perf_counter())

    def run_group(self, group: list[Work]) -> None:
        """Clips of the same length and model input size, side by side through the
        recurrent mode: every chunk has the app's length, so each clip gets the numbers it
        gets alone (a clip that fails after the model goes on riding along, unused)."""
        dec = self.dec
        cache = dec.model.alloc_cache(batch=len(group), num_slots=group[0].job.n)
        while True:
            chunks = [dec._timed(w.job, "decode", dec._decode, w.job, w.frames) for w in group]
            if not chunks[0].frames:
                break
            live = [len(c.frames) for w, c in zip(group, chunks, strict=True) if not w.error]
            self._infer(group, chunks, cache)
            self._map(self._after_model, group, chunks)  # each clip's chunks stay in order
            if self.bar is not None:
                self.bar.update(sum(live))
        for w, error in zip(group, self._map(self._package, group), strict=True):
            self.finish(w, error)

    def _map(self, fn, *items) -> list:
        """fn over the group's clips, on the pool's threads (one clip each) if there is one."""
        return list((self.pool.map if self.pool is not None else map)(fn, *items))

    def _after_model(self, w: Work, chunk: Chunk) -> None:
        """One clip's chunk from model outputs to encoded frames, as the app does."""
        if w.error:
            return
        dec = self.dec
        try:
            for stage, fn in (
                ("slot_ids", dec._slot_ids),
                ("render", dec._render),
                ("encode", dec._encode),
            ):
                dec._timed(w.job, stage, fn, w.job, chunk)
        except Exception as err:  # one clip's failure must not stop the others
            w.error = f"failed at {stage} ({type(err).__name__}: {err})"

    @torch.inference_mode()
    def _infer(self, group: list[Work], chunks: list[Chunk], cache) -> None:
        """One model pass for the group's chunks, (B, t, 3, h, w) with one cache; each chunk
        then holds its clip's share of the output, as a batch of one."""
        t0 = time.perf_counter()
        t = len(chunks[0].frames)
        assert all(len(c.frames) == t for c in chunks), "a group's clips advance together"
        small = np.stack([w.decoded.small[w.done : w.done + t] for w in group])
        video = as_video(small, self.dec.device)
        out = self.dec.model(video, cache=cache)
        for i, (w, c) in enumerate(zip(group, chunks, strict=True)):
            c.video = video[i : i + 1]
            c.out = type(out)(**{k: _clip(v, i) for k, v in out.__dict__.items()})
            w.done += t
            w.job.timings["infer"] += (time.perf_counter() - t0) / len(group)

    def _package(self, w: Work) -> str:
        """The app's package step, then the zip renamed into place (atomic: a zip that exists
        is complete); the error, or "" when the zip is there."""
        try:
            self.dec._timed(w.job, "encode", w.job.close)  # the last frames still encoding
            if w.error:
                raise RuntimeError(w.error)
            if not w.job.times:  # the app's words for the same case
                raise VideoError("No frames could be decoded from this video.")
            result = self.dec._package(w.job, w.started)
            target = self.out / w.name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(result.archive, target)
            return ""
        except Exception as err:
            return str(err)
        finally:
            shutil.rmtree(w.job.workdir, ignore_errors=True)

    def finish(self, w: Work, error: str) -> None:
        """The counts, on the main thread."""
        if error:
            self.fail(w.name, w.video, error)
            return
        self.finished += 1
        self.frames += len(w.job.times)
        if w.job.warnings:
            self.warnings[str(w.video)] = list(w.job.warnings)
        for k, v in w.job.timings.items():
            self.stage_seconds[k] += v


def _clip(value, i: int):
    """Clip i of a (B, ...) model output, as a batch of one."""
    return value[i : i + 1] if isinstance(value, torch.Tensor) else value


# ---- processes -----------------------------------------------------------------------------
def processes(cpu: bool):
    """(rank, world, accelerate's PartialState or None): one process unless launched by
    accelerate / torchrun (WORLD_SIZE set). cpu: join the processes with gloo, not NCCL."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState  # in requirements-dev.txt

        state = PartialState(cpu=cpu)
        return state.process_index, state.num_processes, state
    return 0, 1, None


def gather(summary: dict, state) -> list[dict]:
    if state is None:
        return [summary]
    from accelerate.utils import gather_object

    return gather_object([summary])


def merge(parts: list[dict]) -> dict:
    """One summary for all processes: counts and stage times added, the wall time of the
    slowest process, throughput = all frames / that wall time."""
    total = {k: sum(p[k] for p in parts) for k in ("videos", "done", "skipped", "failed", "frames")}
    wall = max(p["seconds"] for p in parts)
    stages = {
        k: round(sum(p["stage_seconds"][k] for p in parts), 3) for k in parts[0]["stage_seconds"]
    }
    return {
        **total,
        "seconds": round(wall, 3),
        "frames_per_second": round(total["frames"] / wall, 2) if wall > 0 else 0.0,
        "processes": len(parts),
        "device": parts[0]["device"],
        "clips_per_pass": parts[0]["clips_per_pass"],
        "decode_workers": parts[0]["decode_workers"],
        "threads": parts[0]["threads"],
        "settings": parts[0]["settings"],
        "stage_seconds": stages,  # summed over videos (decode: the workers' time)
        "failures": [f for p in parts for f in p["failures"]],
        "warnings": {k: v for p in parts for k, v in p["warnings"].items()},
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m app.batch", description=__doc__.split("\n\n")[0])
    p.add_argument("--input", required=True, type=Path, help="folder of videos")
    p.add_argument("--out", required=True, type=Path, help="folder for the zips")
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="folder or Hub repo id")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="decoding processes per model process (default: the CPU cores shared out, at most 8; 0 decodes in the main process)",
    )
    p.add_argument("--clips-per-pass", type=int, default=8, help="clips batched in one model pass")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for the steps after the model (slot IDs, render, encode, package), one "
        "clip each (default: on a GPU the CPU cores shared out, at most 16; on the CPU 1, as "
        "the model already uses the cores)",
    )
    p.add_argument(
        "--max-waiting",
        type=int,
        default=32,
        help="decoded clips held for a full pass at most (their frames are in memory); past it the fullest group runs part-full",
    )
    s = p.add_argument_group("settings (as the app's /decompose inputs, same defaults)")
    s.add_argument("--fps", type=float, default=DEFAULT_SAMPLE_FPS)
    s.add_argument("--max-seconds", type=float, default=DEFAULT_SECONDS)
    s.add_argument("--num-slots", type=int, default=None)
    s.add_argument("--opacity", type=float, default=0.55)
    s.add_argument("--max-side", type=int, default=DEFAULT_OUTPUT_SIDE)
    s.add_argument("--on-long", choices=["trim", "refuse"], default="trim")
    s.add_argument("--slot-ids", choices=SLOT_ID_SOURCES, default="tracked")
    args = p.parse_args(argv)
    if not args.input.is_dir():
        p.error(f"--input {args.input} is not a folder")
    if args.clips_per_pass < 1:
        p.error("--clips-per-pass must be at least 1")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    rank, world, state = processes(cpu=args.device == "cpu" or not torch.cuda.is_available())
    # the handler's conversions (app/handlers.py), so meta.json's settings match the app's
    settings = Settings(
        fps=float(args.fps),
        max_seconds=float(min(args.max_seconds, MAX_SECONDS)),
        num_slots=int(args.num_slots) if args.num_slots else None,
        opacity=float(args.opacity),
        max_side=int(args.max_side),
        on_long=args.on_long,
        slot_ids=args.slot_ids,
    )
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    videos = find_videos(args.input, out)
    names = zip_names(videos, args.input)
    # split before skipping: every process sees the same list, whatever the others finish
    mine = [(v, n) for i, (v, n) in enumerate(zip(videos, names, strict=True)) if i % world == rank]
    todo = [(v, n) for v, n in mine if not (out / n).is_file()]
    skipped = len(mine) - len(todo)

    # under a launcher each process its own GPU; else as the app picks ("cpu", not "cpu:0")
    gpu = state is not None and state.device.type == "cuda" and args.device == "auto"
    device = state.device if gpu else pick_device(args.device)
    try:
        decomposer = Decomposer.from_weights(args.weights, device)
    except Exception as err:
        raise SystemExit(f"error: could not load weights from {args.weights}: {err}") from None
    workers = args.workers
    if workers is None:
        workers = max(1, min(8, (os.cpu_count() or 2) // world - 1))
    loader = DataLoader(
        DecodeVideos(
            [v for v, _ in todo],
            settings,
            decomposer.model.config.image_size,
            decomposer.model.config.encoder_stride,
        ),
        batch_size=None,
        num_workers=workers,
        collate_fn=as_is,
        # workers that never touch CUDA in the parent's state
        multiprocessing_context=("forkserver" if device.type == "cuda" else None)
        if workers
        else None,
        prefetch_factor=4 if workers else None,
    )
    threads = args.threads
    if threads is None:
        threads = max(1, min(16, (os.cpu_count() or 2) // world)) if device.type == "cuda" else 1
    pool = ThreadPoolExecutor(threads, thread_name_prefix="clip") if threads > 1 else None
    batch = Batch(decomposer, settings, out, args.clips_per_pass, pool)
    t0 = time.perf_counter()
    with tqdm(
        unit="frame", desc=f"{len(todo)} videos", disable=rank != 0, dynamic_ncols=True
    ) as bar:
        batch.bar = bar
        groups: dict[tuple, list[Work]] = {}
        for decoded in loader:
            video, name = todo[decoded.index]
            work = batch.start(video, name, decoded)
            if work is None:
                continue
            # clips of the same length and model size share passes (the same numbers as alone)
            key = (len(decoded.frames), work.job.model_size, work.job.n)
            groups.setdefault(key, []).append(work)
            if len(groups[key]) == args.clips_per_pass:
                batch.run_group(groups.pop(key))
            elif sum(map(len, groups.values())) > args.max_waiting:  # bound the memory
                batch.run_group(groups.pop(max(groups, key=lambda k: len(groups[k]))))
            bar.set_postfix(done=batch.finished, failed=len(batch.failures))
        for group in groups.values():
            batch.run_group(group)
        bar.set_postfix(done=batch.finished, failed=len(batch.failures))
    seconds = time.perf_counter() - t0
    if pool is not None:
        pool.shutdown()
    if (out / WORK).is_dir() and not any((out / WORK).iterdir()):
        (out / WORK).rmdir()

    summary = merge(
        gather(
            {
                "videos": len(mine),
                "done": batch.finished,
                "skipped": skipped,
                "failed": len(batch.failures),
                "frames": batch.frames,
                "seconds": seconds,
                "device": str(device),
                "clips_per_pass": args.clips_per_pass,
                "decode_workers": workers,
                "threads": threads,
                "settings": settings.__dict__ | {"metric_depth": "per video"},
                "stage_seconds": batch.stage_seconds,
                "failures": batch.failures,
                "warnings": batch.warnings,
            },
            state,
        )
    )
    if rank == 0:
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        (out / "failures.json").write_text(json.dumps(summary["failures"], indent=2))
        print(
            f"{summary['done']} done, {summary['skipped']} skipped (already done), "
            f"{summary['failed']} failed of {summary['videos']} videos; {summary['frames']} frames "
            f"in {summary['seconds']:.1f} s = {summary['frames_per_second']:.1f} frames/s "
            f"({summary['processes']} process(es) on {summary['device']}). "
            f"Summary: {out / 'summary.json'}"
        )
    if state is not None:  # gloo's threads must not outlive the interpreter (abort at exit)
        state.destroy_process_group()
    return summary


if __name__ == "__main__":
    main()
