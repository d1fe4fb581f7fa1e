"""Training precision (model/precision.py): bf16 autocast where the hardware computes bf16
natively, fp32 elsewhere; a bf16 run on the CPU trains, then validates and exports in fp32
(the precision the app serves in), and adapting records the precision it trained in."""

from __future__ import annotations

import json
import os

import pytest
import torch

from model import OCSlotSSM, precision
from model.precision import NATIVE_SPEEDUP, cpu_bf16_speedup, training_precision

from .cli_helpers import assert_ran, run_module
from .test_train import TINY_CONFIG, read_csv


def test_a_requested_precision_wins_and_auto_follows_the_measured_cpu():
    assert training_precision("cpu", "no") == "no"
    assert training_precision("cpu", "bf16") == "bf16"
    speedup = cpu_bf16_speedup()  # measured on this CPU: a positive, finite ratio
    assert 0 < speedup < float("inf")
    assert training_precision("cpu") == ("bf16" if speedup >= NATIVE_SPEEDUP else "no")
    assert training_precision("meta") == "no"  # no bf16 path known for other devices


@pytest.mark.parametrize(
    "speedup, chosen",
    [(0.7, "no"), (1.2, "no"), (6.1, "bf16")],  # emulated, barely faster, AMX (measured)
)
def test_auto_picks_bf16_only_where_the_cpu_computes_it_natively(monkeypatch, speedup, chosen):
    """A CPU that emulates bf16 (slower than fp32) or gains little from it trains in fp32."""
    monkeypatch.setattr(precision, "cpu_bf16_speedup", lambda: speedup)
    assert training_precision("cpu") == chosen


def test_bf16_training_on_the_cpu_validates_and_exports_in_fp32(tiny_synth, tmp_path):
    """In a process of its own: Accelerate holds one precision per process. Before validation
    ran outside autocast, its bf16 depth broke the metrics (numpy has no bf16)."""
    out = tmp_path / "run"
    result = run_module(
        "model.train",
        *("--data", tiny_synth, "--val", tiny_synth, "--out", out, "--config", *TINY_CONFIG),
        *("--steps", 40, "--batch", 4, "--frames", 4, "--warmup", 5, "--log-every", 5),
        *("--lr", "2e-3", "--eval-every", 40, "--mixed-precision", "bf16"),
        env=os.environ | {"OMP_NUM_THREADS": "1"},
    )
    assert_ran(result)
    assert "mixed precision: bf16" in result.stdout
    losses = [float(r["loss"]) for r in read_csv(out / "log.csv")]
    assert sum(losses[-3:]) / 3 < 0.5 * losses[0], losses
    (row,) = read_csv(out / "eval.csv")
    assert 0 <= float(row["depth_absrel"]) < 10 and -1 <= float(row["fg_ari"]) <= 1
    model = OCSlotSSM.from_pretrained(out / "weights")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert json.loads((out / "weights" / "config.json").read_text())["dim"] == 32
