"""OC-SlotSSM: object-centric slot state space model for video depth and decomposition."""

from .config import Config
from .segment import Segmentation, SlotSegmenter
from .slotssm import InferenceCache, OCSlotSSM, SlotOutput
from .track import SlotTracker

__all__ = [
    "Config",
    "InferenceCache",
    "OCSlotSSM",
    "Segmentation",
    "SlotOutput",
    "SlotSegmenter",
    "SlotTracker",
]
