"""Evaluate weights on a data set from the renderer, against two simple baselines.

    python -m model.evaluate --data DIR --json OUT [--weights weights/] [--num-slots N]

Writes fg_ari (video FG-ARI), frame_fg_ari, miou (of the slot IDs as the app shows them:
masks refined if the config asks for it, labels tracked over time), depth_absrel,
depth_rmse, depth_delta1 (also median-scaled), num_videos, slot_centre_spread (how far a
slot's first-frame centre moves across clips: near 0 means slots are bound to image
positions, not to objects) and
the segmentation scores of earlier stages ("stages": "untracked", the masks before tracking;
"decoded", the decoder's masks alone), and the same numbers for the baselines:
- one_slot: every pixel in one segment, depth the clip's own median (an oracle constant);
- kmeans: k-means on colour + ground-truth depth + position, k = number of slots.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from torch import Tensor
from tqdm import tqdm

from .data import Clip, load_folder
from .metrics import (
    depth_metrics,
    fg_ari,
    frame_fg_ari,
    mask_statistics,
    matched_miou,
    slot_centre_spread,
    slot_centres,
)
from .slotssm import OCSlotSSM
from .track import SlotTracker


@torch.inference_mode()
def predict_clip(
    model: OCSlotSSM, rgb: np.ndarray, num_slots: int | None = None
) -> dict[str, np.ndarray]:
    """rgb (T, S, S, 3) uint8 -> slot_ids (T, S, S) as the app shows them (masks refined if
    the config says so, labels tracked over time: model/track.py), the same before tracking
    (slot_ids_untracked) and from the decoded masks alone (slot_ids_decoded), depth (T, S, S)
    and the decoded masks (T, N, h, w)."""
    device = next(model.parameters()).device
    video = torch.from_numpy(rgb).to(device).permute(0, 3, 1, 2).float().div(255.0).unsqueeze(0)
    out = model(video, num_slots=num_slots)
    size = rgb.shape[1:3]

    def resized(x: Tensor) -> Tensor:
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    segments = resized(out.segments[0])
    tracked, _ = SlotTracker(segments.shape[1])(segments)
    return {
        "slot_ids": tracked.argmax(1).cpu().numpy(),
        "slot_ids_untracked": segments.argmax(1).cpu().numpy(),
        "slot_ids_decoded": resized(out.masks[0]).argmax(1).cpu().numpy(),
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
        }
    if depth is not None and clip.depth is not None:
        scores |= {f"depth_{k}": v for k, v in depth_metrics(depth, clip.depth).items()}
        scores |= {
            f"depth_{k}_median_scaled": v
            for k, v in depth_metrics(depth, clip.depth, median_scale=True).items()
        }
    return scores


def kmeans_ids(clip: Clip, k: int, seed: int = 0) -> np.ndarray:
    """Cluster all pixels of the clip at once (ids consistent over time) on standardised
    colour, log ground-truth depth and image position."""
    T, S = clip.rgb.shape[:2]
    y, x = np.meshgrid(np.arange(S), np.arange(S), indexing="ij")
    feats = [clip.rgb.reshape(-1, 3).astype(np.float32)]
    if clip.depth is not None:
        feats.append(np.log(np.maximum(clip.depth, 1e-3)).reshape(-1, 1))
    feats.append(
        np.tile(np.stack([x, y], -1).reshape(1, -1, 2), (T, 1, 1)).reshape(-1, 2).astype(np.float32)
    )
    f = np.concatenate(feats, 1)
    f = (f - f.mean(0)) / (f.std(0) + 1e-6)
    labels = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(f)
    return labels.reshape(T, S, S)


def mean_scores(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = sorted({k for r in rows for k in r})
    return {k: float(np.nanmean([r.get(k, np.nan) for r in rows])) for k in keys}


def evaluate(
    model: OCSlotSSM,
    clips: list[Clip],
    num_slots: int | None = None,
    baselines: bool = True,
    progress: bool = True,
) -> dict:
    n = num_slots or model.config.num_slots
    model_rows, stats, centres, one_rows, km_rows = [], [], [], [], []
    stages = {"untracked": [], "decoded": []}
    for clip in tqdm(clips, desc="evaluate", disable=not progress):
        pred = predict_clip(model, clip.rgb, n)
        model_rows.append(score(clip, pred["slot_ids"], pred["depth"]))
        for stage, rows in stages.items():
            rows.append(score(clip, pred[f"slot_ids_{stage}"], None))
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
    if baselines:
        result["baselines"] = {"one_slot": mean_scores(one_rows), "kmeans": mean_scores(km_rows)}
    return result


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m model.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", required=True, help="folder written by python -m model.synth")
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
    args = p.parse_args(argv)
    if args.num_slots is not None and args.num_slots < 1:
        p.error("--num-slots must be >= 1")
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be >= 1")
    device = (
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    try:
        model = OCSlotSSM.from_pretrained(args.weights).to(device)
        clips = load_folder(args.data, model.config.image_size, args.limit)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        p.exit(2, f"error: {err}\n")
    if all(c.masks is None for c in clips):
        p.exit(
            2,
            f"error: {args.data} has no instance masks to evaluate against (use a folder written by model.synth)\n",
        )
    result = evaluate(model, clips, args.num_slots, baselines=not args.no_baselines)
    weights_file = Path(args.weights) / "model.safetensors"
    result |= {"weights": args.weights, "device": device, "data": str(args.data)}
    if weights_file.is_file():
        result["weights_sha256"] = sha256(weights_file)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps({k: v for k, v in result.items() if k not in ("baselines", "stages")}, indent=2)
    )
    for name, b in result["stages"].items():
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
