"""Pictures of the decomposition: slot-coloured overlay, colour-mapped depth with a scale,
a side-by-side composite, per-slot views, and a legend.

Masks arrive at the model's resolution and are upsampled smoothly (bilinear on the mask
probabilities, then argmax), so slot borders are smooth at any output size.
"""

from __future__ import annotations

import html

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from model.palette import PALETTE, colorize_ids, slot_color

BORDER_DARKEN = 0.35  # slot borders are drawn at this brightness, to read as outlines
DIM = 0.25  # brightness of the other slots in the "only this slot" view
SCALE_BAR_WIDTH = 14


def upsample_masks(masks: torch.Tensor, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """masks (t, N, h, w) -> slot ids (t, H, W) uint8 and the winning probability (t, H, W),
    at size = (W, H)."""
    up = F.interpolate(masks.float(), size=(size[1], size[0]), mode="bilinear", align_corners=False)
    prob, ids = up.max(dim=1)
    return ids.to(torch.uint8).cpu().numpy(), prob.cpu().numpy()


def borders(ids: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels whose right or lower neighbour belongs to another slot."""
    edge = np.zeros(ids.shape, bool)
    edge[:, :-1] |= ids[:, :-1] != ids[:, 1:]
    edge[:-1, :] |= ids[:-1, :] != ids[1:, :]
    return edge


def overlay(frame: np.ndarray, ids: np.ndarray, opacity: float) -> np.ndarray:
    """Frame (H, W, 3) uint8 blended with the slot colours, with slot borders outlined."""
    out = cv2.addWeighted(frame, 1.0 - opacity, colorize_ids(ids), opacity, 0.0)
    out[borders(ids)] = (out[borders(ids)] * BORDER_DARKEN).astype(np.uint8)
    return out


def slot_view(
    frame: np.ndarray, ids: np.ndarray, slot: int, mode: str, opacity: float
) -> np.ndarray:
    """mode 'only': the slot in colour, the rest dimmed; 'hide': the slot blacked out."""
    inside = ids == slot
    if mode == "hide":
        out = overlay(frame, ids, opacity)
        out[inside] = 0
        return out
    out = (frame * DIM).astype(np.uint8)
    tinted = cv2.addWeighted(
        frame, 1.0 - opacity / 2, np.full_like(frame, slot_color(slot)), opacity / 2, 0.0
    )
    out[inside] = tinted[inside]
    return out


class DepthColoring:
    """Log-depth to colour with one fixed range for the whole video (set from its first
    frames), near = bright, so colours mean the same distance in every frame."""

    def __init__(self, first_depths: np.ndarray):
        logd = np.log(np.maximum(first_depths, 1e-6))
        self.lo, self.hi = np.percentile(logd, [2, 98])
        if self.hi - self.lo < 1e-3:
            self.hi = self.lo + 1e-3

    def __call__(self, depth: np.ndarray) -> np.ndarray:
        """depth (H, W) -> (H, W, 3) uint8 with a scale bar on the right."""
        x = (np.log(np.maximum(depth, 1e-6)) - self.lo) / (self.hi - self.lo)
        img = self._colormap(1.0 - np.clip(x, 0, 1))
        return self._scale_bar(img)

    @staticmethod
    def _colormap(x: np.ndarray) -> np.ndarray:
        return cv2.applyColorMap((x * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[..., ::-1]

    def _scale_bar(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        if w < 4 * SCALE_BAR_WIDTH or h < 48:
            return img
        ramp = self._colormap(np.linspace(1, 0, h - 24)[:, None].repeat(SCALE_BAR_WIDTH - 4, 1))
        x0 = w - SCALE_BAR_WIDTH - 4
        img = img.copy()
        img[10 : h - 14, x0 : x0 + SCALE_BAR_WIDTH - 4] = ramp
        font, scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.3, h / 900)
        for text, y in ((f"{np.exp(self.lo):.1f}", 9), (f"{np.exp(self.hi):.1f}", h - 2)):
            (tw, _), _ = cv2.getTextSize(text, font, scale, 1)
            cv2.putText(img, text, (w - tw - 2, y), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
        return img


def composite(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return np.concatenate([left, right], axis=1)


def legend_html(shares: np.ndarray) -> str:
    """Colour chips for each slot with its average share of the pixels."""
    chips = []
    for i, share in enumerate(shares):
        r, g, b = PALETTE[i % len(PALETTE)]
        chips.append(
            f'<span class="slot-chip" style="display:inline-flex;align-items:center;gap:6px;margin:2px 10px 2px 0">'
            f'<span style="width:14px;height:14px;border-radius:3px;background:rgb({r},{g},{b});display:inline-block"></span>'
            f"{html.escape(f'slot {i}')} <small>({100 * share:.0f}%)</small></span>"
        )
    return '<div class="slot-legend">' + "".join(chips) + "</div>"
