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

from model.palette import colorize_ids, slot_color

BORDER_DARKEN = 0.35  # slot borders are drawn at this brightness, to read as outlines
DIM = 0.25  # brightness of the other slots in the "only this slot" view


def upsample_masks(masks: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """masks (t, N, h, w) -> slot ids (t, H, W) uint8 at size = (W, H): the slot whose
    bilinearly upsampled mask is largest at each output pixel."""
    # OpenCV resizes all N channels of a frame in one SIMD pass: 7x faster on CPU than
    # F.interpolate here, and only the low-resolution masks leave the GPU
    frames = masks.float().permute(0, 2, 3, 1).cpu().numpy()  # (t, h, w, N)
    ids = np.empty((len(frames), size[1], size[0]), np.uint8)
    for out, frame in zip(ids, frames, strict=True):  # frame by frame: 8 MB, not 133 MB
        out[:] = (
            cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
            .reshape(*out.shape, -1)
            .argmax(-1)
        )
    return ids


def borders(ids: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels whose right or lower neighbour belongs to another slot."""
    edge = np.zeros(ids.shape, bool)
    edge[:, :-1] |= ids[:, :-1] != ids[:, 1:]
    edge[:-1, :] |= ids[:-1, :] != ids[1:, :]
    return edge


def overlay(frame: np.ndarray, ids: np.ndarray, opacity: float) -> np.ndarray:
    """Frame (H, W, 3) uint8 blended with the slot colours, with slot borders outlined."""
    out = cv2.addWeighted(frame, 1.0 - opacity, colorize_ids(ids), opacity, 0.0)
    # OpenCV's masked copy: ten times faster than numpy's boolean indexing at 640x360
    cv2.copyTo(cv2.convertScaleAbs(out, alpha=BORDER_DARKEN), borders(ids).view(np.uint8), out)
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
    frames), near = bright, so colours mean the same distance in every frame. The scale is
    drawn on the page (depth_scale_html), not into the video, where player controls cover it."""

    def __init__(self, first_depths: np.ndarray):
        logd = np.log(np.maximum(first_depths, 1e-6))
        self.lo, self.hi = np.percentile(logd, [2, 98])
        if self.hi - self.lo < 1e-3:
            self.hi = self.lo + 1e-3

    @property
    def range(self) -> tuple[float, float]:
        """Depth at the near (brightest) and far (darkest) ends of the colour scale."""
        return float(np.exp(self.lo)), float(np.exp(self.hi))

    def __call__(self, depth: np.ndarray) -> np.ndarray:
        """depth (H, W) -> (H, W, 3) uint8."""
        x = (np.log(np.maximum(depth, 1e-6)) - self.lo) / (self.hi - self.lo)
        return colormap(1.0 - np.clip(x, 0, 1))


def colormap(x: np.ndarray) -> np.ndarray:
    """x in [0, 1] (1 = near) -> RGB uint8, the depth view's colours (inferno)."""
    return cv2.applyColorMap((x * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[..., ::-1]


def depth_scale_html(depth_range: tuple[float, float], metric: bool) -> str:
    """A horizontal colour bar, near (bright) on the left, labelled in dark text on the page."""
    stops = ", ".join(
        "rgb({},{},{})".format(*colormap(np.array([[x]]))[0, 0]) for x in np.linspace(1, 0, 9)
    )
    if metric:
        near, far = (f"{d:.1f} m" for d in depth_range)
        unit = "metres (the rendered scenes have true depth)"
    else:
        near, far, unit = "near", "far", "relative (near → far): no scale is known for this video"
    bar = f"height:14px;border-radius:3px;background:linear-gradient(to right, {stops})"
    return (
        '<div class="depth-scale" style="max-width:520px">'
        f'<div style="{bar}"></div>'
        '<div style="display:flex;justify-content:space-between;font-size:0.9em">'
        f"<span>{html.escape(near)}</span><span>{html.escape(far)}</span></div>"
        f'<div style="font-size:0.85em;opacity:0.8">Depth: {html.escape(unit)}</div></div>'
    )


class KeyFrames:
    """A few frames spread over the video, kept small (input | slots | depth) for a PNG strip."""

    COUNT, WIDTH = 4, 240  # key frames, and the width of each of the three panels

    def __init__(self, expected_frames: int):
        self.wanted = set(np.linspace(0, expected_frames - 1, self.COUNT).round().astype(int))
        self.kept: dict[int, np.ndarray] = {}
        self.last: np.ndarray | None = None

    def offer(self, index: int, *panels: np.ndarray) -> None:
        if index in self.wanted or not self.kept:
            self.kept[index] = self._row(panels)
            self.last = None
        else:
            self.last = panels  # kept as the last frame in case the video ends early

    def _row(self, panels) -> np.ndarray:
        h, w = panels[0].shape[:2]
        size = (self.WIDTH, max(2, round(h * self.WIDTH / w)))
        return np.concatenate(
            [cv2.resize(p, size, interpolation=cv2.INTER_AREA) for p in panels], 1
        )

    def rows(self) -> list[np.ndarray]:
        rows = [self.kept[i] for i in sorted(self.kept)]
        if self.last is not None and len(rows) < self.COUNT:
            rows.append(self._row(self.last))
        return rows


def composite(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return np.concatenate([left, right], axis=1)


def legend_html(shares: np.ndarray) -> str:
    """Colour chips for each slot with its average share of the pixels."""
    chips = []
    for i, share in enumerate(shares):
        r, g, b = slot_color(i)
        chips.append(
            f'<span class="slot-chip" style="display:inline-flex;align-items:center;gap:6px;margin:2px 10px 2px 0">'
            f'<span style="width:14px;height:14px;border-radius:3px;background:rgb({r},{g},{b});display:inline-block"></span>'
            f"{html.escape(f'slot {i}')} <small>({100 * share:.0f}%)</small></span>"
        )
    return '<div class="slot-legend">' + "".join(chips) + "</div>"
