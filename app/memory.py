"""Keeping the server's resident memory flat over many requests (glibc only; no-ops elsewhere)."""

from __future__ import annotations

import ctypes
from functools import cache

M_ARENA_MAX = -8  # mallopt parameter (malloc.h)


@cache
def _glibc() -> ctypes.CDLL | None:
    """The C library if it is glibc (has mallopt and malloc_trim), else None."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each new thread its own heap (up to 8 per core) that keeps what it frees;
    Gradio runs the steps of a request on pool threads, so without a cap the server's memory
    steps up by ~100 MB whenever a new thread first handles a request."""
    if libc := _glibc():
        libc.mallopt(M_ARENA_MAX, arenas)


def release_freed_memory() -> None:
    """Hand the heap's free pages back to the OS at the end of a request: a request's frame
    buffers are large and short-lived, and glibc otherwise keeps their pages mapped."""
    if libc := _glibc():
        libc.malloc_trim(0)
