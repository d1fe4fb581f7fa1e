"""The efficiency benchmark (python -m bench) runs end to end at tiny sizes and writes the
JSON that docs/results.md is made from."""

from __future__ import annotations

import csv
import json
import re

import pytest

from .cli_helpers import assert_ran, run_module

MODELS = {"slotssm", "single_ssm", "slot_rnn", "slot_transformer"}


def test_bench_tiny_writes_the_schema(tmp_path):
    out = tmp_path / "bench.json"
    proc = run_module("bench", "--json", out, "--tiny", "--threads", 1, "--rounds", 2)
    assert_ran(proc)
    assert "% of the matmul peak" in proc.stdout
    result = json.loads(out.read_text())
    for level in ("core", "whole"):
        rows = result[level]
        assert {r["model"] for r in rows} == MODELS
        assert {(r["model"], r["T"]) for r in rows} == {(m, T) for m in MODELS for T in (4, 8)}
        for r in rows:
            assert isinstance(r["T"], int)
            assert r["train_step_ms"] > 0 and r["stream_ms_per_frame"] > 0
            assert r["peak_mem_mb"] >= 0
            # two rounds: the row is their median, with its range and both values
            assert len(r["train_step_ms_rounds"]) == 2
            lo, hi = r["train_step_ms_range"]
            assert lo <= r["train_step_ms"] <= hi
            assert r["train_step_ms"] == sum(r["train_step_ms_rounds"]) / 2
        ours = [r for r in rows if r["model"] == "slotssm" and r["T"] == 8][0]
        assert ours["train_gflop"] > 0
        ratio = result["ratios_train_step"][level]
        assert set(ratio["8"]) == MODELS - {"slotssm"}  # JSON keys are strings
        for m, (lo, hi) in result["ratios_train_step_range"][level]["8"].items():
            assert lo <= ratio["8"][m] <= hi  # each ratio taken within a round
        # baseline / SlotSSM (> 1: the SlotSSM is faster), taken per round, then the median
        per_round = {r["model"]: r["train_step_ms_rounds"] for r in rows if r["T"] == 8}
        for m in MODELS - {"slotssm"}:
            each = [b / o for b, o in zip(per_round[m], per_round["slotssm"], strict=True)]
            assert ratio["8"][m] == pytest.approx(sum(each) / 2)
    assert result["matmul_peak_gflops"] > 0
    assert 0 < result["slotssm_train_gflops"] < 10 * result["matmul_peak_gflops"]
    assert result["slotssm_train_gflops_T"] == 8
    assert (tmp_path / "bench.html").is_file()
    assert result["settings"]["rounds"] == 2
    # every cell of the tables carries its range over the rounds: "12.3 (11.9-12.8)"
    assert re.search(r"\| \d+\.\d+ \(\d+\.\d+-\d+\.\d+\) \|", (tmp_path / "bench.md").read_text())


def test_quality_table_trains_scores_and_resumes(tiny_synth, tmp_path, capfd):
    from bench.quality import main as quality_main

    args = ["--train", str(tiny_synth), "--test", str(tiny_synth), "--out", str(tmp_path / "q")]
    args += ["--val", str(tiny_synth)]
    args += ["--json", str(tmp_path / "quality.json"), "--models", "slotssm", "slot_rnn"]
    args += ["--steps", "4", "--batch", "2", "--frames", "4", "--warmup", "1", "--threads", "1"]
    args += ["--config", "image_size=32", "dim=32", "encoder_channels=16", "decoder_hidden=32"]
    args += ["headdim=16", "num_slots=4", "--also", str(tiny_synth), "--depth-loss", "silog"]
    quality_main(args)
    # every run in the precision of the table's earlier runs (fp32), whatever the hardware has,
    # and with the depth loss asked for
    assert capfd.readouterr().out.count("mixed precision: no; depth loss: silog") == 2
    record = json.loads((tmp_path / "quality.json").read_text())
    assert set(record["table"]) == {"slotssm", "slot_rnn"}
    for model, cols in record["table"].items():
        run = json.loads((tmp_path / "q" / f"{model}-s0" / "test.json").read_text())
        assert cols["decoder_fg_ari"] == [run["decoder_fg_ari"], 0.0, 1]
        assert 0 < cols["depth_absrel"][0] < 10
        # scored as the app decodes, whatever the run trained at
        shown = json.loads((tmp_path / "q" / f"{model}-s0" / "shown" / "config.json").read_text())
        assert shown["decoder_stride"] == 2 and shown["mask_refine_radius"] == 3
    saved = json.loads((tmp_path / "q" / "slot_rnn-s0" / "weights" / "config.json").read_text())
    assert saved["time_mixer"] == "gru"
    # the further held-out set: the same weights scored again, in a table of its own
    also = record["also"][str(tiny_synth)]
    for model, cols in also["table"].items():
        run = tmp_path / "q" / f"{model}-s0" / f"test_{tiny_synth.name}.json"
        assert (
            cols["depth_absrel_median_scaled"][0]
            == json.loads(run.read_text())["depth_absrel_median_scaled"]
        )
    assert set(also["table"]) == {"slotssm", "slot_rnn"}
    assert (tmp_path / "quality.md").read_text().count("| slot_rnn |") == 2
    assert (tmp_path / "quality.md").read_text().count("depth loss silog, precision fp32") == 2
    # each run's validation curve, read from its eval.csv and plotted
    for run, curve in record["curves"].items():
        with (tmp_path / "q" / run / "eval.csv").open() as f:
            last = list(csv.DictReader(f))[-1]
        assert curve[-1]["step"] == 4
        assert curve[-1]["decoder_fg_ari"] == float(last["decoder_fg_ari"])
    assert set(record["curves"]) == {"slotssm-s0", "slot_rnn-s0"}
    assert record["plots"] == [str(tmp_path / "quality_curves.html")]
    assert "slot_rnn-s0" in (tmp_path / "quality_curves.html").read_text()

    # a second call trains and scores nothing again
    scores = [
        tmp_path / "q" / "slotssm-s0" / n for n in ("test.json", f"test_{tiny_synth.name}.json")
    ]
    stamps = [f.stat().st_mtime_ns for f in scores]
    quality_main(args)
    assert [f.stat().st_mtime_ns for f in scores] == stamps


def test_quality_table_checks_every_set_before_training(tiny_synth, tmp_path, capsys):
    from bench.quality import main as quality_main

    missing = tmp_path / "missing"
    args = ["--train", str(tiny_synth), "--test", str(tiny_synth), "--out", str(tmp_path / "q")]
    with pytest.raises(SystemExit) as stop:
        quality_main([*args, "--json", str(tmp_path / "q.json"), "--also", str(missing)])
    assert stop.value.code == 2
    assert f"data folder {missing} does not exist" in capsys.readouterr().err
    assert not (tmp_path / "q").exists()


def test_quality_summary_gives_mean_and_spread_over_seeds():
    from bench.quality import COLUMNS, summarise

    runs = {"slotssm": [dict.fromkeys((k for k, _ in COLUMNS), v) for v in (0.5, 0.7)]}
    mean, spread, n = summarise(runs)["slotssm"]["fg_ari"]
    assert abs(mean - 0.6) < 1e-9 and abs(spread - 0.1) < 1e-9 and n == 2
