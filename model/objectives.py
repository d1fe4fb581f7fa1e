"""The training objectives of OC-SlotSSM: what `model.train` (and `model.adapt`) minimise. No
label of any object: depth, RGB and what the frames themselves give.

Log-depth (squared error; --depth-loss log_l1: absolute, silog: scale-invariant), RGB
reconstruction, two that are about time (flow, contrast), one about edges (distill), and a
weighting of the first two (edge weight):
- with flow_head=true, each frame's motion since the previous frame (--flow-weight), computed
  from the frames by OpenCV (model/flow.py), so real videos without depth have it too. An
  object moves as one piece, so flow rewards masks that follow whole objects; and only a
  model that remembers the previous frame can know it, so it gives the SSM state a job.
- --distill-weight: the decoder learns to draw its own masks as the guided filter re-fits
  them to the frame's colour edges (model/refine.py), at the input size: self-distillation,
  no labels. The filter keeps each slot's layout and moves only its rim onto the image's
  edges, so the decoder alone learns to put object boundaries where they are, which it
  cannot learn from the losses above, all computed at half the input size.
- --edge-weight: depth and RGB errors count up to 1 + W times more at depth edges (cells whose
  disparity is off the plane of their neighbours), so a small object, all edge, weighs like a
  large one; otherwise the floor and walls fill most of the loss and small objects get no slot.
- --contrast-weight: SlotContrast (Manasyan et al., CVPR 2025), each slot at frame t must
  pick out itself at t + 1 among all slots of the batch at t + 1: a slot that keeps an image
  region while objects move through it changes content and fails it.
- --predict-weight (models with predict_next=true): the paper's video prediction. Frame t + 1's
  depth and RGB decoded from frame t's slots, moved one step ahead by a small MLP and drawn
  around positions shifted by a predicted motion: a slot must carry its object's motion, which
  no single frame shows.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from einops import rearrange

from .refine import refine_masks
from .slotssm import SlotOutput

MIN_DEPTH = 1e-3  # metres; log-depth of smaller (or unknown, 0) values is not defined
DEPTH_LOSSES = ("log", "log_l1", "silog")  # the first is the default (see --depth-loss)
SILOG_LAMBDA = 0.85  # weight of the scale-invariant term (Eigen et al. 2014)


def pooled_log_depth(depth: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """depth (..., H, W) in metres, 0 = unknown -> (N, 1, H / k, W / k) twice, N the leading
    dimensions flattened: each k x k cell's mean log-depth over its known pixels (pool(sum) /
    pool(count), so unknown pixels do not pull it to 0), and the share of its pixels known."""
    valid = (depth > MIN_DEPTH).float()
    log_d = torch.log(depth.clamp_min(MIN_DEPTH)) * valid
    count = F.avg_pool2d(valid.reshape(-1, 1, *depth.shape[-2:]), k)
    target = F.avg_pool2d(log_d.reshape(-1, 1, *depth.shape[-2:]), k) / count.clamp_min(1e-6)
    return target, count


def losses(
    out: SlotOutput,
    video: torch.Tensor,
    depth: torch.Tensor,
    depth_loss: str,
    flow: torch.Tensor | None = None,
    flow_known: torch.Tensor | None = None,
    contrast_temperature: float | None = None,
    edge_weight: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Targets are averaged down to the decoder's (h, w). video (B, T, 3, H, W), depth
    (B, T, H, W), flow (B, T, 2, H, W) in pixels with flow_known (B, T) 1 where frame t's
    motion since frame t - 1 is known. With a temperature, also the slot contrast. With an
    edge weight, depth and RGB count up to 1 + edge_weight times more at depth edges
    (`depth_edges`)."""
    h, w = out.log_depth.shape[-2:]
    k = video.shape[-1] // w
    target, count = pooled_log_depth(depth, k)
    known = (count > 0.5).float()  # at least half the pixels of the cell have depth
    diff = (out.log_depth.flatten(0, 1).unsqueeze(1) - target) * known
    cell = 1 + edge_weight * depth_edges(target, known) if edge_weight else torch.ones_like(known)
    if depth_loss == "silog":  # invariant to a global scale per frame: for relative depth
        # per frame, then averaged over the frames with depth: mean(d^2) - lambda mean(d)^2 of
        # one frame is >= 0; mixing a pixel-weighted first term with a frame-weighted second
        # one is not (a frame with few known pixels, e.g. mostly sky, then pays a negative loss);
        # with the edge weight as weighted means (still >= 0 per frame)
        weight = cell * known
        per_frame = weight.sum((1, 2, 3)).clamp_min(1e-6)
        mean_sq = (weight * diff.pow(2)).sum((1, 2, 3)) / per_frame
        mean = (weight * diff).sum((1, 2, 3)) / per_frame
        has_depth = (known.sum((1, 2, 3)) > 0).float()
        d = ((mean_sq - SILOG_LAMBDA * mean**2) * has_depth).sum() / has_depth.sum().clamp_min(1.0)
    else:  # log: squared error; log_l1: |log p - log t| ~ |p - t| / t, AbsRel's own, per pixel
        err = diff.abs() if depth_loss == "log_l1" else diff.pow(2)
        d = (cell * err).sum() / (cell * known).sum().clamp_min(1.0)
    result = {"depth": d}
    if out.rgb is not None:
        target_rgb = F.avg_pool2d(video.flatten(0, 1), k).view_as(out.rgb)
        sq = (out.rgb - target_rgb).pow(2).mean(2)  # (B, T, h, w)
        result["rgb"] = (cell.view_as(sq) * sq).sum() / cell.sum()
    if flow is not None and out.flow is not None:
        target_flow = F.avg_pool2d(flow.flatten(0, 1), k).view(*flow.shape[:3], h, w)
        per_frame = (out.flow - target_flow).pow(2).mean(dim=(2, 3, 4))  # (B, T)
        result["flow"] = (per_frame * flow_known).sum() / flow_known.sum().clamp_min(1.0)
    if contrast_temperature is not None:
        result["contrast"] = slot_contrast(out.slots, contrast_temperature)
    return result


def depth_edges(log_depth: torch.Tensor, known: torch.Tensor, scale: float = 0.2) -> torch.Tensor:
    """(N, 1, h, w) log-depth and its known cells -> (N, 1, h, w) in [0, 1]: how far each cell
    is from lying on a plane with its neighbours, 1 at and beside a depth edge. Disparity
    (1 / depth) is affine in image coordinates on any plane, so its Laplacian relative to the
    disparity is ~0 on a floor or a wall however steep its perspective, and large where an
    object's outline cuts the depth. A cell within one cell of that counts."""
    disp = torch.exp(-log_depth) * known
    laplace = disp.new_tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    # padded by linear extrapolation (2 x0 - x1), so a plane stays a plane up to the border
    pad = (1, 1, 1, 1)
    padded = 2 * F.pad(disp, pad, mode="replicate") - F.pad(disp, pad, mode="reflect")
    curvature = F.conv2d(padded, laplace).abs()
    curvature = curvature / disp.clamp_min(1e-6) * known
    # an unknown neighbour (sky) is no edge: its zero disparity would read as one
    all_known = -F.max_pool2d(-F.pad(known, (1, 1, 1, 1), value=1.0), 3, 1)
    near = F.max_pool2d(curvature * all_known, 3, 1, 1)
    return (near / scale).clamp(max=1.0) * known


def next_frame_loss(
    out: SlotOutput, video: torch.Tensor, depth: torch.Tensor, depth_loss: str, rgb_weight: float
) -> torch.Tensor:
    """Video prediction: frames 1..T-1 as decoded from the slots of frames 0..T-2
    (out.next_*), with the same depth and RGB losses as the frames themselves."""
    if out.next_log_depth is None:
        raise ValueError("--predict-weight needs a model with predict_next=true")
    if video.shape[1] < 2:
        return video.new_zeros(())
    ahead = replace(
        out,
        log_depth=out.next_log_depth[:, :-1],
        rgb=out.next_rgb[:, :-1] if out.next_rgb is not None else None,
        flow=None,
    )
    parts = losses(ahead, video[:, 1:], depth[:, 1:], depth_loss)
    return parts["depth"] + rgb_weight * parts.get("rgb", 0.0)


def slot_contrast(slots: torch.Tensor, temperature: float) -> torch.Tensor:
    """SlotContrast's temporal loss (Manasyan et al. 2025). slots (B, T, N, D): InfoNCE of
    each slot at frame t against all B*N slots at frame t + 1, its own slot the positive.
    Negatives from other clips share the slot's initial query, so a slot cannot pass by
    its index alone: it must keep its content, i.e. stay on what it covered."""
    if slots.shape[1] < 2:
        return slots.new_zeros(())
    z = F.normalize(slots.float(), dim=-1)
    now = rearrange(z[:, :-1], "b t n d -> t (b n) d")
    nxt = rearrange(z[:, 1:], "b t n d -> t (b n) d")
    logits = now @ nxt.transpose(1, 2) / temperature  # (T-1, B*N, B*N)
    labels = torch.arange(logits.shape[1], device=slots.device).repeat(logits.shape[0])
    return F.cross_entropy(logits.flatten(0, 1), labels)


def refined_mask_distillation(
    masks: torch.Tensor, video: torch.Tensor, radius: int, eps: float
) -> torch.Tensor:
    """masks (B, T, N, h, w), softmax over N; video (B, T, 3, H, W). KL divergence from the
    same masks refined to the frames' edges (the target, no gradient through it) to the
    masks upsampled to (H, W) as the app does, per pixel. Soft targets: argmax targets
    let the slot that covers most of a small object's rim take the object (measured)."""
    m, frames = masks.flatten(0, 1).float(), video.flatten(0, 1).float()
    with torch.no_grad():
        target = refine_masks(m, frames, radius, eps)
    up = F.interpolate(m, size=frames.shape[-2:], mode="bilinear", align_corners=False)
    kl = target * (target.clamp_min(1e-6).log() - up.clamp_min(1e-6).log())
    return kl.sum(1).mean()
