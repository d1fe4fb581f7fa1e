import numpy as np
import pytest

from model.metrics import (
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


@pytest.fixture
def truth():
    t = np.zeros((3, 8, 8), np.uint8)
    t[:, :4, :4] = 1
    t[:, 4:, 4:] = 2
    return t


def swapped_in_frame_1(truth: np.ndarray) -> np.ndarray:
    """The true ids, with objects 1 and 2 trading ids in frame 1."""
    pred = truth.astype(int).copy()
    pred[1] = np.where(truth[1] == 1, 2, np.where(truth[1] == 2, 1, 0))
    return pred


def test_fg_ari_ignores_background_and_slot_names(truth):
    pred = np.where(truth == 1, 7, 3)  # renamed segments, background merged into an object
    assert fg_ari(truth, pred) == pytest.approx(1.0)
    assert frame_fg_ari(truth, pred) == pytest.approx(1.0)
    left = truth.copy()
    left[1] = 0  # every object out of view in frame 1: that frame is skipped, not NaN
    assert frame_fg_ari(left, pred) == pytest.approx(1.0)


def test_video_fg_ari_penalises_swaps_over_time(truth):
    pred = swapped_in_frame_1(truth)
    assert frame_fg_ari(truth, pred) == pytest.approx(1.0)
    assert fg_ari(truth, pred) < 0.5


def test_one_segment_scores_zero(truth):
    assert fg_ari(truth, np.zeros_like(truth)) == pytest.approx(0.0)


def test_matched_miou(truth):
    assert matched_miou(truth, truth * 5) == pytest.approx(1.0)
    # one slot: object 1 gets it (48 of 192 pixels), object 2 none
    assert matched_miou(truth, np.zeros_like(truth)) == pytest.approx(48 / 192 / 2)
    # one match per object for the whole clip: ids swapped in frame 1 of 3 leave each
    # object 32 of its 48 pixels in its slot, which holds 16 of the other's
    assert matched_miou(truth, swapped_in_frame_1(truth)) == pytest.approx(0.5)
    # IoU, not precision: half of object 1 in another slot
    halved = truth.astype(int).copy()
    halved[:, :2, :4] = 9
    assert matched_miou(truth, halved) == pytest.approx((0.5 + 1.0) / 2)


def test_slot_allocation_finds_objects_the_background_swallowed(truth):
    def allocation(pred):
        return {k: round(v, 6) for k, v in slot_allocation(truth, pred).items()}

    assert allocation(truth + 4) == {
        "objects_without_slot": 0.0,
        "object_pixels_in_background_slots": 0.0,
        "fg_ari_splits_merged": 1.0,
        "fg_ari_absorption_undone": 1.0,
    }
    swallowed = np.where(truth == 1, 1, 0)  # object 2 lies in the background's slot
    assert allocation(swallowed) == {
        "objects_without_slot": 0.5,
        "object_pixels_in_background_slots": 0.5,
        "fg_ari_splits_merged": 1.0,  # nothing split: two segments, already right
        "fg_ari_absorption_undone": 1.0,
    }
    split = truth.astype(int).copy()
    split[:, :4, :2] = 5  # object 1 over two slots: split, but each slot still its own
    assert allocation(split)["objects_without_slot"] == 0.0
    assert fg_ari(truth, split) < 0.9 and allocation(split)["fg_ari_splits_merged"] == 1.0
    nibbled = np.zeros_like(truth)  # one slot for the background and both objects' left
    nibbled[:, :4, 1:4] = 1  # quarters; the rest of each object its own slot
    nibbled[:, 4:, 5:] = 2
    result = allocation(nibbled)
    assert result["object_pixels_in_background_slots"] == 0.25
    assert result["fg_ari_splits_merged"] == pytest.approx(fg_ari(truth, nibbled))
    assert fg_ari(truth, nibbled) < 0.9 and result["fg_ari_absorption_undone"] == 1.0
    assert np.isnan(slot_allocation(np.zeros_like(truth), truth)["objects_without_slot"])


def test_depth_metrics():
    d = np.linspace(1, 10, 100).reshape(10, 10)
    perfect = depth_metrics(d, d)
    assert perfect["absrel"] == 0 and perfect["rmse"] == 0 and perfect["delta1"] == 1
    scaled = depth_metrics(2 * d, d)
    assert scaled["absrel"] == pytest.approx(1.0) and scaled["delta1"] == 0
    assert depth_metrics(2 * d, d, median_scale=True)["absrel"] == pytest.approx(0.0, abs=1e-9)
    assert np.isfinite(depth_metrics(d, np.where(d > 5, d, 0))["absrel"])  # zeros are unknown
    half = depth_metrics(0.5 * d, d)  # too near counts as off as too far
    assert half["absrel"] == pytest.approx(0.5) and half["delta1"] == 0
    assert half["rmse"] == pytest.approx(np.sqrt(np.mean((0.5 * d) ** 2)))
    # delta1: the share of pixels within 1.25x either way
    factors = np.resize([1.1, 1 / 1.1, 1.5, 1 / 1.5], d.shape)
    assert depth_metrics(d * factors, d)["delta1"] == pytest.approx(0.5)


def test_mask_statistics():
    uniform = np.full((2, 4, 5, 5), 0.25)
    assert mask_statistics(uniform)["mean_max_mask"] == pytest.approx(0.25)
    # one-hot masks over 200 pixels: slots 0-2 win 60%, 39.5% and 0.5% of them, slot 3 none
    winner = np.repeat([0, 1, 2], [120, 79, 1]).reshape(2, 10, 10)
    one_hot = np.moveaxis(np.eye(4)[winner], -1, 1)
    stats = mask_statistics(one_hot)
    assert stats["mean_max_mask"] == 1.0 and stats["used_slots"] == 2  # 1% makes a slot used


def blob_masks(centres: list[tuple[int, int]], size: int = 16) -> np.ndarray:
    """(1, N + 1, size, size) masks: slot i owns a 2x2 square at centres[i] (x, y), the last
    slot the rest."""
    masks = np.zeros((1, len(centres) + 1, size, size))
    masks[0, -1] = 1
    for i, (x, y) in enumerate(centres):
        masks[0, i, y : y + 2, x : x + 2], masks[0, -1, y : y + 2, x : x + 2] = 1, 0
    return masks


def test_slot_centres():
    c = slot_centres(blob_masks([(0, 0), (14, 6)]))
    assert c[0] == pytest.approx([1 / 16, 1 / 16]) and c[1] == pytest.approx([15 / 16, 7 / 16])
    assert np.isnan(slot_centres(blob_masks([(0, 0)]), min_share=0.05)[0]).all()  # 4/256 px


def test_slot_centre_spread_separates_positional_from_moving_slots():
    rng = np.random.default_rng(0)
    fixed = [slot_centres(blob_masks([(3, 3), (10, 12)])) for _ in range(20)]
    moving = [slot_centres(blob_masks(rng.integers(0, 15, (2, 2)).tolist())) for _ in range(20)]
    assert slot_centre_spread(fixed) == pytest.approx(0.0, abs=1e-9)
    assert 0.2 < slot_centre_spread([c[:2] for c in moving]) < 0.35
    assert np.isnan(slot_centre_spread(fixed[:1]))


def test_objects_by_size_says_which_objects_get_no_slot(truth):
    """Two 4x4 objects (size 4 px); a third of 1 px that the background's slot swallows."""
    small = truth.copy()
    small[:, 0, 7] = 3
    pred = np.where(small == 3, 0, small)  # objects 1 and 2 get slots, object 3 none
    rows = objects_by_size(small, pred)
    assert rows == [(4.0, True), (4.0, True), (1.0, False)]
    bins = without_slot_by_size(rows + [(20.0, True), (7.0, False), (7.5, True)])
    assert bins["0-6 px"] == {"objects": 3, "without_slot": pytest.approx(1 / 3)}
    assert bins["6-8 px"] == {"objects": 2, "without_slot": 0.5}
    assert bins["16+ px"] == {"objects": 1, "without_slot": 0.0}
    assert bins["8-11 px"]["objects"] == 0 and np.isnan(bins["8-11 px"]["without_slot"])
    assert sum(b["objects"] for b in bins.values()) == 6


def test_reappearances_are_objects_hidden_for_a_while_and_seen_again():
    """Object 1 is seen in frames 0-2, half hidden in 3, gone in 4-6 and back whole in 7-9;
    object 2 blinks out for one frame only (too short); object 3 leaves and never returns."""
    t = np.zeros((10, 8, 8), np.uint8)
    t[:, :4, :4] = 1
    t[3, :3, :4] = 0  # a sliver: not a view of it, not gone either
    t[4:7][t[4:7] == 1] = 0
    t[:, 4:, 4:] = 2
    t[5, 4:, 4:] = 0
    t[:3, 6:, :2] = 3
    events = reappearances(t)
    assert events == [(1, 2, 7)]
    assert reappearances(t, min_gap=1) == [(1, 2, 7), (2, 4, 6)]
    kept = t.astype(np.int64)  # every object keeps its label
    swapped = kept.copy()
    swapped[7:][t[7:] == 1] = 5  # object 1 comes back in another slot
    assert reidentified(t, kept, events) == [True]
    assert reidentified(t, swapped, events) == [False]
    # the label that covers most of it decides: a few pixels in another slot do not
    mostly = kept.copy()
    mostly[8, 0, 0] = 5
    assert reidentified(t, mostly, [(1, 2, 8)]) == [True]
    # one label for everything, or one that mostly covers something else, keeps nothing
    assert reidentified(t, np.zeros_like(kept), events) == [False]
    shared = kept.copy()
    shared[(t == 0) & (np.arange(8)[None, :, None] < 6)] = 1  # object 1's label, mostly floor
    assert reidentified(t, shared, events) == [False]
    assert reappearances(np.zeros((4, 8, 8), np.uint8)) == []
    # a quarter of it stays in view: too little to be a view of it, too much to be gone
    peeking = np.zeros((6, 8, 8), np.uint8)
    peeking[:, :4, :4] = 1
    peeking[2:4, 1:, :] = 0
    assert reappearances(peeking) == []


def test_evaluate_scores_reappearances_pooled_over_events(tmp_path):
    """model.evaluate on clips where a panel passes in front of the camera: every stage's share
    of reappearances given back the same label, a grid's for scale, and per clip; clips where
    nothing reappears add nothing."""
    import torch

    from model import OCSlotSSM
    from model.config import Config
    from model.data import load_folder
    from model.evaluate import evaluate, reappearance_matches
    from model.synth import SceneConfig, write_dataset

    cfg = SceneConfig(size=32, frames=12, cameras=("static",), occluder_prob=1.0)
    write_dataset(tmp_path / "occ", 4, 7, cfg)
    clips = load_folder(tmp_path / "occ", 32)
    torch.manual_seed(0)
    model = OCSlotSSM(Config(dim=32, encoder_channels=16, num_slots=4, decoder_hidden=16)).eval()
    result = evaluate(model, clips, baselines=False, progress=False)
    counts = [len(reappearances(c.masks)) for c in clips]
    assert sum(counts) > 0
    stats = result["reappearance"]
    assert stats["events"] == sum(counts)
    assert all(0 <= stats[k] <= 1 for k in ("shown", "untracked", "decoder", "memoryless"))
    assert result["reidentified"] == stats["shown"]
    assert result["decoder_reidentified"] == stats["decoder"]
    scored = [c for c in result["clips"].values() if "reidentified" in c]
    assert len(scored) == sum(n > 0 for n in counts)
    # slot IDs that are the ground truth itself keep every object
    clip = clips[counts.index(max(counts))]
    exact = clip.masks.astype(np.int64)
    pred = {f"slot_ids{s}": exact for s in ("", "_untracked", "_decoded", "_memoryless")}
    matches = reappearance_matches(clip, pred)
    assert all(all(matches[stage]) for stage in ("shown", "untracked", "decoder", "memoryless"))
    assert len(matches["grid_3x3"]) == max(counts)
    # three frames cannot hold a reappearance (seen, gone for two, seen)
    write_dataset(tmp_path / "plain", 1, 7, SceneConfig(size=32, frames=3))
    plain = evaluate(model, load_folder(tmp_path / "plain", 32), baselines=False, progress=False)
    assert "reappearance" not in plain and "reidentified" not in plain
