"""model.compare: two evaluations of the same clips, clip by clip."""

import json

import pytest

from model.compare import main, paired


def evaluation(values: dict[str, tuple[float, float]]) -> dict:
    """values: clip name -> (decoded_fg_ari, depth_absrel)."""
    return {"clips": {n: {"decoded_fg_ari": f, "depth_absrel": d} for n, (f, d) in values.items()}}


def test_paired_difference_standard_error_and_counts():
    base = evaluation({"a": (0.5, 0.10), "b": (0.6, 0.10), "c": (0.7, 0.10)})
    new = evaluation({"c": (0.8, 0.09), "a": (0.6, 0.12), "b": (0.6, 0.08)})  # order differs
    r = paired(base, new, "decoded_fg_ari")
    assert r["base"] == pytest.approx(0.6) and r["new"] == pytest.approx(2.0 / 3.0)
    assert r["diff"] == pytest.approx(0.2 / 3)  # diffs 0.1, 0.0, 0.1
    assert r["se"] == pytest.approx(0.057735 / 3**0.5, rel=1e-4)
    assert (r["better"], r["worse"], r["clips"]) == (2, 0, 3)
    d = paired(base, new, "depth_absrel")  # lower is better: a worse, b and c better
    assert (d["better"], d["worse"]) == (2, 1)


def test_refuses_evaluations_of_different_clips(tmp_path, capsys):
    base = evaluation({"a": (0.5, 0.1), "b": (0.6, 0.1)})
    with pytest.raises(ValueError, match="same clips"):
        paired(base, evaluation({"a": (0.5, 0.1), "z": (0.6, 0.1)}), "decoded_fg_ari")
    (tmp_path / "a.json").write_text(json.dumps(base))
    (tmp_path / "b.json").write_text(json.dumps({"fg_ari": 0.5}))  # an old file: no clips
    with pytest.raises(SystemExit, match="per-clip"):
        main([str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    (tmp_path / "b.json").write_text(json.dumps(evaluation({"a": (0.7, 0.1), "b": (0.6, 0.2)})))
    assert (
        main([str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--metrics", "decoded_fg_ari"])
        == 0
    )
    out = capsys.readouterr().out
    assert "| decoded_fg_ari | 0.550 | 0.650 | +0.1000 |" in out and "1 / 0" in out
