"""The inference session: one uploaded video in, overlay / depth / composite videos, arrays,
timelines, a key-frame strip and an archive out.

A request is a list of named steps, run chunk by chunk (CHUNK_FRAMES frames at a time, one
model cache and one slot segmenter per request, so memory stays flat however long the video
is): decode -> infer -> slot IDs -> render -> encode, then package once at the end.
Decoding runs one chunk ahead on a thread of its own and encoding behind on another
(video_io.EncoderThread), so both overlap the model and the rendering.
`Decomposer.stream` yields a `Step` before each one, so a page can say what is happening.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from model import OCSlotSSM
from model.adapt import AdaptReport, adapting, seconds_per_step
from model.segment import SOURCES as SLOT_ID_SOURCES
from model.segment import SlotSegmenter

from . import render
from .export import ChunkedArray, npz_layout, write_keyframes, write_npz, write_zip
from .limits import (
    CHUNK_FRAMES,
    DEFAULT_OUTPUT_SIDE,
    DEFAULT_SAMPLE_FPS,
    DEFAULT_SECONDS,
    MAX_ADAPT_STEPS,
    MAX_FRAMES,
    MAX_MODEL_ASPECT,
)
from .video_io import (
    EncoderThread,
    Mp4Writer,
    TruncatedVideo,
    VideoError,
    VideoInfo,
    iter_frames,
    output_size,
    probe,
)


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


def pin_precision(device: torch.device) -> None:
    """Full fp32 on CUDA: with TF32 (cuDNN's default for convolutions) the parallel and the
    recurrent mode differ by 1e-3 instead of 2e-5, and slot IDs near a tie flip."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_input_size(width: int, height: int, short_side: int, stride: int) -> tuple[int, int]:
    """(w, h) the model sees: the video's aspect with the short side at the trained size and
    the long side a multiple of the encoder's stride, at most MAX_MODEL_ASPECT times the
    short side (a panorama is squeezed rather than costing the model many times the work)."""
    aspect = min(max(width, height) / min(width, height), MAX_MODEL_ASPECT)
    long_side = max(short_side, int(round(short_side * aspect / stride)) * stride)
    return (long_side, short_side) if width >= height else (short_side, long_side)


def model_frames(frames: list[tuple[float, np.ndarray]], model_size: tuple[int, int]) -> np.ndarray:
    """(time, RGB frame) pairs -> (t, h, w, 3) uint8 at the model's input size (w, h)."""
    return np.stack([cv2.resize(f, model_size, interpolation=cv2.INTER_AREA) for _, f in frames])


def as_video(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    """(b, t, h, w, 3) uint8 -> the model's input (b, t, 3, h, w), float in [0, 1]."""
    return torch.from_numpy(frames).to(device).permute(0, 1, 4, 2, 3).float().div(255)


ADAPTED_FILES = ("model.safetensors", "config.json")  # what save_pretrained writes


@dataclass
class Settings:
    fps: float = DEFAULT_SAMPLE_FPS
    max_seconds: float = DEFAULT_SECONDS
    num_slots: int | None = None  # None: the model's trained default
    opacity: float = 0.55
    max_side: int = DEFAULT_OUTPUT_SIDE
    on_long: str = "trim"  # or "refuse"
    slot_ids: str = "tracked"  # one of SLOT_ID_SOURCES
    metric_depth: bool = False  # depth in metres (the project's rendered scenes) or relative
    adapt_steps: int = 0  # > 0: first fine-tune a copy of the model on this clip (model/adapt.py)


def sampling(info: VideoInfo, settings: Settings) -> tuple[float, tuple[int, int]]:
    """(fps, (W, H)): the rate frames are sampled at and the size they are rendered at."""
    return min(settings.fps, info.fps), output_size(info, settings.max_side)


# what each step is called on the page, in the order a chunk goes through them
STAGES = {
    "adapt": "adapting the model to this video",  # only when asked for (Settings.adapt_steps)
    "decode": "reading frames",
    "infer": "running the model",
    "slot_ids": "assigning pixels to slots",
    "render": "drawing slots and depth",
    "encode": "encoding the videos",
    "package": "packing the downloads",
}


@dataclass
class Step:
    """Yielded before each step: which one starts, and how many frames are finished (while
    adapting: how many of its steps)."""

    stage: str  # a key of STAGES
    done: int
    expected: int
    note: str = ""  # e.g. the time adapting is expected to take

    def __iter__(self):  # (done, expected, stage), as progress callbacks take it
        return iter((self.done, self.expected, self.stage))


@dataclass
class Result:
    workdir: Path
    overlay: Path
    depth: Path
    composite: Path
    archive: Path
    npz: Path
    keyframes: Path
    times: np.ndarray  # (T,) seconds
    pixel_share: np.ndarray  # (T, N)
    attention: np.ndarray  # (T, N)
    size: tuple[int, int]  # (W, H) of the rendered videos
    model_size: tuple[int, int]  # (w, h) of the frames the model saw
    fps: float
    num_slots: int
    depth_range: tuple[float, float]  # depth at the colour scale's near and far ends
    metric_depth: bool
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    adaptation: AdaptReport | None = None  # when the model was adapted to this clip
    adapted_weights: Path | None = None  # its weights (model.safetensors + config.json)


@dataclass
class Chunk:
    """One chunk on its way through the steps."""

    frames: list[tuple[float, np.ndarray]]  # (time, RGB frame at the output size)
    video: torch.Tensor | None = None  # (1, t, 3, h, w) the model's input
    out: object = None  # SlotOutput
    masks: torch.Tensor | None = None  # (t, N, h', w') in label order
    attention: np.ndarray | None = None  # (t, N) in label order
    ids: np.ndarray | None = None  # (t, H, W) uint8 at the output size
    depth: np.ndarray | None = None  # (t, H, W) float32 at the output size
    pictures: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)


class Job:
    """Everything one request builds up: sizes, writers, the carried model and slot state."""

    def __init__(self, model: OCSlotSSM, info: VideoInfo, settings: Settings, workdir: Path):
        self.settings, self.info, self.workdir = settings, info, workdir
        self.model = model  # the shared model, or this request's adapted copy
        self.adaptation: AdaptReport | None = None
        self.warnings: list[str] = []
        limit = settings.max_seconds
        if info.duration > limit + 0.5:
            if settings.on_long == "refuse":
                raise VideoError(
                    f"The video is {info.duration:.0f} s long; the limit is {limit:.0f} s."
                )
            self.warnings.append(
                f"The video is {info.duration:.0f} s long: only the first {limit:.0f} s were processed."
            )
        self.fps, self.size = sampling(info, settings)
        seconds = min(info.duration or limit, limit)
        self.expected = max(1, min(MAX_FRAMES, math.ceil(seconds * self.fps)))
        self.model_size = model_input_size(
            *self.size, model.config.image_size, model.config.encoder_stride
        )
        self.n = settings.num_slots or model.config.num_slots
        self.cache = model.alloc_cache(batch=1, num_slots=self.n)
        self.segmenter = SlotSegmenter.for_model(model.config, self.n, settings.slot_ids)
        self.coloring: render.DepthColoring | None = None
        self.keyframes = render.KeyFrames(self.expected)
        self.shares: list[np.ndarray] = []
        self.times: list[float] = []
        self.timings = dict.fromkeys((*STAGES, "total"), 0.0)
        workdir.mkdir(parents=True, exist_ok=True)
        self.arrays = {name: ChunkedArray(workdir / "arrays", name) for name in npz_layout()}
        w, h = self.size
        self.paths = {k: workdir / f"{k}.mp4" for k in ("overlay", "depth", "composite")}
        self.encoder = EncoderThread(
            {
                k: Mp4Writer(p, self.fps, (2 * w if k == "composite" else w, h))
                for k, p in self.paths.items()
            }
        )
        self.decoded = 0  # frames decoded so far (decoding runs a chunk ahead of the others)

    def step(self, stage: str) -> Step:
        return Step(stage, len(self.times), max(self.expected, len(self.times)))

    def close(self) -> None:
        """Finish the videos (waits for the encoder thread)."""
        self.encoder.close()


Progress = Callable[[int, int, str], None]  # (frames done, frames expected, stage)


class Decomposer:
    """Holds the model (loaded once, shared, read-only); every call gets its own Job."""

    def __init__(
        self, model: OCSlotSSM, device: torch.device, weights_file: Path | None, model_name: str
    ):
        pin_precision(device)
        self.model = model.to(device).eval()
        self.device = device
        self.model_name = model_name
        self.weights_sha256 = (
            file_sha256(weights_file) if weights_file and weights_file.is_file() else "unknown"
        )

    @classmethod
    def from_weights(cls, weights: str | Path, device: torch.device) -> Decomposer:
        """The bundled weights (a folder) or a Hub repo id, as the app and the batch tool load
        them: safetensors only, strict (a corrupted or mismatched file raises here)."""
        model = OCSlotSSM.from_pretrained(str(weights))
        name = f"OC-SlotSSM ({Path(weights).name})"
        return cls(model, device, Path(weights) / "model.safetensors", model_name=name)

    def run(
        self, path: str | Path, settings: Settings, workdir: Path, progress: Progress | None = None
    ) -> Result:
        """Process a whole video; progress(done, expected, stage) is called before each step."""
        for item in self.stream(path, settings, workdir):
            if isinstance(item, Result):
                return item
            if progress:
                progress(*item)
        raise AssertionError("stream ended without a result")

    def stream(self, path: str | Path, settings: Settings, workdir: Path) -> Iterator:
        """Generator: yields a Step before each step, then the Result. Closing it early (a
        cancelled request) stops the work at a step boundary."""
        if settings.slot_ids not in SLOT_ID_SOURCES:
            raise ValueError(
                f"slot_ids must be one of {SLOT_ID_SOURCES}, got {settings.slot_ids!r}"
            )
        if not 0 <= settings.adapt_steps <= MAX_ADAPT_STEPS:
            raise ValueError(
                f"adapt_steps must be 0 to {MAX_ADAPT_STEPS}, got {settings.adapt_steps}"
            )
        t_start = time.perf_counter()
        job = Job(self.model, probe(path), settings, workdir)
        if settings.adapt_steps:
            yield from self._adapt(path, job)
        steps = (
            ("infer", self._infer),
            ("slot_ids", self._slot_ids),
            ("render", self._render),
            ("encode", self._encode),
        )
        frames = iter_frames(path, job.info, job.fps, settings.max_seconds, job.size)
        # the next chunk decodes on a thread of its own while this one goes through the steps
        # (and its frames encode on the job's encoder thread): each stage's timing is then the
        # time the request waited for it
        pool = ThreadPoolExecutor(1, thread_name_prefix="decode")
        try:
            pending = pool.submit(self._decode, job, frames)
            while True:
                yield job.step("decode")
                chunk = self._timed(job, "decode", pending.result)
                if not chunk.frames:
                    break
                pending = pool.submit(self._decode, job, frames)
                for stage, fn in steps:
                    yield job.step(stage)
                    self._timed(job, stage, fn, job, chunk)
            self._timed(job, "encode", job.close)  # the last frames still encoding
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            job.close()
        if not job.times:
            raise VideoError("No frames could be decoded from this video.")
        yield job.step("package")
        yield self._package(job, t_start)

    @staticmethod
    def _timed(job: Job, stage: str, fn, *args):
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            job.timings[stage] += time.perf_counter() - t0

    # ---- the steps, in order -------------------------------------------------------------
    def _adapt(self, path: str | Path, job: Job) -> Iterator[Step]:
        """Fine-tune a copy of the model on this clip's frames (model/adapt.py) before the
        chunked pass, which then runs the copy; the shared model is never touched."""
        t0 = time.perf_counter()
        steps = job.settings.adapt_steps
        frames = iter_frames(path, job.info, job.fps, job.settings.max_seconds, job.size)
        rgb = model_frames(list(frames), job.model_size)
        eta = steps * seconds_per_step(self.model, rgb.shape[1:3])
        note = f"about {eta:.0f} s on {self.device.type.upper()}"
        if self.device.type == "cpu":
            note += " (slow on a CPU; a GPU takes seconds)"
        yield Step("adapt", 0, steps, note)
        run = adapting(self.model, rgb, steps, seed=0)
        while True:
            try:
                done, _ = next(run)
            except StopIteration as finished:
                job.model, job.adaptation = finished.value
                break
            if done % max(1, steps // 20) == 0:
                yield Step("adapt", done, steps, note)
        job.timings["adapt"] += time.perf_counter() - t0

    @staticmethod
    def _decode(job: Job, frames: Iterator) -> Chunk:
        """Up to CHUNK_FRAMES frames; a damaged file ends the video with a warning."""
        chunk = Chunk(frames=[])
        try:
            for item in frames:
                chunk.frames.append(item)
                job.decoded += 1
                if len(chunk.frames) == CHUNK_FRAMES:
                    break
        except TruncatedVideo:
            done = job.decoded
            job.warnings.append(
                f"The file is damaged after {done} frames: showing what could be decoded."
            )
        return chunk

    # grad mode is thread-local, and a server may run each step of a generator on a different
    # worker thread: inference mode is entered per step, not around the generator
    @torch.inference_mode()
    def _infer(self, job: Job, chunk: Chunk) -> None:
        """The model in recurrent mode, on frames at the video's aspect (the model's size)."""
        small = model_frames(chunk.frames, job.model_size)
        chunk.video = as_video(small[None], self.device)
        chunk.out = job.model(chunk.video, cache=job.cache)

    @torch.inference_mode()
    def _slot_ids(self, job: Job, chunk: Chunk) -> None:
        """Masks -> slot IDs at the output size (model/segment.py: refined, tracked), and each
        slot's share of the encoder's tokens in the same label order."""
        seg = job.segmenter(chunk.out.masks[0], chunk.video[0])
        chunk.masks = seg.masks
        perms = torch.from_numpy(seg.perms).to(self.device)
        chunk.attention = chunk.out.attention[0].mean(dim=(-1, -2)).gather(1, perms).cpu().numpy()
        chunk.ids = render.upsample_masks(seg.masks, job.size)
        w, h = job.size
        log_depth = chunk.out.log_depth[0][:, None]  # (t, 1, h, w)
        up = F.interpolate(log_depth, size=(h, w), mode="bilinear", align_corners=False)
        chunk.depth = up[:, 0].exp().cpu().numpy()

    @staticmethod
    def _render(job: Job, chunk: Chunk) -> None:
        """Overlay, colour-mapped depth and side by side, frame by frame."""
        job.coloring = job.coloring or render.DepthColoring(chunk.depth)
        opacity = job.settings.opacity
        for (_, frame), ids, depth in zip(chunk.frames, chunk.ids, chunk.depth, strict=True):
            ov = render.overlay(frame, ids, opacity)
            dp = job.coloring(depth)
            chunk.pictures.append((ov, dp, render.composite(ov, dp)))
            job.keyframes.offer(len(job.times) + len(chunk.pictures) - 1, frame, ov, dp)
            job.shares.append(np.bincount(ids.ravel(), minlength=job.n)[: job.n] / ids.size)

    @staticmethod
    def _encode(job: Job, chunk: Chunk) -> None:
        """Frames to the three mp4s (encoded on the job's encoder thread), arrays to the work
        folder; the chunk is then done."""
        job.encoder.put(
            [
                (name, picture)
                for pictures in chunk.pictures
                for name, picture in zip(("overlay", "depth", "composite"), pictures, strict=True)
            ]
        )
        job.arrays["slot_ids"].append(chunk.ids)
        job.arrays["depth"].append(chunk.depth)
        job.arrays["masks"].append(chunk.masks.cpu().numpy())
        job.arrays["attention"].append(chunk.attention)
        job.times.extend(t for t, _ in chunk.frames)

    def _package(self, job: Job, t_start: float) -> Result:
        """slots.npz, the key-frame strip, meta.json (with the timings so far) and the zip."""
        t0 = time.perf_counter()
        # the strip is written on a thread of its own while slots.npz deflates (both leave the GIL)
        with ThreadPoolExecutor(1, thread_name_prefix="keyframes") as pool:
            strip = pool.submit(
                write_keyframes, job.workdir / "keyframes.png", job.keyframes.rows()
            )
            npz = write_npz(job.workdir / "slots.npz", job.arrays)
            keyframes = strip.result()
        job.timings["package"] = time.perf_counter() - t0
        job.timings["total"] = time.perf_counter() - t_start
        files = {f"{k}.mp4": p for k, p in job.paths.items()}
        files |= {"slots.npz": npz, "keyframes.png": keyframes}
        adapted = None
        if job.adaptation:  # loadable with OCSlotSSM.from_pretrained("adapted_weights")
            adapted = job.workdir / "adapted_weights"
            job.model.save_pretrained(adapted)
            files |= {f"adapted_weights/{f}": adapted / f for f in ADAPTED_FILES}
        archive = write_zip(job.workdir / "slot_decomposition.zip", files, self._meta(job))
        return Result(
            workdir=job.workdir,
            overlay=job.paths["overlay"],
            depth=job.paths["depth"],
            composite=job.paths["composite"],
            archive=archive,
            npz=npz,
            keyframes=keyframes,
            times=np.array(job.times),
            pixel_share=np.array(job.shares),
            attention=job.arrays["attention"].read(),
            size=job.size,
            model_size=job.model_size,
            fps=job.fps,
            num_slots=job.n,
            depth_range=job.coloring.range,
            metric_depth=job.settings.metric_depth,
            warnings=job.warnings,
            timings=dict(job.timings),
            adaptation=job.adaptation,
            adapted_weights=adapted,
        )

    def _meta(self, job: Job) -> dict:
        info, (w, h) = job.info, job.size
        return {
            "fps": job.fps,
            "frame_count": len(job.times),
            "width": w,
            "height": h,
            "source": {
                "width": info.width,
                "height": info.height,
                "fps": info.fps,
                "duration": info.duration,
                "codec": info.codec,
                "rotation": info.rotation,
            },
            "num_slots": job.n,
            "model": self.model_name,
            "model_resolution": list(job.model_size),  # (w, h) of the frames the model saw
            "weights_sha256": self.weights_sha256,
            # the same weights decode differently with another config (e.g. decoder_stride)
            "model_config": job.model.config.to_dict(),
            # False, or how a copy of the weights was fine-tuned on this clip before the run
            "adapted": job.adaptation.to_dict() if job.adaptation else False,
            "device": str(self.device),
            "timings_seconds": {k: round(v, 3) for k, v in job.timings.items()},
            "settings": job.settings.__dict__,
            "warnings": job.warnings,
            "depth_unit": "metres" if job.settings.metric_depth else "relative",
            "arrays": npz_layout(job.settings.slot_ids),
        }

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
