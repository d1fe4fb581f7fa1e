"""Is the shipped weights' depth-scale error predictable from what the network computes per
frame? (model card, "The scale of depth", twenty-eighth session)

    python scripts/depth_scale_probe.py --train data/train12 --train-clips 500 --val data/val

Per validation clip: the log-scale error (median of log true - log predicted depth) and its
spread between frames; AbsRel as predicted, with each clip and each frame rescaled by its own
error (oracles). Then ridge regressions (regularisation by cross-validation) fitted on the
training clips' frames predict a frame's error from the mean of the slots the decoder sees,
from the encoder's tokens averaged over the frame, or over its four quadrants: R^2 on the
validation frames, and validation AbsRel once corrected by the prediction.
"""

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from sklearn.linear_model import RidgeCV

from model.data import load_folder
from model.metrics import depth_metrics
from model.slotssm import OCSlotSSM


def frame_features(model: OCSlotSSM, folder: str, limit: int | None):
    """Every frame's features, log-scale error, and each clip's (depth, predicted depth)."""
    grab = {}
    hooks = [
        model.encoder.register_forward_hook(lambda m, a, o: grab.__setitem__("tokens", o)),
        model.decoder.register_forward_pre_hook(lambda m, a: grab.__setitem__("slots", a[0])),
    ]
    feats, errors, clips = {"mean slot": [], "tokens": [], "token quadrants": []}, [], []
    for c in load_folder(folder, model.config.image_size, limit=limit):
        video = torch.from_numpy(c.rgb).permute(0, 3, 1, 2).float().div(255).unsqueeze(0)
        with torch.inference_mode():
            out = model(video)
            depth = F.interpolate(
                out.log_depth[0].unsqueeze(1), size=c.depth.shape[1:], mode="bilinear"
            )[:, 0].exp()
            tokens = grab["tokens"]  # (T, L, D)
            grid = rearrange(tokens, "t (y x) d -> t d y x", y=int(tokens.shape[1] ** 0.5))
            feats["mean slot"].append(model.decoder.norm(grab["slots"]).mean(1).numpy())
            feats["tokens"].append(tokens.mean(1).numpy())
            feats["token quadrants"].append(F.adaptive_avg_pool2d(grid, 2).flatten(1).numpy())
        depth = depth.numpy()
        valid = c.depth > 0
        errors += [
            np.median(np.log(c.depth[t][valid[t]]) - np.log(depth[t][valid[t]]))
            for t in range(len(depth))
        ]
        clips.append((c.depth, depth))
    for h in hooks:
        h.remove()
    return {k: np.concatenate(v) for k, v in feats.items()}, np.array(errors), clips


def absrel(clips, scale_per_frame: np.ndarray | None = None) -> float:
    """Mean over clips of AbsRel, the prediction of frame i multiplied by scale_per_frame[i]."""
    scores, i = [], 0
    for true, pred in clips:
        if scale_per_frame is not None:
            pred = pred * scale_per_frame[i : i + len(pred), None, None]
        i += len(pred)
        scores.append(depth_metrics(pred, true)["absrel"])
    return float(np.mean(scores))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default="weights")
    p.add_argument("--train", default="data/train12")
    p.add_argument("--train-clips", type=int, default=500)
    p.add_argument("--val", default="data/val")
    args = p.parse_args()
    model = OCSlotSSM.from_pretrained(args.weights).eval()
    x_train, y_train, _ = frame_features(model, args.train, args.train_clips)
    x_val, y_val, clips = frame_features(model, args.val, None)

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
    for name in x_train:
        fit = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(x_train[name], y_train)
        pred = fit.predict(x_val[name])
        r2 = 1 - np.mean((y_val - pred) ** 2) / np.var(y_val)
        print(
            f"{name}: R^2 val {r2:.2f} (train {fit.score(x_train[name], y_train):.2f}); "
            f"AbsRel corrected {absrel(clips, np.exp(pred)):.4f}"
        )


if __name__ == "__main__":
    main()
