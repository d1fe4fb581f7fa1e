"""The words on the page. The model's measured quality lives in MEASURED, the one place to
update when the model changes (the model card, weights/README.md, has the full tables)."""

from __future__ import annotations

# Measured on the shipped weights; update with the model card when the model changes.
MEASURED = {
    # video FG-ARI on held-out clips of the project's renderer (1 = every object its own slot
    # through the whole clip, 0 = no better than chance)
    "fg_ari_decoder": 0.76,  # the network's masks alone
    "fg_ari_shown": 0.83,  # after the weight-free edge fitting and tracking the page shows
    "depth_absrel": 0.092,  # mean relative depth error on the same clips
    # as shown, on scenes of a second renderer that shares no code with ours (bench/sdf_scenes.py)
    "fg_ari_other_renderer": 0.49,
    # what adapting to each clip (the page's option, 100 steps) added to it, on all 32 of those clips
    "adapt_gain_other_renderer": 0.11,
    # share of objects hidden for two frames or more (a panel passing in front of the camera)
    # that come back in the slot that was theirs (model.evaluate's decoder_reidentified)
    "reidentified": 0.09,
}

DESCRIPTION = """
# Slot decomposition studio
Drop in a video and see how **OC-SlotSSM** ([Slot State Space Models](https://arxiv.org/abs/2406.12272),
Jiang et al., NeurIPS 2024) splits it into a few *slots*. The model was trained only to predict
**depth** on scenes rendered by this project; it was never shown what an object is. **Every pixel
is coloured by the slot that explains it best**, and the predicted depth is shown beside it.
"""

HONESTY = f"""
**What to expect.** On rendered scenes like the examples, the slots mostly line up with the
objects: the model's own masks score {MEASURED["fg_ari_decoder"]:.2f} video FG-ARI on held-out
scenes, {MEASURED["fg_ari_shown"]:.2f} after the page fits them to the image's edges and keeps
their colours consistent from frame to frame (1.0 would be perfect), and depth is off by
{100 * MEASURED["depth_absrel"]:.0f}% on average. On scenes of another renderer (other shapes,
lights and cameras) the score falls to {MEASURED["fg_ari_other_renderer"]:.2f}: the model has
learned the look of the scenes it was trained on, and adapting it to each clip (the option
beside the video) raised that by about {MEASURED["adapt_gain_other_renderer"]:.2f} on average,
though a few clips came out worse. Each frame's slots start from the previous frame's, so on
the project's scenes a slot keeps its object from frame to frame, but not through an occlusion:
an object hidden for a moment comes back in its own slot only
{100 * MEASURED["reidentified"]:.0f}% of the time. On real footage the slots are
mostly **regions of the image** (a character split over several slots it shares with the
background), not objects; depth is relative there (near vs far), not metres.
"""

SLOT_SOURCES = [
    ("fitted to image edges, colours kept across frames", "tracked"),
    ("fitted to image edges, the model's slot order", "untracked"),
    ("the decoder's masks alone", "decoded"),
]
SLOT_SOURCES_INFO = "edge fitting and colour matching need no training; the last is the model alone"
