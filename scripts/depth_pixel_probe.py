"""Can the frozen encoder's tokens, pixel by pixel, correct the shipped weights' depth?
(docs/experiments.md, "The whole model trained on for depth", thirty-fifth session)

    PYTHONPATH=. python scripts/depth_pixel_probe.py    # about 1 min on 2 CPU cores

A ridge regression, fitted on 4 frames of each of 300 `data/train12` clips, predicts each mask
pixel's log-depth error (log true - log predicted, at the shipped decoding stride) from the
encoder's 128 token channels there (bilinearly upsampled from the 16x16 grid), the predicted
log-depth and a bias. Prints AbsRel before and after the correction, on those frames and on
all 8 frames of the 64 `data/val` clips, as predicted and with each frame rescaled by its
median ratio (what is left once the scale is right). A per-pixel depth head would need this
to go down on validation.
"""

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from model import OCSlotSSM
from model.data import load_folder
from model.objectives import pooled_log_depth


@torch.no_grad()
def pixels(model: OCSlotSSM, clips, frames: int):
    """Per mask pixel whose depth is fully known: token features, true and predicted log-depth,
    and the frame it belongs to."""
    grab = {}  # the encoder's tokens, as the forward pass computes them
    hook = model.encoder.register_forward_hook(lambda m, a, o: grab.__setitem__("tokens", o))
    feats, true, pred, frame = [], [], [], []
    for clip in clips:
        video = torch.from_numpy(clip.rgb[:frames]).permute(0, 3, 1, 2).float() / 255
        p = model(video[None]).log_depth[0]  # (T, h, w)
        tokens = grab["tokens"]  # (T, L, D)
        grid = rearrange(tokens, "t (h w) d -> t d h w", h=int(tokens.shape[1] ** 0.5))
        grid = F.interpolate(grid, size=p.shape[-2:], mode="bilinear", align_corners=False)
        depth = torch.from_numpy(clip.depth[:frames]).float()
        target, count = pooled_log_depth(depth, depth.shape[-1] // p.shape[-1])
        target, count = target[:, 0], count[:, 0]
        for t in range(p.shape[0]):
            ok = (count[t] > 0.99).flatten()
            feats.append(grid[t].flatten(1).T[ok].numpy())
            true.append(target[t].flatten()[ok].numpy())
            pred.append(p[t].flatten()[ok].numpy())
            frame.append(np.full(int(ok.sum()), len(frame)))
    hook.remove()
    return [np.concatenate(x) for x in (feats, true, pred, frame)]


def absrel(true, pred, frame, per_frame_scale=False):
    if per_frame_scale:  # each frame rescaled by its median ratio
        offset = np.array([np.median((true - pred)[frame == f]) for f in range(frame[-1] + 1)])
        pred = pred + offset[frame]  # frames are numbered 0, 1, ... in order
    return float(np.mean(np.abs(np.exp(pred - true) - 1)))


def main():
    model = OCSlotSSM.from_pretrained("weights").eval()
    train = pixels(model, load_folder("data/train12", 64, 300), 4)
    val = pixels(model, load_folder("data/val", 64, 64), 8)

    def design(feats, pred):
        return np.concatenate([feats, pred[:, None], np.ones((len(pred), 1))], 1)

    a = design(train[0], train[2])
    for lam in (1e-1, 1e1, 1e3):
        w = np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ (train[1] - train[2]))
        for name, (feats, true, pred, frame) in (("train", train), ("val", val)):
            fixed = pred + design(feats, pred) @ w
            print(
                f"ridge {lam:g}, {name} ({len(true)} px): AbsRel {absrel(true, pred, frame):.4f}"
                f" -> {absrel(true, fixed, frame):.4f}; per-frame scaled "
                f"{absrel(true, pred, frame, True):.4f} -> {absrel(true, fixed, frame, True):.4f}"
            )


if __name__ == "__main__":
    main()
