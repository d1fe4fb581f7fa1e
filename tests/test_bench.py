"""The efficiency benchmark (python -m bench) runs end to end at tiny sizes and writes the
JSON that docs/results.md is made from."""

from __future__ import annotations

import json
import subprocess
import sys

MODELS = {"slotssm", "single_ssm", "slot_rnn", "slot_transformer"}


def test_bench_tiny_writes_the_schema(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--json", str(out), "--tiny", "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
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
        ours = [r for r in rows if r["model"] == "slotssm" and r["T"] == 8][0]
        assert ours["train_gflop"] > 0
        ratio = result["ratios_train_step"][level]
        assert set(ratio["8"]) == MODELS - {"slotssm"}  # JSON keys are strings
    assert result["matmul_peak_gflops"] > 0
    assert 0 < result["slotssm_train_gflops"] < 10 * result["matmul_peak_gflops"]
    assert result["slotssm_train_gflops_T"] == 8
    assert (tmp_path / "bench.html").is_file()
