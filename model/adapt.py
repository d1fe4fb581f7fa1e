"""Adapt the model to one video: a copy of the weights fine-tuned on the clip itself.

    adapted, report = adapt(model, frames, steps=100)   # frames (T, H, W, 3) uint8
    adapted.save_pretrained("my_adapted")              # OCSlotSSM.from_pretrained loads it

Every target needs no labels, so any clip has them: its own RGB (reconstruction), its
depth as the original weights predict it (kept as a target, so depth does not drift while
the slots adapt), and, for a model with a flow head, its optical flow from OpenCV
(model/flow.py). The steps are model/train.py's own loop (`train_steps`) with a short
recipe (ADAPT_RECIPE); the given model is never modified. Deterministic for a seed on CPU:
batches are drawn from the seed and nothing else is random.

From the command line, on a folder of your videos, the same recipe is the training entry
point itself:

    python -m model.train --init weights --data my_videos/ --depth-from-init --out runs/mine \\
        --steps 300 --batch 8 --frames 8 --lr 1e-4 --warmup 30 --eval-every 300
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass

import numpy as np
import torch
from accelerate import Accelerator

from .data import Clip
from .flow import dis_flow
from .precision import training_precision
from .slotssm import OCSlotSSM
from .train import parse_args, teacher_depth, train_steps

# the short recipe: a small learning rate (the weights are already trained) and a warm-up
ADAPT_RECIPE = {"batch": 8, "frames": 8, "lr": 1e-4, "warmup_fraction": 0.1}


@dataclass
class AdaptReport:
    """What was done, for the page and meta.json."""

    steps: int  # optimiser steps taken (fewer than asked when max_seconds ran out)
    steps_asked: int
    seconds: float
    device: str
    seed: int
    precision: str  # of the training steps (Accelerate's name; "no" = fp32); the copy runs in fp32
    batch: int
    frames: int
    lr: float
    objectives: list[str]
    loss_first: float  # the weighted loss of the first and of the last step
    loss_last: float

    def to_dict(self) -> dict:
        return asdict(self)


def recipe_args(steps: int, seed: int, **overrides):
    """model/train.py's arguments for adapting: its defaults (loss weights, clipping) with
    the short recipe."""
    r = ADAPT_RECIPE | overrides
    argv = ["--data", "-", "--out", "-", "--steps", str(steps), "--seed", str(seed)]
    argv += ["--batch", str(r["batch"]), "--frames", str(r["frames"]), "--lr", str(r["lr"])]
    argv += ["--warmup", str(max(1, round(r["warmup_fraction"] * steps)))]
    return parse_args(argv, check_paths=False)  # the clip is in memory: no folders


def adaptation_clip(model: OCSlotSSM, rgb: np.ndarray) -> Clip:
    """The clip with its label-free targets: depth from `model`, flow if the model has a head."""
    if rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    if len(rgb) < 2:
        raise ValueError("adapting needs at least 2 frames")
    flow = dis_flow(rgb) if model.config.flow_head else None
    return Clip(rgb, teacher_depth(model, rgb), None, "video", flow)


def adapting(
    model: OCSlotSSM,
    rgb: np.ndarray,
    steps: int = 100,
    seed: int = 0,
    max_seconds: float | None = None,
    precision: str = "auto",
    **recipe,
) -> Generator[tuple[int, int], None, tuple[OCSlotSSM, AdaptReport]]:
    """Generator form of `adapt`, for callers that report progress between steps (the app):
    yields (step, steps) after each step and returns (adapted copy, report)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    t0 = time.perf_counter()
    device = next(model.parameters()).device
    args = recipe_args(steps, seed, **recipe)
    clips = [adaptation_clip(model, rgb)]
    with torch.inference_mode(False):  # a copy made in inference mode could not be trained
        student = copy.deepcopy(model).train()
    opt = torch.optim.AdamW(student.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    mixed = training_precision(device, precision)
    acc = Accelerator(mixed_precision=mixed, cpu=device.type == "cpu")
    done, first, last = 0, float("nan"), float("nan")
    run = train_steps(student, opt, clips, args, acc)
    while True:
        # each step in grad mode whatever the caller holds (inference mode, another thread)
        with torch.inference_mode(False), torch.enable_grad():
            item = next(run, None)
        if item is None:
            break
        done, loss, _, _ = item
        last = loss.item()
        first = last if done == 1 else first
        yield done, steps
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            break
    objectives = ["rgb", "depth kept from the original weights"]
    objectives += ["optical flow (OpenCV DIS)"] if model.config.flow_head else []
    report = AdaptReport(
        steps=done,
        steps_asked=steps,
        seconds=round(time.perf_counter() - t0, 3),
        device=str(device),
        seed=seed,
        precision=mixed,
        batch=args.batch,
        frames=args.frames,
        lr=args.lr,
        objectives=objectives,
        loss_first=first,
        loss_last=last,
    )
    return student.eval(), report


def adapt(
    model: OCSlotSSM,
    rgb: np.ndarray,
    steps: int = 100,
    seed: int = 0,
    max_seconds: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    precision: str = "auto",
    **recipe,
) -> tuple[OCSlotSSM, AdaptReport]:
    """A copy of `model` fine-tuned on the frames `rgb` (T, H, W, 3) uint8, at the model's
    input size (H, W multiples of the encoder's stride), for `steps` steps or until
    `max_seconds` have passed; progress(step, steps) after each step. precision: of the
    training steps, "auto" (bf16 where the hardware has it natively, model/precision.py),
    "no" (fp32) or "bf16". Returns the adapted copy (eval mode) and a report."""
    run = adapting(model, rgb, steps, seed, max_seconds, precision, **recipe)
    while True:
        try:
            done, total = next(run)
        except StopIteration as finished:
            return finished.value
        if progress:
            progress(done, total)


def seconds_per_step(
    model: OCSlotSSM, size: tuple[int, int], precision: str = "auto", **recipe
) -> float:
    """A measured estimate, before adapting: one forward and backward pass of a batch of the
    recipe's shape on a throwaway copy (after one warm-up pass), in the precision adapting
    uses. size = (H, W)."""
    r = ADAPT_RECIPE | recipe
    device = next(model.parameters()).device
    bf16 = training_precision(device, precision) == "bf16"
    timings = []
    with (
        torch.inference_mode(False),
        torch.enable_grad(),
        torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16),
    ):
        probe = copy.deepcopy(model).train()
        video = torch.rand(r["batch"], r["frames"], 3, *size, device=device)
        for _ in range(2):
            t0 = time.perf_counter()
            out = probe(video)
            (out.log_depth.mean() + (out.rgb.mean() if out.rgb is not None else 0)).backward()
            if device.type == "cuda":
                torch.cuda.synchronize()
            timings.append(time.perf_counter() - t0)
    return timings[-1] * 1.1  # + the optimiser step and the batch sampling
