"""Evaluate weights: on a data set from the renderer (ground truth), or on real videos (motion).

    python -m model.evaluate --data DIR --json OUT [--weights weights/] [--num-slots N]
    python -m model.evaluate --videos DIR --json OUT [--fps 10] [--motion-size 128]
    python -m model.evaluate --videos DIR --json OUT --adapt-steps 100 [--held-out DIR]
    python -m model.evaluate --data DIR --json OUT --adapt-steps 100   (each clip adapted to)

--data writes fg_ari (video FG-ARI), frame_fg_ari, miou (of the slot IDs as the app shows
them: model/segment.py, masks refined if the config asks for it, labels tracked over time),
depth_absrel, depth_rmse, depth_delta1 (also median-scaled), num_videos, slot_centre_spread
(how far a slot's first-frame centre moves across clips: near 0 means slots are bound to
image positions, not to objects); what the network does alone: decoder_fg_ari (the decoder's
masks, no refinement or tracking), memoryless_fg_ari (the same with the SSM state reset at
every frame, i.e. each frame run as a clip of its own) and memory_worth (decoder_fg_ari -
memoryless_fg_ari: what the model's memory is worth); the segmentation scores of every stage
("stages": "untracked", the masks before tracking; "decoded"; "memoryless"), every clip's
scores ("clips", for `python -m model.compare`: two weights, clip by clip),
objects_without_slot_by_size (all clips' objects pooled, binned by size: the share that no
slot of the decoder, or of the slots as shown, mostly covers), and the same numbers for the
baselines:
- one_slot: every pixel in one segment, depth the clip's own median (an oracle constant);
- kmeans: k-means on colour + ground-truth depth + position, k = number of slots.

Objects that vanish for a few frames and come back (behind `model.synth --occluder-prob`'s
panel, or another object): reidentified and decoder_reidentified, the share of those
reappearances where the label that covered the object before covers it again, as shown and
from the decoder alone ("reappearance": every stage, the memoryless one included, a 3x3 grid
for scale, and the number of events, pooled over clips): memory that keeps an object through
an occlusion, which no single frame can show.

Clips where a hand carries an object (`model.synth --scenes hand`) also get held_iou and
decoder_held_iou: the video IoU of the best single slot with the carried object, as shown and
from the decoder alone ("held_object": every stage, and a 3x3 grid and k-means on colour and
position for scale): the ground-truth version of "one slot keeps the hand-moved object".

--videos needs no ground truth (model/motion.py): per clip ("clips") and on average, the
best single slot's video IoU with the region that moves on its own in the optical flow, as
the app shows the slots (motion_iou) and from the decoder alone (decoder_motion_iou), beside
a fixed 3x3 grid of image cells (grid_motion_iou), on frames sampled at --fps. With
--adapt-steps, the same scores of a copy adapted to each clip (model/adapt.py):
adapted_motion_iou, adapted_decoder_motion_iou; with --held-out, each adapted copy's decoder
FG-ARI on those scenes beside the original's (held_out_decoder_fg_ari).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from torch import Tensor
from tqdm import tqdm

from .data import VIDEO_EXTENSIONS, Clip, load_folder
from .metrics import (
    SLOT_ALLOCATION_KEYS,
    depth_metrics,
    fg_ari,
    frame_fg_ari,
    mask_statistics,
    matched_miou,
    objects_by_size,
    reappearances,
    reidentified,
    slot_allocation,
    slot_centre_spread,
    slot_centres,
    without_slot_by_size,
)
from .motion import best_label_iou, grid_ids, moving_regions
from .precision import PRECISIONS
from .segment import SlotSegmenter
from .slotssm import OCSlotSSM

MOTION_FPS = 10.0  # --videos: frames per second sampled, as the app does by default
PER_CLIP = ("fg_ari", "frame_fg_ari", "miou", "depth_absrel", "depth_delta1")
MOTION_SIZE = 128  # --videos: flow at 64 px misses slow motion; the model still sees 64 px


@torch.inference_mode()
def predict_clip(
    model: OCSlotSSM,
    rgb: np.ndarray,
    num_slots: int | None = None,
    size: tuple[int, int] | None = None,
) -> dict[str, np.ndarray]:
    """rgb (T, S, S, 3) uint8 at the model's size -> at `size` (default (S, S)): slot_ids
    (T, ., .) as the app shows them (model/segment.py: masks refined if the config says so,
    labels tracked over time), the same before tracking (slot_ids_untracked), from the
    decoded masks alone (slot_ids_decoded) and from the decoded masks with the state reset at
    every frame (slot_ids_memoryless), depth (T, ., .), and the decoded masks (T, N, h, w)."""
    device = next(model.parameters()).device
    video = torch.from_numpy(rgb).to(device).permute(0, 3, 1, 2).float().div(255.0).unsqueeze(0)
    out = model(video, num_slots=num_slots)
    alone = model(video.transpose(0, 1), num_slots=num_slots)  # T clips of one frame each
    size = size or rgb.shape[1:3]
    n = out.masks.shape[2]

    def resized(x: Tensor) -> Tensor:
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    def slot_ids(masks: Tensor, source: str) -> np.ndarray:
        segments = SlotSegmenter.for_model(model.config, n, source)(masks, video[0])
        return resized(segments.masks).argmax(1).cpu().numpy()

    ids = {
        f"slot_ids_{source}": slot_ids(out.masks[0], source) for source in ("untracked", "decoded")
    }
    return ids | {
        "slot_ids": slot_ids(out.masks[0], "tracked"),
        "slot_ids_memoryless": slot_ids(alone.masks[:, 0], "decoded"),
        "depth": resized(out.log_depth[0].unsqueeze(1))[:, 0].exp().cpu().numpy(),
        "masks": out.masks[0].cpu().numpy(),
    }


def score(clip: Clip, slot_ids: np.ndarray, depth: np.ndarray | None) -> dict[str, float]:
    scores = {}
    if clip.masks is not None:
        scores |= {
            "fg_ari": fg_ari(clip.masks, slot_ids),
            "frame_fg_ari": frame_fg_ari(clip.masks, slot_ids),
            "miou": matched_miou(clip.masks, slot_ids),
        } | slot_allocation(clip.masks, slot_ids)
    if depth is not None and clip.depth is not None:
        scores |= {f"depth_{k}": v for k, v in depth_metrics(depth, clip.depth).items()}
        scores |= {
            f"depth_{k}_median_scaled": v
            for k, v in depth_metrics(depth, clip.depth, median_scale=True).items()
        }
    return scores


def kmeans_ids(clip: Clip, k: int, seed: int = 0, use_depth: bool = True) -> np.ndarray:
    """Cluster all pixels of the clip at once (ids consistent over time) on standardised
    colour, log ground-truth depth (unless use_depth is False: what a video alone gives)
    and image position."""
    T, S = clip.rgb.shape[:2]
    y, x = np.meshgrid(np.arange(S), np.arange(S), indexing="ij")
    feats = [clip.rgb.reshape(-1, 3).astype(np.float32)]
    if clip.depth is not None and use_depth:
        feats.append(np.log(np.maximum(clip.depth, 1e-3)).reshape(-1, 1))
    feats.append(
        np.tile(np.stack([x, y], -1).reshape(1, -1, 2), (T, 1, 1)).reshape(-1, 2).astype(np.float32)
    )
    f = np.concatenate(feats, 1)
    f = (f - f.mean(0)) / (f.std(0) + 1e-6)
    labels = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(f)
    return labels.reshape(T, S, S)


# the stages of predict_clip's slot IDs that the per-object scores (held object, reappearances)
# report, by name: as shown, before tracking, the decoder's masks, the same with no memory
SLOT_ID_STAGES = {
    "shown": "slot_ids",
    "untracked": "slot_ids_untracked",
    "decoder": "slot_ids_decoded",
    "memoryless": "slot_ids_memoryless",
}


def held_object_iou(clip: Clip, ids: np.ndarray) -> float:
    """Does one slot keep the object the hand carries? The video IoU of the best single label
    with that object, over the frames where it is visible: a label that hands the object on
    half way keeps half of it."""
    held = clip.masks == clip.held
    return best_label_iou(ids, held, held.any(axis=(1, 2)))


def held_object_scores(
    clip: Clip, pred: dict[str, np.ndarray], k: int, kmeans: bool = True
) -> dict[str, float]:
    """held_object_iou of every stage of the model's slot IDs, and of slot maps that know
    nothing about objects: a fixed 3x3 grid of image cells and (if kmeans) k-means on colour
    and position (k = the number of slots)."""
    row = {name: held_object_iou(clip, pred[key]) for name, key in SLOT_ID_STAGES.items()}
    row["grid_3x3"] = held_object_iou(clip, grid_ids(clip.masks.shape))
    if kmeans:
        row["kmeans_colour_position"] = held_object_iou(clip, kmeans_ids(clip, k, use_depth=False))
    return row


def reappearance_matches(clip: Clip, pred: dict[str, np.ndarray]) -> dict[str, list[bool]]:
    """For every object of the clip that vanishes for a few frames and comes back
    (model/metrics.py reappearances): whether each stage's slot IDs, and a fixed 3x3 grid of
    image cells (an object that comes back where it vanished keeps its cell: the score of
    remembering nothing but a position), give it the same label after as before."""
    events = reappearances(clip.masks)
    rows = {
        name: reidentified(clip.masks, pred[key], events) for name, key in SLOT_ID_STAGES.items()
    }
    return rows | {"grid_3x3": reidentified(clip.masks, grid_ids(clip.masks.shape), events)}


def adapted_scores(
    model: OCSlotSSM, clip: Clip, k: int, steps: int, precision: str = "auto"
) -> dict[str, float]:
    """The video FG-ARI (as shown and of the decoder) and, where a hand carries an object,
    held_iou of a copy of model adapted to this clip for `steps` steps (training in
    `precision`, model/precision.py), prefixed adapted_."""
    from .adapt import adapt  # model/adapt.py builds on model/train.py, which imports this

    adapted, report = adapt(model, clip.rgb, steps, seed=0, precision=precision)
    pred = predict_clip(adapted, clip.rgb, k)
    row = {"fg_ari": fg_ari(clip.masks, pred["slot_ids"])}
    row["decoder_fg_ari"] = fg_ari(clip.masks, pred["slot_ids_decoded"])
    if clip.held:
        row["held_iou"] = held_object_iou(clip, pred["slot_ids"])
        row["decoder_held_iou"] = held_object_iou(clip, pred["slot_ids_decoded"])
    return {f"adapted_{key}": v for key, v in row.items()} | {"adapt_seconds": report.seconds}


def mean_scores(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = sorted({k for r in rows for k in r})
    return {k: float(np.nanmean([r.get(k, np.nan) for r in rows])) for k in keys}


def evaluate(
    model: OCSlotSSM,
    clips: list[Clip],
    num_slots: int | None = None,
    baselines: bool = True,
    progress: bool = True,
    adapt_steps: int = 0,
    adapt_precision: str = "auto",
) -> dict:
    """Ground-truth scores of the model on rendered clips (see the module's docstring). With
    adapt_steps, also the scores of a copy adapted to each clip alone (model/adapt.py, seed 0;
    no label is used), per clip and on average as adapted_*: does adapting to a clip help
    on that clip?"""
    n = num_slots or model.config.num_slots
    model_rows, stats, centres, one_rows, km_rows = [], [], [], [], []
    held_rows, adapted_rows = [], []  # clips where a hand carries an object; adapted copies
    stages = {"untracked": [], "decoded": [], "memoryless": []}
    per_clip = {}  # for paired comparisons of two weights on the same clips (model/compare.py)
    objects = {"decoder": [], "shown": []}  # every object: (size, has a slot of its own)
    reappeared = {}  # stage -> one bool per reappearance of an object: the same label after?
    for clip in tqdm(clips, desc="evaluate", disable=not progress):
        pred = predict_clip(model, clip.rgb, n)
        model_rows.append(score(clip, pred["slot_ids"], pred["depth"]))
        per_clip[clip.name] = {k: model_rows[-1][k] for k in PER_CLIP if k in model_rows[-1]}
        for stage, rows in stages.items():
            rows.append(score(clip, pred[f"slot_ids_{stage}"], None))
            if "fg_ari" in rows[-1]:
                per_clip[clip.name][f"{stage}_fg_ari"] = rows[-1]["fg_ari"]
        if clip.masks is not None:
            objects["decoder"] += objects_by_size(clip.masks, pred["slot_ids_decoded"])
            objects["shown"] += objects_by_size(clip.masks, pred["slot_ids"])
            matches = reappearance_matches(clip, pred)
            if matches["shown"]:
                for stage, hits in matches.items():
                    reappeared.setdefault(stage, []).extend(hits)
                per_clip[clip.name] |= {
                    "reidentified": float(np.mean(matches["shown"])),
                    "decoder_reidentified": float(np.mean(matches["decoder"])),
                }
        if clip.held and clip.masks is not None:  # a hand carries an object: does a slot keep it?
            held_rows.append(held_object_scores(clip, pred, n, kmeans=baselines))
            per_clip[clip.name] |= {
                "held_iou": held_rows[-1]["shown"],
                "decoder_held_iou": held_rows[-1]["decoder"],
            }
        if adapt_steps:
            adapted_rows.append(adapted_scores(model, clip, n, adapt_steps, adapt_precision))
            per_clip[clip.name] |= adapted_rows[-1]
        stats.append(mask_statistics(pred["masks"]))
        centres.append(slot_centres(pred["masks"]))
        if baselines:
            median = (
                np.full(clip.rgb.shape[:3], np.median(clip.depth[clip.depth > 0]))
                if clip.depth is not None
                else None
            )
            one_rows.append(score(clip, np.zeros(clip.rgb.shape[:3], np.int64), median))
            km_rows.append(score(clip, kmeans_ids(clip, n), None))
    result = (
        {"num_videos": len(clips), "num_slots": n}
        | mean_scores(model_rows)
        | mean_scores(stats)
        | {"slot_centre_spread": slot_centre_spread(centres)}
        | {"stages": {stage: mean_scores(rows) for stage, rows in stages.items()}}
    )
    # what the network itself does, apart from the post-processing, and what its memory adds
    decoded = result["stages"]["decoded"]
    decoder = decoded.get("fg_ari", float("nan"))
    memoryless = result["stages"]["memoryless"].get("fg_ari", float("nan"))
    result |= {
        "decoder_fg_ari": decoder,
        "memoryless_fg_ari": memoryless,
        "memory_worth": decoder - memoryless,
    }
    # where the decoder's FG-ARI goes: objects no slot takes, swallowed by the background's
    # slots, and what undoing splits or that absorption would be worth (model/metrics.py)
    result |= {f"decoder_{k}": decoded.get(k, float("nan")) for k in SLOT_ALLOCATION_KEYS}
    if objects["decoder"]:  # which objects get none: pooled over all clips' objects, by size
        result["objects_without_slot_by_size"] = {
            source: without_slot_by_size(rows) for source, rows in objects.items()
        }
    if reappeared:  # objects hidden for a while: the share that comes back in the same slot
        pooled = {stage: float(np.mean(hits)) for stage, hits in reappeared.items()}
        result |= {"reidentified": pooled["shown"], "decoder_reidentified": pooled["decoder"]}
        result["reappearance"] = {"events": len(reappeared["shown"])} | pooled
    if held_rows:  # clips where a hand carries an object (model.synth --scenes hand)
        held = mean_scores(held_rows)
        result |= {"held_iou": held["shown"], "decoder_held_iou": held["decoder"]}
        result["held_object"] = {"num_videos": len(held_rows)} | held
    if adapted_rows:
        result |= mean_scores(adapted_rows)
    result["clips"] = per_clip
    if baselines:
        result["baselines"] = {"one_slot": mean_scores(one_rows), "kmeans": mean_scores(km_rows)}
    return result


def read_videos(folder: str | Path, size: int, fps: float) -> list[tuple[str, np.ndarray]]:
    """Every video of a folder (no ground truth needed) as (name, frames (T, size, size, 3)
    uint8), sampled at about fps frames per second as the app does (every k-th frame)."""
    import imageio.v3 as iio

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"video folder {folder} does not exist")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
    if not paths:
        raise ValueError(f"{folder} has no videos ({', '.join(sorted(VIDEO_EXTENSIONS))})")
    videos = []
    for path in paths:
        native = iio.immeta(path, plugin="pyav").get("fps") or fps
        step = max(1, round(native / fps))
        frames = [
            cv2.resize(f[..., :3], (size, size), interpolation=cv2.INTER_AREA)
            for i, f in enumerate(iio.imiter(path, plugin="pyav"))
            if i % step == 0
        ]
        if len(frames) < 2:
            raise ValueError(f"{path}: fewer than 2 frames could be decoded")
        videos.append((path.stem, np.stack(frames)))
    return videos


def motion_scores(
    model: OCSlotSSM, small: np.ndarray, size: tuple[int, int], moving, scored, num_slots=None
) -> dict:
    """One clip's motion scores (see evaluate_motion) for one model: small (T, S, S, 3) the
    frames at the model's size, scored at `size`, the analysed size of moving."""
    pred = predict_clip(model, small, num_slots, size=size)
    return {
        "motion_iou": best_label_iou(pred["slot_ids"], moving, scored),
        "decoder_motion_iou": best_label_iou(pred["slot_ids_decoded"], moving, scored),
    }


def evaluate_motion(
    model: OCSlotSSM,
    videos: list[tuple[str, np.ndarray]],
    num_slots: int | None = None,
    progress: bool = True,
    adapt_steps: int = 0,
    held_out: list[Clip] | None = None,
    adapt_precision: str = "auto",
) -> dict:
    """The motion score (model/motion.py) of real clips without ground truth. videos: (name,
    frames (T, S, S, 3) uint8) at the analysed size S; the model sees them at its own size.
    Per clip and mean: the best single slot's video IoU with the moving region, as the app
    shows the slots (motion_iou), from the decoder's masks alone (decoder_motion_iou), and of
    a fixed 3x3 grid of cells (grid_motion_iou), with the share of the frames scored and of
    their pixels that move.

    With adapt_steps, also the same scores of a copy adapted to each clip (model/adapt.py,
    seed 0): adapted_motion_iou, adapted_decoder_motion_iou, the adaptation's report, and,
    given held_out clips with ground truth, the adapted copy's decoder FG-ARI on them
    (adapted_held_out_decoder_fg_ari): what adapting to one clip costs on others."""
    from .adapt import adapt  # model/adapt.py builds on model/train.py, which imports this

    s = model.config.image_size
    rows = {}
    for name, frames in tqdm(videos, desc="motion", disable=not progress):
        moving, scored = moving_regions(frames)
        small = np.stack([cv2.resize(f, (s, s), interpolation=cv2.INTER_AREA) for f in frames])
        size = frames.shape[1:3]
        row = motion_scores(model, small, size, moving, scored, num_slots)
        row |= {
            "grid_motion_iou": best_label_iou(grid_ids(moving.shape), moving, scored),
            "frames": len(frames),
            "scored_frames": float(scored.mean()),
            "moving_share": float(moving[scored].mean()) if scored.any() else float("nan"),
        }
        if adapt_steps:
            adapted, report = adapt(model, small, adapt_steps, seed=0, precision=adapt_precision)
            after = motion_scores(adapted, small, size, moving, scored, num_slots)
            row |= {f"adapted_{k}": v for k, v in after.items()}
            row |= {"adapt_seconds": report.seconds, "adapt_steps": report.steps}
            if held_out:
                fg = evaluate(adapted, held_out, num_slots, baselines=False, progress=False)
                row["adapted_held_out_decoder_fg_ari"] = fg["decoder_fg_ari"]
        rows[name] = row
    result = {
        "num_videos": len(videos),
        "num_slots": num_slots or model.config.num_slots,
        "motion_size": int(videos[0][1].shape[1]) if videos else None,
    }
    if adapt_steps and held_out:
        before = evaluate(model, held_out, num_slots, baselines=False, progress=False)
        result["held_out_decoder_fg_ari"] = before["decoder_fg_ari"]
    return result | mean_scores(list(rows.values())) | {"clips": rows}


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m model.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--data", help="folder written by python -m model.synth")
    what.add_argument(
        "--videos", help="folder of real videos without ground truth: the motion score"
    )
    p.add_argument("--json", required=True, help="where to write the metrics")
    p.add_argument(
        "--weights", default="weights", help="weights folder or Hub repo id (default: weights)"
    )
    p.add_argument(
        "--num-slots",
        type=int,
        default=None,
        help="slots at inference (default: the trained number)",
    )
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N clips")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument(
        "--no-baselines", action="store_true", help="skip the one-slot and k-means baselines"
    )
    p.add_argument(
        "--fps", type=float, default=MOTION_FPS, help="--videos: frames per second sampled"
    )
    p.add_argument(
        "--adapt-steps",
        type=int,
        default=0,
        help="also score a copy adapted to each clip alone for this many steps (model/adapt.py)",
    )
    p.add_argument(
        "--adapt-precision",
        choices=PRECISIONS,
        default="auto",
        help="--adapt-steps: precision of the adapting steps (auto: bf16 where the hardware "
        "has it natively, model/precision.py; no: fp32)",
    )
    p.add_argument(
        "--held-out",
        default=None,
        help="--videos with --adapt-steps: a model.synth folder; each adapted copy's decoder "
        "FG-ARI on it, beside the original's (what adapting to one clip costs on others)",
    )
    p.add_argument(
        "--motion-size",
        type=int,
        default=MOTION_SIZE,
        help="--videos: side of the frames the flow and the score are computed at",
    )
    args = p.parse_args(argv)
    if args.num_slots is not None and args.num_slots < 1:
        p.error("--num-slots must be >= 1")
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be >= 1")
    if args.adapt_steps < 0 or args.held_out and not (args.videos and args.adapt_steps):
        p.error("--adapt-steps must be >= 0; --held-out goes with --videos and --adapt-steps")
    if args.fps <= 0 or args.motion_size < 16:
        p.error("--fps must be > 0 and --motion-size >= 16")
    device = (
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    try:
        model = OCSlotSSM.from_pretrained(args.weights).to(device)
        if args.videos:
            videos = read_videos(args.videos, args.motion_size, args.fps)[: args.limit]
            held_out = (
                load_folder(args.held_out, model.config.image_size) if args.held_out else None
            )
        else:
            clips = load_folder(args.data, model.config.image_size, args.limit)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        p.exit(2, f"error: {err}\n")
    if args.videos:
        result = evaluate_motion(
            model, videos, args.num_slots, True, args.adapt_steps, held_out, args.adapt_precision
        )
        result |= {"videos": str(args.videos), "fps": args.fps}
    else:
        if all(c.masks is None for c in clips):
            p.exit(
                2,
                f"error: {args.data} has no instance masks to evaluate against (use a folder "
                "written by model.synth, or --videos for real clips)\n",
            )
        result = evaluate(
            model,
            clips,
            args.num_slots,
            not args.no_baselines,
            adapt_steps=args.adapt_steps,
            adapt_precision=args.adapt_precision,
        )
        result |= {"data": str(args.data)}
    weights_file = Path(args.weights) / "model.safetensors"
    result |= {"weights": args.weights, "device": device}
    if weights_file.is_file():
        result["weights_sha256"] = sha256(weights_file)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    nested = ("baselines", "stages", "clips")
    print(json.dumps({k: v for k, v in result.items() if k not in nested}, indent=2))
    # --data: the per-clip scores are for model.compare, not the log
    for name, row in (result["clips"] if args.videos else {}).items():
        adapted = (
            f" adapted={row['adapted_motion_iou']:.3f} decoder={row['adapted_decoder_motion_iou']:.3f}"
            if "adapted_motion_iou" in row
            else ""
        )
        print(
            f"{name}: motion_iou={row['motion_iou']:.3f} decoder={row['decoder_motion_iou']:.3f} "
            f"grid={row['grid_motion_iou']:.3f}{adapted}"
        )
    for name, b in result.get("stages", {}).items():
        print(
            f"{name}: fg_ari={b.get('fg_ari', float('nan')):.3f} miou={b.get('miou', float('nan')):.3f}"
        )
    for name, b in result.get("baselines", {}).items():
        print(
            f"baseline {name}: fg_ari={b.get('fg_ari', float('nan')):.3f} miou={b.get('miou', float('nan')):.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
