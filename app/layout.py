"""The page: inputs on the left, results in tabs on the right. One handler, `decompose`,
whose arguments and results match the page's inputs and outputs one for one; it is also
the API endpoint /decompose (first input the video, every other input defaulted)."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr

from .limits import (
    DEFAULT_OUTPUT_SIDE,
    DEFAULT_SAMPLE_FPS,
    DEFAULT_SECONDS,
    LIMITS_TEXT,
    MAX_SAMPLE_FPS,
    MAX_SECONDS,
    MAX_SLOTS,
    OUTPUT_SIDES,
    WORK_TTL_SECONDS,
)
from .plots import timelines
from .render import legend_html
from .session import Decomposer, Settings
from .video_io import VideoError, probe

log = logging.getLogger("slot_studio")
ASSETS = Path(__file__).resolve().parents[1] / "assets"
WORK_ROOT = Path(tempfile.gettempdir()) / "slot-studio"

TITLE = "Slot decomposition studio"
DESCRIPTION = """
# Slot decomposition studio
Drop in a video and watch **OC-SlotSSM** ([Slot State Space Models](https://arxiv.org/abs/2406.12272), Jiang et al., NeurIPS 2024)
take it apart. The model keeps a few *slots* — memories that each follow one part of the scene through time — and was trained
only to predict **depth**; it was never shown what an object is. **Every pixel is coloured by the slot that explains it**, the
predicted depth is shown beside it, and the timelines show how much of the frame each slot holds and attends to.
"""


def _remove_workdir(state: dict | None) -> None:
    """gr.State delete_callback: a closed tab or an expired session frees its files."""
    if state and state.get("workdir"):
        shutil.rmtree(state["workdir"], ignore_errors=True)


def _sweep_old_workdirs(max_age: float = WORK_TTL_SECONDS) -> None:
    """Remove work folders older than the cache policy (sessions that never said goodbye)."""
    if not WORK_ROOT.is_dir():
        return
    now = time.time()
    for d in WORK_ROOT.iterdir():
        if d.is_dir() and now - d.stat().st_mtime > max_age:
            shutil.rmtree(d, ignore_errors=True)


def build_demo(
    decomposer: Decomposer,
    examples: list[Path] | None = None,
    concurrency: int = 1,
    queue_size: int = 16,
) -> gr.Blocks:
    default_slots = decomposer.model.config.num_slots

    def validate(
        video, fps, max_seconds, num_slots, opacity, max_side, on_long, slot_ids, previous=None
    ):
        """Runs before the queue: bad files are refused at once, without taking a model slot."""
        message = ""
        if not video:
            message = "Please upload or record a video first."
        else:
            try:
                probe(video)
            except VideoError as err:
                message = str(err)
        return [gr.validate(not message, message)] + [gr.validate(True, "")] * 8

    def decompose(
        video: str,
        fps: float = DEFAULT_SAMPLE_FPS,
        max_seconds: float = DEFAULT_SECONDS,
        num_slots: int = default_slots,
        opacity: float = 0.55,
        max_side: int = DEFAULT_OUTPUT_SIDE,
        on_long: str = "trim",
        slot_ids: str = "tracked",
        previous: dict | None = None,
        progress=gr.Progress(),  # noqa: B008 (how Gradio injects progress)
    ):
        """Decompose a video into slots. Returns the slot overlay video, the depth video, the
        side-by-side video, the timeline plot, the slot legend, the zip archive, the single
        files, a run summary, the slot choices and the session state."""
        if not video:
            raise gr.Error("Please upload or record a video first.")
        settings = Settings(
            fps=float(fps),
            max_seconds=float(min(max_seconds, MAX_SECONDS)),
            num_slots=int(num_slots),
            opacity=float(opacity),
            max_side=int(max_side),
            on_long=on_long,
            slot_ids=slot_ids,  # one of SLOT_ID_SOURCES: the Radio refuses anything else
        )
        _remove_workdir(previous)  # a session keeps only its latest results
        _sweep_old_workdirs()
        WORK_ROOT.mkdir(parents=True, exist_ok=True)
        workdir = Path(
            tempfile.mkdtemp(prefix="run-", dir=WORK_ROOT)
        )  # every request its own folder
        progress(0, desc="decode")
        result = None
        stream = decomposer.stream(video, settings, workdir)
        try:
            for item in stream:
                if not isinstance(item, tuple):
                    result = item
                    break
                done, total, stage = item
                progress((done, total), desc=stage, unit="frames")
                yield [gr.skip()] * 10  # a point where a cancelled request stops
        except VideoError as err:
            raise gr.Error(str(err)) from None
        except Exception as err:  # one bad request must never take the server down
            log.exception("decompose failed")
            raise gr.Error(
                f"Processing failed ({type(err).__name__}). The server is fine; please try another video."
            ) from None
        finally:
            stream.close()  # cancelled (button, closed tab): stop at a chunk boundary, close files
            if result is None:  # failed or cancelled: nothing of this request is kept
                shutil.rmtree(workdir, ignore_errors=True)
        if result is None:
            return

        t = result.timings
        warnings = "".join(f"\n> ⚠️ {w}" for w in result.warnings)
        summary = (
            f"**{len(result.times)} frames** at {result.fps:g} fps, {result.size[0]}×{result.size[1]}, "
            f"{result.num_slots} slots, on **{decomposer.device}** in **{t['total']:.1f} s** "
            f"(decode {t['decode']:.1f} s · model {t['model']:.1f} s · render {t['render']:.1f} s · "
            f"encode {t['encode']:.1f} s · package {t['package']:.1f} s).  \n"
            f"Model `{decomposer.model_name}`, weights sha256 `{decomposer.weights_sha256[:16]}…`{warnings}"
        )
        for w in result.warnings:
            gr.Warning(w)
        choices = [(f"slot {i}", i) for i in range(result.num_slots)]
        state = {"workdir": str(workdir), "video": video, "settings": settings.__dict__}
        yield [
            str(result.overlay),
            str(result.depth),
            str(result.composite),
            timelines(result.times, result.pixel_share, result.attention),
            legend_html(result.pixel_share.mean(0)),
            str(result.archive),
            [
                str(result.overlay),
                str(result.depth),
                str(result.composite),
                str(workdir / "slots.npz"),
            ],
            summary,
            gr.update(choices=choices, value=0),
            state,
        ]

    def show_slot(state: dict | None, slot: int, mode: str):
        if not state:
            raise gr.Error("Run a decomposition first.")
        workdir = Path(state["workdir"])
        if not workdir.is_dir():
            raise gr.Error("These results have expired; please run the video again.")
        out = workdir / f"slot_{int(slot)}_{mode}.mp4"
        try:
            return str(
                decomposer.render_slot_view(
                    state["video"], workdir, Settings(**state["settings"]), int(slot), mode, out
                )
            )
        except VideoError as err:
            raise gr.Error(str(err)) from None

    with gr.Blocks(title=TITLE, delete_cache=(600, WORK_TTL_SECONDS)) as demo:
        gr.Markdown(DESCRIPTION)
        state = gr.State(None, time_to_live=WORK_TTL_SECONDS, delete_callback=_remove_workdir)
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=320):
                video_in = gr.Video(
                    label="Your video", sources=["upload", "webcam"], elem_id="video-input"
                )
                with gr.Accordion("Settings", open=False):
                    fps = gr.Slider(
                        1,
                        MAX_SAMPLE_FPS,
                        value=DEFAULT_SAMPLE_FPS,
                        step=1,
                        label="Frames per second to sample",
                    )
                    max_seconds = gr.Slider(
                        1, MAX_SECONDS, value=DEFAULT_SECONDS, step=1, label="Maximum seconds"
                    )
                    num_slots = gr.Slider(
                        1,
                        MAX_SLOTS,
                        value=default_slots,
                        step=1,
                        label="Number of slots",
                        info=f"trained with {default_slots}",
                    )
                    opacity = gr.Slider(0.0, 1.0, value=0.55, step=0.05, label="Overlay opacity")
                    max_side = gr.Dropdown(
                        OUTPUT_SIDES, value=DEFAULT_OUTPUT_SIDE, label="Output size (long side, px)"
                    )
                    on_long = gr.Radio(
                        ["trim", "refuse"], value="trim", label="Videos longer than the maximum"
                    )
                    slot_source = gr.Radio(
                        [
                            ("fitted to image edges, following objects", "tracked"),
                            ("fitted to image edges, the model's slot order", "untracked"),
                            ("the decoder's masks alone", "decoded"),
                        ],
                        value="tracked",
                        label="Slots shown",
                        info="edge fitting and tracking need no training; the last is the model alone",
                    )
                with gr.Row():
                    run = gr.Button("Decompose", variant="primary", elem_id="run-button")
                    cancel = gr.Button("Cancel", variant="stop")
                gr.Markdown(f"<small>{LIMITS_TEXT}</small>")
            with gr.Column(scale=3, min_width=420):
                legend = gr.HTML(label="Slot legend", elem_id="slot-legend")
                with gr.Tabs():
                    with gr.Tab("Slots"):
                        overlay = gr.Video(
                            label="Slot overlay", autoplay=True, loop=True, elem_id="overlay-video"
                        )
                    with gr.Tab("Depth"):
                        depth = gr.Video(
                            label="Predicted depth (bright = near; scale in metres on synthetic scenes)",
                            autoplay=True,
                            loop=True,
                        )
                    with gr.Tab("Side by side"):
                        side = gr.Video(label="Slots | depth", autoplay=True, loop=True)
                    with gr.Tab("Timelines"):
                        plot = gr.Plot(label="Per-slot timelines", elem_id="timeline-plot")
                    with gr.Tab("Per slot"):
                        with gr.Row():
                            slot_pick = gr.Dropdown(choices=[], label="Slot", interactive=True)
                            mode = gr.Radio(
                                [("only this slot", "only"), ("hide this slot", "hide")],
                                value="only",
                                label="View",
                            )
                            show = gr.Button("Show")
                        slot_video = gr.Video(label="Per-slot view", autoplay=True, loop=True)
                    with gr.Tab("Downloads"):
                        archive = gr.File(
                            label="Everything (zip: overlay.mp4, depth.mp4, slots.npz, meta.json)"
                        )
                        files = gr.File(label="Single files", file_count="multiple")
                summary = gr.Markdown(label="Run summary", elem_id="run-summary")

        inputs = [
            video_in,
            fps,
            max_seconds,
            num_slots,
            opacity,
            max_side,
            on_long,
            slot_source,
            state,
        ]
        outputs = [overlay, depth, side, plot, legend, archive, files, summary, slot_pick, state]
        event = run.click(
            decompose,
            inputs,
            outputs,
            api_name="decompose",
            validator=validate,
            concurrency_limit=concurrency,
            concurrency_id="model",
        )
        cancel.click(None, cancels=[event])
        show.click(
            show_slot,
            [state, slot_pick, mode],
            slot_video,
            api_name="slot_view",
            concurrency_id="model",
        )
        if examples:
            gr.Examples(
                [[str(p)] for p in examples],
                inputs=[video_in],
                outputs=outputs,
                fn=decompose,
                cache_examples=True,
                cache_mode="lazy",
                label="Examples (rendered by the project's scene generator)",
            )
    demo.queue(max_size=queue_size, default_concurrency_limit=concurrency)
    return demo
