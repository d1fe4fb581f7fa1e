"""Model-only inference speed and memory, at the model's own resolution.

    python -m bench.model_bench [--weights weights] [--threads 2] [--frames 512]

Prints frames/s in parallel mode and in recurrent mode for several chunk sizes (recurrent:
with the slot IDs made from each chunk's masks, as the app does; and the model alone), the same
weights with the other decoder_stride and without mask refinement (see Config), the gain of
batching clips of several users together, and the resident memory after streaming a short
and a long video (recurrent mode must be flat).
"""

from __future__ import annotations

import argparse
import time

import psutil
import torch

from model import OCSlotSSM, SlotSegmenter


def frames_per_second(
    model: OCSlotSSM,
    frames: int,
    chunk: int,
    size: int,
    repeats: int = 3,
    batch: int = 1,
    slot_ids: bool = True,
) -> float:
    """Frames/s (all clips of the batch counted) streaming `frames` frames in chunks; with
    slot_ids, each chunk's masks also go through the segmenter (refine and track, as the app
    does, model/segment.py) for the first clip of the batch."""
    video = torch.rand(batch, frames, 3, size, size)
    best = float("inf")
    with torch.inference_mode():
        model(video[:, :chunk], cache=model.alloc_cache(batch))  # warm-up
        for _ in range(repeats):
            cache = model.alloc_cache(batch)
            segmenter = SlotSegmenter.for_model(model.config)
            start = time.perf_counter()
            for t in range(0, frames, chunk):
                out = model(video[:, t : t + chunk], cache=cache)
                if slot_ids:
                    segmenter(out.masks[0], video[0, t : t + chunk])
            best = min(best, time.perf_counter() - start)
    return batch * frames / best


def streamed_rss_mb(model: OCSlotSSM, frames: int, chunk: int, size: int) -> float:
    """Peak resident memory (MB) while streaming `frames` frames, generated chunk by chunk."""
    proc, peak = psutil.Process(), 0
    with torch.inference_mode():
        cache = model.alloc_cache()
        for _ in range(0, frames, chunk):
            model(torch.rand(1, chunk, 3, size, size), cache=cache)
            peak = max(peak, proc.memory_info().rss)
    return peak / 2**20


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--weights", default="weights")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--frames", type=int, default=256)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = OCSlotSSM.from_pretrained(args.weights)
    size = model.config.image_size
    print(
        f"OC-SlotSSM {sum(p.numel() for p in model.parameters()):,} params, {size}x{size}, "
        f"{model.config.num_slots} slots, {args.threads} threads, device cpu"
    )
    video = torch.rand(1, args.frames, 3, size, size)
    with torch.inference_mode():
        model(video[:, :16])
        start = time.perf_counter()
        model(video)
        print(
            f"parallel  ({args.frames} frames at once): {args.frames / (time.perf_counter() - start):7.1f} frames/s"
        )
    for chunk in (1, 8, 16, 32):
        print(
            f"recurrent (chunks of {chunk:2d} frames):     {frames_per_second(model, args.frames, chunk, size):7.1f} frames/s"
        )
    alone = frames_per_second(model, args.frames, 16, size, slot_ids=False)
    print(f"model alone, no slot IDs (chunks of 16): {alone:7.1f} frames/s")
    # decoder_stride and mask refinement are inference-time choices: price the alternatives
    other = 4 if model.config.decoder_stride == 2 else 2
    alt = model.with_config(decoder_stride=other)
    here, there = (frames_per_second(m, args.frames, 16, size) for m in (model, alt))
    print(
        f"decoder_stride {model.config.decoder_stride}: {here:7.1f} frames/s vs {there:.1f} "
        f"with decoder_stride {other} (chunks of 16, x{here / there:.2f})"
    )
    if model.config.mask_refine_radius:
        raw = model.with_config(mask_refine_radius=0)
        here, there = (frames_per_second(m, args.frames, 16, size) for m in (model, raw))
        print(
            f"mask refinement (radius {model.config.mask_refine_radius}): {here:7.1f} frames/s vs "
            f"{there:.1f} without (chunks of 16, x{here / there:.2f})"
        )
    # The app could batch short clips of different users into one pass; worth it only if faster.
    one, four = (frames_per_second(model, 64, 16, size, batch=b) for b in (1, 4))
    print(
        f"4 users' clips batched together: {four:7.1f} frames/s vs {one:.1f} one clip at a time "
        f"(x{four / one:.2f})"
    )
    short, long = streamed_rss_mb(model, 300, 16, size), streamed_rss_mb(model, 3000, 16, size)
    print(
        f"recurrent peak RSS: {short:.0f} MB after 300 frames, {long:.0f} MB after 3000 frames "
        f"(growth {long - short:+.0f} MB for 10x the length)"
    )


if __name__ == "__main__":
    main()
