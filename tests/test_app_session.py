"""The inference session on its own: streaming works when every step runs on another thread
(as Gradio runs generator steps), and the arrays agree with the videos."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest
import torch

import app.session as session
from app.session import Decomposer, Result, Settings
from app.video_io import TruncatedVideo
from model import Config, OCSlotSSM

from .app_helpers import scene_frames, write_video
from .test_model import clear_lead


def test_stream_steps_on_different_threads(tmp_path):
    torch.manual_seed(0)
    model = OCSlotSSM(Config(num_slots=5))
    clip = write_video(tmp_path / "a.mp4", scene_frames(frames=40, size=64), fps=10)
    dec = Decomposer(model, torch.device("cpu"), None, "test")
    stream = dec.stream(
        clip, Settings(max_side=48), tmp_path / "work"
    )  # downscaled, never upscaled
    items = []
    for _ in range(40):  # each next() in a fresh thread, like a server's worker pool
        with ThreadPoolExecutor(1) as pool:
            item = pool.submit(next, stream, None).result()
        if item is None:
            break
        items.append(item)
    result = items[-1]
    assert isinstance(result, Result)
    steps = items[:-1]
    assert [s.done for s in steps if s.stage == "decode"] == [0, 16, 32, 40]  # chunks of 16
    assert [s.stage for s in steps[:5]] == ["decode", "infer", "slot_ids", "render", "encode"]
    assert steps[-1].stage == "package" and steps[-1].done == 40
    with np.load(result.workdir / "slots.npz") as z:
        assert z["slot_ids"].shape == (40, 48, 48) and z["slot_ids"].max() < 5
    assert result.pixel_share.shape == (40, 5)
    np.testing.assert_allclose(result.pixel_share.sum(1), 1.0)
    assert Path(result.overlay).stat().st_size > 0


def test_a_file_damaged_mid_way_keeps_what_was_decoded(tmp_path, monkeypatch):
    """Decoding runs a chunk ahead of the other steps (on a thread of its own) and encoding
    behind them: a file whose decoding fails after 20 frames still gives those 20 frames in
    every output, and the warning counts the frames decoded, not those finished so far."""
    real = session.iter_frames

    def failing_after_20(*args, **kwargs):
        for i, item in enumerate(real(*args, **kwargs)):
            if i == 20:
                raise TruncatedVideo("corrupt packet")
            yield item

    monkeypatch.setattr(session, "iter_frames", failing_after_20)
    torch.manual_seed(0)
    dec = Decomposer(OCSlotSSM(Config(num_slots=4)), torch.device("cpu"), None, "test")
    clip = write_video(tmp_path / "a.mp4", scene_frames(frames=40, size=64), fps=10)
    result = dec.run(clip, Settings(max_side=64), tmp_path / "work")
    assert result.warnings == [
        "The file is damaged after 20 frames: showing what could be decoded."
    ]
    assert len(result.times) == 20
    with np.load(result.workdir / "slots.npz") as z:
        assert z["slot_ids"].shape[0] == 20
    for path in (result.overlay, result.depth, result.composite):
        with av.open(str(path)) as c:
            assert sum(1 for _ in c.decode(video=0)) == 20
    assert set(result.timings) >= {"decode", "infer", "slot_ids", "render", "encode", "total"}


def test_slot_id_sources_agree_with_each_other(tmp_path):
    """The three sources of the shown slot IDs: the decoder's masks; the same refined to the
    frame's edges, at the model's input size; and those with labels tracked over time, which
    only reorders each frame's slots (masks and attention alike)."""
    model = OCSlotSSM.from_pretrained(Path(__file__).resolve().parents[1] / "weights")
    clip = write_video(tmp_path / "a.mp4", scene_frames(frames=24, size=96, seed=3), fps=10)
    dec = Decomposer(model, torch.device("cpu"), None, "test")
    got = {}
    for source in ("tracked", "untracked", "decoded"):
        result = dec.run(clip, Settings(slot_ids=source), tmp_path / source)
        with np.load(result.workdir / "slots.npz") as z:
            got[source] = {k: z[k] for k in ("masks", "attention", "slot_ids")}
    s = model.config.image_size
    assert got["decoded"]["masks"].shape == (24, 9, s // 2, s // 2)  # a square clip
    assert got["untracked"]["masks"].shape == got["tracked"]["masks"].shape == (24, 9, s, s)
    assert not np.array_equal(got["untracked"]["slot_ids"], got["decoded"]["slot_ids"])
    for t in range(24):  # per frame, tracked = untracked with the slots reordered
        untracked, tracked = got["untracked"]["masks"][t], got["tracked"]["masks"][t]
        order = [int(np.argmin(np.abs(untracked - m).sum((1, 2)))) for m in tracked]
        assert sorted(order) == list(range(9))
        np.testing.assert_array_equal(tracked, untracked[order])
        np.testing.assert_array_equal(
            got["tracked"]["attention"][t], got["untracked"]["attention"][t][order]
        )
    with pytest.raises(ValueError, match="slot_ids"):
        dec.run(clip, Settings(slot_ids="bogus"), tmp_path / "bogus")


def test_the_model_sees_the_video_aspect():
    from app.session import model_input_size

    assert model_input_size(640, 360, 64, stride=4) == (112, 64)  # 16:9, long side a multiple of 4
    assert model_input_size(360, 640, 64, stride=4) == (64, 112)  # portrait
    assert model_input_size(96, 96, 64, stride=4) == (64, 64)
    assert model_input_size(1920, 400, 64, stride=4) == (128, 64)  # a panorama is capped at 2:1
    assert model_input_size(640, 360, 128, stride=8) == (224, 128)  # Config.encoder_stride 8
    assert model_input_size(1000, 600, 128, stride=8) == (216, 128)  # 213.3 -> a multiple of 8


def test_slot_ids_at_the_output_size_follow_the_masks():
    """upsample_masks (frame by frame, for memory) gives, at (W, H), the label of the mask
    that is largest after bilinear upsampling."""
    from app.render import upsample_masks

    masks = torch.rand(5, 4, 8, 12, generator=torch.Generator().manual_seed(0)).softmax(1)
    ids = upsample_masks(masks, (30, 20))
    assert ids.shape == (5, 20, 30) and ids.dtype == np.uint8
    up = torch.nn.functional.interpolate(masks, size=(20, 30), mode="bilinear")
    clear = clear_lead(up).numpy()  # float rounding may break near-ties
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(ids[clear], up.argmax(1).numpy()[clear])
    assert len(np.unique(ids)) == 4  # every slot wins somewhere: the test sees all labels


def test_overlay_blends_slot_colours_and_darkens_borders():
    """Inside a slot the frame is blended with the slot's colour; on the pixel before a slot
    change (right or below) that blend is darkened to BORDER_DARKEN."""
    from app.render import BORDER_DARKEN, overlay
    from model.palette import PALETTE

    frame = np.full((6, 8, 3), 200, np.uint8)
    ids = np.zeros((6, 8), np.uint8)
    ids[:, 5:] = 11  # two slots side by side: the border is column 4
    out = overlay(frame, ids, 0.5).astype(int)
    blend = (0.5 * 200 + 0.5 * PALETTE[[0, 11]].astype(int)).round().astype(int)
    np.testing.assert_allclose(out[:, :4], np.broadcast_to(blend[0], (6, 4, 3)), atol=1)
    np.testing.assert_allclose(out[:, 5:], np.broadcast_to(blend[1], (6, 3, 3)), atol=1)
    np.testing.assert_allclose(out[:, 4], np.broadcast_to(blend[0] * BORDER_DARKEN, (6, 3)), atol=1)
