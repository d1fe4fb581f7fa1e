"""The step between the decoder's masks and the slot IDs people see (model/segment.py):
edge-aware refinement (guided filter) and slot tracking over time."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from model import Config, OCSlotSSM, SlotSegmenter, SlotTracker
from model.refine import guided_filter, refine_masks
from model.segment import SOURCES

from .test_model import TINY, clear_lead, rel_err


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


def test_refined_mask_edges_snap_to_the_frame_between_mask_pixels():
    """What refinement adds over upsampling: a mask edge near a colour edge of the frame moves
    onto it, at the frame's resolution, even where the colour edge splits a mask pixel in two
    (column 13 of 32 is inside mask pixel 6 of 16); bilinear upsampling of the same masks
    keeps the mask's own edge, 3 columns off."""
    frames = step_image(32, edge=13)
    x = torch.arange(16.0)
    fg = torch.sigmoid((x - 7.5) / 1.5).expand(1, 1, 16, 16)  # the mask's edge at column 16
    masks = torch.cat([1 - fg, fg], 1)
    truth = (torch.arange(32) >= 13).expand(32, 32)
    refined = refine_masks(masks, frames, 3, 1e-4)
    assert torch.equal(refined.argmax(1)[0], truth)
    upsampled = F.interpolate(masks, size=(32, 32), mode="bilinear", align_corners=False)
    assert (upsampled.argmax(1)[0] != truth).sum() >= 3 * 32
    # the layout away from the edge is the masks': a uniform frame changes nothing
    flat = refine_masks(masks, torch.full((1, 3, 32, 32), 0.5), 3, 1e-4)
    assert torch.equal(flat.argmax(1)[0], upsampled.argmax(1)[0])


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return OCSlotSSM(TINY).eval().with_config(mask_refine_radius=2)  # refinement: no weights


def test_segmenter_stages_and_streaming(model):
    """One step from masks to slot IDs (model/segment.py): "decoded" is the masks as they
    are, "untracked" the masks refined at the frames' size, "tracked" a per-frame permutation
    of those; depth and RGB are the network's. Fed chunk by chunk (the app's recurrent
    mode), the segmenter gives what it gives on the whole clip."""
    video = torch.rand(1, 11, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = model(video)
        cache = model.alloc_cache(batch=1)
        parts = [model(video[:, t : t + c], cache=cache) for t, c in ((0, 4), (4, 1), (5, 6))]
    masks, frames = full.masks[0], video[0]
    stage = {s: SlotSegmenter.for_model(model.config, source=s)(masks, frames) for s in SOURCES}
    assert torch.equal(stage["decoded"].masks, masks)
    untracked = stage["untracked"].masks
    assert untracked.shape == (11, 4, 32, 32)  # at the frames' size
    torch.testing.assert_close(untracked.sum(1), torch.ones(11, 32, 32))
    torch.testing.assert_close(
        untracked, refine_masks(masks, frames, 2, model.config.mask_refine_eps)
    )
    tracked = stage["tracked"]
    for t, perm in enumerate(tracked.perms):
        assert sorted(perm) == [0, 1, 2, 3]
        assert torch.equal(tracked.masks[t], untracked[t][torch.from_numpy(perm)])
    assert tracked.slot_ids.shape == (11, 32, 32)
    for source in SOURCES:
        segmenter = SlotSegmenter.for_model(model.config, source=source)
        chunks, t = [], 0
        for part in parts:
            c = part.masks.shape[1]
            chunks.append(segmenter(part.masks[0], frames[t : t + c]))
            t += c
        streamed = torch.cat([c.masks for c in chunks])
        assert rel_err(streamed, stage[source].masks) < 1e-4, source
        # the same slot wherever one slot leads; where two are tied to float rounding
        # (an untrained model's masks are near uniform) either may win, on a few pixels only
        clear = clear_lead(stage[source].masks)
        same = torch.cat([c.slot_ids for c in chunks]) == stage[source].slot_ids
        assert same[clear].all() and clear.float().mean() > 0.99, source
        assert np.array_equal(np.concatenate([c.perms for c in chunks]), stage[source].perms)
    with pytest.raises(ValueError, match="source"):
        SlotSegmenter(4, source="refined")
    with pytest.raises(ValueError, match="4 slots"):
        SlotSegmenter(4)(torch.rand(2, 3, 8, 8).softmax(1), torch.rand(2, 3, 16, 16))
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


def test_tracker_remembers_a_hidden_object_until_it_comes_back():
    """An object covered by slot 0, then hidden (no slot has it) for three frames, then back
    under slot 1: the label it had before it vanished is the one it gets back."""
    masks = torch.zeros(9, 3, 8, 8)
    masks[:, 2] = 1.0  # slot 2: the background
    for t, slot in ((0, 0), (1, 0), (2, 0), (6, 1), (7, 1), (8, 1)):
        masks[t, 2, 2:5, 2:5], masks[t, slot, 2:5, 2:5] = 0.0, 1.0
    ids = SlotTracker(3)(masks)[0].argmax(1)
    assert ids[0, 3, 3] == ids[7, 3, 3] == 0 and (ids[3:6] == ids[3, 0, 0]).all()


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


def test_evaluation_scores_each_stage_from_its_own_masks(model):
    """model.evaluate.predict_clip, where every published score starts: slot IDs as the app
    shows them (tracked), before tracking, from the decoder's masks alone, and from the
    decoder with every frame run as a clip of its own (no memory). Memory worth is the third
    minus the fourth, so each must come from the pass it names."""
    from model.evaluate import predict_clip

    rgb = (np.random.default_rng(3).random((6, 32, 32, 3)) * 255).astype(np.uint8)
    pred = predict_clip(model, rgb)
    video = torch.from_numpy(rgb).permute(0, 3, 1, 2).float().div(255.0)
    with torch.no_grad():
        carried = model(video[None]).masks[0]
        alone = model(video[:, None]).masks[:, 0]

    def ids_and_clear(masks, source, frames=video) -> tuple[np.ndarray, np.ndarray]:
        segmented = SlotSegmenter.for_model(model.config, source=source)(masks, frames).masks
        upsampled = F.interpolate(segmented, size=(32, 32), mode="bilinear", align_corners=False)
        return upsampled.argmax(1).numpy(), clear_lead(upsampled).numpy()

    for key, masks, source in (
        ("slot_ids", carried, "tracked"),
        ("slot_ids_untracked", carried, "untracked"),
        ("slot_ids_decoded", carried, "decoded"),
        ("slot_ids_memoryless", alone, "decoded"),
    ):
        want, clear = ids_and_clear(masks, source)
        assert pred[key].shape == (6, 32, 32), key
        assert clear.mean() > 0.99 and (pred[key] == want)[clear].all(), key
    # no memory: frame t alone is what a one-frame clip of it gives; with memory it is not
    for t in range(6):
        single = predict_clip(model, rgb[t : t + 1])["slot_ids_decoded"][0]
        _, clear = ids_and_clear(alone[t : t + 1], "decoded", video[t : t + 1])
        assert (single == pred["slot_ids_memoryless"][t])[clear[0]].all()
    assert (pred["slot_ids_decoded"][1:] != pred["slot_ids_memoryless"][1:]).any()
    assert np.array_equal(pred["slot_ids_decoded"][0], pred["slot_ids_memoryless"][0])
    assert pred["masks"].shape == (6, 4, 16, 16)
    torch.testing.assert_close(torch.from_numpy(pred["masks"]), carried)
