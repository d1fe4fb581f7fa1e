"""The launched app through gradio_client: the /decompose contract, bad input, slot views."""

from __future__ import annotations

import io
import json
import time
import zipfile

import av
import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file

from app.session import Settings
from model import OCSlotSSM

from .app_helpers import ROOT, LaunchedApp, decoded_frames, scene_frames, write_video


@pytest.fixture(scope="module")
def app():
    launched = LaunchedApp()
    yield launched
    launched.stop()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    frames = scene_frames(frames=24, size=96)  # 2 s at 12 fps
    wide = np.concatenate([frames, frames[:, :, :32]], axis=2)  # 96 x 128: not square
    return write_video(tmp_path_factory.mktemp("clips") / "scene.mp4", wide, fps=12)


def count_frames(path) -> tuple[int, tuple[int, int], str]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        n = sum(1 for _ in c.decode(s))
        return n, (s.codec_context.width, s.codec_context.height), s.codec_context.name


def assert_videos_show_the_arrays(clip, overlay, depth, side, arrays, opacity: float) -> None:
    """The three videos are what their names say, frame for frame (within H.264's loss):
    the sampled frames overlaid with slots.npz's slot IDs, its depth (near = bright), and the
    two side by side."""
    from app.render import overlay as overlay_of
    from app.video_io import iter_frames, probe

    shown, seen, both = decoded_frames(overlay), decoded_frames(depth), decoded_frames(side)
    frames = [f for _, f in iter_frames(clip, probe(clip), fps=10, max_seconds=60, size=(128, 96))]
    for k in (0, len(shown) // 2, len(shown) - 1):
        want = overlay_of(frames[k], arrays["slot_ids"][k], opacity).astype(int)
        assert np.abs(shown[k].astype(int) - want).mean() < 8, k
        assert np.abs(both[k].astype(int) - np.hstack([shown[k], seen[k]])).mean() < 8, k
        brightness = seen[k].astype(float).mean(-1).ravel()
        nearness = -np.log(arrays["depth"][k]).ravel()
        assert np.corrcoef(brightness, nearness)[0, 1] > 0.8, k


def test_decompose_with_the_video_alone(app, clip):
    client = Client(app.url, verbose=False)
    overlay, depth, side, plot, legend, archive, files, summary, slot, scale = client.predict(
        video=handle_file(str(clip)), api_name="/decompose"
    )
    n, size, codec = count_frames(overlay)
    assert n == 20 and size == (128, 96) and codec == "h264"  # 2 s sampled at the default 10 fps
    assert count_frames(depth)[:2] == (20, (128, 96))
    assert count_frames(side)[:2] == (20, (256, 96))
    assert "slot 0" in legend and "frames" in summary and "relative" in scale
    assert plot["type"] == "plotly" and len(json.loads(plot["plot"])["data"]) == 2 * 9

    with zipfile.ZipFile(archive) as z:
        videos = {"overlay.mp4", "depth.mp4", "composite.mp4"}
        assert set(z.namelist()) == videos | {"slots.npz", "keyframes.png", "meta.json"}
        assert z.getinfo("slots.npz").file_size < 1_000_000  # compressed (raw: 3.6 MB)
        meta = json.loads(z.read("meta.json"))
        arrays = np.load(io.BytesIO(z.read("slots.npz")))
        assert arrays["slot_ids"].shape == (20, 96, 128) and arrays["slot_ids"].dtype == np.uint8
        assert arrays["depth"].shape == (20, 96, 128) and np.isfinite(arrays["depth"]).all()
        # the model sees the video's 4:3 aspect: short side 64, long side 64 * 4 / 3 -> 84
        assert arrays["masks"].shape == (20, 9, 64, 84) and arrays["masks"].dtype == np.float16
        assert arrays["attention"].shape == (20, 9)
        np.testing.assert_allclose(arrays["attention"].sum(1), 1, atol=1e-3)
        assert_videos_show_the_arrays(clip, overlay, depth, side, arrays, Settings().opacity)
    assert meta["frame_count"] == 20 and meta["num_slots"] == 9 and meta["fps"] == 10
    assert (meta["width"], meta["height"]) == (128, 96)
    assert len(meta["weights_sha256"]) == 64 and meta["device"] == "cpu"
    assert meta["model_config"]["num_slots"] == meta["num_slots"]  # the bundled default
    assert {"decode", "infer", "slot_ids", "render", "encode", "total"} <= set(
        meta["timings_seconds"]
    )
    assert meta["adapted"] is False and meta["timings_seconds"]["adapt"] == 0  # off by default
    assert not any(n.startswith("adapted_weights/") for n in z.namelist())


def test_adapt_to_this_video_through_the_api(app, clip, tmp_path):
    """adapt_steps, the one input with a default that turns adaptation on: the run uses a
    copy fine-tuned on the clip, says so in meta.json and ships its weights, which load."""
    client = Client(app.url, verbose=False)
    out = client.predict(
        handle_file(str(clip)), max_seconds=1, adapt_steps=4, api_name="/decompose"
    )
    summary, archive = out[7], out[5]
    assert "adapted to this video (4 steps" in summary
    with zipfile.ZipFile(archive) as z:
        meta = json.loads(z.read("meta.json"))
        z.extractall(tmp_path, [n for n in z.namelist() if n.startswith("adapted_weights/")])
    assert meta["adapted"]["steps"] == 4 and meta["adapted"]["device"] == "cpu"
    assert meta["adapted"]["precision"] in ("bf16", "no")  # model/precision.py
    assert meta["timings_seconds"]["adapt"] > 0
    adapted = OCSlotSSM.from_pretrained(tmp_path / "adapted_weights")
    bundled = OCSlotSSM.from_pretrained(ROOT / "weights")
    assert adapted.config == bundled.config
    assert any(
        not torch.equal(a, b)
        for a, b in zip(adapted.state_dict().values(), bundled.state_dict().values(), strict=True)
    )


def test_settings_and_determinism(app, clip):
    client = Client(app.url, verbose=False)
    runs = [
        client.predict(handle_file(str(clip)), 5, 1, 4, 0.3, 320, "trim", api_name="/decompose")
        for _ in range(2)
    ]
    metas = []
    for r in runs:
        with zipfile.ZipFile(r[5]) as z:
            metas.append(
                (
                    json.loads(z.read("meta.json")),
                    np.load(io.BytesIO(z.read("slots.npz")))["slot_ids"],
                )
            )
    assert metas[0][0]["frame_count"] == 5 and metas[0][0]["num_slots"] == 4  # 1 s at 5 fps
    assert "only the first 1 s" in " ".join(metas[0][0]["warnings"])
    assert np.array_equal(metas[0][1], metas[1][1])  # same input and settings, same result
    sent = {"fps": 5, "max_seconds": 1, "num_slots": 4, "opacity": 0.3, "max_side": 320}
    assert metas[0][0]["settings"].items() >= (sent | {"on_long": "trim"}).items()

    # a slot view of the latest run: the slot blacked out where the slot IDs have it
    ids = metas[1][1]
    slot = int(np.bincount(ids.ravel()).argmax())  # the slot with the most pixels
    hidden = decoded_frames(client.predict(slot, "hide", api_name="/slot_view"))
    assert len(hidden) == 5
    brightness = hidden.astype(float).mean(-1)
    inside = ids == slot
    assert np.median(brightness[inside]) < 10 < np.median(brightness[~inside])


def test_refuse_long_video_and_bad_files_then_recover(app, clip, tmp_path):
    client = Client(app.url, verbose=False)
    with pytest.raises(Exception, match="limit is 1 s"):
        client.predict(handle_file(str(clip)), 10, 1, 9, 0.5, 640, "refuse", api_name="/decompose")
    for name, content in (("empty.mp4", b""), ("noise.mp4", np.random.default_rng(0).bytes(5000))):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(Exception, match="empty|could not be read|no video"):
            client.predict(video=handle_file(str(tmp_path / name)), api_name="/decompose")
    overlay = client.predict(video=handle_file(str(clip)), api_name="/decompose")[0]
    assert count_frames(overlay)[0] == 20  # the server is still fine


def test_cancel_stops_the_job_and_frees_its_files(tmp_path):
    long_clip = write_video(
        tmp_path / "long.mp4", np.concatenate([scene_frames(frames=30, size=96)] * 8), fps=30
    )  # 8 s
    app = LaunchedApp(tmpdir=tmp_path / "server")
    try:
        client = Client(app.url, verbose=False)
        work = tmp_path / "server" / "slot-studio"
        job = client.submit(
            handle_file(str(long_clip)), 30, 60, 9, 0.5, 960, "trim", api_name="/decompose"
        )
        deadline = time.time() + 60
        while not (work.exists() and any(work.iterdir())) and time.time() < deadline:
            time.sleep(0.1)  # wait until the job is running and has its work folder
        assert work.exists() and any(work.iterdir())
        time.sleep(1.0)  # the client learns the server's event id from the first messages
        job.cancel()
        deadline = time.time() + 30
        while any(work.iterdir()) and time.time() < deadline:
            time.sleep(0.2)
        assert not any(work.iterdir()), "a cancelled job left its files behind"
        start = time.time()
        overlay = client.predict(
            video=handle_file(str(long_clip)), max_seconds=1, api_name="/decompose"
        )[0]
        assert (
            count_frames(overlay)[0] == 10 and time.time() - start < 30
        )  # the model is free again
    finally:
        app.stop()
