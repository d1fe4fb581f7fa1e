"""Grow a trained model's width D by an integer factor without changing what it computes
(Net2WiderNet, Chen et al. 2016), so a wider model starts from trained weights instead of
from scratch (where dim=128 fell into one slot within 1000 steps on the CPU: docs/experiments.md).

Every feature of width D (tokens, slots, their MLPs' hidden units, the SSM's inner channels
and heads) is copied `factor` times, side by side (repeat_interleave, so attention heads and
the SSM's head layout stay contiguous). A layer that reads copied features gets the old
weight split among the copies in random positive shares that sum to one: the output is the
same, but the copies receive different gradients, so they drift apart and the extra width
is used. LayerNorm and RMSNorm see the same mean and variance over copied features, so they
are unchanged; attention logits, which are dot products over copied features divided by
sqrt(width), are kept by scaling the queries by factor ** -0.5.

    python -m model.widen --weights weights --factor 2 --out runs/wide_init
    python -m model.train --init runs/wide_init ...   # fine-tune at the new width
"""

from __future__ import annotations

import argparse
import re
from dataclasses import replace
from typing import NamedTuple

import torch
from torch import Tensor

from .slotssm import OCSlotSSM


def _copies(n: int, factor: int) -> Tensor:
    """Source index of each widened feature: 0,0,1,1,... for factor 2."""
    return torch.arange(n).repeat_interleave(factor)


def _cat(*segments: Tensor) -> Tensor:
    """Concatenate index maps of consecutive segments of one axis (offsets in the old axis)."""
    out, offset = [], 0
    for seg in segments:
        out.append(seg + offset)
        offset += int(seg.max()) + 1
    return torch.cat(out)


def _expand(value: Tensor, axis: int, src: Tensor, split: bool, gen: torch.Generator) -> Tensor:
    """value with `axis` re-indexed by src. split: an input axis, whose copies of one old
    feature share its weight in random positive parts that sum to one."""
    out = value.index_select(axis, src)
    if split:
        shares = torch.rand(out.shape, generator=gen) + 0.5
        total = torch.zeros_like(value).index_add_(axis, src, shares)
        out = out * shares / total.index_select(axis, src)
    return out


class Rule(NamedTuple):
    """How one kind of parameter grows: {axis: (source indices, split)}, and how many of its
    leading (old) rows are attention queries, which are scaled by factor ** -0.5 because dot
    products over copied features grow by the factor."""

    pattern: str
    axes: dict[int, tuple[Tensor, bool]]
    queries: int = 0


def index_maps(cfg, factor: int, last_conv: int) -> list[Rule]:
    """A Rule for every parameter that changes. Parameters that match no pattern keep their
    shape (the CNN's first layers, the decoder's pixel MLP); widen() checks every shape
    against the wider model."""
    d, h = cfg.dim, int(cfg.dim * cfg.mlp_ratio)
    di, n, heads = cfg.d_inner, cfg.d_state, cfg.ssm_heads
    D, H, DI, HEADS = (_copies(k, factor) for k in (d, h, di, heads))
    vec = {0: (D, False)}  # a D-wide vector: LayerNorm, bias of a layer that outputs D
    out_in = {0: (D, False), 1: (D, True)}  # a D -> D linear layer
    mlp = r"^(blocks\.\d+\.(encoder\.)?mlp|predictor)"  # D -> H -> D, model/slot_encoder.py
    return [
        Rule(rf"^encoder\.cnn\.{last_conv}\.(weight|bias)$", vec),  # the conv that outputs D
        Rule(r"^encoder\.pos\.proj\.(weight|bias)$", vec),
        Rule(r"^encoder\.mlp\.0\.(weight|bias)$", vec),  # LayerNorm
        Rule(r"^encoder\.mlp\.[13]\.weight$", out_in),
        Rule(r"^encoder\.mlp\.[13]\.bias$", vec),
        Rule(r"^slot_queries$", {1: (D, False)}),
        Rule(r"attn\.to_q\.weight$", out_in, d),
        Rule(r"attn\.to_kv\.weight$", {0: (_copies(2 * d, factor), False), 1: (D, True)}),
        Rule(r"gru\.weight_(ih|hh)$", {0: (_copies(3 * d, factor), False), 1: (D, True)}),
        Rule(r"gru\.bias_(ih|hh)$", {0: (_copies(3 * d, factor), False)}),
        Rule(mlp + r"\.0\.weight$", {0: (H, False), 1: (D, True)}),
        Rule(mlp + r"\.0\.bias$", {0: (H, False)}),
        Rule(mlp + r"\.2\.weight$", {0: (D, False), 1: (H, True)}),
        Rule(mlp + r"\.2\.bias$", vec),
        Rule(r"encoder\.out\.weight$", out_in),
        Rule(r"encoder\.out\.bias$", vec),
        Rule(r"slot_mixer\.qkv\.weight$", {0: (_copies(3 * d, factor), False), 1: (D, True)}, d),
        Rule(r"slot_mixer\.out\.weight$", out_in),
        Rule(r"slot_mixer\.out\.bias$", vec),
        Rule(
            r"time_mixer\.in_proj\.weight$",  # rows: z, x (d_inner each), B, C (d_state), dt (heads)
            {0: (_cat(DI, DI, torch.arange(2 * n), HEADS), False), 1: (D, True)},
        ),
        Rule(r"time_mixer\.conv1d\.(weight|bias)$", {0: (_cat(DI, torch.arange(2 * n)), False)}),
        Rule(r"time_mixer\.(dt_bias|A_log|D)$", {0: (HEADS, False)}),
        Rule(r"time_mixer\.norm\.weight$", {0: (DI, False)}),  # RMSNorm over d_inner
        Rule(r"time_mixer\.out_proj\.weight$", {0: (D, False), 1: (DI, True)}),
        Rule(
            r"^decoder\.slot_in\.weight$", {1: (_cat(D, torch.arange(4)), True)}
        ),  # slot, pos, scale
        Rule(r"^predict_shift\.weight$", {1: (D, True)}),
        Rule(r"(norm_\w+|^decoder\.norm)\.(weight|bias)$", vec),  # LayerNorms of the slots
    ]


def widen(model: OCSlotSSM, factor: int = 2, seed: int = 0, noise: float = 0.0) -> OCSlotSSM:
    """A model `factor` times as wide (dim, and with it the MLPs, the SSM's inner width and
    heads) that computes what `model` computes, up to float rounding. noise > 0 adds Gaussian
    noise of that fraction of each widened weight's standard deviation (Net2Net's way to set
    copies apart at once, at the price of changing the function a little)."""
    cfg = model.config
    if cfg.time_mixer != "ssm":
        raise ValueError(f"widen supports the ssm time mixer, not {cfg.time_mixer!r}")
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    wide = OCSlotSSM(replace(cfg, dim=cfg.dim * factor))
    if wide.config.ssm_heads != cfg.ssm_heads * factor:
        raise ValueError("the SSM's heads must grow with the width (keep headdim and expand)")
    maps = index_maps(cfg, factor, last_conv=len(model.encoder.cnn) - 1)
    gen = torch.Generator().manual_seed(seed)
    target = wide.state_dict()
    state = {}
    for name, value in model.state_dict().items():
        rule = next((r for r in maps if re.search(r.pattern, name)), None)
        for axis, (src, split) in rule.axes.items() if rule else ():
            value = _expand(value, axis, src, split, gen)
        if rule and rule.queries:
            value[: rule.queries * factor] *= factor**-0.5
        if rule and value.dim() > 1 and noise > 0:
            value = value + noise * value.std() * torch.randn(value.shape, generator=gen)
        if value.shape != target[name].shape:
            raise ValueError(
                f"widen: {name} became {tuple(value.shape)}, the wider model needs "
                f"{tuple(target[name].shape)}"
            )
        state[name] = value
    wide.load_state_dict(state)
    return wide


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="weights", help="folder or Hub id of the model")
    parser.add_argument("--factor", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weight shares")
    parser.add_argument(
        "--noise", type=float, default=0.0, help="relative noise on widened weights (0: exact)"
    )
    parser.add_argument("--out", required=True, help="folder for the wider model")
    args = parser.parse_args(argv)
    wide = widen(OCSlotSSM.from_pretrained(args.weights), args.factor, args.seed, args.noise)
    wide.save_pretrained(args.out)
    count = sum(p.numel() for p in wide.parameters())
    print(f"dim {wide.config.dim}, {count:,} parameters -> {args.out}")


if __name__ == "__main__":
    main()
