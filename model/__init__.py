"""OC-SlotSSM: object-centric slot state space model for video depth and decomposition."""

from .config import Config
from .slotssm import InferenceCache, OCSlotSSM, SlotOutput
from .track import SlotTracker

__all__ = ["Config", "InferenceCache", "OCSlotSSM", "SlotOutput", "SlotTracker"]
