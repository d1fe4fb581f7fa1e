"""Decomposition and depth metrics, computed per clip on integer label maps.

FG-ARI ignores background pixels (ground truth id 0), as is standard for object discovery.
"Video" FG-ARI scores all frames of a clip as one set of pixels, so a slot that swaps
objects over time is penalised; per-frame FG-ARI averages frames scored on their own.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score

DELTA1_THRESHOLD = 1.25  # the standard delta < 1.25 accuracy of monocular depth


def fg_ari(true_ids: np.ndarray, pred_ids: np.ndarray) -> float:
    """ARI over the foreground pixels of any-shaped label maps (NaN if no foreground)."""
    fg = true_ids > 0
    if not fg.any():
        return float("nan")
    return float(adjusted_rand_score(true_ids[fg], pred_ids[fg]))


def frame_fg_ari(true_ids: np.ndarray, pred_ids: np.ndarray) -> float:
    """Mean FG-ARI over frames (T, H, W), skipping frames without foreground."""
    scores = [fg_ari(t, p) for t, p in zip(true_ids, pred_ids, strict=True)]
    return float(np.nanmean(scores)) if not np.all(np.isnan(scores)) else float("nan")


def matched_miou(true_ids: np.ndarray, pred_ids: np.ndarray) -> float:
    """Mean IoU of ground-truth objects (ids > 0) with their Hungarian-matched predicted slots,
    over the whole clip (one match per object for all frames). Unmatched objects score 0."""
    objects = [i for i in np.unique(true_ids) if i > 0]
    if not objects:
        return float("nan")
    slots = np.unique(pred_ids)
    iou = np.zeros((len(objects), len(slots)))
    for a, obj in enumerate(objects):
        t = true_ids == obj
        for b, slot in enumerate(slots):
            p = pred_ids == slot
            iou[a, b] = (t & p).sum() / max((t | p).sum(), 1)
    rows, cols = linear_sum_assignment(iou, maximize=True)
    return float(iou[rows, cols].sum() / len(objects))


SLOT_ALLOCATION_KEYS = (
    "objects_without_slot",
    "object_pixels_in_background_slots",
    "fg_ari_splits_merged",
    "fg_ari_absorption_undone",
)


def slot_owners(true_ids: np.ndarray, pred_ids: np.ndarray) -> dict[int, int]:
    """slot -> the ground-truth id (0: background) it mostly covers over the clip."""
    owner = {}
    for slot in np.unique(pred_ids):
        ids, counts = np.unique(true_ids[pred_ids == slot], return_counts=True)
        owner[int(slot)] = int(ids[counts.argmax()])
    return owner


# object sizes (px: the side of a square of an object's mean area per frame) where
# objects_by_size's bins start; the last bin is open
OBJECT_SIZE_BINS = (0, 6, 8, 11, 16)


def objects_by_size(true_ids: np.ndarray, pred_ids: np.ndarray) -> list[tuple[float, bool]]:
    """Every object of a clip (T, H, W) as (size, whether a slot mostly covers it): size is
    the side in pixels of a square of the object's mean area per frame. Pooled over clips by
    model.evaluate, it says which objects get no slot of their own."""
    covered = set(slot_owners(true_ids, pred_ids).values())
    ids, areas = np.unique(true_ids[true_ids > 0], return_counts=True)
    return [
        (float(np.sqrt(area / len(true_ids))), int(i) in covered)
        for i, area in zip(ids, areas, strict=True)
    ]


def without_slot_by_size(objects: list[tuple[float, bool]]) -> dict[str, dict[str, float]]:
    """Pooled (size, covered) rows -> per size bin of OBJECT_SIZE_BINS ("6-8 px", "16+ px"):
    the number of objects and the share without a slot of their own."""
    sizes = np.array([size for size, _ in objects])
    missed = np.array([not covered for _, covered in objects])
    bins = {}
    for lo, hi in zip(OBJECT_SIZE_BINS, (*OBJECT_SIZE_BINS[1:], np.inf), strict=True):
        inside = (sizes >= lo) & (sizes < hi)
        name = f"{lo}-{hi} px" if np.isfinite(hi) else f"{lo}+ px"
        bins[name] = {
            "objects": int(inside.sum()),
            "without_slot": float(missed[inside].mean()) if inside.any() else float("nan"),
        }
    return bins


def slot_allocation(true_ids: np.ndarray, pred_ids: np.ndarray) -> dict[str, float]:
    """Where the objects' pixels go, over a whole clip. Each slot is given the ground-truth
    id it mostly covers (0: background). objects_without_slot: the share of objects that no
    slot mostly covers; object_pixels_in_background_slots: the share of all object pixels
    that lie in slots mostly covering background, i.e. objects the background absorbed
    (FG-ARI counts them as merged with every other object in the same slot). Two oracles say
    what each failure costs: fg_ari_splits_merged, the FG-ARI once the slots of each object
    are one segment; fg_ari_absorption_undone, once the background's slots also give back
    the object pixels they hold."""
    objects = [i for i in np.unique(true_ids) if i > 0]
    if not objects:
        return dict.fromkeys(SLOT_ALLOCATION_KEYS, float("nan"))
    pred, true = pred_ids.astype(np.int64), true_ids.astype(np.int64)
    owner = slot_owners(true, pred)
    in_background_slot = np.isin(pred, [s for s, o in owner.items() if o == 0])
    fg = true > 0
    merged = pred.copy()  # a slot that mostly covers object o becomes "o" (new labels above)
    top = pred.max() + 1
    for slot, obj in owner.items():
        if obj > 0:
            merged[pred == slot] = top + obj
    undone = np.where(in_background_slot & fg, top + true, merged)
    return {
        "objects_without_slot": float(np.mean([obj not in owner.values() for obj in objects])),
        "object_pixels_in_background_slots": float(in_background_slot[fg].mean()),
        "fg_ari_splits_merged": fg_ari(true, merged),
        "fg_ari_absorption_undone": fg_ari(true, undone),
    }


def reappearances(
    true_ids: np.ndarray, min_gap: int = 2, seen_share: float = 0.5
) -> list[tuple[int, int, int]]:
    """Every time an object of a clip (T, H, W) vanishes for at least min_gap frames and comes
    back: (object id, the last frame it is seen before, the first frame it is seen after).
    Seen: at least seen_share of the object's largest area in the clip (a sliver at the edge
    of whatever hides it is not a view of it); vanished: not one pixel."""
    events = []
    for obj in np.unique(true_ids[true_ids > 0]):
        area = (true_ids == obj).sum(axis=(1, 2))
        seen = np.flatnonzero(area >= seen_share * area.max())
        for a, b in zip(seen[:-1], seen[1:], strict=True):
            run = longest = 0  # the longest stretch of frames between a and b without it
            for n in area[a + 1 : b]:
                run = run + 1 if n == 0 else 0
                longest = max(longest, run)
            if longest >= min_gap:
                events.append((int(obj), int(a), int(b)))
    return events


def reidentified(
    true_ids: np.ndarray, pred_ids: np.ndarray, events: list[tuple[int, int, int]]
) -> list[bool]:
    """For each reappearance (object, before, after): does the object have a slot of its own
    where it was last seen (the label that covers most of it covers it more than anything
    else in that frame), and is that same label its own again where it is seen again? One
    label for everything keeps no object."""

    def own_label(obj: int, t: int) -> int | None:
        ids, counts = np.unique(pred_ids[t][true_ids[t] == obj], return_counts=True)
        label = ids[counts.argmax()]
        under, counts = np.unique(true_ids[t][pred_ids[t] == label], return_counts=True)
        return int(label) if under[counts.argmax()] == obj else None

    kept = []
    for obj, a, b in events:
        before = own_label(obj, a)
        kept.append(before is not None and before == own_label(obj, b))
    return kept


def depth_metrics(
    pred: np.ndarray, true: np.ndarray, median_scale: bool = False
) -> dict[str, float]:
    """AbsRel, RMSE (metres) and delta1 over valid (positive, finite) ground-truth pixels.
    median_scale: rescale the prediction so its median matches the ground truth's (scale-free)."""
    valid = np.isfinite(true) & (true > 0)
    p, t = pred[valid].astype(np.float64), true[valid].astype(np.float64)
    if median_scale:
        p = p * np.median(t) / max(np.median(p), 1e-12)
    ratio = np.maximum(p / t, t / np.maximum(p, 1e-12))
    return {
        "absrel": float(np.mean(np.abs(p - t) / t)),
        "rmse": float(np.sqrt(np.mean((p - t) ** 2))),
        "delta1": float(np.mean(ratio < DELTA1_THRESHOLD)),
    }


def mask_statistics(masks: np.ndarray) -> dict[str, float]:
    """masks (T, N, h, w), softmax over N. mean_max_mask = 1/N means no decomposition at all;
    used_slots counts slots that win at least 1% of pixels."""
    n = masks.shape[1]
    share = np.bincount(masks.argmax(1).ravel(), minlength=n) / masks[:, 0].size
    return {"mean_max_mask": float(masks.max(1).mean()), "used_slots": int((share >= 0.01).sum())}


def slot_centres(masks: np.ndarray, min_share: float = 0.01) -> np.ndarray:
    """masks (T, N, h, w) -> (N, 2): (x, y) centre of each slot's first-frame mask in units of
    the frame, NaN for a slot with less than min_share of the mass."""
    first = masks[0]
    h, w = first.shape[1:]
    mass = first.sum(axis=(1, 2))
    y, x = np.mgrid[0:h, 0:w]
    centres = np.stack(
        [(first * (x + 0.5)).sum((1, 2)) / w, (first * (y + 0.5)).sum((1, 2)) / h], 1
    )
    centres = centres / np.maximum(mass, 1e-12)[:, None]
    centres[mass < min_share * h * w] = np.nan
    return centres


def slot_centre_spread(centres: list[np.ndarray]) -> float:
    """How far slots move with the content: for each slot, the standard deviation of its
    centre across clips (x and y averaged), then the mean over slots. A slot that always keeps
    the same region of the image (positional binding) has a spread near 0; centres placed
    uniformly at random would have 0.29. Needs at least two clips."""
    c = np.stack(centres)  # (clips, N, 2)
    spreads = [
        c[~np.isnan(slot[:, 0]), i].std(axis=0).mean()
        for i, slot in enumerate(c.transpose(1, 0, 2))
        if (~np.isnan(slot[:, 0])).sum() >= 2
    ]
    return float(np.mean(spreads)) if spreads else float("nan")
