"""From the network's masks to slot IDs: the one step, used by the app and by model.evaluate.

The network predicts masks (the decoder's softmax over slots). Turning them into the slot
IDs a person sees takes two steps without weights:

1. refine (model/refine.py): re-fit each slot's mask to the frame's colour edges, at the
   frame's size (Config.mask_refine_radius; 0 = off);
2. track (model/track.py): relabel each frame's slots so a label continues the region it
   covered in the previous frame.

`source` picks how far to go, which is also what the app's "Slots shown" setting and the
evaluation's stages name: "tracked" (both steps, what the app shows by default),
"untracked" (refined, in the model's own slot order), "decoded" (the decoder's masks as
they are). Refinement works frame by frame and tracking carries one region per label, so a
segmenter fed a video chunk by chunk gives the same IDs as fed the whole video at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import Tensor

from .config import Config
from .refine import refine_masks
from .track import SlotTracker

SOURCES = ("tracked", "untracked", "decoded")


@dataclass
class Segmentation:
    masks: Tensor  # (T, N, H', W') the masks shown, in label order: label l is slot perms[:, l]
    perms: np.ndarray  # (T, N) int: which model slot each label shows in each frame

    @property
    def slot_ids(self) -> Tensor:
        """(T, H', W') the label that explains each pixel best."""
        return self.masks.argmax(dim=1)


class SlotSegmenter:
    """One per video (it holds the tracker's state); call it on consecutive chunks."""

    def __init__(
        self, num_slots: int, refine_radius: int = 0, refine_eps: float = 1e-4, source="tracked"
    ):
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        self.num_slots = num_slots
        self.refine_radius = refine_radius if source != "decoded" else 0
        self.refine_eps = refine_eps
        self.source = source
        self.tracker = SlotTracker(num_slots) if source == "tracked" else None

    @classmethod
    def for_model(
        cls, config: Config, num_slots: int | None = None, source: str = "tracked"
    ) -> SlotSegmenter:
        """The segmenter a model's config asks for (its refinement settings)."""
        return cls(
            num_slots or config.num_slots,
            config.mask_refine_radius,
            config.mask_refine_eps,
            source,
        )

    def __call__(self, masks: Tensor, frames: Tensor) -> Segmentation:
        """masks (T, N, h, w) as decoded (softmax over N); frames (T, 3, H, W) in [0, 1], the
        model's input -> Segmentation, at (H, W) if refined, else at (h, w)."""
        t, n = masks.shape[:2]
        if n != self.num_slots:
            raise ValueError(f"segmenter holds {self.num_slots} slots, got masks of {n}")
        if frames.shape[0] != t:
            raise ValueError(f"{t} frames of masks but {frames.shape[0]} frames of video")
        if self.refine_radius:
            masks = refine_masks(masks, frames, self.refine_radius, self.refine_eps)
        if self.tracker is not None:
            masks, perms = self.tracker(masks)
        else:
            perms = np.tile(np.arange(n), (t, 1))
        return Segmentation(masks, perms)
