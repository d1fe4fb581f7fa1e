"""The two steps between the decoder's masks and the slot IDs people see: edge-aware
refinement (guided filter) and slot tracking over time."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model import Config, OCSlotSSM, SlotTracker
from model.refine import guided_filter, refine_masks

from .test_model import TINY, rel_err


def step_image(width: int = 32, edge: int = 16) -> torch.Tensor:
    """(1, 3, W, W): black left of column `edge`, a colour right of it."""
    img = torch.zeros(1, 3, width, width)
    img[..., edge:] = torch.tensor([0.9, 0.6, 0.2])[:, None, None]
    return img


def test_guided_filter_keeps_constants_and_snaps_to_edges():
    guide = step_image() + 0.02 * torch.rand(
        1, 3, 32, 32, generator=torch.Generator().manual_seed(0)
    )
    const = torch.full((1, 2, 32, 32), 0.3)
    torch.testing.assert_close(guided_filter(guide, const, 4, 1e-4), const)
    # a soft mask whose edge is blurred and 3 px right of the image's edge (column 16): the
    # refined mask crosses 1/2 (where the argmax flips) close to the image's edge
    x = torch.arange(32.0)
    soft = torch.sigmoid((x - 19) / 2.5).expand(1, 1, 32, 32)

    def first_column_over_half(m: torch.Tensor) -> int:
        return int((m[0, 0] > 0.5).all(0).nonzero()[0])

    assert first_column_over_half(soft) == 20
    assert first_column_over_half(guided_filter(guide, soft, 6, 1e-4)) <= 17
    # eps is how closely the output may follow the guide: a huge eps only blurs
    assert first_column_over_half(guided_filter(guide, soft, 6, 1e3)) >= 19


def test_refined_masks_partition_the_frame():
    masks = torch.rand(2, 5, 16, 16).softmax(1)
    frames = torch.rand(2, 3, 32, 32)
    refined = refine_masks(masks, frames, 3, 1e-4)
    assert refined.shape == (2, 5, 32, 32) and (refined >= 0).all()
    torch.testing.assert_close(refined.sum(1), torch.ones(2, 32, 32))


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    plain = OCSlotSSM(TINY).eval()
    refined = plain.with_config(mask_refine_radius=2)  # strict: refinement has no weights
    return plain, refined


def test_refinement_changes_only_the_segments_and_streams(models):
    plain, model = models
    video = torch.rand(2, 11, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full, base = model(video), plain(video)
        cache = model.alloc_cache(batch=2)
        parts = [model(video[:, t : t + c], cache=cache) for t, c in ((0, 4), (4, 1), (5, 6))]
    assert base.refined_masks is None and base.segments is base.masks
    assert full.refined_masks.shape == (2, 11, 4, 32, 32)  # at the input size
    assert full.slot_ids.shape == (2, 11, 32, 32)
    torch.testing.assert_close(full.refined_masks.sum(2), torch.ones(2, 11, 32, 32))
    for name in ("masks", "log_depth", "rgb"):  # depth and RGB stay as decoded
        torch.testing.assert_close(getattr(full, name), getattr(base, name))
    streamed = torch.cat([p.refined_masks for p in parts], 1)
    assert rel_err(streamed, full.refined_masks) < 1e-4
    model.train()  # no loss uses the refined masks: training skips them
    try:
        assert model(video[:, :2]).refined_masks is None
    finally:
        model.eval()
    with pytest.raises(ValueError, match="mask_refine"):
        Config(mask_refine_radius=-1)
    with pytest.raises(ValueError, match="mask_refine"):
        Config(mask_refine_eps=0.0)


def crossing_square(frames: int = 12, size: int = 24) -> tuple[torch.Tensor, np.ndarray]:
    """Masks of 3 slots bound to image regions, as the trained model's are: slot 0 owns the
    left half, slot 1 the right half, slot 2 the background. A square crosses from left to
    right, explained by whichever half-slot it is in. Returns masks (T, 3, S, S) and the
    square's pixels (T, S, S)."""
    masks = torch.zeros(frames, 3, size, size)
    square = np.zeros((frames, size, size), bool)
    for t in range(frames):
        x = 1 + t * (size - 7) // (frames - 1)
        square[t, 8:14, x : x + 6] = True
        centre = x + 3
        masks[t, 2] = 1.0
        masks[t, 2][torch.from_numpy(square[t])] = 0.0
        masks[t, 0 if centre < size // 2 else 1][torch.from_numpy(square[t])] = 1.0
    return masks, square


def test_tracker_keeps_a_crossing_object_on_one_label():
    masks, square = crossing_square()
    raw_ids = masks.argmax(1).numpy()
    assert len(np.unique(raw_ids[square])) == 2  # the model's slot changes half-way
    tracked, perms = SlotTracker(3)(masks)
    ids = tracked.argmax(1).numpy()
    assert len(np.unique(ids[square])) == 1  # the label does not
    assert all(sorted(p) == [0, 1, 2] for p in perms)  # a permutation per frame
    for t in range(len(masks)):  # nothing but a reordering of each frame's slots
        torch.testing.assert_close(tracked[t], masks[t][torch.from_numpy(perms[t])])


def test_tracker_streams_and_leaves_still_scenes_alone():
    masks, _ = crossing_square()
    whole, perms = SlotTracker(3)(masks)
    tracker = SlotTracker(3)
    parts = [tracker(masks[t : t + c]) for t, c in ((0, 5), (5, 1), (6, 6))]
    assert torch.equal(torch.cat([p[0] for p in parts]), whole)
    assert np.array_equal(np.concatenate([p[1] for p in parts]), perms)
    still = masks[:1].expand(6, -1, -1, -1)
    assert (SlotTracker(3)(still)[1] == np.arange(3)).all()
    with pytest.raises(ValueError, match="3 slots"):
        tracker(torch.rand(2, 4, 8, 8))
