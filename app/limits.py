"""What the app accepts, checked before any heavy work and stated on the page."""

from __future__ import annotations

import os

MAX_FILE_MB = int(
    os.environ.get("SLOT_STUDIO_MAX_FILE_MB", 200)
)  # upload size (launch's max_file_size)
MAX_SECONDS = 120  # longest stretch of video processed; longer input is trimmed or refused
DEFAULT_SECONDS = 20
MAX_SOURCE_SIDE = 4096  # larger frames (8K, corrupt headers) are refused before decoding
MIN_SOURCE_SIDE = 16
MAX_SAMPLE_FPS = 30
DEFAULT_SAMPLE_FPS = 10
MAX_FRAMES = MAX_SECONDS * MAX_SAMPLE_FPS
OUTPUT_SIDES = [320, 480, 640, 960]  # long side of the rendered videos
DEFAULT_OUTPUT_SIDE = 640
MAX_SLOTS = 16
# the model sees frames at the video's aspect, short side at its trained size; a long side
# beyond this many short sides is squeezed (a panorama would cost the model many times the work)
MAX_MODEL_ASPECT = 2.0
# "Adapt to this video" (model/adapt.py): at most this many fine-tuning steps before a run
MAX_ADAPT_STEPS = 300
CHUNK_FRAMES = 16  # frames per model call in recurrent mode: memory is flat in video length
WORK_TTL_SECONDS = 3600  # per-request work folders and cached outputs are deleted after this

LIMITS_TEXT = (
    f"Up to {MAX_FILE_MB} MB, {MAX_SECONDS} s (longer videos are trimmed, or refused if you choose), "
    f"frames from {MIN_SOURCE_SIDE} to {MAX_SOURCE_SIDE} px a side. mp4, mov, webm, mkv, avi "
    f"(H.264, HEVC, VP9, AV1, ...). Frames are sampled at up to {MAX_SAMPLE_FPS} fps."
)

# ZeroGPU (Hugging Face Spaces): a run reserves a shared GPU for a duration asked up front,
# here from the frames it will sample (app/zerogpu.py). The per-frame cost covers the whole
# run (decode, model, render, encode happen inside the reservation); a first guess, to be
# replaced by the per-stage timings of a run on a GPU.
ON_ZEROGPU = os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")
ZEROGPU_BASE_SECONDS = 15
ZEROGPU_SECONDS_PER_FRAME = 0.1
ZEROGPU_MAX_SECONDS = 120
ZEROGPU_SECONDS_PER_ADAPT_STEP = 0.1  # issue 15's H100 trial: 300 steps of 16 x 8 frames in ~20 s
ZEROGPU_TEXT = (
    f"This Space runs on ZeroGPU: each run borrows a shared GPU for about "
    f"{ZEROGPU_BASE_SECONDS} s plus {ZEROGPU_SECONDS_PER_FRAME:g} s per sampled frame (the default "
    f"{DEFAULT_SECONDS} s at {DEFAULT_SAMPLE_FPS} fps asks for "
    f"{ZEROGPU_BASE_SECONDS + round(DEFAULT_SECONDS * DEFAULT_SAMPLE_FPS * ZEROGPU_SECONDS_PER_FRAME)} s), "
    f"at most {ZEROGPU_MAX_SECONDS} s a run (a run past its time may be stopped); it counts against your Hugging Face account's "
    f"daily GPU quota, and longer requests wait longer in the queue. Shorter clips or a lower "
    f"frame rate ask for less."
)
if ON_ZEROGPU:
    LIMITS_TEXT += " " + ZEROGPU_TEXT
