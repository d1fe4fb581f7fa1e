"""Two evaluations of the same clips, compared clip by clip.

    python -m model.compare BASE.json NEW.json [--metrics decoded_fg_ari fg_ari depth_absrel]

Both files are `python -m model.evaluate --data DIR --json` outputs on the same clips. The
mean of 32-64 clips moves by +-0.02 from one checkpoint to the next, so a difference of
means alone does not say that new weights are better. What does: the paired difference
(new - base, clip by clip), its standard error over clips, and how many clips improved.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

DEFAULT_METRICS = ("decoded_fg_ari", "memoryless_fg_ari", "fg_ari", "miou", "depth_absrel")
LOWER_IS_BETTER = ("depth_absrel", "depth_rmse")


def paired(base: dict, new: dict, metric: str) -> dict[str, float]:
    """Mean of each, mean paired difference (new - base), its standard error, and the
    number of clips where new is better / worse (by the metric's direction)."""
    a = {name: c[metric] for name, c in base["clips"].items() if metric in c}
    b = {name: c[metric] for name, c in new["clips"].items() if metric in c}
    if set(a) != set(b) or not a:
        raise ValueError(f"{metric}: the two evaluations did not score the same clips")
    names = sorted(a)
    x, y = np.array([a[n] for n in names]), np.array([b[n] for n in names])
    diff = y - x
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    se = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else float("nan")
    return {
        "clips": len(diff),
        "base": float(x.mean()),
        "new": float(y.mean()),
        "diff": float(diff.mean()),
        "se": se,
        "better": int((sign * diff > 0).sum()),
        "worse": int((sign * diff < 0).sum()),
    }


def table(rows: dict[str, dict[str, float]]) -> str:
    lines = [
        "| metric | base | new | new - base | +- s.e. | clips better / worse |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for metric, r in rows.items():
        lines.append(
            f"| {metric} | {r['base']:.3f} | {r['new']:.3f} | {r['diff']:+.4f} | {r['se']:.4f} "
            f"| {r['better']} / {r['worse']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("base", help="model.evaluate JSON of the weights to beat")
    p.add_argument("new", help="model.evaluate JSON of the candidate, same clips")
    p.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS))
    args = p.parse_args(argv)
    base, new = (json.loads(Path(f).read_text()) for f in (args.base, args.new))
    for name, result in (("base", base), ("new", new)):
        if "clips" not in result:
            raise SystemExit(f"error: {name} has no per-clip scores: rerun model.evaluate --data")
    try:
        rows = {m: paired(base, new, m) for m in args.metrics}
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
