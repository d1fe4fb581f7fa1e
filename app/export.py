"""The results archive (DESIGN.md section 4): overlay.mp4, depth.mp4, composite.mp4,
slots.npz, keyframes.png, meta.json.

Per-frame arrays are written chunk by chunk to the request's work folder while the video is
processed, and streamed into a compressed slots.npz at the end, so memory does not grow with
length. The arrays keep the documented names and dtypes; masks and depth are rounded to a
precision finer than the model's error before compression (a 5 s 640x360 clip: slots.npz
about 2 MB instead of 43 MB raw).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import cv2
import numpy as np

# rounding before compression: the arrays keep their dtypes, but far fewer distinct values
MASK_STEPS = 63  # masks in steps of 1/63 (6 bits of a probability; 0 and 1 exact)
DEPTH_MANTISSA_BITS = 5  # of float16's 10: depth to 1.6%, ~6x finer than the model's AbsRel
# zlib level 1 for slots.npz and keyframes.png: 3-4x faster than level 6 (a 4 s 640x360 clip:
# slots.npz in 0.11 s instead of 0.47, the strip in 31 ms instead of 84) for a zip ~20% larger;
# packaging was the slowest stage per frame on a GPU host, whose cores deflate no faster
NPZ_LEVEL = 1
PNG_LEVEL = 1


def quantise_masks(masks: np.ndarray) -> np.ndarray:
    return (np.round(np.asarray(masks, np.float32) * MASK_STEPS) / MASK_STEPS).astype(np.float16)


def quantise_depth(depth: np.ndarray) -> np.ndarray:
    """float16 with the last mantissa bits rounded away (positive values)."""
    drop = 10 - DEPTH_MANTISSA_BITS
    bits = np.asarray(depth, np.float16).view(np.uint16).astype(np.uint32)
    bits = (bits + (1 << (drop - 1))) & ~np.uint32((1 << drop) - 1)
    return np.minimum(bits, 0x7BFF).astype(np.uint16).view(np.float16)  # never rounds to inf


def npz_layout(slot_ids: str = "tracked") -> dict[str, str]:
    """The arrays of slots.npz, with what each holds (also written to meta.json)."""
    masks = "the decoder's masks" if slot_ids == "decoded" else "refined to the frame's edges"
    return {
        "slot_ids": "(T, H, W) uint8 at the rendered size",
        "depth": "(T, H, W) float16 at the rendered size, rounded to 1.6%",
        "masks": f"(T, N, h, w) float16 at the model's resolution, in the labels' order ({masks}), in steps of 1/63",
        "attention": "(T, N) float32 share of encoder tokens, in the labels' order",
    }


DTYPES = {"slot_ids": np.uint8, "depth": np.float16, "masks": np.float16, "attention": np.float32}
QUANTISE = {"depth": quantise_depth, "masks": quantise_masks}


class ChunkedArray:
    """An array built along its first axis from chunks kept on disk."""

    def __init__(self, folder: Path, name: str):
        self.folder, self.name, self.dtype = folder, name, np.dtype(DTYPES[name])
        self.quantise = QUANTISE.get(name)
        self.files: list[Path] = []
        self.length, self.tail = 0, None
        folder.mkdir(parents=True, exist_ok=True)

    def append(self, chunk: np.ndarray) -> None:
        if self.quantise:
            chunk = self.quantise(chunk)
        chunk = np.ascontiguousarray(chunk, dtype=self.dtype)
        if self.tail is None:
            self.tail = chunk.shape[1:]
        path = self.folder / f"{self.name}_{len(self.files):05d}.npy"
        np.save(path, chunk)
        self.files.append(path)
        self.length += len(chunk)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.length, *(self.tail or ()))

    def chunks(self):
        for f in self.files:
            yield np.load(f)

    def read(self) -> np.ndarray:
        return (
            np.concatenate(list(self.chunks())) if self.files else np.zeros(self.shape, self.dtype)
        )


def write_npz(path: Path, arrays: dict[str, ChunkedArray]) -> Path:
    """A compressed .npz (what np.savez_compressed writes; np.load reads it) written without
    holding any array in memory."""
    with zipfile.ZipFile(
        path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=NPZ_LEVEL
    ) as zf:
        for name, arr in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                header = {
                    "descr": np.lib.format.dtype_to_descr(arr.dtype),
                    "fortran_order": False,
                    "shape": arr.shape,
                }
                np.lib.format.write_array_header_2_0(f, header)
                for chunk in arr.chunks():
                    f.write(chunk.tobytes())
    return path


def write_keyframes(path: Path, rows: list[np.ndarray]) -> Path:
    """rows: one RGB image per key frame (input | slots | depth), stacked into one PNG."""
    strip = np.concatenate(rows, axis=0)
    cv2.imwrite(str(path), strip[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL])
    return path


def write_zip(path: Path, files: dict[str, Path], meta: dict) -> Path:
    """files: name in the archive -> file on disk. meta is written as meta.json. Stored, not
    deflated: mp4, png and npz are compressed already."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, file in files.items():
            zf.write(file, name)
        zf.writestr("meta.json", json.dumps(meta, indent=2))
    return path


def human_size(n_bytes: int) -> str:
    """As the page's file list shows sizes (1 MB = 2**20 bytes)."""
    return f"{n_bytes / 2**20:.1f} MB" if n_bytes >= 2**17 else f"{n_bytes / 2**10:.0f} KB"
