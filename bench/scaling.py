"""The paper's efficiency claims, measured here: OC-SlotSSM against its three baselines
(model/time_mixers.py) at equal width, versus the length T of the clip.

    python -m bench --json OUT [--quick | --tiny] [--threads N] [--rounds R]

Two levels:
- core: the temporal core alone, the blocks after their slot encoders (time mixer, slot
  mixer, MLP) fed per-frame slots (B, T, N, D): what the paper's long-context comparison
  isolates;
- whole: the whole model on video (frame encoder, slot encoders, decoder included).

For each model and T: the training step (forward + backward) time, its peak memory, and the
latency of one more frame in recurrent mode after T frames (the cache prefilled). Every
(level, model) runs in a fresh subprocess, T ascending; the peak memory of a row is the
kernel's high-water mark of resident memory (VmHWM, reset through /proc/self/clear_refs
after freeing and malloc_trim) minus the resident memory just before the step: everything
the step allocates (activations, gradients, scratch), as the OS sees it. Times are the
best of a few steps (the least disturbed by other processes). The whole set of
(level, model) processes is repeated for several rounds (--rounds), models interleaved, and
each row reports the median over rounds with its range; each ratio is taken within a round
(models measured minutes apart, not a run apart) and reported as the median and range over
rounds. Ratios are only meaningful within one run. Also measured in the same run: this
CPU's matmul peak (GFLOP/s, fp32, same threads), and the FLOPs of a training step
(torch.utils.flop_counter: matmuls, convolutions, attention; elementwise work is not
counted) at the largest T, hence the fraction of the peak that the training step reaches.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
import torch
from torch import Tensor, nn

from bench.figures import MODEL_COLOURS, save_figure
from model import Config, OCSlotSSM
from model.slotssm import SlotSSMBlock

# the benchmark's name of each model -> its Config.time_mixer
MODELS = {
    "slotssm": "ssm",
    "single_ssm": "single_ssm",
    "slot_rnn": "gru",
    "slot_transformer": "attention",
}
LEVELS = ("core", "whole")


@dataclass
class Plan:
    core_T: list[int]
    whole_T: list[int]
    image_size: int  # whole model only
    batch: int = 1  # clips per step
    dim: int = 64  # D, equal for all models
    num_slots: int = 7  # N
    repeats: int = 3  # timed training steps per row (the best counts); one warm-up step first
    rounds: int = 1  # the whole set of (level, model) processes, repeated; medians and ranges
    latency_frames: int = 8  # single frames timed after the prefill

    def config(self, model: str) -> Config:
        small = {"dim": self.dim, "encoder_channels": self.dim, "decoder_hidden": self.dim}
        return Config(
            **small,
            image_size=self.image_size,
            num_slots=self.num_slots,
            decoder_stride=4,
            time_mixer=MODELS[model],
        )


PLANS = {
    # T = 2560 for the core (the paper's longest context); the whole model at 16x16 up to 1024
    "quick": Plan(
        core_T=[16, 64, 256, 1024, 2560],
        whole_T=[16, 64, 256, 1024],
        image_size=16,
        repeats=2,
        rounds=3,
    ),
    "full": Plan(
        core_T=[16, 64, 256, 1024, 2560], whole_T=[16, 64, 256, 1024, 2560], image_size=64
    ),
    # the smoke test's: seconds, same code paths
    "tiny": Plan(
        core_T=[4, 8],
        whole_T=[4, 8],
        image_size=16,
        dim=16,
        num_slots=3,
        repeats=1,
        latency_frames=2,
    ),
}


# ---- the temporal core -------------------------------------------------------------------
class Core(nn.Module):
    """The SlotSSM blocks without their slot encoders: slots (B, T, N, D) -> same."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.blocks = nn.ModuleList(SlotSSMBlock(cfg, 1) for _ in range(cfg.num_blocks))
        for block in self.blocks:
            del block.encoder  # not part of the core

    def forward(self, slots: Tensor, states: list | None = None) -> tuple[Tensor, list]:
        states = states or [None] * len(self.blocks)
        out = []
        for block, state in zip(self.blocks, states, strict=True):
            slots, state = block.dynamics(slots, state)
            out.append(state)
        return slots, out


# ---- measuring -----------------------------------------------------------------------------
def _malloc_trim() -> None:
    # not glibc: freed memory may stay resident, and the next row's peak is undercounted
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def reset_peak() -> int:
    """Free what can be freed, reset the resident high-water mark; the resident bytes now."""
    gc.collect()
    _malloc_trim()
    Path("/proc/self/clear_refs").write_text("5")
    return psutil.Process().memory_info().rss


def peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def make(level: str, model: str, plan: Plan) -> nn.Module:
    torch.manual_seed(0)
    cfg = plan.config(model)
    return Core(cfg) if level == "core" else OCSlotSSM(cfg)


def make_input(level: str, plan: Plan, T: int) -> Tensor:
    gen = torch.Generator().manual_seed(T)
    if level == "core":
        return torch.randn(plan.batch, T, plan.num_slots, plan.dim, generator=gen)
    s = plan.image_size
    return torch.rand(plan.batch, T, 3, s, s, generator=gen)


def train_step(net: nn.Module, x: Tensor, level: str) -> None:
    if level == "core":
        loss = net(x)[0].square().mean()
    else:
        out = net(x)
        loss = out.log_depth.square().mean() + out.rgb.square().mean()
    loss.backward()
    net.zero_grad(set_to_none=True)


def stream_ms_per_frame(net: nn.Module, level: str, plan: Plan, T: int) -> float:
    """Recurrent mode: the cache prefilled with T frames (chunks of 256), then the time of
    each of the next frames, one at a time; the median in ms."""
    x = make_input(level, plan, T + plan.latency_frames)
    net.eval()
    times = []
    with torch.inference_mode():
        cache = None if level == "core" else net.alloc_cache(plan.batch)

        def feed(chunk: Tensor):
            nonlocal cache
            if level == "core":
                cache = net(chunk, cache)[1]
            else:
                net(chunk, cache=cache)

        for t in range(0, T, 256):
            feed(x[:, t : min(t + 256, T)])
        for t in range(T, T + plan.latency_frames):
            start = time.perf_counter()
            feed(x[:, t : t + 1])
            times.append(time.perf_counter() - start)
    net.train()
    return 1e3 * statistics.median(times)


def count_flops(net: nn.Module, x: Tensor, level: str) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        train_step(net, x, level)
    return counter.get_total_flops()


def measure(level: str, model: str, plan: Plan, Ts: list[int]) -> list[dict]:
    """All rows of one (level, model), T ascending, in this (fresh) process."""
    net = make(level, model, plan).train()
    rows = []
    for i, T in enumerate(sorted(Ts)):
        x = make_input(level, plan, T)
        if i == 0:  # warm-up: one-time allocations, kernel selection
            train_step(net, x, level)
        before = reset_peak()
        times = []
        for _ in range(plan.repeats):
            start = time.perf_counter()
            train_step(net, x, level)
            times.append(time.perf_counter() - start)
        peak = peak_rss() - before
        row = {
            "model": model,
            "T": T,
            "train_step_ms": 1e3 * min(times),
            "peak_mem_mb": peak / 2**20,
            "stream_ms_per_frame": stream_ms_per_frame(net, level, plan, T),
        }
        if i == len(Ts) - 1 and model == "slotssm":  # the largest T
            row["train_gflop"] = count_flops(net, x, level) / 1e9
            row["achieved_gflops"] = row["train_gflop"] / (row["train_step_ms"] / 1e3)
        rows.append(row)
        print(f"  {level:5s} {model:16s} T={T:5d} {row['train_step_ms']:9.1f} ms", file=sys.stderr)
        del x
    return rows


def matmul_peak_gflops(seconds: float = 3.0) -> float:
    """Best fp32 GFLOP/s of square matmuls on this CPU, with the threads set."""
    best = 0.0
    for n in (512, 1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        deadline = time.perf_counter() + seconds / 3
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            a @ b
            best = max(best, 2 * n**3 / (time.perf_counter() - start) / 1e9)
    return best


# ---- the run ---------------------------------------------------------------------------------
def run_worker(level: str, model: str, mode: str, threads: int, fresh: bool) -> list[dict]:
    if not fresh:  # the smoke test's way: seconds instead of a minute of imports
        Ts = PLANS[mode].core_T if level == "core" else PLANS[mode].whole_T
        return measure(level, model, PLANS[mode], Ts)
    env = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "bench.scaling", "--worker", level, model, mode]
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ratios(rows: list[dict], key: str) -> dict[int, dict[str, float]]:
    """Per T: each baseline's value divided by the SlotSSM's (> 1: the SlotSSM needs less)."""
    by = {(r["model"], r["T"]): r[key] for r in rows}
    out = {}
    for T in sorted({r["T"] for r in rows}):
        ours = by.get(("slotssm", T))
        if ours:
            out[T] = {m: by[m, T] / ours for m in MODELS if m != "slotssm" and (m, T) in by}
    return out


AGGREGATED = ("train_step_ms", "peak_mem_mb", "stream_ms_per_frame")


def aggregate(rounds: list[list[dict]]) -> list[dict]:
    """Rows of one level measured in several rounds -> one row per (model, T): the median of
    each measurement, its range as KEY_range = [min, max], and its values per round."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for rows in rounds:
        for r in rows:
            groups.setdefault((r["model"], r["T"]), []).append(r)
    out = []
    for (model, T), rs in groups.items():
        row = {"model": model, "T": T}
        for key in AGGREGATED:
            values = [r[key] for r in rs]
            row[key] = statistics.median(values)
            row[key + "_range"] = [min(values), max(values)]
            row[key + "_rounds"] = values
        if "train_gflop" in rs[0]:  # the counted FLOPs do not vary; the time does
            row["train_gflop"] = rs[0]["train_gflop"]
            row["achieved_gflops"] = row["train_gflop"] / (row["train_step_ms"] / 1e3)
        out.append(row)
    return out


def ratio_spread(rounds: list[list[dict]], key: str) -> tuple[dict, dict]:
    """Each ratio of ratios() taken within each round: its median over rounds, and its range."""
    per_round = [ratios(rows, key) for rows in rounds]
    median, spread = {}, {}
    for T in per_round[0]:
        median[T], spread[T] = {}, {}
        for m in per_round[0][T]:
            values = [r[T][m] for r in per_round if T in r and m in r[T]]
            median[T][m] = statistics.median(values)
            spread[T][m] = [min(values), max(values)]
    return median, spread


def growth_exponent(rows: list[dict], model: str, key: str) -> float | None:
    """Slope of log(value) against log(T) between the two largest T (1 = linear)."""
    import math

    pts = sorted((r["T"], r[key]) for r in rows if r["model"] == model)
    if len(pts) < 2 or min(pts[-2][1], pts[-1][1]) <= 0:
        return None
    (t1, v1), (t2, v2) = pts[-2:]
    return math.log(v2 / v1) / math.log(t2 / t1)


def machine(threads: int) -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "threads": threads,
        "torch": torch.__version__,
        "device": "cpu",
        "load_average_at_start": list(os.getloadavg()),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
    }


def table(rows: list[dict], title: str) -> str:
    Ts = sorted({r["T"] for r in rows})
    by = {(r["model"], r["T"]): r for r in rows}
    lines = [title, f"{'model':18s}" + "".join(f"{'T=' + str(T):>22s}" for T in Ts)]
    for m in MODELS:
        cells = []
        for T in Ts:
            r = by.get((m, T))
            cells.append(
                f"{r['train_step_ms']:8.1f}ms {r['peak_mem_mb']:6.0f}MB {r['stream_ms_per_frame']:4.1f}"
                if r
                else "-"
            )
        lines.append(f"{m:18s}" + "".join(f"{c:>22s}" for c in cells))
    lines.append("  (train step ms, its peak memory MB, recurrent ms per frame after T frames)")
    return "\n".join(lines)


def markdown(result: dict) -> str:
    """The tables of docs/results.md: per level, each model's step time, peak memory and
    recurrent latency per T, and the baselines' step time over the SlotSSM's."""
    out = []
    several = result["settings"]["rounds"] > 1
    for level in LEVELS:
        rows = result[level]
        Ts = sorted({r["T"] for r in rows})
        by = {(r["model"], r["T"]): r for r in rows}
        for key, label in (
            ("train_step_ms", "training step, ms"),
            ("peak_mem_mb", "peak memory of the training step, MB"),
            ("stream_ms_per_frame", "recurrent mode, ms for one more frame after T frames"),
        ):
            out.append(f"\n**{level}: {label}**\n")
            out.append("| model | " + " | ".join(f"T={T}" for T in Ts) + " |")
            out.append("|---|" + "---:|" * len(Ts))
            for m in MODELS:
                cells = [
                    cell(by[m, T][key], by[m, T][key + "_range"], several, ".1f")
                    if (m, T) in by
                    else "-"
                    for T in Ts
                ]
                out.append(f"| {m} | " + " | ".join(cells) + " |")
        ratio = result["ratios_train_step"][level]
        spread = result["ratios_train_step_range"][level]
        out.append(
            f"\n**{level}: training step of each baseline / the SlotSSM's** (> 1: SlotSSM faster; "
            "median over rounds, range in brackets)\n"
        )
        out.append("| vs | " + " | ".join(f"T={T}" for T in ratio) + " |")
        out.append("|---|" + "---:|" * len(ratio))
        for m in MODELS:
            if m != "slotssm":
                cells = [cell(ratio[T][m], spread[T][m], several, ".2f") for T in ratio]
                out.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def cell(value: float, span: list[float], several: bool, fmt: str) -> str:
    """A table cell: the median, and its range [lo, hi] over the rounds where there were
    several."""
    return format(value, fmt) + (f" ({span[0]:{fmt}}-{span[1]:{fmt}})" if several else "")


def plot(result: dict, path: Path) -> list[str]:
    """The six panels (two levels x step time, memory, streaming latency) of one run."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    metrics = [
        ("train_step_ms", "training step (ms)"),
        ("peak_mem_mb", "peak memory of the step (MB)"),
        ("stream_ms_per_frame", "recurrent, ms per frame"),
    ]
    fig = make_subplots(
        rows=2,
        cols=3,
        subplot_titles=[f"{lvl}: {label}" for lvl in LEVELS for _, label in metrics],
    )
    threads = result["machine"]["threads"]
    for i, level in enumerate(LEVELS):
        for j, (key, _) in enumerate(metrics):
            for m in MODELS:
                pts = sorted((r["T"], r[key]) for r in result[level] if r["model"] == m)
                fig.add_trace(
                    go.Scatter(
                        x=[p[0] for p in pts],
                        y=[max(p[1], 1e-3) for p in pts],
                        name=m,
                        legendgroup=m,
                        showlegend=i == 0 and j == 0,
                        line={"color": MODEL_COLOURS[m]},
                    ),
                    row=i + 1,
                    col=j + 1,
                )
            fig.update_xaxes(type="log", title_text="T (frames)", row=i + 1, col=j + 1)
            fig.update_yaxes(type="log", row=i + 1, col=j + 1)
    fig.update_layout(
        title=f"OC-SlotSSM vs baselines, {result['machine']['cpu']}, "
        f"{threads} thread{'s' if threads > 1 else ''} ({result['mode']})",
        height=750,
        width=1300,
    )
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--json", required=True, type=Path, help="where to write the results")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="the regular run (< 5 min on 2 cores)")
    size.add_argument("--tiny", action="store_true", help="tiny sizes: a smoke test of the code")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument(
        "--rounds",
        type=int,
        help="repeat every (level, model) this many times, interleaved; rows and ratios are "
        "medians over rounds with their ranges (default: 3 with --quick, else 1)",
    )
    p.add_argument("--no-plots", action="store_true")
    p.add_argument(
        "--in-process",
        action="store_true",
        help="measure in this process, not a fresh one per model (peak memory then less exact; "
        "the default with --tiny)",
    )
    args = p.parse_args(argv)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    fresh = not (args.in_process or args.tiny)
    plan = PLANS[mode]
    rounds = args.rounds or plan.rounds
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    result: dict = {"mode": mode, "machine": machine(args.threads), "settings": asdict(plan)}
    result["settings"]["peak_mem"] = (
        "VmHWM - RSS before the step, T ascending, high-water mark reset (clear_refs 5) "
        "after gc + malloc_trim, "
        + ("one fresh process per (level, model)" if fresh else "all in one process")
    )
    result["settings"]["rounds"] = rounds
    result["settings"]["train_step_ms"] = (
        f"best of {plan.repeats} steps (one warm-up step before the smallest T); "
        f"median over {rounds} round(s), models interleaved"
    )
    result["matmul_peak_gflops"] = matmul_peak_gflops(0.3 if mode == "tiny" else 3.0)
    print(f"matmul peak: {result['matmul_peak_gflops']:.1f} GFLOP/s fp32, {args.threads} threads")
    measured: dict[str, list[list[dict]]] = {lvl: [] for lvl in LEVELS}
    for i in range(rounds):
        for level in LEVELS:
            rows = [row for m in MODELS for row in run_worker(level, m, mode, args.threads, fresh)]
            measured[level].append(rows)
            print(f"round {i + 1}/{rounds}: {level} done", file=sys.stderr)
    result["ratios_train_step"], result["ratios_train_step_range"] = {}, {}
    for level in LEVELS:
        Ts = plan.core_T if level == "core" else plan.whole_T
        result[level] = aggregate(measured[level])
        print(table(result[level], f"\n{level} (T = {Ts}; median of {rounds} round(s))"))
        median, spread = ratio_spread(measured[level], "train_step_ms")
        result["ratios_train_step"][level] = median
        result["ratios_train_step_range"][level] = spread
    result["ratios_peak_mem"] = {lvl: ratios(result[lvl], "peak_mem_mb") for lvl in LEVELS}
    result["memory_growth_exponent"] = {
        lvl: {m: growth_exponent(result[lvl], m, "peak_mem_mb") for m in MODELS} for lvl in LEVELS
    }
    for lvl in LEVELS:
        ours = [r for r in result[lvl] if r["model"] == "slotssm" and "achieved_gflops" in r][0]
        key = "slotssm_train_gflops" if lvl == "whole" else "slotssm_core_train_gflops"
        result[key] = ours["achieved_gflops"]
        result[key + "_T"] = ours["T"]
        frac = ours["achieved_gflops"] / result["matmul_peak_gflops"]
        result[f"fraction_of_peak_{lvl}"] = frac
        largest = max(result["ratios_train_step"][lvl])
        ratio = result["ratios_train_step"][lvl][largest]
        spread = result["ratios_train_step_range"][lvl][largest]
        print(
            f"\n{lvl}, T={largest}: the SlotSSM training step is "
            + ", ".join(
                f"{v:.2f}x ({spread[m][0]:.2f}-{spread[m][1]:.2f}) faster than {m}"
                for m, v in ratio.items()
            )
        )
        print(
            f"{lvl}: SlotSSM training step at T={ours['T']}: {ours['achieved_gflops']:.2f} "
            f"GFLOP/s = {100 * frac:.1f}% of the matmul peak "
            f"({ours['train_gflop']:.2f} GFLOP counted per step)"
        )
        print(
            f"{lvl}: peak memory grows as T^"
            + ", T^".join(
                f"{e:.2f} ({m})"
                for m, e in result["memory_growth_exponent"][lvl].items()
                if e is not None
            )
        )
    result["seconds"] = time.perf_counter() - start
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    if not args.no_plots:
        result["plots"] = plot(result, args.json)
        args.json.write_text(json.dumps(result, indent=1))
        print("plots:", ", ".join(result["plots"]))
    args.json.with_suffix(".md").write_text(markdown(result) + "\n")
    print(
        f"wrote {args.json} (tables: {args.json.with_suffix('.md')}) in {result['seconds']:.0f} s"
    )
    return result


def _worker(argv: list[str]) -> None:
    level, model, mode = argv
    plan = PLANS[mode]
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    Ts = plan.core_T if level == "core" else plan.whole_T
    print(json.dumps(measure(level, model, plan, Ts)))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        _worker(sys.argv[2:])
    else:
        main()
