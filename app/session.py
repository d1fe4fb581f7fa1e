"""The inference session: one uploaded video in, overlay / depth / composite videos, arrays,
timelines and an archive out.

Frames stream decode -> model (recurrent mode, CHUNK_FRAMES at a time, one cache and one
slot tracker per request) -> render -> encode, so memory stays flat however long the video is.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from model import OCSlotSSM, SlotTracker

from . import render
from .export import ChunkedArray, write_npz, write_zip
from .limits import (
    CHUNK_FRAMES,
    DEFAULT_OUTPUT_SIDE,
    DEFAULT_SAMPLE_FPS,
    DEFAULT_SECONDS,
    MAX_FRAMES,
)
from .video_io import Mp4Writer, TruncatedVideo, VideoError, iter_frames, output_size, probe


def pick_device(requested: str = "auto") -> torch.device:
    """CUDA, then Apple MPS, then CPU."""
    if requested != "auto":
        if requested == "cuda" and not torch.cuda.is_available():
            raise SystemExit("--device cuda was asked for, but CUDA is not available")
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Settings:
    fps: float = DEFAULT_SAMPLE_FPS
    max_seconds: float = DEFAULT_SECONDS
    num_slots: int | None = None  # None: the model's trained default
    opacity: float = 0.55
    max_side: int = DEFAULT_OUTPUT_SIDE
    on_long: str = "trim"  # or "refuse"
    slot_ids: str = "tracked"  # one of SLOT_ID_SOURCES


# where the shown slot IDs come from (the stages model.evaluate scores): refined masks with
# labels tracked over time, refined masks in the model's own slot order, the decoder's masks
SLOT_ID_SOURCES = ("tracked", "untracked", "decoded")


@dataclass
class Result:
    workdir: Path
    overlay: Path
    depth: Path
    composite: Path
    archive: Path
    times: np.ndarray  # (T,) seconds
    pixel_share: np.ndarray  # (T, N)
    attention: np.ndarray  # (T, N)
    size: tuple[int, int]  # (W, H) of the rendered videos
    fps: float
    num_slots: int
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


Progress = Callable[[int, int, str], None]  # (frames done, frames expected, stage)


class Decomposer:
    """Holds the model (loaded once, shared, read-only); every call gets its own state."""

    def __init__(
        self, model: OCSlotSSM, device: torch.device, weights_file: Path | None, model_name: str
    ):
        self.model = model.to(device).eval()
        self.device = device
        self.model_name = model_name
        self.weights_sha256 = (
            file_sha256(weights_file) if weights_file and weights_file.is_file() else "unknown"
        )

    def run(
        self, path: str | Path, settings: Settings, workdir: Path, progress: Progress | None = None
    ) -> Result:
        """Process a whole video; progress(done, expected, stage) is called after each chunk."""
        for item in self.stream(path, settings, workdir):
            if isinstance(item, Result):
                return item
            if progress:
                progress(*item)
        raise AssertionError("stream ended without a result")

    def stream(self, path: str | Path, settings: Settings, workdir: Path):
        """Generator: yields (frames done, frames expected, stage) after each chunk, then the
        Result. Closing it early (a cancelled request) stops the work at a chunk boundary."""
        yield from self._stream(path, settings, workdir)

    def _stream(self, path, settings: Settings, workdir: Path):
        if settings.slot_ids not in SLOT_ID_SOURCES:
            raise ValueError(
                f"slot_ids must be one of {SLOT_ID_SOURCES}, got {settings.slot_ids!r}"
            )
        t_start = time.perf_counter()
        timings = dict.fromkeys(("decode", "model", "render", "encode", "package"), 0.0)
        info = probe(path)
        warnings = []
        limit = settings.max_seconds
        if info.duration > limit + 0.5:
            if settings.on_long == "refuse":
                raise VideoError(
                    f"The video is {info.duration:.0f} s long; the limit is {limit:.0f} s."
                )
            warnings.append(
                f"The video is {info.duration:.0f} s long: only the first {limit:.0f} s were processed."
            )
        fps = min(settings.fps, info.fps)
        expected = max(1, min(MAX_FRAMES, math.ceil(min(info.duration or limit, limit) * fps)))
        size = output_size(info, settings.max_side)
        n = settings.num_slots or self.model.config.num_slots
        s = self.model.config.image_size

        workdir.mkdir(parents=True, exist_ok=True)
        arrays = {
            name: ChunkedArray(workdir / "arrays", name, dtype)
            for name, dtype in (
                ("slot_ids", np.uint8),
                ("depth", np.float16),
                ("masks", np.float16),
                ("attention", np.float32),
            )
        }
        shares, times = [], []
        cache = self.model.alloc_cache(batch=1, num_slots=n)
        tracker = SlotTracker(n)  # slot colours follow what they cover, across chunks too
        coloring = None
        paths = {k: workdir / f"{k}.mp4" for k in ("overlay", "depth", "composite")}
        writers = {
            k: Mp4Writer(p, fps, (size[0] * (2 if k == "composite" else 1), size[1]))
            for k, p in paths.items()
        }

        # per chunk, not around the generator: grad mode is thread-local, and a server may
        # run each step of a generator on a different worker thread
        @torch.inference_mode()
        def process(chunk: list[tuple[float, np.ndarray]]) -> None:
            nonlocal coloring
            t0 = time.perf_counter()
            small = np.stack(
                [cv2.resize(f, (s, s), interpolation=cv2.INTER_AREA) for _, f in chunk]
            )
            video = (
                torch.from_numpy(small)
                .to(self.device)
                .permute(0, 3, 1, 2)
                .float()
                .div(255)
                .unsqueeze(0)
            )
            out = self.model(video, cache=cache)
            masks = out.masks[0] if settings.slot_ids == "decoded" else out.segments[0]
            if settings.slot_ids == "tracked":
                masks, perms = tracker(masks)  # (t, N, h, w): label l shows slot perms[:, l]
            else:
                perms = np.tile(np.arange(n), (len(masks), 1))
            log_depth = out.log_depth[0]  # (t, h, w)
            # (t, N) share of the tokens each slot won, in the tracker's label order
            attention = (
                out.attention[0]
                .mean(dim=(-1, -2))
                .gather(1, torch.from_numpy(perms).to(self.device))
            )
            t1 = time.perf_counter()
            ids, _ = render.upsample_masks(masks, size)
            depth = (
                F.interpolate(
                    log_depth[:, None],
                    size=(size[1], size[0]),
                    mode="bilinear",
                    align_corners=False,
                )[:, 0]
                .exp()
                .cpu()
                .numpy()
            )
            coloring = coloring or render.DepthColoring(depth)
            frames_out = []
            for (_, frame), frame_ids, frame_depth in zip(chunk, ids, depth, strict=True):
                ov = render.overlay(frame, frame_ids, settings.opacity)
                dp = coloring(frame_depth)
                frames_out.append((ov, dp, render.composite(ov, dp)))
                shares.append(np.bincount(frame_ids.ravel(), minlength=n)[:n] / frame_ids.size)
            t2 = time.perf_counter()
            for ov, dp, comp in frames_out:
                writers["overlay"].write(ov)
                writers["depth"].write(dp)
                writers["composite"].write(comp)
            arrays["slot_ids"].append(ids)
            arrays["depth"].append(depth)
            arrays["masks"].append(masks.cpu().numpy())
            arrays["attention"].append(attention.cpu().numpy())
            times.extend(t for t, _ in chunk)
            timings["model"] += t1 - t0
            timings["render"] += t2 - t1
            timings["encode"] += time.perf_counter() - t2

        chunk: list[tuple[float, np.ndarray]] = []
        frames = iter_frames(path, info, fps, limit, size)
        try:
            while True:
                t0 = time.perf_counter()
                try:
                    item = next(frames, None)
                except TruncatedVideo:
                    warnings.append(
                        f"The file is damaged after {len(times) + len(chunk)} frames: showing what could be decoded."
                    )
                    item = None
                timings["decode"] += time.perf_counter() - t0
                if item is not None:
                    chunk.append(item)
                if chunk and (len(chunk) == CHUNK_FRAMES or item is None):
                    process(chunk)
                    chunk = []
                    yield len(times), max(expected, len(times)), "decode → model → render → encode"
                if item is None:
                    break
        finally:
            for w in writers.values():
                w.close()
        if not times:
            raise VideoError("No frames could be decoded from this video.")

        t0 = time.perf_counter()
        yield len(times), len(times), "package"
        write_npz(workdir / "slots.npz", arrays)
        timings["package"] = time.perf_counter() - t0
        timings["total"] = time.perf_counter() - t_start
        meta = {
            "fps": fps,
            "frame_count": len(times),
            "width": size[0],
            "height": size[1],
            "source": {
                "width": info.width,
                "height": info.height,
                "fps": info.fps,
                "duration": info.duration,
                "codec": info.codec,
                "rotation": info.rotation,
            },
            "num_slots": n,
            "model": self.model_name,
            "model_resolution": s,
            "weights_sha256": self.weights_sha256,
            # the same weights decode differently with another config (e.g. decoder_stride)
            "model_config": self.model.config.to_dict(),
            "device": str(self.device),
            "timings_seconds": {k: round(v, 3) for k, v in timings.items()},
            "settings": settings.__dict__,
            "warnings": warnings,
            "arrays": {
                "slot_ids": "(T, H, W) uint8 at the rendered size",
                "depth": "(T, H, W) float16 at the rendered size",
                "masks": "(T, N, h, w) float16 at the model's resolution, in the labels' order"
                + (" (the decoder's masks)" if settings.slot_ids == "decoded" else " (refined)"),
                "attention": "(T, N) float32 share of encoder tokens, in the labels' order",
            },
        }
        archive = write_zip(
            workdir / "slot_decomposition.zip",
            {
                "overlay.mp4": paths["overlay"],
                "depth.mp4": paths["depth"],
                "composite.mp4": paths["composite"],
                "slots.npz": workdir / "slots.npz",
            },
            meta,
        )
        yield Result(
            workdir=workdir,
            overlay=paths["overlay"],
            depth=paths["depth"],
            composite=paths["composite"],
            archive=archive,
            times=np.array(times),
            pixel_share=np.array(shares),
            attention=arrays["attention"].read(),
            size=size,
            fps=fps,
            num_slots=n,
            warnings=warnings,
            timings=timings,
        )

    def render_slot_view(
        self,
        path: str | Path,
        result_dir: Path,
        settings: Settings,
        slot: int,
        mode: str,
        out: Path,
    ) -> Path:
        """Re-decode the video and redraw it with one slot alone ('only') or hidden ('hide'),
        from the slot ids saved by run(): no model pass needed."""
        info = probe(path)
        chunks = sorted((result_dir / "arrays").glob("slot_ids_*.npy"))  # read chunk by chunk
        ids = (frame_ids for c in chunks for frame_ids in np.load(c))
        first = np.load(chunks[0])[0]
        size = (first.shape[1], first.shape[0])
        fps = min(settings.fps, info.fps)
        with Mp4Writer(out, fps, size) as writer:
            for (_, frame), frame_ids in zip(
                iter_frames(path, info, fps, settings.max_seconds, size), ids, strict=False
            ):
                writer.write(render.slot_view(frame, frame_ids, slot, mode, settings.opacity))
        return out
