"""Video in and out with PyAV (FFmpeg): probe and validate before decoding, stream frames at
a target rate, and write browser-playable H.264.

Decoding handles rotation metadata (phone videos), variable frame rate (frames are picked
by timestamp, not by index), grayscale and alpha (converted to RGB), and resizes inside
FFmpeg so full-resolution frames never reach Python.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from .limits import MAX_SOURCE_SIDE, MIN_SOURCE_SIDE

log = logging.getLogger(__name__)


class VideoError(ValueError):
    """A video that cannot be used, with a message meant for the person who uploaded it."""


@dataclass
class VideoInfo:
    width: int  # as displayed, after rotation
    height: int
    fps: float
    duration: float  # seconds (estimated from the container when the stream does not say)
    rotation: int  # degrees, counter-clockwise, from the display matrix
    codec: str


def probe(path: str | Path) -> VideoInfo:
    """Open a file and read its header; raise VideoError if it is not a usable video."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise VideoError("The file is empty or missing.")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError("This file has no video track (is it an image or audio?).")
            stream = container.streams.video[0]
            if (
                stream.codec_context.name in {"png", "mjpeg", "bmp", "gif", "webp"}
                and (stream.frames or 0) <= 1
            ):
                raise VideoError("This looks like a still image, not a video.")
            width, height = stream.codec_context.width, stream.codec_context.height
            fps = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
            if stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            elif container.duration:
                duration = container.duration / av.time_base
            else:
                duration = (stream.frames or 0) / fps
            rotation = _rotation(container)
            codec = stream.codec_context.name
    except VideoError:
        raise
    except Exception as err:  # hostile files fail in many ways inside FFmpeg and PyAV
        log.info("probe failed: %r", err)
        raise VideoError(  # the details are for the log, not for the person
            "This file could not be read as a video: it may be damaged, or not a video at all."
        ) from None
    if not width or not height:
        raise VideoError("The video track has no frame size (the file may be truncated).")
    if max(width, height) > MAX_SOURCE_SIDE:
        raise VideoError(
            f"Frames of {width}x{height} are too large: at most {MAX_SOURCE_SIDE} px a side."
        )
    if min(width, height) < MIN_SOURCE_SIDE:
        raise VideoError(
            f"Frames of {width}x{height} are too small: at least {MIN_SOURCE_SIDE} px a side."
        )
    if rotation % 180:
        width, height = height, width
    return VideoInfo(width, height, fps, max(duration, 0.0), rotation, codec)


def _rotation(container) -> int:
    """Rotation from the first decoded frame's display matrix (0 if unknown)."""
    try:
        frame = next(container.decode(video=0))
        return int(round(frame.rotation or 0)) % 360
    except (StopIteration, av.error.FFmpegError, AttributeError):
        return 0


def output_size(info: VideoInfo, max_side: int) -> tuple[int, int]:
    """(width, height) of the rendered videos: the source's aspect, long side <= max_side,
    even numbers (H.264 with 4:2:0 chroma needs them)."""
    scale = min(1.0, max_side / max(info.width, info.height))
    w, h = (max(2, int(round(d * scale / 2)) * 2) for d in (info.width, info.height))
    return w, h


def iter_frames(
    path: str | Path, info: VideoInfo, fps: float, max_seconds: float, size: tuple[int, int]
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (time in seconds, RGB uint8 frame of `size` = (w, h)) at about `fps` frames per
    second of video time, for at most `max_seconds`. A decoding error part-way through ends
    the stream early (the caller reports how much was decoded)."""
    w, h = size
    dw, dh = (h, w) if info.rotation % 180 else (w, h)  # resize before rotating
    last_bin = -1
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads
        try:
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else (last_bin + 1) / fps
                if t >= max_seconds:
                    break
                # keep the first frame of each 1/fps interval: by timestamp, so variable
                # frame rate is handled, and never more than fps frames per second
                sample_bin = int(np.floor(t * fps + 1e-6))
                if sample_bin <= last_bin:
                    continue
                last_bin = sample_bin
                rgb = frame.to_ndarray(format="rgb24", width=dw, height=dh)
                if info.rotation:
                    rgb = np.ascontiguousarray(np.rot90(rgb, k=info.rotation // 90))
                yield t, rgb
        except (av.error.FFmpegError, ValueError, AttributeError) as err:
            raise TruncatedVideo(str(err)) from None


class TruncatedVideo(Exception):
    """Decoding failed part-way through the file."""


class Mp4Writer:
    """H.264 / yuv420p / faststart mp4 that plays in every browser, written frame by frame."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], crf: int = 23):
        self.container = av.open(str(path), "w", options={"movflags": "+faststart"})
        self.stream = self.container.add_stream("libx264", rate=max(1, round(fps)))
        self.stream.width, self.stream.height = size
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"preset": "veryfast", "crf": str(crf), "tune": "fastdecode"}
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class EncoderThread:
    """Feeds Mp4Writers from a thread of its own, in the order given, so that H.264 encoding
    (the largest step of a request on a CPU, and CPU work on a GPU host) overlaps the next
    chunk's decoding, model and rendering. At most `depth` chunks wait, which bounds the
    frames held in memory. An encoding error is raised by the next put() or by close()."""

    def __init__(self, writers: dict[str, Mp4Writer], depth: int = 1):
        self.writers = writers
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="mp4-encoder", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (frames := self.queue.get()) is not None:
            if self.error is None:  # after an error, drain without writing so put() never blocks
                try:
                    for name, rgb in frames:
                        self.writers[name].write(rgb)
                except BaseException as err:  # re-raised in the caller's thread
                    self.error = err

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def put(self, frames: list[tuple[str, np.ndarray]]) -> None:
        """(writer name, RGB frame) pairs, written in this order after earlier puts."""
        self._raise()
        if not self.thread.is_alive():
            raise RuntimeError("the encoder thread was closed")
        self.queue.put(frames)

    def close(self) -> None:
        """Wait for every frame put so far, then finish the files. Idempotent."""
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
            for w in self.writers.values():
                w.close()
        self._raise()
