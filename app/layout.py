"""The page: inputs on the left, results in tabs on the right (build_page), and the events
that connect them to the handlers (build_demo). The decompose event is also the API
endpoint /decompose (first input the video, every other input defaulted)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from .examples import ATTRIBUTION, EXAMPLES
from .handlers import OUTPUTS, Handlers, remove_workdir
from .limits import (
    DEFAULT_OUTPUT_SIDE,
    DEFAULT_SAMPLE_FPS,
    DEFAULT_SECONDS,
    LIMITS_TEXT,
    MAX_ADAPT_STEPS,
    MAX_SAMPLE_FPS,
    MAX_SECONDS,
    MAX_SLOTS,
    OUTPUT_SIDES,
    WORK_TTL_SECONDS,
)
from .page_text import DESCRIPTION, HONESTY, SLOT_SOURCES, SLOT_SOURCES_INFO
from .session import Decomposer

TITLE = "Slot decomposition studio"
INPUTS = ("video_in", "fps", "max_seconds", "num_slots", "opacity", "max_side", "on_long")
INPUTS += ("slot_source", "adapt_steps", "state")
# the video player's own "Video not playable" toast: the upload check says what is wrong in
# plain words instead (and a file the browser cannot preview may still decompose fine)
STARTING = '<div class="run-status"><b>Starting…</b> (waiting for the model)</div>'
HIDE_PLAYER_ERROR = """
() => {
  new MutationObserver(() => {
    for (const toast of document.querySelectorAll('.toast-body')) {
      if (toast.textContent.includes('Video not playable')) toast.remove();
    }
  }).observe(document.body, {childList: true, subtree: true});
}
"""


def _settings(page: SimpleNamespace, default_slots: int) -> None:
    with gr.Accordion("Settings", open=False):
        page.fps = gr.Slider(
            1, MAX_SAMPLE_FPS, value=DEFAULT_SAMPLE_FPS, step=1, label="Frames per second to sample"
        )
        page.max_seconds = gr.Slider(
            1, MAX_SECONDS, value=DEFAULT_SECONDS, step=1, label="Maximum seconds"
        )
        page.num_slots = gr.Slider(
            1,
            MAX_SLOTS,
            value=default_slots,
            step=1,
            label="Number of slots",
            info=f"trained with {default_slots}",
        )
        page.opacity = gr.Slider(0.0, 1.0, value=0.55, step=0.05, label="Overlay opacity")
        page.max_side = gr.Dropdown(
            OUTPUT_SIDES, value=DEFAULT_OUTPUT_SIDE, label="Output size (long side, px)"
        )
        page.on_long = gr.Radio(
            ["trim", "refuse"], value="trim", label="Videos longer than the maximum"
        )
        page.slot_source = gr.Radio(
            SLOT_SOURCES, value="tracked", label="Slots shown", info=SLOT_SOURCES_INFO
        )


def _inputs_column(page: SimpleNamespace, default_slots: int) -> None:
    page.video_in = gr.Video(
        label="Your video", sources=["upload", "webcam"], elem_id="video-input"
    )
    _settings(page, default_slots)
    with gr.Accordion("Adapt to this video", open=False):
        page.adapt_steps = gr.Slider(
            0,
            MAX_ADAPT_STEPS,
            value=0,
            step=10,
            label="Fine-tuning steps (0 = off)",
            info="Trains a copy of the model on your clip (no labels needed) before decomposing "
            "it. Seconds on a GPU; on a CPU one to a few seconds per step (the progress bar "
            "shows the time measured on this machine before it starts). The adapted weights "
            "are in the zip.",
            elem_id="adapt-steps",
        )
    with gr.Row():
        page.run = gr.Button("Decompose", variant="primary", elem_id="run-button")
        page.cancel = gr.Button(
            "Cancel", variant="secondary", size="sm", visible=False, elem_id="cancel-button"
        )
    gr.Markdown(f"<small>{LIMITS_TEXT}</small>")


def _results_column(page: SimpleNamespace) -> None:
    page.summary = gr.HTML(elem_id="run-summary")
    page.legend = gr.HTML(elem_id="slot-legend", visible=False)
    with gr.Tabs():
        with gr.Tab("Slots"):
            page.overlay = gr.Video(
                label="Slot overlay", autoplay=True, loop=True, elem_id="overlay-video"
            )
        with gr.Tab("Depth"):
            page.depth = gr.Video(
                label="Predicted depth (bright = near)",
                autoplay=True,
                loop=True,
                elem_id="depth-video",
            )
            page.depth_scale = gr.HTML(elem_id="depth-scale")
        with gr.Tab("Side by side"):
            page.side = gr.Video(
                label="Slots | depth", autoplay=True, loop=True, elem_id="side-video"
            )
        with gr.Tab("Timelines"):
            page.plot = gr.Plot(label="Per-slot timelines", elem_id="timeline-plot")
        with gr.Tab("Per slot"):
            with gr.Row():
                page.slot_pick = gr.Dropdown(
                    choices=[], label="Slot", interactive=True, elem_id="slot-pick"
                )
                page.mode = gr.Radio(
                    [("only this slot", "only"), ("hide this slot", "hide")],
                    value="only",
                    label="View",
                )
                page.show = gr.Button("Show", elem_id="show-slot")
            page.slot_video = gr.Video(
                label="Per-slot view", autoplay=True, loop=True, elem_id="slot-video"
            )
        with gr.Tab("Downloads"):
            page.archive = gr.File(label="Everything, one zip", elem_id="archive")
            page.files = gr.File(
                label="Single files (videos, slots.npz, keyframes.png)",
                file_count="multiple",
                elem_id="single-files",
            )


def build_page(default_slots: int, examples: list[Path]) -> tuple[gr.Blocks, SimpleNamespace]:
    """The layout alone: every component, no events. Returns the Blocks and its components."""
    page = SimpleNamespace()
    with gr.Blocks(title=TITLE, delete_cache=(600, WORK_TTL_SECONDS)) as demo:
        gr.Markdown(DESCRIPTION)
        page.state = gr.State(None, time_to_live=WORK_TTL_SECONDS, delete_callback=remove_workdir)
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=320):
                _inputs_column(page, default_slots)
            with gr.Column(scale=3, min_width=420):
                _results_column(page)
        labels = {e.file: e.label for e in EXAMPLES}
        page.examples = gr.Examples(
            [[str(p)] for p in examples],
            inputs=[page.video_in],
            example_labels=[labels.get(p.name, p.stem) for p in examples],
            label="Examples: click one to decompose it",
            elem_id="examples",
        )
        gr.Markdown(HONESTY)
        gr.Markdown(f"<small>{ATTRIBUTION}</small>")
    return demo, page


def _run_chain(trigger, handlers: Handlers, page: SimpleNamespace, concurrency: int, api: bool):
    """check (before the queue) -> show Cancel -> decompose -> hide Cancel. Returns the
    decompose event (what Cancel cancels)."""
    inputs = [getattr(page, name) for name in INPUTS]
    outputs = [getattr(page, name) for name in OUTPUTS]
    buttons = [page.cancel, page.run]
    checked = (
        trigger(
            handlers.check, page.video_in, page.summary, queue=False, api_visibility="private"
        ).success(handlers.stop_if_bad, page.video_in, None, queue=False, api_visibility="private")
    ).success(
        lambda: (gr.update(visible=True), gr.update(interactive=False), STARTING),
        None,
        [*buttons, page.summary],
        queue=False,
        api_visibility="private",
    )
    event = checked.success(
        handlers.decompose,
        inputs,
        outputs,
        api_name="decompose" if api else None,
        api_visibility="public" if api else "private",
        concurrency_limit=concurrency,
        concurrency_id="model",
        show_progress="minimal",
        show_progress_on=[page.summary],
    )
    event.then(
        lambda: (gr.update(visible=False), gr.update(interactive=True), gr.update(visible=True)),
        None,
        [*buttons, page.legend],
        queue=False,
        api_visibility="private",
    )
    return event


def build_demo(
    decomposer: Decomposer,
    examples: list[Path] | None = None,
    concurrency: int = 1,
    queue_size: int = 16,
) -> gr.Blocks:
    demo, page = build_page(decomposer.model.config.num_slots, examples or [])
    handlers = Handlers(decomposer)
    with demo:
        runs = [_run_chain(page.run.click, handlers, page, concurrency, api=True)]
        runs.append(
            _run_chain(page.examples.load_input_event.then, handlers, page, concurrency, api=False)
        )
        page.cancel.click(
            lambda: (gr.update(visible=False), gr.update(interactive=True)),
            None,
            [page.cancel, page.run],
            cancels=runs,
            queue=False,
            api_visibility="private",
        )
        page.show.click(
            handlers.show_slot,
            [page.state, page.slot_pick, page.mode],
            page.slot_video,
            api_name="slot_view",
            concurrency_id="model",
        )
    demo.queue(max_size=queue_size, default_concurrency_limit=concurrency)
    return demo
