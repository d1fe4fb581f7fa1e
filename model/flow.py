"""Optical flow computed from the frames themselves (OpenCV's DIS), a training target that
exists for every video: rendered scenes and a user's own footage get the same algorithm.

The flow of frame t is its motion *since frame t - 1*, in pixels, sampled at the pixels of
frame t. A model sees frames up to t, so it can know this motion, but only by remembering
frame t - 1: predicting it is a job for the SSM's state (a model whose state is reset every
frame cannot do better than guess). An object moves as one piece, so the target also
rewards masks that cover whole objects (SAVi++, Elsayed et al. 2022).
"""

from __future__ import annotations

import cv2
import numpy as np


def dis_flow(frames: np.ndarray, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) -> np.ndarray:
    """frames (T, H, W, 3) uint8 -> (T, H, W, 2) float16 motion (dx, dy) of each pixel of frame
    t since frame t - 1; frame 0 has no predecessor and gets 0 (mark it unknown)."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    dis = cv2.DISOpticalFlow_create(preset)
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    flow = np.zeros((*frames.shape[:3], 2), np.float32)
    for t in range(1, len(frames)):
        # for each pixel of frame t, where it was in frame t - 1 (an offset); motion is minus that
        flow[t] = -dis.calc(gray[t], gray[t - 1], None)
    return flow.astype(np.float16)
