"""Training entry point: loss goes down, runs resume, two processes train together (gloo),
user video folders load, and the evaluation CLI writes the contract's metrics."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np
import pytest
import torch

from model import Config, OCSlotSSM
from model.data import Clip, load_folder, sample_batch
from model.train import init_from, losses, mask_consistency, parse_config_overrides, slot_count
from model.train import main as train_main

ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = [
    "image_size=32",
    "dim=32",
    "encoder_channels=16",
    "decoder_hidden=32",
    "headdim=16",
    "num_slots=4",
    "chunk_size=4",
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
    model = OCSlotSSM.from_pretrained(tmp_path / "flow" / "weights")
    assert model.config.flow_head and model.config.image_size == 32


def test_flow_head_fits_the_rendered_flow(tiny_synth):
    """The flow head is wired to its target: fitting one batch on the flow loss alone
    brings it far below predicting no motion (the loss at zero output)."""
    torch.manual_seed(0)
    cfg = Config(**parse_config_overrides([*TINY_CONFIG, "flow_head=true"]))
    model = OCSlotSSM(cfg)
    clips = load_folder(tiny_synth, cfg.image_size, flow=True)
    batch = sample_batch(clips, 4, 4, np.random.default_rng(0))
    assert batch["flow_known"][:, :-1].all() and batch["flow"].abs().max() > 0.5
    still = batch["flow"].pow(2).mean().item()  # = the loss of a head that outputs zero motion
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
    with_flow = batch["flow_known"][:, 0] == 1
    assert flipped.any() and (~flipped).any() and with_flow.any() and (~with_flow).any()
    x = batch["flow"][:, :, 0]
    assert (x[with_flow & flipped] == -1).all() and (x[with_flow & ~flipped] == 1).all()
    assert (batch["flow"][:, :, 1][with_flow] == 2).all()
    assert (batch["flow"][~with_flow] == 0).all()
    assert not {"flow", "flow_known"} & set(sample_batch(clips[1:], 8, 3, rng))  # none to carry


def test_flow_is_known_only_where_it_leads_to_the_next_frame():
    """A window's last frame, and the frame where a short clip wraps around, have no motion
    to the next frame of the window."""
    rgb = np.zeros((3, 8, 8, 3), np.uint8)
    clip = Clip(rgb, None, None, "a", np.ones((3, 8, 8, 2), np.float16))
    fits = sample_batch([clip], 2, 3, np.random.default_rng(0))["flow_known"]
    assert fits.tolist() == [[1, 1, 0], [1, 1, 0]]
    wraps = sample_batch([clip], 1, 5, np.random.default_rng(0))["flow_known"]  # frames 0 1 2 0 1
    assert wraps.tolist() == [[1, 1, 0, 1, 0]]


def moving_square(frames: int, step: int) -> torch.Tensor:
    """One-hot masks (1, T, 2, 16, 16) of a 4x4 square moving `step` pixels right per frame."""
    masks = torch.zeros(1, frames, 2, 16, 16)
    masks[:, :, 1] = 1.0
    for t in range(frames):
        masks[0, t, 0, 6:10, 2 + step * t : 6 + step * t] = 1.0
        masks[0, t, 1, 6:10, 2 + step * t : 6 + step * t] = 0.0
    return masks


def test_mask_consistency_follows_the_motion():
    """Slots that follow a moving object are consistent along its flow (loss 0); the same
    masks judged with no motion, or the opposite motion, are not; unknown motion counts for
    nothing."""
    masks = moving_square(4, 2)
    motion = torch.zeros(1, 4, 2, 16, 16)
    motion[:, :, 0, 6:10] = 2.0  # the rows of the square move 2 pixels right
    known = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    assert mask_consistency(masks, motion, known).item() < 1e-6
    still = mask_consistency(masks, torch.zeros_like(motion), known).item()
    backwards = mask_consistency(masks, -motion, known).item()
    assert still > 0.01 and backwards > still
    assert mask_consistency(masks, -motion, torch.zeros(1, 4)).item() == 0.0
    swapped = masks.clone()
    swapped[:, 2:] = swapped[:, 2:].flip(2)  # the slots trade places half way: an ID swap
    assert mask_consistency(swapped, motion, known).item() > 0.3


def test_consistency_loss_trains_from_the_cli(tiny_synth, tmp_path):
    train([tiny_synth], tmp_path / "run", 10, "--consistency-weight", "0.5")
    rows = read_csv(tmp_path / "run" / "log.csv")
    assert len(rows) == 2 and all(0 < float(r["consistency_loss"]) < 1 for r in rows)


def test_slot_count_draws_every_count_in_range():
    rng = np.random.default_rng(0)
    assert {slot_count(rng, None, 7) for _ in range(20)} == {7}
    assert {slot_count(rng, 3, 6) for _ in range(200)} == {3, 4, 5, 6}


def test_min_slots_trains_and_refuses_more_than_the_model_has(tiny_synth, tmp_path):
    train([tiny_synth], tmp_path / "run", 5, "--min-slots", "2")
    assert len(read_csv(tmp_path / "run" / "log.csv")) == 1
    with pytest.raises(SystemExit, match="above num_slots"):
        train([tiny_synth], tmp_path / "other", 5, "--min-slots", "5")  # the tiny model has 4


def test_resume_continues_from_checkpoint(tiny_synth, tmp_path):
    train([tiny_synth], tmp_path / "run", 10, "--eval-every", "10")
    before = OCSlotSSM.from_pretrained(tmp_path / "run" / "weights").state_dict()
    train([tiny_synth], tmp_path / "run", 20, "--eval-every", "10")
    steps = [int(r["step"]) for r in read_csv(tmp_path / "run" / "log.csv")]
    assert steps == [5, 10, 15, 20]  # no step is run twice
    assert json.loads((tmp_path / "run" / "checkpoint" / "step.json").read_text())["step"] == 20
    after = OCSlotSSM.from_pretrained(tmp_path / "run" / "weights").state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_two_processes_train_together(tiny_synth, tmp_path):
    """torchrun starts two CPU processes; Accelerate joins them with gloo and averages grads."""
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        "-m",
        "model.train",
        "--data",
        str(tiny_synth),
        "--out",
        str(tmp_path / "run"),
        "--config",
        *TINY_CONFIG,
        "--steps",
        "4",
        "--batch",
        "2",
        "--frames",
        "3",
        "--eval-every",
        "4",
        "--log-every",
        "2",
    ]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
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


def test_bad_arguments_exit_cleanly(tiny_synth):
    for args in (["--steps", "0"], ["--config", "num_slot=3"], ["--config", "slot_init=bogus"]):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "model.train",
                "--data",
                str(tiny_synth),
                "--out",
                "/tmp/never",
                *args,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2 or "error" in result.stderr.lower()
        assert "Traceback" not in result.stderr


def test_evaluate_cli_writes_the_contract(tiny_synth, tmp_path):
    torch.manual_seed(0)
    train([tiny_synth], tmp_path / "run", 5, "--eval-every", "5")
    out = tmp_path / "metrics.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "model.evaluate",
            "--data",
            str(tiny_synth),
            "--json",
            str(out),
            "--weights",
            str(tmp_path / "run" / "weights"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads(out.read_text())
    for key in ("fg_ari", "miou", "depth_absrel", "depth_delta1", "num_videos"):
        assert key in metrics
    assert metrics["num_videos"] == 6
    assert -1 <= metrics["fg_ari"] <= 1 and metrics["depth_absrel"] > 0
    # the earlier stages of the slot IDs; trained without refinement, untracked = decoded
    stages = metrics["stages"]
    assert stages["untracked"]["fg_ari"] == pytest.approx(stages["decoded"]["fg_ari"])
    assert -1 <= stages["decoded"]["miou"] <= 1
    assert metrics["baselines"]["one_slot"]["fg_ari"] == pytest.approx(0.0)
    assert 0 < metrics["baselines"]["kmeans"]["fg_ari"] <= 1
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "model.evaluate",
            "--data",
            str(tmp_path / "missing"),
            "--json",
            str(out),
            "--weights",
            str(tmp_path / "run" / "weights"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr
