"""Keeping the server's resident memory flat over many requests (glibc only; no-ops elsewhere)."""

from __future__ import annotations

import contextlib
import ctypes

M_ARENA_MAX = -8  # mallopt parameter (malloc.h)


def _libc():
    with contextlib.suppress(OSError):
        return ctypes.CDLL("libc.so.6")
    return None


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each new thread its own heap (up to 8 per core) that keeps what it frees;
    Gradio runs the steps of a request on pool threads, so without a cap the server's memory
    steps up by ~100 MB whenever a new thread first handles a request."""
    libc = _libc()
    with contextlib.suppress(AttributeError):
        if libc is not None:
            libc.mallopt(M_ARENA_MAX, arenas)


def release_freed_memory() -> None:
    """Hand the heap's free pages back to the OS at the end of a request: a request's frame
    buffers are large and short-lived, and glibc otherwise keeps their pages mapped."""
    libc = _libc()
    with contextlib.suppress(AttributeError):
        if libc is not None:
            libc.malloc_trim(0)
