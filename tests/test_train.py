"""Training entry point: loss goes down, runs resume, two processes train together (gloo),
user video folders load, and the evaluation CLI writes the contract's metrics."""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import replace
from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from model import Config, OCSlotSSM
from model.data import Clip, load_folder, sample_batch
from model.flow import dis_flow
from model.objectives import (
    depth_edges,
    losses,
    next_frame_loss,
    refined_mask_distillation,
    slot_contrast,
)
from model.slotssm import SlotOutput
from model.train import init_from, parse_args, parse_config_overrides, train_steps
from model.train import main as train_main

from .cli_helpers import assert_ran, assert_usage_error, run_module

TINY_CONFIG = [
    "image_size=32",
    "dim=32",
    "encoder_channels=16",
    "decoder_hidden=32",
    "headdim=16",
    "num_slots=4",
]


def read_csv(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def train(data, out, steps, *extra):
    train_main(
        [
            "--data",
            *map(str, data),
            "--out",
            str(out),
            "--config",
            *TINY_CONFIG,
            "--steps",
            str(steps),
            "--batch",
            "4",
            "--frames",
            "4",
            "--log-every",
            "5",
            "--warmup",
            "5",
            *extra,
        ]
    )


def assert_total_is_the_weighted_sum(rows: list[dict], *flags: str) -> None:
    """Each logged loss is its logged parts, each times its --<part>-weight as the run's
    flags set it: a part that is logged but left out of the total (or weighted wrongly)
    trains nothing."""
    args = parse_args(["--data", "-", "--out", "-", *flags], check_paths=False)
    for row in rows:
        parts = {k.removesuffix("_loss"): float(v) for k, v in row.items() if k.endswith("_loss")}
        want = sum(getattr(args, f"{name}_weight") * value for name, value in parts.items())
        assert float(row["loss"]) == pytest.approx(want, rel=1e-5), row


def test_loss_goes_down_and_weights_export(tiny_synth, tmp_path):
    torch.manual_seed(0)
    train(
        [tiny_synth],
        tmp_path / "run",
        60,
        "--val",
        str(tiny_synth),
        "--eval-every",
        "30",
        "--lr",
        "2e-3",
    )
    rows = read_csv(tmp_path / "run" / "log.csv")
    first, last = float(rows[0]["loss"]), np.mean([float(r["loss"]) for r in rows[-3:]])
    assert last < 0.5 * first, (first, last)
    evals = read_csv(tmp_path / "run" / "eval.csv")
    assert [int(r["step"]) for r in evals] == [30, 60]
    assert {"fg_ari", "miou", "depth_absrel", "mean_max_mask", "slot_centre_spread"} <= set(
        evals[0]
    )
    assert (tmp_path / "run" / "masks" / "step_000060.png").is_file()
    model = OCSlotSSM.from_pretrained(tmp_path / "run" / "weights")
    assert model.config.image_size == 32 and model.config.num_slots == 4
    # best/ holds the weights of the highest-FG-ARI evaluation: the latest ones iff it was last
    best = OCSlotSSM.from_pretrained(tmp_path / "run" / "best").state_dict()
    last_is_best = float(evals[-1]["fg_ari"]) >= float(evals[0]["fg_ari"])
    same = all(torch.equal(best[k], v) for k, v in model.state_dict().items())
    assert same == last_is_best


def test_flow_head_trains_from_weights_without_one(tiny_synth, tmp_path):
    """--init with a config that adds the flow head: training starts from the shared
    weights, logs a flow loss and exports a model that has the head."""
    torch.manual_seed(0)
    train([tiny_synth], tmp_path / "base", 5, "--eval-every", "5")
    flow_cfg = ["--config", *TINY_CONFIG, "flow_head=true"]
    train(
        [tiny_synth], tmp_path / "flow", 5, "--init", str(tmp_path / "base" / "weights"), *flow_cfg
    )
    rows = read_csv(tmp_path / "flow" / "log.csv")
    assert all(np.isfinite(float(r["flow_loss"])) and float(r["flow_loss"]) > 0 for r in rows)
    assert_total_is_the_weighted_sum(rows)
    model = OCSlotSSM.from_pretrained(tmp_path / "flow" / "weights")
    assert model.config.flow_head and model.config.image_size == 32


def test_flow_head_fits_the_flow_of_the_frames(tiny_synth):
    """The flow head is wired to its target (OpenCV DIS flow of the frames, since the
    previous frame): fitting one batch on the flow loss alone brings it far below predicting
    no motion (the loss at zero output)."""
    torch.manual_seed(0)
    cfg = Config(**parse_config_overrides([*TINY_CONFIG, "flow_head=true"]))
    model = OCSlotSSM(cfg)
    clips = load_folder(tiny_synth, cfg.image_size, flow=True)
    batch = sample_batch(clips, 4, 4, np.random.default_rng(0))
    assert batch["flow_known"][:, 1:].all() and batch["flow"].abs().max() > 0.5
    # the loss of a head that outputs zero motion, weighted like the loss (known frames only)
    per_frame = batch["flow"].pow(2).mean(dim=(2, 3, 4))
    still = ((per_frame * batch["flow_known"]).sum() / batch["flow_known"].sum()).item()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        parts = losses(
            model(batch["video"]),
            batch["video"],
            batch["depth"],
            "log",
            batch["flow"],
            batch["flow_known"],
        )
        opt.zero_grad()
        parts["flow"].backward()
        opt.step()
    assert parts["flow"].item() < 0.3 * still, (parts["flow"].item(), still)


def test_silog_is_scale_invariant_per_frame_and_never_negative():
    """--depth-loss log and log_l1 weight every pixel with depth alike; silog: a prediction
    off by a constant factor in one frame pays (1 - lambda) log(factor)^2 for that frame,
    whatever the number of pixels with depth in each frame (an open sky leaves few); a
    pixel-weighted first term with a frame-weighted second one went negative on such clips
    and was minimised by breaking depth."""
    from model.objectives import SILOG_LAMBDA

    depth = torch.full((1, 2, 8, 8), 2.0)
    depth[0, 1] = 0.0  # frame 1: depth known in one 2x2 cell only (the rest is sky)
    depth[0, 1, :2, :2] = 3.0
    target = torch.log(torch.tensor([2.0, 3.0]))
    offsets = torch.tensor([0.5, -1.0])
    log_depth = (target + offsets).view(1, 2, 1, 1).expand(1, 2, 4, 4).clone()
    out = SlotOutput(
        masks=torch.ones(1, 2, 1, 4, 4),
        log_depth=log_depth,
        attention=torch.ones(1, 2, 1, 4, 4),
        slots=torch.zeros(1, 2, 1, 8),
        positions=torch.zeros(1, 2, 1, 2),
    )
    video = torch.zeros(1, 2, 3, 8, 8)
    silog = losses(out, video, depth, "silog")["depth"]
    assert silog.item() == pytest.approx(((1 - SILOG_LAMBDA) * offsets**2).mean().item(), rel=1e-5)
    metric = losses(out, video, depth, "log")["depth"]  # pixel-weighted: frame 0 dominates
    assert metric.item() == pytest.approx((16 * 0.25 + 1 * 1.0) / 17, rel=1e-5)
    l1 = losses(out, video, depth, "log_l1")["depth"]  # the same weighting, absolute errors
    assert l1.item() == pytest.approx((16 * 0.5 + 1 * 1.0) / 17, rel=1e-5)
    torch.manual_seed(0)
    for _ in range(5):
        out.log_depth = torch.randn(1, 2, 4, 4) * 3
        assert losses(out, video, depth, "silog")["depth"].item() >= 0


def test_init_from_copies_what_matches():
    tiny = Config(image_size=32, dim=32, encoder_channels=16, decoder_hidden=32, headdim=16)
    torch.manual_seed(0)
    source = OCSlotSSM(Config(**tiny.to_dict() | {"num_slots": 4})).state_dict()
    grown = OCSlotSSM(Config(**tiny.to_dict() | {"num_slots": 6, "flow_head": True}))
    fresh = {k: v.clone() for k, v in grown.state_dict().items()}
    partial = init_from(grown, source)
    assert set(partial) == {"slot_queries", "decoder.mlp.5.weight", "decoder.mlp.5.bias"}
    state = grown.state_dict()
    assert torch.equal(state["slot_queries"][:4], source["slot_queries"])
    assert torch.equal(state["slot_queries"][4:], fresh["slot_queries"][4:])
    assert torch.equal(state["decoder.mlp.5.weight"][:5], source["decoder.mlp.5.weight"])
    assert torch.equal(state["encoder.pos.proj.weight"], source["encoder.pos.proj.weight"])
    shrunk = OCSlotSSM(Config(**tiny.to_dict() | {"num_slots": 3}))
    assert init_from(shrunk, source) == ["slot_queries"]
    assert torch.equal(shrunk.state_dict()["slot_queries"], source["slot_queries"][:3])
    with pytest.raises(ValueError, match="shape"):
        init_from(OCSlotSSM(Config(**tiny.to_dict() | {"dim": 48, "headdim": 16})), source)


def test_init_from_adds_the_video_predictor_as_no_change():
    """--init weights --config predict_next=true: the predictor the weights lack starts fresh
    (OCSlotSSM.neutral_modules) and predicts "no change": frame t + 1's depth is frame t's,
    with the trained model's outputs untouched. Another missing module is still an error."""
    tiny = Config(image_size=32, dim=32, encoder_channels=16, decoder_hidden=32, headdim=16)
    torch.manual_seed(0)
    plain = OCSlotSSM(tiny).eval()
    ahead = OCSlotSSM(Config(**tiny.to_dict() | {"predict_next": True})).eval()
    new = init_from(ahead, plain.state_dict())
    assert new and all(name.startswith(("predictor.", "predict_shift.")) for name in new)
    video = torch.rand(2, 3, 3, 32, 32)
    with torch.no_grad():
        a, b = plain(video), ahead(video, predict_next=True)
    torch.testing.assert_close(a.log_depth, b.log_depth)
    torch.testing.assert_close(b.next_log_depth, b.log_depth)
    with pytest.raises(ValueError, match="differ in parameters"):
        init_from(plain, ahead.state_dict())


def test_depth_head_trained_alone_improves_depth_and_leaves_the_masks_as_they_were(
    tiny_synth, tmp_path
):
    """--init weights --config depth_head=16 --train-only depth_mlp: the head starts as no
    change, every other weight ends bit-identical (so the masks and slot IDs are the same),
    and the depth loss falls."""
    torch.manual_seed(0)
    train([tiny_synth], tmp_path / "base", 5, "--eval-every", "5")
    base = OCSlotSSM.from_pretrained(tmp_path / "base" / "weights").eval()
    train(
        [tiny_synth],
        tmp_path / "depth",
        40,
        "--init",
        str(tmp_path / "base" / "weights"),
        "--config",
        *TINY_CONFIG,
        "depth_head=16",
        "--train-only",
        "depth_mlp",
        "--lr",
        "3e-3",
        "--eval-every",
        "40",
    )
    tuned = OCSlotSSM.from_pretrained(tmp_path / "depth" / "weights").eval()
    assert tuned.config.depth_head
    state = tuned.state_dict()
    for name, value in base.state_dict().items():
        assert torch.equal(state[name], value), name
    assert state["decoder.depth_mlp.5.weight"].abs().sum() > 0  # started at zero, trained
    batch = sample_batch(load_folder(tiny_synth, 32), 6, 4, np.random.default_rng(0))
    video, depth = batch["video"], batch["depth"]
    with torch.no_grad():
        before, after = base(video), tuned(video)
    assert torch.equal(before.masks, after.masks)
    loss = [losses(out, video, depth, "log")["depth"].item() for out in (before, after)]
    assert loss[1] < 0.9 * loss[0], loss
    with pytest.raises(SystemExit, match="matches no parameter"):
        train([tiny_synth], tmp_path / "none", 1, "--train-only", "no_such_module")


def test_init_from_widens_the_decoder_without_changing_its_output():
    """--init weights --config decoder_hidden=128: new hidden units, the same function at
    first, and gradients reach the new units (they can learn)."""
    tiny = Config(image_size=32, dim=32, encoder_channels=16, decoder_hidden=16, headdim=16)
    torch.manual_seed(0)
    narrow = OCSlotSSM(tiny).eval()
    wide = OCSlotSSM(Config(**tiny.to_dict() | {"decoder_hidden": 40})).eval()
    partial = init_from(wide, narrow.state_dict())
    assert "decoder.mlp.3.weight" in partial and "decoder.mlp.5.weight" in partial
    video = torch.rand(2, 3, 3, 32, 32)
    with torch.no_grad():
        a, b = narrow(video), wide(video)
    assert torch.allclose(a.masks, b.masks, atol=1e-5)
    assert torch.allclose(a.log_depth, b.log_depth, atol=1e-5)
    wide.train()
    wide(video).log_depth.mean().backward()
    assert wide.decoder.mlp[5].weight.grad[:, 16:].abs().sum() > 0  # the new units are read
    with pytest.raises(ValueError, match="shape"):  # narrowing is not a widening
        init_from(narrow, wide.state_dict())


def test_init_from_leaves_fresh_what_it_is_told_to():
    """A baseline's temporal step on a trained model (bench.quality --init): everything but
    the time mixers is copied, the time mixers keep their fresh initialisation."""
    tiny = Config(image_size=32, dim=32, encoder_channels=16, decoder_hidden=32, headdim=16)
    torch.manual_seed(0)
    source = OCSlotSSM(tiny).state_dict()  # the SlotSSM
    rnn = OCSlotSSM(Config(**tiny.to_dict() | {"time_mixer": "gru"}))
    with pytest.raises(ValueError, match="differ in parameters"):
        init_from(rnn, source)
    before = {k: v.clone() for k, v in rnn.state_dict().items()}
    assert init_from(rnn, source, fresh=("time_mixer",)) == []
    for name, value in rnn.state_dict().items():
        if "time_mixer" in name:
            assert torch.equal(value, before[name]), name
        else:
            assert torch.equal(value, source[name]), name
    # the SlotSSM's own time mixer can start fresh too, the rest copied
    ssm = OCSlotSSM(tiny)
    init_from(ssm, {k: v + 1 for k, v in source.items()}, fresh=("time_mixer",))
    state = ssm.state_dict()
    assert not torch.equal(
        state["blocks.0.time_mixer.in_proj.weight"],
        source["blocks.0.time_mixer.in_proj.weight"] + 1,
    )
    assert torch.equal(state["encoder.pos.proj.weight"], source["encoder.pos.proj.weight"] + 1)


def test_mirrored_clips_mirror_their_flow():
    rng = np.random.default_rng(0)
    rgb = (rng.random((3, 8, 8, 3)) * 255).astype(np.uint8)
    flow = np.zeros((3, 8, 8, 2), np.float16)
    flow[..., 0], flow[..., 1] = 1.0, 2.0  # everything moves right and down
    clips = [Clip(rgb, None, None, "a", flow), Clip(rgb, None, None, "b")]
    batch = sample_batch(clips, 64, 3, rng)
    video = torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255
    mirrored = batch["video"][:, :, :, :, 0] != video[None, :, :, :, 0]
    flipped = mirrored.flatten(1).any(1)
    with_flow = batch["flow_known"][:, 1] == 1  # frame 0 has no previous frame
    assert flipped.any() and (~flipped).any() and with_flow.any() and (~with_flow).any()
    x = batch["flow"][:, :, 0]
    assert (x[with_flow & flipped] == -1).all() and (x[with_flow & ~flipped] == 1).all()
    assert (batch["flow"][:, :, 1][with_flow] == 2).all()
    assert (batch["flow"][~with_flow] == 0).all()
    assert not {"flow", "flow_known"} & set(sample_batch(clips[1:], 8, 3, rng))  # none to carry


def test_flow_is_known_only_where_it_comes_from_the_previous_frame():
    """Frame t's flow is its motion since frame t - 1: a window's first frame, and the frame
    where a short clip wraps around, have no previous frame in the window."""
    rgb = np.zeros((3, 8, 8, 3), np.uint8)
    clip = Clip(rgb, None, None, "a", np.ones((3, 8, 8, 2), np.float16))
    fits = sample_batch([clip], 2, 3, np.random.default_rng(0))["flow_known"]
    assert fits.tolist() == [[0, 1, 1], [0, 1, 1]]
    wraps = sample_batch([clip], 1, 5, np.random.default_rng(0))["flow_known"]  # frames 0 1 2 0 1
    assert wraps.tolist() == [[0, 1, 1, 0, 1]]


def test_dis_flow_finds_a_translation():
    """model/flow.py: a textured frame shifted by (3, -2) pixels gives that motion at frame 1
    (away from the borders, where content enters), and frame 0 none."""
    rng = np.random.default_rng(0)
    ground = cv2.GaussianBlur(rng.random((80, 80, 3)).astype(np.float32), (0, 0), 1.5)
    ground = (255 * ground.clip(0, 1)).astype(np.uint8)
    frames = np.stack([ground[10:74, 10:74], ground[12:76, 7:71]])  # content moves +3 x, -2 y
    flow = dis_flow(frames).astype(np.float32)
    assert flow.shape == (2, 64, 64, 2) and (flow[0] == 0).all()
    inner = flow[1, 8:-8, 8:-8].reshape(-1, 2)
    np.testing.assert_allclose(np.median(inner, 0), [3.0, -2.0], atol=0.1)
    assert (np.abs(inner - [3.0, -2.0]).max(1) < 0.5).mean() > 0.95
    with pytest.raises(ValueError, match="uint8"):
        dis_flow(frames.astype(np.float32))


def test_slot_contrast_rewards_slots_that_keep_their_content():
    """SlotContrast: each slot at t must find itself among all slots of the batch at t + 1.
    Slots that keep their content score near 0; the same slots shuffled between frames (a
    slot that takes over another's content) score high; one frame has nothing to compare."""
    torch.manual_seed(0)
    kept = torch.randn(3, 1, 5, 16).expand(-1, 4, -1, -1)  # (B, T, N, D): constant over time
    kept = kept + 0.05 * torch.randn(3, 4, 5, 16)
    shuffled = kept.clone()
    for t in range(1, 4):
        shuffled[:, t] = kept[:, t, torch.randperm(5)]
    low, high = slot_contrast(kept, 0.1).item(), slot_contrast(shuffled, 0.1).item()
    assert low < 0.05 and high > 1.0, (low, high)
    assert slot_contrast(kept[:, :1], 0.1).item() == 0.0


def test_contrast_loss_trains_from_the_cli(tiny_synth, tmp_path):
    train([tiny_synth], tmp_path / "run", 10, "--contrast-weight", "0.5")
    rows = read_csv(tmp_path / "run" / "log.csv")
    assert len(rows) == 2 and all(float(r["contrast_loss"]) > 0 for r in rows)
    assert_total_is_the_weighted_sum(rows, "--contrast-weight", "0.5")


def test_next_frame_loss_compares_frame_t_plus_1_with_the_prediction_made_at_t(tiny_synth):
    """A perfect predictor (prediction at t = the decoding of frame t + 1) pays exactly the
    frame losses of frames 1..T-1; the "no change" predictor the model starts with pays more
    on moving clips; the gradient reaches the predictor and the SSM."""
    torch.manual_seed(0)
    cfg = Config(image_size=32, dim=32, encoder_channels=16, decoder_hidden=32, headdim=16)
    model = OCSlotSSM(Config(**cfg.to_dict() | {"predict_next": True, "num_slots": 4}))
    clips = load_folder(tiny_synth, 32)
    batch = sample_batch(clips, 3, 5, np.random.default_rng(0))
    video, depth = batch["video"], batch["depth"]
    out = model(video, predict_next=True)
    junk = torch.zeros_like(out.log_depth[:, :1])
    perfect = replace(
        out,
        next_log_depth=torch.cat([out.log_depth[:, 1:], junk], 1),
        next_rgb=torch.cat([out.rgb[:, 1:], torch.zeros_like(out.rgb[:, :1])], 1),
    )
    frames = losses(
        replace(out, log_depth=out.log_depth[:, 1:], rgb=out.rgb[:, 1:]),
        video[:, 1:],
        depth[:, 1:],
        "log",
    )
    torch.testing.assert_close(
        next_frame_loss(perfect, video, depth, "log", 5.0), frames["depth"] + 5.0 * frames["rgb"]
    )
    loss = next_frame_loss(out, video, depth, "log", 5.0)
    loss.backward()
    assert model.predictor[-1].weight.grad.abs().sum() > 0
    assert model.predict_shift.weight.grad.abs().sum() > 0
    assert model.blocks[0].time_mixer.in_proj.weight.grad.abs().sum() > 0


def test_predict_loss_trains_from_the_cli(tiny_synth, tmp_path):
    train(
        [tiny_synth],
        tmp_path / "run",
        10,
        "--predict-weight",
        "0.5",
        "--config",
        "predict_next=true",
    )
    rows = read_csv(tmp_path / "run" / "log.csv")
    assert len(rows) == 2 and all(float(r["predict_loss"]) > 0 for r in rows)
    assert_total_is_the_weighted_sum(rows, "--predict-weight", "0.5")
    with pytest.raises(ValueError, match="predict_next"):
        train([tiny_synth], tmp_path / "plain", 2, "--predict-weight", "0.5")


def test_refined_mask_distillation_pulls_masks_onto_the_frames_edges():
    """A red square on blue, two slots. Masks that put the square's rim 2 px inside its
    true edge score worse than masks on the edge (the refinement's target moves the rim
    onto the colour edge), and the gradient on the off masks moves them towards the edge."""
    frame = torch.zeros(1, 1, 3, 32, 32)
    frame[..., 2, :, :] = 1.0
    frame[..., 0, 8:24, 8:24], frame[..., 2, 8:24, 8:24] = 1.0, 0.0

    def masks(lo: int, hi: int) -> torch.Tensor:
        inside = torch.full((16, 16), 0.1)
        inside[lo:hi, lo:hi] = 0.9  # half resolution: the true square is 4:12
        return torch.stack([inside, 1 - inside])[None, None]  # (B, T, N, h, w)

    on_edge = refined_mask_distillation(masks(4, 12), frame, 3, 1e-4).item()
    off = masks(5, 11).requires_grad_()
    loss = refined_mask_distillation(off, frame, 3, 1e-4)
    loss.backward()
    assert on_edge < loss.item(), (on_edge, loss.item())
    # the ring the masks missed (square row 4 at half size) is pulled towards slot 0, more
    # than towards slot 1; far from the square, where the masks are already right, both
    # slots are pulled alike (no net change)
    grad = off.grad[0, 0]
    assert (grad[0, 4, 6:10] < grad[1, 4, 6:10] - 1e-3).all()
    torch.testing.assert_close(grad[0, 0], grad[1, 0])


def test_distill_loss_trains_from_the_cli(tiny_synth, tmp_path):
    train([tiny_synth], tmp_path / "run", 10, "--distill-weight", "0.1")
    rows = read_csv(tmp_path / "run" / "log.csv")
    assert len(rows) == 2 and all(float(r["distill_loss"]) > 0 for r in rows)
    assert_total_is_the_weighted_sum(rows, "--distill-weight", "0.1")


def test_resume_continues_from_checkpoint(tiny_synth, tmp_path):
    # a constant rate after warm-up, so that a 10-step run and a 20-step one share a schedule
    flags = ("--eval-every", "10", "--min-lr-ratio", "1")
    train([tiny_synth], tmp_path / "run", 10, *flags)
    before = OCSlotSSM.from_pretrained(tmp_path / "run" / "weights").state_dict()
    train([tiny_synth], tmp_path / "run", 20, *flags)
    steps = [int(r["step"]) for r in read_csv(tmp_path / "run" / "log.csv")]
    assert steps == [5, 10, 15, 20]  # no step is run twice
    assert json.loads((tmp_path / "run" / "checkpoint" / "step.json").read_text())["step"] == 20
    after = OCSlotSSM.from_pretrained(tmp_path / "run" / "weights").state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    # weights, optimiser and random state come back: the same as 20 steps in one go
    train([tiny_synth], tmp_path / "whole", 20, *flags)
    whole = OCSlotSSM.from_pretrained(tmp_path / "whole" / "weights").state_dict()
    for k in whole:
        torch.testing.assert_close(after[k], whole[k], msg=k)


def test_resume_forgets_what_was_logged_after_the_checkpoint(tiny_synth, tmp_path):
    train([tiny_synth], tmp_path / "run", 10, "--eval-every", "10")
    log = tmp_path / "run" / "log.csv"
    row = read_csv(log)[-1] | {"step": "15"}  # a run killed after logging step 15
    with log.open("a", newline="") as f:
        csv.DictWriter(f, fieldnames=list(row)).writerow(row)
    train([tiny_synth], tmp_path / "run", 20, "--eval-every", "10")
    assert [int(r["step"]) for r in read_csv(log)] == [5, 10, 15, 20]


def test_each_process_trains_on_its_own_batches(tiny_synth, monkeypatch):
    """Under torchrun each process draws its clips from (seed, step, rank): two ranks see
    different batches at the same step (else N processes train on one batch N times), and a
    rank sees the same batch again when the step is rerun (a resumed run)."""
    from accelerate import Accelerator

    import model.train as train_module

    drawn = []

    def recording_sample_batch(*args, **kwargs):
        batch = sample_batch(*args, **kwargs)
        drawn.append(batch["video"])
        return batch

    monkeypatch.setattr(train_module, "sample_batch", recording_sample_batch)
    clips = load_folder(tiny_synth, 32)
    args = parse_args(
        ["--data", "-", "--out", "-", "--steps", "1", "--batch", "2"], check_paths=False
    )

    def first_batch(rank: int) -> torch.Tensor:
        class OnRank(Accelerator):  # one process standing in for rank `rank` of several
            process_index = rank

        model = OCSlotSSM(Config(**parse_config_overrides(TINY_CONFIG)))
        opt = torch.optim.AdamW(model.parameters())
        next(train_steps(model, opt, clips, args, OnRank()))
        return drawn[-1]

    rank0, rank1, rank0_again = first_batch(0), first_batch(1), first_batch(0)
    assert torch.equal(rank0, rank0_again) and not torch.equal(rank0, rank1)


def test_two_processes_train_together(tiny_synth, tmp_path):
    """torchrun starts two CPU processes; Accelerate joins them with gloo and averages grads."""
    result = run_module(
        "torch.distributed.run",
        "--nproc_per_node",
        2,
        "--master_port",
        29517,
        "-m",
        "model.train",
        "--data",
        tiny_synth,
        "--out",
        tmp_path / "run",
        "--config",
        *TINY_CONFIG,
        "--steps",
        4,
        "--batch",
        2,
        "--frames",
        3,
        "--eval-every",
        4,
        "--log-every",
        2,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
    )
    assert_ran(result)
    assert "2 process(es)" in result.stdout
    assert (tmp_path / "run" / "weights" / "model.safetensors").is_file()


def test_video_folder_with_and_without_depth(tmp_path):
    rng = np.random.default_rng(0)
    frames = (rng.random((5, 40, 48, 3)) * 255).astype(np.uint8)
    iio.imwrite(tmp_path / "a.mp4", frames, fps=10, codec="libx264")
    iio.imwrite(tmp_path / "b.mp4", frames, fps=10, codec="libx264")
    (tmp_path / "a_depth").mkdir()
    for i in range(5):
        cv2.imwrite(
            str(tmp_path / "a_depth" / f"{i:06d}.png"), np.full((40, 48), 2500 + i, np.uint16)
        )
    clips = load_folder(tmp_path, 32)
    assert [c.name for c in clips] == ["a", "b"]
    assert clips[0].rgb.shape == (5, 32, 32, 3)
    assert clips[0].depth[0, 0, 0] == pytest.approx(2.5)
    assert clips[1].depth is None
    train([tmp_path], tmp_path / "run", 3, "--eval-every", "3")  # depth where known, RGB always
    assert (tmp_path / "run" / "weights" / "model.safetensors").is_file()


def test_depth_count_mismatch_is_a_clear_error(tmp_path):
    iio.imwrite(tmp_path / "a.mp4", np.zeros((4, 32, 32, 3), np.uint8), fps=10, codec="libx264")
    (tmp_path / "a_depth").mkdir()
    np.save(tmp_path / "a_depth" / "000000.npy", np.ones((32, 32), np.float32))
    with pytest.raises(ValueError, match="1 depth maps for 4 video frames"):
        load_folder(tmp_path, 32)


def test_bad_arguments_exit_cleanly(tiny_synth, tmp_path, capsys):
    """Each mistake stops before training with one line saying what was wrong, and before the
    run's folder is made. In-process (a fresh interpreter costs seconds each) but for one."""
    (tmp_path / "empty").mkdir()
    never = tmp_path / "never"
    cases = (
        (["--steps", "0"], "--steps must be >= 1"),  # argparse's: status 2, on stderr
        (["--val", tmp_path / "missing"], "does not exist"),
        (["--data", tmp_path / "empty"], "neither clip_*.npz files nor videos"),
        (["--config", "num_slot=3"], "--config takes key=value"),
        (["--config", "slot_init=placed"], "slot_init"),
    )
    for args, message in cases:
        data = [] if "--data" in args else ["--data", tiny_synth]
        with pytest.raises(SystemExit) as stop:
            train_main([*map(str, [*data, "--out", never, *args])])
        code = stop.value.code
        assert message in (capsys.readouterr().err if code == 2 else str(code)), (args, code)
    result = run_module("model.train", "--data", tmp_path / "missing", "--out", never)
    assert_usage_error(result, f"data folder {tmp_path / 'missing'} does not exist")
    assert not never.exists()


def test_evaluate_cli_writes_the_contract(tiny_synth, tmp_path):
    torch.manual_seed(0)
    train([tiny_synth], tmp_path / "run", 5, "--eval-every", "5")
    out = tmp_path / "metrics.json"
    weights = tmp_path / "run" / "weights"
    result = run_module("model.evaluate", "--data", tiny_synth, "--json", out, "--weights", weights)
    assert_ran(result)
    metrics = json.loads(out.read_text())
    for key in ("fg_ari", "miou", "depth_absrel", "depth_delta1", "num_videos"):
        assert key in metrics
    assert metrics["num_videos"] == 6
    assert -1 <= metrics["fg_ari"] <= 1 and metrics["depth_absrel"] > 0
    # what the network does alone, and what its memory is worth
    stages = metrics["stages"]
    assert metrics["decoder_fg_ari"] == stages["decoded"]["fg_ari"]
    assert metrics["memoryless_fg_ari"] == stages["memoryless"]["fg_ari"]
    assert metrics["memory_worth"] == pytest.approx(
        metrics["decoder_fg_ari"] - metrics["memoryless_fg_ari"]
    )
    # where the decoder's FG-ARI goes: objects the background's slots swallowed
    for key in ("objects_without_slot", "object_pixels_in_background_slots"):
        assert metrics[f"decoder_{key}"] == stages["decoded"][key]
        assert 0 <= metrics[f"decoder_{key}"] <= 1
    # and what undoing each failure would be worth: never less than the FG-ARI itself
    merged, undone = (
        metrics[f"decoder_fg_ari_{k}"] for k in ("splits_merged", "absorption_undone")
    )
    assert metrics["decoder_fg_ari"] - 1e-9 <= merged <= undone + 1e-9
    # which objects get no slot, by size: every object counted once per source
    by_size = metrics["objects_without_slot_by_size"]
    counts = {src: sum(b["objects"] for b in by_size[src].values()) for src in by_size}
    assert set(counts) == {"decoder", "shown"} and counts["decoder"] == counts["shown"] > 0
    # the earlier stages of the slot IDs; trained without refinement, untracked = decoded
    assert stages["untracked"]["fg_ari"] == pytest.approx(stages["decoded"]["fg_ari"])
    assert -1 <= stages["decoded"]["miou"] <= 1
    assert metrics["baselines"]["one_slot"]["fg_ari"] == pytest.approx(0.0)
    assert 0 < metrics["baselines"]["kmeans"]["fg_ari"] <= 1
    # per clip, for paired comparisons: they average to the reported means
    clips = list(metrics["clips"].values())
    assert len(clips) == 6
    for key, mean in (("fg_ari", metrics["fg_ari"]), ("decoded_fg_ari", metrics["decoder_fg_ari"])):
        assert np.mean([c[key] for c in clips]) == pytest.approx(mean)
    assert np.mean([c["depth_absrel"] for c in clips]) == pytest.approx(metrics["depth_absrel"])
    missing = tmp_path / "missing"
    bad = run_module("model.evaluate", "--data", missing, "--json", out, "--weights", weights)
    assert_usage_error(bad, "does not exist")


def test_depth_edges_ignore_a_plane_in_perspective_and_find_an_objects_outline():
    """A floor seen at a slant (disparity affine in the image: depth from 1 m to 21 m) has no
    edges however steep its depth; a box standing in front of it lights up its outline and
    the cells beside it; unknown depth (sky) is no edge."""
    ys, xs = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    floor = 1.0 / (1.0 - 0.06 * ys + 0.003 * xs)
    log_depth = floor.log()[None, None]
    known = torch.ones_like(log_depth)
    assert depth_edges(log_depth, known).max() < 0.05
    boxed = log_depth.clone()
    boxed[..., 6:10, 6:10] = math.log(0.5)  # in front of the floor (1 m at its nearest)
    edges = depth_edges(boxed, known)[0, 0]
    assert (edges[5:11, 5:11] == 1).all() and edges[:3].max() < 0.05 and edges[:, 13:].max() < 0.05
    sky = known.clone()
    sky[..., :4, :] = 0.0
    assert depth_edges(log_depth * sky, sky).max() < 0.05


@pytest.mark.parametrize("depth_loss", ["log", "silog"])
def test_edge_weight_makes_errors_at_depth_edges_count_more(depth_loss):
    """The same depth error at one cell costs more than twice as much with --edge-weight
    when that cell is on an object's outline, and less on the flat floor, whose cells now
    share a total in which the edges weigh more; for the scale-invariant loss too (it once
    weighted only the RGB term)."""
    depth = torch.full((1, 1, 32, 32), 4.0)
    depth[..., 8:16, 8:16] = 2.0
    video = torch.zeros(1, 1, 3, 32, 32)

    def loss_with_error_at(y: int, x: int, edge_weight: float) -> float:
        log_depth = F.avg_pool2d(depth.log(), 2).clone()  # (1, 1, 16, 16): exact at first
        log_depth[..., y, x] += 0.5
        out = SlotOutput(
            masks=None, log_depth=log_depth, attention=None, slots=None, positions=None
        )
        return losses(out, video, depth, depth_loss, edge_weight=edge_weight)["depth"].item()

    on_edge, flat = (4, 4), (13, 13)
    assert loss_with_error_at(*on_edge, 3.0) > 2 * loss_with_error_at(*on_edge, 0.0)
    assert loss_with_error_at(*flat, 3.0) < loss_with_error_at(*flat, 0.0)  # shares the total


def test_validation_on_hand_scenes_logs_the_held_object(tmp_path):
    """A --val set where a hand carries an object: eval.csv gets the held-object scores."""
    from model.synth import SceneConfig, write_dataset

    cfg = SceneConfig(size=32, frames=4, scenes=("hand",), cameras=("static",))
    write_dataset(tmp_path / "hand", videos=2, seed=1, cfg=cfg)
    train([tmp_path / "hand"], tmp_path / "run", 2, "--val", str(tmp_path / "hand"))
    (row,) = csv.DictReader((tmp_path / "run" / "eval.csv").open())
    assert 0 <= float(row["held_iou"]) <= 1 and 0 <= float(row["held_grid_3x3"]) <= 1
    assert float(row["held_iou"]) == float(row["held_shown"])
    assert row["held_num_videos"] == "2"
