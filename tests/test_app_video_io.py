"""Video I/O: many containers and codecs in, rotation, frame sampling, limits, bad files out."""

from __future__ import annotations

import subprocess

import av
import imageio_ffmpeg
import numpy as np
import pytest

from app.video_io import (
    EncoderThread,
    Mp4Writer,
    TruncatedVideo,
    VideoError,
    iter_frames,
    output_size,
    probe,
)

from .app_helpers import decoded_frames, scene_frames, write_video


@pytest.fixture(scope="module")
def frames():
    return scene_frames(frames=20, size=64)


@pytest.mark.parametrize(
    "name, codec, pix_fmt",
    [
        ("a.mp4", "libx264", "yuv420p"),
        ("a.webm", "libvpx-vp9", "yuv420p"),
        ("a.mov", "libx264", "yuv420p"),
        ("a.avi", "mpeg4", "yuv420p"),
        ("a.mkv", "hevc", "yuv420p"),
        ("gray.mp4", "libx264", "gray"),
    ],
)
def test_decodes_common_containers_and_codecs(tmp_path, frames, name, codec, pix_fmt):
    path = write_video(tmp_path / name, frames, fps=10, codec=codec, pix_fmt=pix_fmt)
    info = probe(path)
    assert (info.width, info.height) == (64, 64) and info.fps == pytest.approx(10)
    got = list(iter_frames(path, info, fps=10, max_seconds=60, size=(64, 64)))
    assert len(got) == 20
    assert all(f.shape == (64, 64, 3) and f.dtype == np.uint8 for _, f in got)
    if pix_fmt == "gray":
        f = got[5][1].astype(int)
        assert np.abs(f[..., 0] - f[..., 1]).max() <= 2  # converted to RGB from one channel
        return
    # the frames come back as they were written, in RGB order: red, green, blue bars
    bars = np.zeros((4, 64, 64, 3), np.uint8)
    for channel in range(3):
        bars[:, :, channel * 22 : channel * 22 + 20, channel] = 255
    path = write_video(tmp_path / f"bars{path.suffix}", bars, fps=10, codec=codec, pix_fmt=pix_fmt)
    _, frame = next(iter_frames(path, probe(path), fps=10, max_seconds=60, size=(64, 64)))
    for channel in range(3):  # the middle of each bar, away from chroma bleeding at its edges
        bar = frame[8:56, channel * 22 + 6 : channel * 22 + 14].reshape(-1, 3).mean(0)
        assert bar[channel] > 200 and np.delete(bar, channel).max() < 60, (channel, bar)


def test_samples_at_target_fps_and_trims(tmp_path, frames):
    path = write_video(tmp_path / "a.mp4", np.concatenate([frames] * 3), fps=20)  # 3 s
    info = probe(path)
    assert info.duration == pytest.approx(3.0, abs=0.1)
    got = list(iter_frames(path, info, fps=5, max_seconds=2.0, size=(32, 32)))
    times = [t for t, _ in got]
    assert len(got) == pytest.approx(10, abs=1)  # 2 s at 5 fps
    assert max(times) <= 2.0 and np.all(np.diff(times) > 0.15)


def test_rotation_metadata_is_applied(tmp_path):
    tall = np.zeros((1, 48, 32, 3), np.uint8)
    tall[0, :8, :8] = 255  # a white mark in the top-left corner
    src = write_video(tmp_path / "src.mp4", np.repeat(tall, 4, 0))
    rotated = tmp_path / "rot.mp4"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-y",
            "-loglevel",
            "error",
            "-display_rotation",
            "90",
            "-i",
            str(src),
            "-c",
            "copy",
            str(rotated),
        ],
        check=True,
    )
    info = probe(rotated)
    assert info.rotation in (90, 270)
    assert (info.width, info.height) == (48, 32)  # displayed landscape
    _, frame = next(iter_frames(rotated, info, 10, 10, (48, 32)))
    assert frame.shape == (32, 48, 3)
    corners = [
        frame[:8, :8].mean(),
        frame[:8, -8:].mean(),
        frame[-8:, :8].mean(),
        frame[-8:, -8:].mean(),
    ]
    # 90 degrees counter-clockwise: top-left goes to bottom-left, as FFmpeg's own autorotation does
    assert max(corners) > 150 and corners.index(max(corners)) == 2


def test_output_size_keeps_aspect_and_is_even():
    from app.video_io import VideoInfo

    assert output_size(VideoInfo(1280, 720, 30, 10, 0, "h264"), 640) == (640, 360)
    w, h = output_size(VideoInfo(101, 57, 30, 10, 0, "h264"), 640)
    assert w % 2 == 0 and h % 2 == 0 and abs(w - 101) <= 1 and abs(h - 57) <= 1


@pytest.mark.parametrize(
    "content, message", [(b"", "empty"), (b"not a video at all" * 50, "could not be read")]
)
def test_bad_files_raise_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoError, match=message):
        probe(path)


def test_still_image_is_refused(tmp_path):
    import cv2

    path = tmp_path / "still.png"
    cv2.imwrite(str(path), np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(VideoError, match="still image|no video"):
        probe(path)


def test_truncated_mp4(tmp_path, frames):
    path = write_video(tmp_path / "a.mp4", np.concatenate([frames] * 4), fps=10)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    try:
        info = probe(cut)
    except VideoError:
        return  # refused up front with a clear message: acceptable
    try:
        got = list(iter_frames(cut, info, 10, 60, (64, 64)))
    except TruncatedVideo:
        got = []
    assert len(got) < 80  # never more than what is there, and no hang


def test_too_large_frames_are_refused_before_decoding(tmp_path):
    with av.open(str(tmp_path / "big.mp4"), "w") as c:
        s = c.add_stream("libx264", rate=1)
        s.width, s.height, s.pix_fmt = 4608, 64, "yuv420p"
        for p in s.encode(
            av.VideoFrame.from_ndarray(np.zeros((64, 4608, 3), np.uint8), format="rgb24")
        ):
            c.mux(p)
        for p in s.encode():
            c.mux(p)
    with pytest.raises(VideoError, match="too large"):
        probe(tmp_path / "big.mp4")


def test_writer_makes_browser_playable_h264(tmp_path, frames):
    with Mp4Writer(tmp_path / "out.mp4", 10, (64, 64)) as w:
        for f in frames:
            w.write(f)
    with av.open(str(tmp_path / "out.mp4")) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p"
        assert sum(1 for _ in c.decode(s)) == len(frames)
    head = (tmp_path / "out.mp4").read_bytes()[:4096]
    assert head.find(b"moov") < head.find(b"mdat") or b"mdat" not in head  # faststart: index first


def test_encoder_thread_writes_the_same_files_in_order(tmp_path, frames):
    """The app's encoder thread: two videos fed chunk by chunk give the files a writer fed
    directly gives: the same frames in the same order, to x264's loss (on several threads it
    is not deterministic from run to run)."""
    ref = {}
    for name, seq in (("a", frames), ("b", frames[::-1])):
        with Mp4Writer(tmp_path / f"ref_{name}.mp4", 10, (64, 64)) as w:
            for f in seq:
                w.write(f)
        ref[name] = decoded_frames(tmp_path / f"ref_{name}.mp4")
    enc = EncoderThread({n: Mp4Writer(tmp_path / f"{n}.mp4", 10, (64, 64)) for n in "ab"})
    for i in range(0, len(frames), 6):  # chunks, interleaving the two videos as the app does
        enc.put(
            [
                pair
                for j in range(i, min(i + 6, len(frames)))
                for pair in (("a", frames[j]), ("b", frames[::-1][j]))
            ]
        )
    enc.close()
    enc.close()  # idempotent: a cancelled request closes again in its finally
    for name in "ab":
        got = decoded_frames(tmp_path / f"{name}.mp4").astype(np.int16)
        assert got.shape == ref[name].shape
        assert np.abs(got - ref[name]).mean() < 8.0  # 0..255 levels; see test_batch.py
        # each frame is nearest to the reference frame at its own index: the order is kept
        dist = np.abs(got[:, None] - ref[name][None].astype(np.int16)).mean(axis=(2, 3, 4))
        assert (dist.argmin(axis=1) == np.arange(len(got))).all()


def test_encoder_thread_reports_an_encoding_error(tmp_path, frames):
    """A frame the encoder cannot take fails the request in the caller's thread, at the next
    put or at close, instead of dying silently on the thread."""
    enc = EncoderThread({"a": Mp4Writer(tmp_path / "a.mp4", 10, (64, 64))})
    enc.put([("a", frames[0][:, :, :2])])  # two channels: not an RGB frame
    with pytest.raises(ValueError):
        for _ in range(50):  # the error surfaces once the thread has reached that frame
            enc.put([("a", frames[1])])
        enc.close()
