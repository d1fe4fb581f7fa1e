"""Training and evaluation clips, from the project's renderer or from a folder of videos.

Two folder formats are accepted by `load_folder`:

1. A data set written by `python -m model.synth` (clip_00000.npz, ...): RGB, metric depth
   and instance masks (masks are only ever used to evaluate).
2. A folder of your own videos, optionally with per-frame depth:

       my_videos/
         walk.mp4              any container/codec FFmpeg reads (mp4, mov, webm, mkv, avi)
         walk_depth/000000.png one depth map per decoded frame, 16-bit PNG in millimetres
         walk_depth/000001.png (or 000000.npy float32 in metres); 0 = unknown pixel
         street.mov            no street_depth/ folder: trained by RGB reconstruction only

Everything is resized to the model's square input once, at load time, and kept in memory
(64x64 RGB is 12 KB a frame: an hour of 10 fps video is under 0.5 GB). With flow=True the
optical flow is computed from those frames by OpenCV (model/flow.py), for both kinds of
folder: the renderer's exact flow is not used, so synthetic and real clips train alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from .flow import dis_flow

VIDEO_EXTENSIONS = {".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v"}
MM_PER_METRE = 1000.0


@dataclass
class Clip:
    rgb: np.ndarray  # (T, S, S, 3) uint8
    depth: np.ndarray | None  # (T, S, S) float32 metres, 0 = unknown; None = no depth at all
    masks: np.ndarray | None  # (T, S, S) uint8 instance ids, 0 = background (evaluation only)
    name: str
    # (T, S, S, 2) float16 motion in pixels since the previous frame (frame 0: unknown); None = none
    flow: np.ndarray | None = None
    held: int = 0  # instance id of the object a hand carries in the clip (evaluation only); 0: none


def _resize(frames: np.ndarray, size: int, nearest: bool = False) -> np.ndarray:
    if frames.shape[1:3] == (size, size):
        return frames
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA
    return np.stack([cv2.resize(f, (size, size), interpolation=interp) for f in frames])


def load_synth_clip(path: Path, size: int, flow: bool = False) -> Clip:
    with np.load(path) as z:
        rgb, depth, masks = z["rgb"], z["depth"].astype(np.float32), z["masks"]
        held = int(z["held"]) if "held" in z else 0  # data sets rendered before it was written
    rgb = _resize(rgb, size)
    return Clip(
        rgb,
        _resize(depth, size, nearest=True),
        _resize(masks, size, nearest=True),
        path.stem,
        dis_flow(rgb) if flow else None,
        held,
    )


def _read_video(path: Path, size: int) -> np.ndarray:
    import imageio.v3 as iio

    frames = [
        cv2.resize(f[..., :3], (size, size), interpolation=cv2.INTER_AREA)
        for f in iio.imiter(path, plugin="pyav")
    ]
    if not frames:
        raise ValueError(f"{path}: no frames could be decoded")
    return np.stack(frames)


def _read_depth_folder(folder: Path, count: int, size: int) -> np.ndarray:
    files = sorted(p for p in folder.iterdir() if p.suffix in {".png", ".npy"})
    if len(files) != count:
        raise ValueError(f"{folder}: {len(files)} depth maps for {count} video frames")
    maps = []
    for f in files:
        d = (
            np.load(f).astype(np.float32)
            if f.suffix == ".npy"
            else cv2.imread(str(f), cv2.IMREAD_UNCHANGED).astype(np.float32) / MM_PER_METRE
        )
        maps.append(cv2.resize(d, (size, size), interpolation=cv2.INTER_NEAREST))
    return np.stack(maps)


def missing_folder(folders: list[str | Path | None]) -> str | None:
    """The error for the first of these data folders that does not exist (None: an optional
    folder not given); None if all do. Entry points check before any work starts."""
    for folder in folders:
        if folder is not None and not Path(folder).is_dir():
            return f"data folder {folder} does not exist"
    return None


def load_folder(
    folder: str | Path, size: int, limit: int | None = None, flow: bool = False
) -> list[Clip]:
    """All clips of a synth data set or a video folder, resized to size x size; with flow=True
    also their optical flow, computed from the resized frames (model/flow.py)."""
    if error := missing_folder([folder]):
        raise FileNotFoundError(error)
    folder = Path(folder)
    synth = sorted(folder.glob("clip_*.npz"))[:limit]
    if synth:
        return [load_synth_clip(p, size, flow) for p in synth]
    videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)[:limit]
    if not videos:
        raise ValueError(
            f"{folder} holds neither clip_*.npz files nor videos ({sorted(VIDEO_EXTENSIONS)})"
        )
    clips = []
    for v in videos:
        rgb = _read_video(v, size)
        depth_dir = v.with_name(v.stem + "_depth")
        depth = _read_depth_folder(depth_dir, len(rgb), size) if depth_dir.is_dir() else None
        clips.append(Clip(rgb, depth, None, v.stem, dis_flow(rgb) if flow else None))
    return clips


def sample_batch(
    clips: list[Clip], batch: int, frames: int, rng: np.random.Generator, flip: bool = True
) -> dict[str, torch.Tensor]:
    """A batch of random windows of `frames` frames (shorter clips are repeated to fit).

    Returns video (B, T, 3, S, S) float in [0, 1], depth (B, T, S, S) (0 = unknown) and, when
    a clip of the batch has flow, flow (B, T, 2, S, S) in pixels with flow_known (B, T): 1 where
    frame t's flow comes from frame t - 1 of the window (0 for the first frame, where a short
    clip wraps around, and for clips without flow)."""
    chosen = [clips[i] for i in rng.integers(len(clips), size=batch)]
    with_flow = any(clip.flow is not None for clip in chosen)  # else no flow arrays at all
    videos, depths, flows, known = [], [], [], []
    for clip in chosen:
        start = rng.integers(max(len(clip.rgb) - frames, 0) + 1)
        idx = np.arange(start, start + frames) % len(clip.rgb)
        rgb = clip.rgb[idx]
        depth = clip.depth[idx] if clip.depth is not None else np.zeros(rgb.shape[:3], np.float32)
        flow = None
        if with_flow:
            flow = (
                clip.flow[idx].astype(np.float32)
                if clip.flow is not None
                else np.zeros((*rgb.shape[:3], 2), np.float32)
            )
        if flip and rng.random() < 0.5:  # mirror images are as plausible as the originals
            rgb, depth = rgb[:, :, ::-1], depth[:, :, ::-1]
            if with_flow:
                flow = flow[:, :, ::-1] * np.array([-1.0, 1.0], np.float32)  # x motion mirrors too
        videos.append(rgb)
        depths.append(depth)
        flows.append(flow)
        # frame t's flow is the motion since frame t - 1 of this window
        follows = np.insert(idx[1:] == idx[:-1] + 1, 0, False)
        known.append(follows & (clip.flow is not None))
    video = (
        torch.from_numpy(np.ascontiguousarray(np.stack(videos))).permute(0, 1, 4, 2, 3).float()
        / 255.0
    )
    result = {"video": video, "depth": torch.from_numpy(np.ascontiguousarray(np.stack(depths)))}
    if with_flow:
        flow = torch.from_numpy(np.ascontiguousarray(np.stack(flows)))
        result |= {
            "flow": flow.permute(0, 1, 4, 2, 3),
            "flow_known": torch.tensor(np.stack(known)).float(),
        }
    return result
