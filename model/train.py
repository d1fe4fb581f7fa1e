"""Train OC-SlotSSM to predict depth (and reconstruct RGB); slots are never shown a mask.

One CPU:            python -m model.train --data data/train --val data/val --out runs/base
Several GPUs:       accelerate launch -m model.train --data ... (or torchrun --nproc_per_node 8 -m model.train ...)
Resume:             run the same command again: it continues from --out/checkpoint.

Losses (model/objectives.py): log-depth, RGB reconstruction, and the optional ones about time,
edges and video prediction, each with a --*-weight.

--train-only NAME trains only the parameters whose names contain NAME, the rest frozen: e.g.
--init weights --config depth_head=64 --train-only depth_mlp adds a depth head to trained
weights and trains it alone, so depth improves and the masks stay bit for bit the same.

Every --eval-every steps it scores the --val set (video FG-ARI, mIoU, depth AbsRel, mean max
mask: 1/N means the slots do not decompose at all; slot centre spread: near 0 means slots keep
fixed image regions instead of following objects), writes a row to eval.csv and a PNG of
frames | true objects | predicted slots | depth to masks/, and exports the weights to
--out/weights (model.safetensors + config.json, loadable with OCSlotSSM.from_pretrained);
the weights with the highest validation FG-ARI so far also go to --out/best.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm import tqdm

from .config import Config
from .data import Clip, load_folder, missing_folder, sample_batch
from .objectives import DEPTH_LOSSES, losses, next_frame_loss, refined_mask_distillation
from .precision import training_precision
from .slotssm import OCSlotSSM


def parse_config_overrides(items: list[str]) -> dict:
    """['dim=64', 'rgb_head=false'] -> {'dim': 64, 'rgb_head': False}, typed like Config."""
    types = {f.name: f.type for f in fields(Config)}
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in types:
            raise SystemExit(
                f"error: --config takes key=value with key in {sorted(types)}, got {item!r}"
            )
        kind = types[key] if isinstance(types[key], str) else types[key].__name__
        if kind == "bool":
            out[key] = value.lower() in {"1", "true", "yes"}
        else:
            out[key] = {"float": float, "int": int, "str": str}[kind](value)
    return out


def init_from(
    model: OCSlotSSM, source: dict[str, torch.Tensor], fresh: tuple[str, ...] = ()
) -> list[str]:
    """Start from the weights of a related config: equal shapes are copied; a tensor that
    differs only in its first dimension (the slot queries of another slot count, the decoder
    output layer with a new head) gets the overlapping leading rows and keeps its fresh
    initialisation for the rest. A wider decoder (decoder_hidden) is grown so that it computes
    the same function at first (Net2Net-style): its new hidden units start fresh, and the
    weights that read them start at zero. Tensors whose names contain one of `fresh` are not
    copied (e.g. "time_mixer": another temporal step on a trained encoder and decoder). A
    module the source lacks and that starts as a no-op (OCSlotSSM.neutral_modules, the video
    predictor) keeps its initialisation. Returns the names of the tensors not copied whole
    (partly copied, or new); any other difference is an error."""
    state = {k: v for k, v in model.state_dict().items() if not any(f in k for f in fresh)}
    source = {k: v for k, v in source.items() if not any(f in k for f in fresh)}
    new = sorted(k for k in set(state) - set(source) if k.startswith(model.neutral_modules))
    state = {k: v for k, v in state.items() if k not in new}
    if set(state) != set(source):
        raise ValueError(f"--init weights differ in parameters: {sorted(set(state) ^ set(source))}")
    partial = []
    with torch.no_grad():
        for name, value in source.items():
            target = state[name]
            if target.shape == value.shape:
                target.copy_(value)
            elif target.dim() == value.dim() and target.shape[1:] == value.shape[1:]:
                rows = min(len(target), len(value))
                target[:rows].copy_(value[:rows])
                partial.append(name)
            elif name.startswith("decoder.") and value.dim() == 2 and _grows(target, value):
                rows, cols = value.shape
                target[:rows, :cols].copy_(value)
                target[:rows, cols:].zero_()  # old units ignore the new ones: same output
                partial.append(name)
            else:
                raise ValueError(
                    f"--init: {name} has shape {tuple(value.shape)}, the model needs {tuple(target.shape)}"
                )
    return partial + new


def _grows(target: torch.Tensor, value: torch.Tensor) -> bool:
    """target is value widened: no dimension smaller, the input dimension larger."""
    grown = all(t >= v for t, v in zip(target.shape, value.shape, strict=True))
    return grown and target.shape[1] > value.shape[1]


@torch.inference_mode()
def teacher_depth(model: OCSlotSSM, rgb: np.ndarray, chunk: int = 64) -> np.ndarray:
    """rgb (T, H, W, 3) uint8 -> (T, H, W) float32 depth as `model` predicts it, streamed in
    chunks (memory does not grow with length). The depth target of a clip that has none,
    when fine-tuning (--depth-from-init, model/adapt.py): what the weights already know about
    depth is kept while the slots adapt to the footage."""
    device = next(model.parameters()).device
    cache, out = model.alloc_cache(batch=1), []
    for t in range(0, len(rgb), chunk):
        video = torch.from_numpy(rgb[t : t + chunk]).to(device).permute(0, 3, 1, 2)
        log_depth = model(video.float().div(255).unsqueeze(0), cache=cache).log_depth[0]
        up = F.interpolate(log_depth[:, None], size=rgb.shape[1:3], mode="bilinear")
        out.append(up[:, 0].exp().float().cpu().numpy())
    return np.concatenate(out)


def lr_at(step: int, args) -> float:
    """Linear warm-up, then cosine decay to min_lr_ratio * lr."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = min((step - args.warmup) / max(args.steps - args.warmup, 1), 1.0)
    return args.lr * (
        args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    )


def save_mask_sheet(model: OCSlotSSM, clips: list[Clip], path: Path, count: int = 4) -> None:
    """PNG rows: frame | true objects | predicted slot ids | predicted depth, for a few clips."""
    import cv2

    from .evaluate import predict_clip
    from .palette import colorize_ids

    rows = []
    for clip in clips[:count]:
        pred = predict_clip(model, clip.rgb[:4])
        t = len(pred["slot_ids"]) - 1
        truth = (
            colorize_ids(clip.masks[t]) if clip.masks is not None else np.zeros_like(clip.rgb[t])
        )
        d = pred["depth"][t]
        d = (255 * (d - d.min()) / max(np.ptp(d), 1e-6)).astype(np.uint8)
        depth = cv2.applyColorMap(255 - d, cv2.COLORMAP_INFERNO)[..., ::-1]
        rows.append(
            np.concatenate([clip.rgb[t], truth, colorize_ids(pred["slot_ids"][t]), depth], 1)
        )
    sheet = np.concatenate(rows, 0)
    sheet = cv2.resize(sheet, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), sheet[..., ::-1])


def append_csv(path: Path, row: dict) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def drop_rows_after(path: Path, step: int) -> None:
    """Forget what a run logged past its last checkpoint: resumed, it runs those steps again."""
    if not path.exists():
        return
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, [r for r in reader if int(r["step"]) <= step]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def parse_args(argv=None, check_paths: bool = True):
    p = argparse.ArgumentParser(
        prog="python -m model.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--data",
        nargs="+",
        required=True,
        help="synth data set(s) and/or video folders (see model/data.py)",
    )
    p.add_argument(
        "--val", default=None, help="synth data set with masks, scored every --eval-every steps"
    )
    p.add_argument(
        "--out",
        required=True,
        help="run folder: log.csv, eval.csv, masks/, checkpoint/, weights/, best/",
    )
    p.add_argument(
        "--config",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="model Config overrides, e.g. num_slots=8",
    )
    p.add_argument(
        "--init",
        default=None,
        help="start from these weights (folder or Hub id) instead of random; --config may change "
        "num_slots, add flow_head=true (the new rows start fresh) or widen decoder_hidden (the "
        "same function at first)",
    )
    p.add_argument(
        "--init-fresh",
        nargs="*",
        default=[],
        metavar="NAME",
        help="with --init: parameters whose names contain one of these start fresh, e.g. "
        "time_mixer (a baseline's temporal step on the trained encoder, slot encoder and decoder)",
    )
    p.add_argument(
        "--train-only",
        nargs="*",
        default=[],
        metavar="NAME",
        help="train only the parameters whose names contain one of these and freeze the rest, "
        "e.g. depth_mlp (with --config depth_head=64: better depth, the masks unchanged)",
    )
    p.add_argument(
        "--depth-from-init",
        action="store_true",
        help="clips without depth (your own videos) get the --init model's predicted depth as "
        "their depth target, so fine-tuning on footage keeps what the weights know about depth",
    )
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch", type=int, default=16, help="clips per step per process")
    p.add_argument("--frames", type=int, default=6, help="frames per training clip")
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--min-lr-ratio", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument(
        "--depth-loss",
        choices=DEPTH_LOSSES,
        default=DEPTH_LOSSES[0],
        help="log: metric depth, squared error of log-depth; log_l1: its absolute error (close "
        "to AbsRel); silog: relative depth",
    )
    p.add_argument("--depth-weight", type=float, default=1.0)
    p.add_argument("--rgb-weight", type=float, default=5.0)
    p.add_argument(
        "--flow-weight",
        type=float,
        default=0.1,
        help="weight of the optical-flow loss (models with flow_head=true, clips with flow)",
    )
    p.add_argument(
        "--mixed-precision",
        choices=["auto", "no", "fp16", "bf16"],
        default="auto",
        help="auto: bf16 where the hardware has it natively (CUDA, CPUs with AMX or "
        "AVX512-BF16; model/precision.py), else none (fp32)",
    )
    p.add_argument(
        "--contrast-weight",
        type=float,
        default=0.0,
        help="weight of the temporal slot contrast (SlotContrast; 0 = off)",
    )
    p.add_argument("--contrast-temperature", type=float, default=0.1)
    p.add_argument(
        "--predict-weight",
        type=float,
        default=0.0,
        help="weight of the next frame's depth and RGB decoded from this frame's slots "
        "(video prediction; needs --config predict_next=true; 0 = off)",
    )
    p.add_argument(
        "--distill-weight",
        type=float,
        default=0.0,
        help="weight of the decoder's masks against their own refinement to the frame's edges "
        "(self-distillation; 0 = off)",
    )
    p.add_argument(
        "--edge-weight",
        type=float,
        default=0.0,
        help="depth and RGB count up to 1 + this times more at depth edges (cells off the "
        "plane of their neighbours): small objects, all edge, then weigh like large ones",
    )
    p.add_argument(
        "--select",
        choices=["shown", "decoder"],
        default="shown",
        help="which validation FG-ARI picks --out/best: as the app shows it, or the decoder's",
    )
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--eval-clips", type=int, default=32)
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument(
        "--limit", type=int, default=None, help="load at most this many clips per data folder"
    )
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    for name in ("steps", "batch", "frames", "grad_accum", "eval_every", "log_every"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    # before any process starts or --out is made: a typo in a path is the commonest mistake
    if check_paths and (error := missing_folder([*args.data, args.val])):
        p.error(error)
    return args


def train_steps(
    model: torch.nn.Module, opt: torch.optim.Optimizer, clips: list[Clip], args, acc, start: int = 0
) -> Iterator[tuple[int, torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]]:
    """The training loop itself, shared by this entry point and model/adapt.py: one optimiser
    step per item, yielding (step, loss, loss parts, gradient norm) after it, until
    args.steps (a caller may stop earlier). Batches are a function of (seed, step, rank), so
    a resumed or repeated run sees the same data."""
    temperature = args.contrast_temperature if args.contrast_weight > 0 else None
    # the distillation's target: the refinement the config ships, or the shipped radius 3
    # for a config that has it off
    cfg = acc.unwrap_model(model).config
    refine_radius, refine_eps = cfg.mask_refine_radius or 3, cfg.mask_refine_eps
    weights = {  # every loss part a step computes, and its weight in the total
        "depth": args.depth_weight,
        "rgb": args.rgb_weight,
        "flow": args.flow_weight,
        "contrast": args.contrast_weight,
        "distill": args.distill_weight,
        "predict": args.predict_weight,
    }
    step = start
    while step < args.steps:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        rng = np.random.default_rng([args.seed, step, acc.process_index])
        for _ in range(args.grad_accum):
            batch = sample_batch(clips, args.batch, args.frames, rng)
            video, depth = batch["video"].to(acc.device), batch["depth"].to(acc.device)
            flow, flow_known = (
                batch[k].to(acc.device) if k in batch else None for k in ("flow", "flow_known")
            )
            with acc.accumulate(model), acc.autocast():
                pred = model(video, predict_next=args.predict_weight > 0)
                parts = losses(
                    pred,
                    video,
                    depth,
                    args.depth_loss,
                    flow,
                    flow_known,
                    temperature,
                    edge_weight=args.edge_weight,
                )
                if args.predict_weight > 0:
                    parts["predict"] = next_frame_loss(
                        pred, video, depth, args.depth_loss, args.rgb_weight
                    )
                if args.distill_weight > 0:
                    parts["distill"] = refined_mask_distillation(
                        pred.masks, video, refine_radius, refine_eps
                    )
                loss = sum(weights[name] * value for name, value in parts.items())
                acc.backward(loss)
                grad_norm = (
                    acc.clip_grad_norm_(model.parameters(), args.grad_clip)
                    if acc.sync_gradients
                    else None
                )
                opt.step()
                opt.zero_grad()
        step += 1
        yield step, loss, parts, grad_norm


def freeze_all_but(model: torch.nn.Module, names: tuple[str, ...]) -> list[torch.nn.Parameter]:
    """Freeze every parameter whose name contains none of `names` (none: all train); returns
    the ones that train. Frozen weights get no gradient, so they end exactly as they began."""
    for name, p in model.named_parameters():
        p.requires_grad_(not names or any(k in name for k in names))
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise SystemExit(f"error: --train-only {' '.join(names)} matches no parameter")
    return trainable


def best_fg_ari(eval_csv: Path, key: str = "fg_ari") -> float:
    """Highest validation score `key` logged so far (the row just appended included)."""
    with open(eval_csv) as f:
        return max(float(row[key]) for row in csv.DictReader(f))


def main(argv=None) -> None:
    from .evaluate import evaluate  # scikit-learn: training needs it, adapting (the app) not

    args = parse_args(argv)
    mixed = training_precision("cuda" if torch.cuda.is_available() else "cpu", args.mixed_precision)
    # cpu=True on a machine without CUDA makes torchrun / accelerate launch processes join with gloo
    acc = Accelerator(
        mixed_precision=mixed,
        gradient_accumulation_steps=args.grad_accum,
        cpu=not torch.cuda.is_available(),
    )
    set_seed(args.seed, device_specific=True)
    out = Path(args.out)
    ckpt = out / "checkpoint"

    overrides = parse_config_overrides(args.config)
    try:
        if (out / "weights" / "config.json").exists():  # resuming: the run's own config wins
            cfg = Config.from_dict(json.loads((out / "weights" / "config.json").read_text()))
        elif args.init:
            base = OCSlotSSM.from_pretrained(args.init).config.to_dict()
            cfg = Config.from_dict(base | overrides)
        else:
            cfg = Config(**overrides)
    except ValueError as err:  # an impossible combination of --config values
        raise SystemExit(f"error: {err}") from None
    model = OCSlotSSM(cfg)
    if args.init and not ckpt.exists():
        partial = init_from(
            model, OCSlotSSM.from_pretrained(args.init).state_dict(), tuple(args.init_fresh)
        )
        if partial:
            acc.print(f"--init: {', '.join(partial)} copied in part or new (config changed)")

    try:  # a folder without clips, or depth maps that do not match the video's frames
        clips = [
            c
            for folder in args.data
            for c in load_folder(folder, cfg.image_size, args.limit, flow=cfg.flow_head)
        ]
        val = load_folder(args.val, cfg.image_size, args.eval_clips) if args.val else []
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    if args.depth_from_init and not args.init:
        raise SystemExit("error: --depth-from-init needs --init (the model whose depth to keep)")
    out.mkdir(parents=True, exist_ok=True)  # only for a run that can start
    if args.depth_from_init:
        teacher = OCSlotSSM.from_pretrained(args.init).to(acc.device).eval()
        for clip in clips:
            if clip.depth is None:
                clip.depth = teacher_depth(teacher, clip.rgb)
        del teacher
    acc.print(
        f"{sum(p.numel() for p in model.parameters()):,} parameters; {len(clips)} training clips; {len(val)} val clips; "
        f"{acc.num_processes} process(es) on {acc.device}; mixed precision: {mixed}; "
        f"depth loss: {args.depth_loss}"
    )

    trainable = freeze_all_but(model, tuple(args.train_only))
    opt = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=args.weight_decay)
    model, opt = acc.prepare(model, opt)
    # prepare() wraps forward in autocast for good; unwrapped, validation and the exported
    # weights' checks run in fp32 as the app serves them, and mixed precision applies only
    # inside train_steps' acc.autocast()
    acc.unwrap_model(model, keep_fp32_wrapper=False)
    start = 0
    if ckpt.exists():
        acc.load_state(str(ckpt))
        start = json.loads((ckpt / "step.json").read_text())["step"]
        acc.print(f"resumed from {ckpt} at step {start}")
        if acc.is_main_process:
            for log in ("log.csv", "eval.csv"):
                drop_rows_after(out / log, start)

    bar = tqdm(total=args.steps, initial=start, disable=not acc.is_main_process, desc="train")
    t_last = time.time()
    for step, loss, parts, grad_norm in train_steps(model, opt, clips, args, acc, start=start):
        bar.update(1)

        if step % args.log_every == 0 and acc.is_main_process:
            now = time.time()
            row = {
                "step": step,
                "loss": loss.item(),
                "lr": lr_at(step - 1, args),
                "grad_norm": float(grad_norm) if grad_norm is not None else float("nan"),
                "sec_per_step": (now - t_last) / args.log_every,
            } | {f"{k}_loss": v.item() for k, v in parts.items()}
            t_last = now
            append_csv(out / "log.csv", row)
            bar.set_postfix(loss=f"{row['loss']:.4f}", depth=f"{row['depth_loss']:.4f}")

        if step % args.eval_every == 0 or step == args.steps:
            acc.wait_for_everyone()
            if acc.is_main_process:
                core = acc.unwrap_model(model)
                core.eval()
                if val:
                    metrics = evaluate(core, val, baselines=False, progress=False)
                    metrics.pop("clips")  # per-clip scores: for model.compare, not the log
                    metrics.pop("objects_without_slot_by_size", None)  # nested: the JSON's
                    stages = metrics.pop("stages")  # the same scores before tracking/refinement
                    # val clips with a hand: flattened with the stages, as held_* columns
                    stages["held"] = metrics.pop("held_object", {})
                    row = {"step": step} | {k: round(v, 5) for k, v in metrics.items()}
                    row |= {
                        f"{st}_{k}": round(v, 5) for st, m in stages.items() for k, v in m.items()
                    }
                    append_csv(out / "eval.csv", row)
                    save_mask_sheet(core, val, out / "masks" / f"step_{step:06d}.png")
                    bar.write(
                        f"step {step}: fg_ari {metrics.get('fg_ari', float('nan')):.3f} miou {metrics.get('miou', float('nan')):.3f} "
                        f"absrel {metrics.get('depth_absrel', float('nan')):.3f} max-mask {metrics['mean_max_mask']:.2f} "
                        f"slot-spread {metrics['slot_centre_spread']:.2f}"
                    )
                    # compare the logged (rounded) value with the logged ones
                    key = "decoder_fg_ari" if args.select == "decoder" else "fg_ari"
                    if row[key] >= best_fg_ari(out / "eval.csv", key):
                        core.save_pretrained(out / "best")  # FG-ARI on val swings; keep the peak
                core.save_pretrained(out / "weights")
                core.train()
            acc.save_state(str(ckpt))
            if acc.is_main_process:
                (ckpt / "step.json").write_text(json.dumps({"step": step}))
    bar.close()
    acc.end_training()


if __name__ == "__main__":
    main()
