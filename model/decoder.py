"""Decoder: each slot is decoded on its own into alpha, log-depth (and RGB); a softmax over
slots of the alphas gives the masks.

A spatial-broadcast MLP (Watters et al. 2019) of the slot and the pixel position, evaluated
on a grid (the token grid, or every mask pixel: Config.decoder_stride) and upsampled to half
the input size. It is deliberately weak: a slot must carry its region in its own vector,
which is cheap for one compact object and expensive for scattered pixels of one colour, so
slots come to bind to objects.

As in Invariant Slot Attention (Biza et al. 2023), each slot also has a position and a
scale (the centre and spread of the tokens it attended to), and decodes in coordinates
relative to them: slots that read different places draw different, compact masks from the
first training step, instead of all drawing the same average.

Depth is the mask-weighted sum of the slots' log-depths; the slot ID of a pixel is the
argmax of the masks. An optional depth head (Config.depth_head) adds to each slot's
log-depth a residual from an MLP of its own on the same first layer: capacity for depth that
the masks and RGB do not share; trained alone on frozen weights (train --train-only
depth_mlp) it improves depth while the masks stay exactly as they were. An optional flow
head predicts each slot's optical flow the same way: an object moves as one piece, so flow
rewards masks that follow whole objects, where colour alone rewards splitting an object
along its texture or shading.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

MIN_SCALE, MAX_SCALE = 0.05, 2.0  # spread of a slot, in units of the [-1, 1] image coordinates
# without gradients the MLP runs on this many frames at a time: its hidden activations
# (frames x slots x pixels x hidden floats) then stay in the CPU's cache, where the whole
# chunk's (~38 MB for 16 frames at stride 2) went to memory and back once per layer
INFERENCE_FRAMES = 2


def token_coordinates(h: int, w: int, device=None) -> Tensor:
    """(h*w, 2) token centres (x, y) in [-1, 1]."""
    ys = torch.linspace(-1.0, 1.0, h, device=device)
    xs = torch.linspace(-1.0, 1.0, w, device=device)
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([x, y], dim=-1).reshape(-1, 2)


def slot_frames(
    attention: Tensor, grid: tuple[int, int], eps: float = 1e-8
) -> tuple[Tensor, Tensor]:
    """attention (B, N, L), softmax over slots -> each slot's position (B, N, 2) and scale
    (B, N, 2): mean and standard deviation of the token coordinates, weighted by the
    slot's attention renormalised over tokens."""
    coords = token_coordinates(*grid, attention.device)
    weights = (attention + eps) / (attention + eps).sum(-1, keepdim=True)
    pos = weights @ coords
    var = weights @ coords.pow(2) - pos.pow(2)
    return pos, var.clamp_min(0).add(1e-6).sqrt().clamp(MIN_SCALE, MAX_SCALE)


@dataclass
class Decoded:
    mask_logits: Tensor  # (B, N, h, w), h, w = half the input size
    log_depth: Tensor  # (B, N, h, w) per slot
    rgb: Tensor | None  # (B, N, 3, h, w) per slot, in [0, 1]
    flow: Tensor | None  # (B, N, 2, h, w) per slot, motion since the previous frame, input pixels


class SlotDecoder(nn.Module):
    def __init__(
        self,
        dim: int,
        hidden: int,
        rgb_head: bool,
        flow_head: bool = False,
        depth_head: int = 0,
    ):
        super().__init__()
        self.rgb_head, self.flow_head = rgb_head, flow_head
        # channels: alpha, log-depth (, rgb) (, flow): new heads go last, so that a checkpoint
        # without them initialises the leading rows of the output layer (train --init)
        out_channels = 2 + (3 if rgb_head else 0) + (2 if flow_head else 0)
        self.norm = nn.LayerNorm(dim)  # the residual stream grows with depth; decode its direction
        # first layer split in two: W [slot; pos] = W_s slot + W_p pos, so the slot term is
        # computed once per slot, not once per pixel. The slot term also sees the slot's own
        # position and scale (depth depends on where in the image an object stands).
        self.slot_in = nn.Linear(dim + 4, hidden)
        self.pos_in = nn.Linear(2, hidden, bias=False)
        self.mlp = nn.Sequential(  # in place: a Linear's backward does not need its output
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, out_channels),
        )
        self.depth_mlp = head_mlp(hidden, depth_head, 1) if depth_head else None

    def forward(
        self,
        slots: Tensor,
        pos: Tensor,
        scale: Tensor,
        grid: tuple[int, int],
        size: tuple[int, int],
    ) -> Decoded:
        """slots (B, N, D) with positions and scales (B, N, 2), decoded on a grid (gh, gw) and
        upsampled to size (h, w)."""
        gh, gw = grid
        relative = (token_coordinates(gh, gw, slots.device) - pos.unsqueeze(2)) / scale.unsqueeze(
            2
        )  # (B, N, P, 2)
        slot_term = self.slot_in(torch.cat([self.norm(slots), pos, scale], dim=-1)).unsqueeze(2)
        step = len(slots) if torch.is_grad_enabled() else INFERENCE_FRAMES
        out = torch.cat(
            [
                self.decode_cells(s + self.pos_in(r))
                for s, r in zip(slot_term.split(step), relative.split(step), strict=True)
            ]
        )  # (B, N, P, C)
        out = rearrange(out, "b n (y x) c -> (b n) c y x", y=gh)
        if (gh, gw) != tuple(size):  # decoded at the mask resolution already: nothing to do
            out = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
        out = rearrange(out, "(b n) c y x -> b n c y x", n=slots.shape[1])
        return Decoded(
            mask_logits=out[:, :, 0],
            log_depth=out[:, :, 1],
            rgb=out[:, :, 2:5].sigmoid() if self.rgb_head else None,
            flow=out[:, :, -2:] if self.flow_head else None,  # the last channels
        )

    def decode_cells(self, first: Tensor) -> Tensor:
        """The first layer's output (..., hidden) -> the channels (..., C); the depth head's
        residual added to the log-depth channel."""
        if self.depth_mlp is None:
            return self.mlp(first)
        # before the shared MLP, whose first ReLU works in place on `first`
        residual = self.depth_mlp(first)
        out = self.mlp(first)
        out[..., 1:2] += residual  # in place: a Linear's backward does not need its output
        return out


def head_mlp(inputs: int, hidden: int, out_channels: int) -> nn.Sequential:
    """ReLU, two hidden layers, a linear output that starts at zero: added to a trained
    decoder, it changes nothing until it trains."""
    net = nn.Sequential(
        nn.ReLU(),
        nn.Linear(inputs, hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, out_channels),
    )
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net
