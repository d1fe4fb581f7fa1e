"""Slot tracking: slot IDs that follow what they covered, from one frame to the next.

OC-SlotSSM starts every frame's slots from the same learned queries, and these weights bind
slots largely to image regions: an object that crosses the frame passes from one slot to the
next, and its colour changes on the way. The tracker relabels each frame's slots so that a
label continues the region it covered in the previous frame: Hungarian matching of the
labels' last regions to the frame's slot regions by IoU (hard argmax regions). Ties, and
labels with nothing to match, keep the slot they had. It only permutes slots, frame by frame,
so masks still sum to 1 and depth is unchanged; its state is one region per label, so a
video streams through it chunk by chunk and gives the same labels as all at once.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

STAY_BONUS = 1e-3  # IoU credit for keeping a label on the slot that had it: breaks ties


class SlotTracker:
    """Call with the masks of consecutive chunks of one video; one tracker per video."""

    def __init__(self, num_slots: int):
        self.num_slots = num_slots
        self.slot_of_label = np.arange(num_slots)  # which model slot each label shows
        self.regions: Tensor | None = None  # (N, P) float: each label's last non-empty region

    def __call__(self, masks: Tensor) -> tuple[Tensor, np.ndarray]:
        """masks (T, N, H, W) -> the masks with slots reordered into labels (label l of frame t
        is slot perms[t, l]), and perms (T, N)."""
        t, n = masks.shape[:2]
        if n != self.num_slots:
            raise ValueError(f"tracker holds {self.num_slots} slots, got masks of {n}")
        perms = np.empty((t, n), dtype=np.int64)
        onehot = torch.nn.functional.one_hot(masks.argmax(1).flatten(1), n)  # (T, P, N)
        onehot = onehot.transpose(1, 2).float()  # (T, N, P): each slot's region
        for i in range(t):
            if self.regions is not None:
                self.slot_of_label = self._match(onehot[i])
            perms[i] = self.slot_of_label
            current = onehot[i][torch.from_numpy(self.slot_of_label)]  # regions by label
            if self.regions is None:
                self.regions = current
            else:  # a label whose slot covers nothing now remembers where it was
                seen = current.sum(1, keepdim=True) > 0
                self.regions = torch.where(seen, current, self.regions)
        index = torch.from_numpy(perms).to(masks.device)
        return masks.gather(1, index[..., None, None].expand_as(masks)), perms

    def _match(self, regions: Tensor) -> np.ndarray:
        """regions (N, P) of this frame's slots -> the slot each label continues in."""
        inter = self.regions @ regions.T  # (labels, slots)
        union = self.regions.sum(1, keepdim=True) + regions.sum(1) - inter
        score = (inter / union.clamp_min(1)).cpu().numpy()
        score[np.arange(self.num_slots), self.slot_of_label] += STAY_BONUS
        labels, slots = linear_sum_assignment(score, maximize=True)
        out = np.empty(self.num_slots, dtype=np.int64)
        out[labels] = slots
        return out
