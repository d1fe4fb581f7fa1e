"""The precision a training step runs in: bf16 autocast where the hardware computes bf16
natively, fp32 elsewhere.

Native means CUDA with bf16, or a CPU with AMX or AVX512-BF16 (Xeons since Sapphire Rapids,
AMD since Zen 4), where oneDNN's bf16 matmuls run several times as fast as fp32: on this
project's 2-core Xeon, 1107 against 181 GFLOP/s on one thread, and a training step of the
shipped model 1.8x as fast. Elsewhere a CPU emulates bf16, slower than fp32. Which kind a CPU
is, is measured (one matmul timed in both), not read from its flags.

Serving stays fp32 (app/session.py pin_precision): bf16 moves slot IDs near ties.
"""

from __future__ import annotations

import functools
import time

import torch

# bf16 matmuls at least this many times as fast as fp32: the CPU computes bf16 natively
# (measured here 6.1x with AMX; emulated bf16 is slower than fp32, below 1)
NATIVE_SPEEDUP = 2.0
PRECISIONS = ("auto", "no", "bf16")  # Accelerate's names ("no": fp32), auto = by the hardware


@functools.cache
def cpu_bf16_speedup(size: int = 512, repeats: int = 5) -> float:
    """fp32 time / bf16 time of a (size x size) matmul on this CPU, best of `repeats` each."""

    def best(dtype: torch.dtype) -> float:
        a = torch.randn(size, size, generator=torch.Generator().manual_seed(0)).to(dtype)
        a @ a  # warm-up: oneDNN builds its kernel on the first call
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ a
            times.append(time.perf_counter() - t0)
        return min(times)

    return best(torch.float32) / best(torch.bfloat16)


def training_precision(device: torch.device | str, requested: str = "auto") -> str:
    """Accelerate's mixed_precision for training on `device`: `requested` unless it is
    "auto", then "bf16" where the device computes bf16 natively, else "no" (fp32)."""
    if requested != "auto":
        return requested
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    if device.type == "cpu":
        return "bf16" if cpu_bf16_speedup() >= NATIVE_SPEEDUP else "no"
    return "no"
