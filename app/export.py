"""The results archive (DESIGN.md section 4): overlay.mp4, depth.mp4, slots.npz, meta.json.

Per-frame arrays are written chunk by chunk to the request's work folder while the video is
processed, and streamed into slots.npz at the end, so memory does not grow with length.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np


class ChunkedArray:
    """An array built along its first axis from chunks kept on disk."""

    def __init__(self, folder: Path, name: str, dtype):
        self.folder, self.name, self.dtype = folder, name, np.dtype(dtype)
        self.files: list[Path] = []
        self.length, self.tail = 0, None
        folder.mkdir(parents=True, exist_ok=True)

    def append(self, chunk: np.ndarray) -> None:
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


def write_npz(path: Path, arrays: dict[str, ChunkedArray]) -> None:
    """A standard .npz (readable by np.load) written without holding any array in memory."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
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


def write_zip(path: Path, files: dict[str, Path], meta: dict) -> Path:
    """files: name in the archive -> file on disk. meta is written as meta.json."""
    with zipfile.ZipFile(
        path, "w", compression=zipfile.ZIP_STORED
    ) as zf:  # mp4 and npz are already compressed
        for name, file in files.items():
            zf.write(file, name)
        zf.writestr("meta.json", json.dumps(meta, indent=2))
    return path
