"""python -m bench.quality: the quality half of issue 14. OC-SlotSSM and its three baselines
(bench/scaling.py's MODELS) trained with the same data, steps, schedule and seeds by
`python -m model.train`, then scored on the same held-out clips by `python -m model.evaluate`.

    python -m bench.quality --train data/train12 --val data/val --test data/test \\
        --steps 3000 --seeds 0 --out runs/quality --json docs/quality.json [--init WEIGHTS] \\
        [--also data/sdf]

From scratch, or (--init) from trained weights whose time mixers are all re-initialised, so
that every model's temporal step gets the same budget on the same encoder and decoder.

Each run lives in --out/<model>-s<seed>/ and is resumable: a finished run is not retrained, a
cut one continues from its checkpoint, a scored one is not scored again. The final step's
weights are scored (not a checkpoint picked on validation: every model gets the same budget),
decoded as the shipped weights are (their `decoder_stride` and mask refinement, settings
without parameters, read from weights/config.json). Writes every run's metrics and, per model, the mean and spread over
seeds to --json, the table as markdown beside it (.md), and each run's validation curve
(its eval.csv, when --val is given) to <json stem>_curves.html. --also scores the same weights
on further held-out sets (e.g. bench/sdf_scenes.py's scenes of another renderer), each into
<run>/test_<set>.json and a table of its own (the JSON's "also").
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from bench.figures import MODEL_COLOURS, save_figure
from bench.scaling import MODELS
from model.data import missing_folder
from model.objectives import DEPTH_LOSSES
from model.precision import PRECISIONS

# (key in model.evaluate's JSON, column title); the decoder's score leads, as in the model card
COLUMNS = [
    ("decoder_fg_ari", "decoder video FG-ARI"),
    ("fg_ari", "shown video FG-ARI"),
    ("memory_worth", "memory worth"),
    ("miou", "mIoU"),
    ("depth_absrel", "AbsRel"),
    ("depth_absrel_median_scaled", "AbsRel, median-scaled"),
    ("depth_delta1", "delta1"),
]
# inference-time settings without parameters, read from the shipped config so that every
# run is decoded as the app decodes
SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "weights" / "config.json"
SHOWN_KEYS = ("decoder_stride", "mask_refine_radius", "mask_refine_eps")
# what the validation curves plot (model.train's eval.csv: 16 clips of --val, every 500 steps)
CURVES = [
    ("decoder_fg_ari", "decoder video FG-ARI"),
    ("mean_max_mask", "mean largest mask (1/slots = uniform)"),
    ("depth_absrel", "depth AbsRel"),
]


def finished_steps(run: Path) -> int:
    """The step of the run's last checkpoint (0 if none)."""
    step = run / "checkpoint" / "step.json"
    return json.loads(step.read_text())["step"] if step.exists() else 0


def train(run: Path, model: str, seed: int, args, env: dict[str, str]) -> None:
    cmd = [sys.executable, "-m", "model.train", "--data", *args.train, "--out", str(run)]
    cmd += ["--steps", str(args.steps), "--batch", str(args.batch), "--frames", str(args.frames)]
    cmd += ["--lr", str(args.lr), "--warmup", str(args.warmup), "--seed", str(seed)]
    cmd += ["--mixed-precision", args.mixed_precision, "--depth-loss", args.depth_loss]
    # a checkpoint (and a validation score) every 500 steps: a cut run resumes from there
    cmd += ["--eval-every", str(min(500, args.steps)), "--log-every", str(min(50, args.steps))]
    if args.val:
        cmd += ["--val", args.val, "--eval-clips", "16"]
    if args.init:  # a trained encoder, slot encoder and decoder; the temporal steps start fresh
        cmd += ["--init", args.init, "--init-fresh", "time_mixer"]
    cmd += ["--config", f"time_mixer={MODELS[model]}", *args.config]
    subprocess.run(cmd, check=True, env=env)


def shown_weights(run: Path, source: str = "weights") -> Path:
    """<run>/shown: the run's final weights (or its `best`), set to decode at the shipped
    settings."""
    shown = run / "shown"
    shutil.copytree(run / source, shown, dirs_exist_ok=True)
    shipped = json.loads(SHIPPED_CONFIG.read_text())
    cfg = json.loads((shown / "config.json").read_text()) | {k: shipped[k] for k in SHOWN_KEYS}
    (shown / "config.json").write_text(json.dumps(cfg, indent=2))
    return shown


def score(weights: Path, data: str, out: Path, env: dict[str, str]) -> dict:
    """model.evaluate of `weights` on `data`, written to `out`."""
    cmd = [sys.executable, "-m", "model.evaluate", "--data", data, "--weights", str(weights)]
    cmd += ["--json", str(out), "--no-baselines"]
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def summarise(runs: dict[str, list[dict]]) -> dict[str, dict[str, list[float]]]:
    """Per model and metric: [mean, spread (population std; 0 for one seed), n]."""
    table = {}
    for model, rows in runs.items():
        if rows:
            table[model] = {
                key: [
                    statistics.fmean(r[key] for r in rows),
                    statistics.pstdev(r[key] for r in rows),
                    len(rows),
                ]
                for key, _ in COLUMNS
            }
    return table


def markdown(table: dict[str, dict[str, list[float]]], args, test: str) -> str:
    head = "| model | " + " | ".join(title for _, title in COLUMNS) + " |"
    lines = [head, "|---|" + "---:|" * len(COLUMNS)]
    for model, cols in table.items():
        cells = []
        for key, _ in COLUMNS:
            mean, spread, n = cols[key]
            cells.append(f"{mean:.3f}" + (f" +- {spread:.3f}" if n > 1 else ""))
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    seeds = ", ".join(map(str, args.seeds))
    precision = "fp32" if args.mixed_precision == "no" else args.mixed_precision
    lines.append("")
    lines.append(
        f"{args.steps} steps, batch {args.batch} x {args.frames} frames, lr {args.lr}, "
        f"depth loss {args.depth_loss}, precision {precision}, seeds {seeds}; "
        f"train {' '.join(args.train)}, scored on {test} (mean +- spread over seeds)."
    )
    return "\n".join(lines) + "\n"


def validation_curve(run: Path) -> list[dict]:
    """The run's validation scores over its training, from its eval.csv ([] without --val)."""
    path = run / "eval.csv"
    if not path.exists():
        return []
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [{"step": int(r["step"])} | {k: float(r[k]) for k, _ in CURVES} for r in rows]


def plot_curves(curves: dict[str, list[dict]], path: Path) -> list[str]:
    """One panel per CURVES metric, one line per run (colour: model, dash: seed)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    dashes = ("solid", "dash", "dot", "dashdot")
    fig = make_subplots(rows=1, cols=len(CURVES), subplot_titles=[t for _, t in CURVES])
    for name, rows in curves.items():
        model, seed = name.rsplit("-s", 1)
        for j, (key, _) in enumerate(CURVES):
            line = {"color": MODEL_COLOURS[model], "dash": dashes[int(seed) % len(dashes)]}
            trace = go.Scatter(
                x=[r["step"] for r in rows],
                y=[r[key] for r in rows],
                name=name,
                legendgroup=name,
                showlegend=j == 0,
                line=line,
            )
            fig.add_trace(trace, row=1, col=j + 1)
    fig.update_xaxes(title_text="training step")
    fig.update_layout(
        title="Validation during training (16 clips, decoded as trained)",
        template="plotly_white",
        height=430,
        width=1300,
    )
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m bench.quality",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--train", nargs="+", required=True, help="synth data set(s) to train on")
    p.add_argument("--val", default=None, help="synth data set scored at the end of training")
    p.add_argument("--test", required=True, help="held-out synth data set, the table's numbers")
    p.add_argument(
        "--also",
        nargs="*",
        default=[],
        metavar="DIR",
        help="further held-out sets (model.synth's format), each scored and tabulated apart",
    )
    p.add_argument("--out", required=True, help="folder of the runs")
    p.add_argument("--json", required=True, help="where to write the table (and .md beside it)")
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--steps", type=int, default=9000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument(
        "--config",
        nargs="*",
        default=["num_slots=9"],
        metavar="KEY=VALUE",
        help="Config overrides shared by every model",
    )
    p.add_argument(
        "--init",
        default=None,
        help="start every model from these weights, all time mixers (the SlotSSM's too) fresh",
    )
    p.add_argument("--threads", type=int, default=None, help="CPU threads per run")
    p.add_argument(
        "--depth-loss",
        choices=DEPTH_LOSSES,
        default=DEPTH_LOSSES[0],
        help="model.train's depth loss (silog: scale-invariant, for scenes of many scales)",
    )
    p.add_argument(
        "--mixed-precision",
        choices=PRECISIONS,
        default="no",
        help="of every run, so that models and seeds compare (no = fp32, what the table's "
        "runs so far used; auto = model.train's default, by the hardware)",
    )
    args = p.parse_args(argv)
    # every set is read only after hours of training: a mistyped one must stop the run now
    if error := missing_folder([*args.train, args.test, *args.also, args.val]):
        p.error(error)

    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    out = Path(args.out)
    sets = {"test": args.test} | {f"test_{Path(d).name}": d for d in args.also}
    runs = {name: {m: [] for m in args.models} for name in sets}  # set -> model -> seeds
    curves: dict[str, list[dict]] = {}  # by run folder name, for runs validated during training
    for seed in args.seeds:
        for model in args.models:
            run = out / f"{model}-s{seed}"
            if finished_steps(run) < args.steps:
                print(f"[quality] training {run}", flush=True)
                train(run, model, seed, args, env)
                for stale in run.glob("test*.json"):  # scores of fewer steps
                    stale.unlink()
            scores = {name: run / f"{name}.json" for name in sets}
            shown = None if all(p.exists() for p in scores.values()) else shown_weights(run)
            for name, data in sets.items():
                if scores[name].exists():
                    row = json.loads(scores[name].read_text())
                else:
                    row = score(shown, data, scores[name], env)
                row.pop("clips", None)  # per-clip scores stay in the run's test*.json
                runs[name][model].append(row)
                print(
                    f"[quality] {run} on {data}: "
                    + ", ".join(f"{k} {row[k]:.3f}" for k, _ in COLUMNS),
                    flush=True,
                )
            if curve := validation_curve(run):
                curves[run.name] = curve
    tables = {name: summarise(r) for name, r in runs.items()}
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"table": tables["test"], "runs": runs["test"], "args": vars(args)}
    if args.also:
        record["also"] = {
            sets[name]: {"table": tables[name], "runs": runs[name]}
            for name in sets
            if name != "test"
        }
    if curves:
        record["curves"] = curves
        record["plots"] = plot_curves(curves, path.with_name(path.stem + "_curves"))
    path.write_text(json.dumps(record, indent=2))
    text = "\n".join(markdown(tables[name], args, data) for name, data in sets.items())
    path.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
