"""Is the shipped weights' depth-scale error predictable from what the network computes per
frame? (docs/experiments.md, "The scale of depth", twenty-eighth session)

    PYTHONPATH=. python scripts/depth_scale_probe.py --train data/train12 --train-clips 500  # 33 s

Per validation clip: the log-scale error (median of log true - log predicted depth) and its
spread between frames; AbsRel as predicted, with each clip and each frame rescaled by its own
error (oracles). Then ridge regressions (regularisation by cross-validation) fitted on the
training clips' frames predict a frame's error from the mean of the slots the decoder sees,
from the encoder's tokens averaged over the frame, or over its four quadrants: R^2 on the
validation frames, and validation AbsRel once corrected by the prediction.

    PYTHONPATH=. python scripts/depth_scale_probe.py --heads data/train --heads-clips 4000  # 8 min

adds two small nonlinear networks trained on more clips (two frames of each): a CNN on the
encoder's token grid and a CNN on the RGB frame, each predicting the frame's error (R^2, AbsRel
corrected), and the RGB CNN once more predicting the frame's true log-scale itself, to set the
shipped model's own error beside a dedicated estimator's.
"""

import argparse
import math

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score
from torch import nn

from model.data import load_folder
from model.metrics import depth_metrics
from model.slotssm import OCSlotSSM


def frame_features(model: OCSlotSSM, folder: str, limit: int | None, every: int = 1):
    """Features, log-scale error and true log-scale of every `every`-th frame, each clip's
    (depth, predicted depth) and, for the heads, the frames' token grids and RGB. The scales
    (frames, 2): each frame's median log-depth, true and predicted, over its valid pixels."""
    grab = {}
    hooks = [
        model.encoder.register_forward_hook(lambda m, a, o: grab.__setitem__("tokens", o)),
        model.decoder.register_forward_pre_hook(lambda m, a: grab.__setitem__("slots", a[0])),
    ]
    feats = {"mean slot": [], "tokens": [], "token quadrants": [], "grid": [], "rgb": []}
    errors, scales, clips = [], [], []
    keep = slice(every - 1, None, every)
    for c in load_folder(folder, model.config.image_size, limit=limit):
        video = torch.from_numpy(c.rgb).permute(0, 3, 1, 2).float().div(255).unsqueeze(0)
        with torch.inference_mode():
            out = model(video)
            depth = F.interpolate(
                out.log_depth[0].unsqueeze(1), size=c.depth.shape[1:], mode="bilinear"
            )[:, 0].exp()
            tokens = grab["tokens"]  # (T, L, D)
            grid = rearrange(tokens, "t (y x) d -> t d y x", y=int(tokens.shape[1] ** 0.5))
            feats["mean slot"].append(model.decoder.norm(grab["slots"]).mean(1)[keep].numpy())
            feats["tokens"].append(tokens.mean(1)[keep].numpy())
            feats["token quadrants"].append(F.adaptive_avg_pool2d(grid, 2).flatten(1)[keep].numpy())
            feats["grid"].append(grid[keep].half().numpy())
            feats["rgb"].append(c.rgb[keep])
        depth = depth.numpy()[keep]
        true = c.depth[keep]
        for t in range(len(depth)):
            valid = true[t] > 0
            log_true, log_pred = np.log(true[t][valid]), np.log(depth[t][valid])
            # the frame's log-scale: true, and as the model predicts it (same pixels)
            scales.append([np.median(log_true), np.median(log_pred)])
            errors.append(np.median(log_true - log_pred))
        clips.append((true, depth))
    for h in hooks:
        h.remove()
    feats = {k: np.concatenate(v) for k, v in feats.items()}
    return feats, np.array(errors, np.float32), np.array(scales, np.float32), clips


def absrel(clips, scale_per_frame: np.ndarray | None = None) -> float:
    """Mean over clips of AbsRel, the prediction of frame i multiplied by scale_per_frame[i]."""
    scores, i = [], 0
    for true, pred in clips:
        if scale_per_frame is not None:
            pred = pred * scale_per_frame[i : i + len(pred), None, None]
        i += len(pred)
        scores.append(depth_metrics(pred, true)["absrel"])
    return float(np.mean(scores))


def cnn(channels: int, size: int) -> nn.Module:
    """Strided 3x3 convolutions down to 4x4, then an MLP to one number."""
    layers, c = [], channels
    for _ in range(int(math.log2(size // 4))):
        layers += [nn.Conv2d(c, 64, 3, 2, 1), nn.GELU()]
        c = 64
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(64 * 16, 64), nn.GELU(), nn.Linear(64, 1))


def fit_head(x: torch.Tensor, y: np.ndarray, x_val: torch.Tensor, epochs: int = 6) -> np.ndarray:
    """A CNN fitted to y (absolute error, AdamW, one-cycle schedule); its validation prediction."""
    torch.manual_seed(0)
    net = cnn(x.shape[1], x.shape[-1])
    target, mean = torch.from_numpy(y), float(y.mean())
    steps = epochs * (len(x) // 64)
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 1e-3, total_steps=steps)
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x) - 63, 64):
            idx = order[i : i + 64]
            loss = (net(x[idx].float())[:, 0] + mean - target[idx]).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    with torch.no_grad():
        pred = [net(x_val[i : i + 256].float())[:, 0] for i in range(0, len(x_val), 256)]
    return torch.cat(pred).numpy() + mean


def as_input(feats: dict, key: str) -> torch.Tensor:
    if key == "rgb":
        return torch.from_numpy(feats["rgb"]).permute(0, 3, 1, 2).div(255)
    return torch.from_numpy(feats["grid"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default="weights")
    p.add_argument("--train", default="data/train12")
    p.add_argument("--train-clips", type=int, default=500)
    p.add_argument("--val", default="data/val")
    p.add_argument("--heads", help="clips to train the nonlinear heads on (e.g. data/train)")
    p.add_argument("--heads-clips", type=int, default=4000)
    args = p.parse_args()
    model = OCSlotSSM.from_pretrained(args.weights).eval()
    x_train, y_train, _, _ = frame_features(model, args.train, args.train_clips)
    x_val, y_val, s_val, clips = frame_features(model, args.val, None)  # s_val: true, predicted

    per_clip, spread, offsets, i = [], [], [], 0
    for _, pred in clips:
        e = y_val[i : i + len(pred)]
        i += len(pred)
        per_clip.append(np.median(e))  # one number per clip (median of its frames')
        spread.append(e.std())
        offsets.append(np.full(len(pred), np.exp(per_clip[-1])))
    print(
        f"val: {len(clips)} clips; clip log-scale error spread over clips "
        f"{np.std(per_clip):.3f}, between frames of a clip {np.mean(spread):.3f}"
    )
    print(
        f"AbsRel {absrel(clips):.4f}; each clip rescaled {absrel(clips, np.concatenate(offsets)):.4f}; "
        f"each frame rescaled {absrel(clips, np.exp(y_val)):.4f}"
    )
    slope = np.polyfit(s_val[:, 1], s_val[:, 0], 1)[0]
    print(f"true on predicted log-scale per frame: slope {slope:.2f} (1 = calibrated)")
    for name in ("mean slot", "tokens", "token quadrants"):
        fit = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(x_train[name], y_train)
        pred = fit.predict(x_val[name])
        print(
            f"{name}: R^2 val {r2_score(y_val, pred):.2f} (train {fit.score(x_train[name], y_train):.2f}); "
            f"AbsRel corrected {absrel(clips, np.exp(pred)):.4f}"
        )
    if args.heads is None:
        return
    x_heads, y_heads, s_heads, _ = frame_features(model, args.heads, args.heads_clips, every=4)
    print(f"heads: {len(y_heads)} frames of {args.heads}")
    for key, name in (("grid", "CNN on the token grid"), ("rgb", "CNN on the RGB frame")):
        pred = fit_head(as_input(x_heads, key), y_heads, as_input(x_val, key))
        print(
            f"{name}: R^2 val {r2_score(y_val, pred):.2f}; AbsRel corrected {absrel(clips, np.exp(pred)):.4f}"
        )
    pred = fit_head(as_input(x_heads, "rgb"), s_heads[:, 0], as_input(x_val, "rgb"))
    true, own = s_val.T
    print(
        f"true log-scale per frame (spread {true.std():.3f}): error spread of the shipped model "
        f"{np.std(true - own):.3f}, of the CNN on the RGB frame {np.std(true - pred):.3f}"
    )


if __name__ == "__main__":
    main()
