"""What the page's events do: check an upload, decompose a video (also the API endpoint
/decompose), show one slot. Messages are for the person at the page: plain words, one per
problem, never an exception's class name."""

from __future__ import annotations

import html
import logging
import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr

from .examples import is_metric
from .export import human_size
from .limits import (
    DEFAULT_OUTPUT_SIDE,
    DEFAULT_SAMPLE_FPS,
    DEFAULT_SECONDS,
    MAX_ADAPT_STEPS,
    MAX_SECONDS,
    WORK_TTL_SECONDS,
)
from .memory import release_freed_memory
from .plots import timelines
from .render import depth_scale_html, legend_html
from .session import STAGES, Decomposer, Result, Settings, Step
from .video_io import VideoError, probe

log = logging.getLogger("slot_studio")
WORK_ROOT = Path(tempfile.gettempdir()) / "slot-studio"
# the decompose event's outputs, in order (the API returns them in this order, state aside)
OUTPUTS = (
    "overlay",
    "depth",
    "side",
    "plot",
    "legend",
    "archive",
    "files",
    "summary",
    "slot_pick",
    "depth_scale",
    "state",
)
FAILED = "Something went wrong while processing this video. The server is fine; please try another video."


def remove_workdir(state: dict | None) -> None:
    """gr.State delete_callback: a closed tab or an expired session frees its files."""
    if state and state.get("workdir"):
        shutil.rmtree(state["workdir"], ignore_errors=True)


def sweep_old_workdirs(max_age: float = WORK_TTL_SECONDS) -> None:
    """Remove work folders older than the cache policy (sessions that never said goodbye)."""
    if not WORK_ROOT.is_dir():
        return
    now = time.time()
    for d in WORK_ROOT.iterdir():
        if d.is_dir() and now - d.stat().st_mtime > max_age:
            shutil.rmtree(d, ignore_errors=True)


def problem_with(video: str | None) -> str:
    """'' if the video can be decomposed, else what is wrong with it, in plain words."""
    if not video:
        return "Please upload or record a video first."
    try:
        probe(video)
    except VideoError as err:
        return str(err)
    return ""


def status_html(step: Step) -> str:
    """The live status line: the current stage and the frames finished so far."""
    names = list(STAGES)
    number = names.index(step.stage) + 1
    unit = "adaptation steps" if step.stage == "adapt" else "frames"
    frames = f"{step.done} of {step.expected} {unit} done"
    if step.note:
        frames += f" · {html.escape(step.note)}"
    return (
        f'<div class="run-status"><b>Working: {STAGES[step.stage]}</b> '
        f"(step {number} of {len(names)}) · {frames}"
        f'<progress max="{step.expected}" value="{step.done}" style="width:100%"></progress></div>'
    )


def summary_html(result: Result, decomposer: Decomposer) -> str:
    """A headline in plain words, warnings, then the technical details folded away."""
    t, (w, h), frames = result.timings, result.size, len(result.times)
    seconds = frames / result.fps
    zip_size = human_size(result.archive.stat().st_size)
    headline = (
        f"<b>Done:</b> {seconds:.1f} s of video ({frames} frames, {w}×{h}) split into "
        f"{result.num_slots} slots in {t['total']:.1f} s. Downloads: {zip_size} zip."
    )
    if result.adaptation:
        a = result.adaptation
        headline += (
            f" The model was first adapted to this video ({a.steps} steps in {a.seconds:.0f} s); "
            "its weights are in the zip (adapted_weights/)."
        )
    warnings = "".join(f"<div>⚠️ {html.escape(m)}</div>" for m in result.warnings)
    stages = " · ".join(f"{STAGES[k]} {t[k]:.1f} s" for k in STAGES if k != "adapt" or t[k])
    mw, mh = result.model_size
    details = (
        f"<details><summary>Technical details</summary><ul>"
        f"<li>device: {decomposer.device}; model {html.escape(decomposer.model_name)}, "
        f"frames seen by the model at {mw}×{mh}</li>"
        f"<li>weights sha256: <code>{decomposer.weights_sha256}</code></li>"
        f"<li>timings: {stages}</li>"
        f"<li>sampled at {result.fps:g} fps; depth "
        f"{'in metres' if result.metric_depth else 'relative'}</li></ul></details>"
    )
    return f'<div class="run-summary">{headline}{warnings}{details}</div>'


class Handlers:
    """The page's event functions around one shared Decomposer."""

    def __init__(self, decomposer: Decomposer):
        self.decomposer = decomposer

    @staticmethod
    def check(video: str | None) -> str:
        """Before the queue: a bad file is refused at once, without taking a model slot. The
        message goes to the status line, the one place the page reports on a run."""
        message = problem_with(video)
        return f'<div class="run-problem">⚠️ {html.escape(message)}</div>' if message else ""

    @staticmethod
    def stop_if_bad(video: str | None) -> None:
        """Ends the event chain after a refused file (check has said why: no second message)."""
        if problem_with(video):
            raise gr.Error("refused", visible=False, print_exception=False)

    def decompose(
        self,
        video: str,
        fps: float = DEFAULT_SAMPLE_FPS,
        max_seconds: float = DEFAULT_SECONDS,
        num_slots: int | None = None,  # None: the model's trained number
        opacity: float = 0.55,
        max_side: int = DEFAULT_OUTPUT_SIDE,
        on_long: str = "trim",
        slot_ids: str = "tracked",
        adapt_steps: int = 0,  # > 0: fine-tune a copy of the model on this clip first
        previous: dict | None = None,
    ):
        """Decompose a video into slots (generator): status updates, then every output."""
        message = problem_with(video)
        if message:
            raise gr.Error(message, title="This video cannot be used", print_exception=False)
        settings = Settings(
            fps=float(fps),
            max_seconds=float(min(max_seconds, MAX_SECONDS)),
            num_slots=int(num_slots) if num_slots else None,
            opacity=float(opacity),
            max_side=int(max_side),
            on_long=on_long,
            slot_ids=slot_ids,  # one of SLOT_ID_SOURCES: the Radio refuses anything else
            metric_depth=is_metric(video),
            adapt_steps=int(min(max(adapt_steps or 0, 0), MAX_ADAPT_STEPS)),
        )
        remove_workdir(previous)  # a session keeps only its latest results
        sweep_old_workdirs()
        WORK_ROOT.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="run-", dir=WORK_ROOT))  # one per request
        result = yield from self._run(video, settings, workdir)
        for w in result.warnings:
            gr.Warning(w)
        state = {"workdir": str(workdir), "video": video, "settings": settings.__dict__}
        yield self._outputs(result, state)

    def _run(self, video: str, settings: Settings, workdir: Path):
        """The decomposition, yielding a status update before each step; returns the Result."""
        status_only = [gr.skip()] * len(OUTPUTS)
        stream = self.decomposer.stream(video, settings, workdir)
        result = None
        try:
            for item in stream:
                if isinstance(item, Result):
                    result = item
                    return result
                status_only[OUTPUTS.index("summary")] = status_html(item)
                yield status_only  # also a point where a cancelled request stops
        except VideoError as err:
            raise gr.Error(str(err), title="This video cannot be used") from None
        except Exception:  # one bad request must never take the server down
            log.exception("decompose failed")
            raise gr.Error(FAILED) from None
        finally:
            stream.close()  # cancelled (button, closed tab): stop at a step boundary
            if result is None:  # failed or cancelled: nothing of this request is kept
                shutil.rmtree(workdir, ignore_errors=True)
            release_freed_memory()

    def _outputs(self, result: Result, state: dict) -> list:
        """Every output of the decompose event, in OUTPUTS order."""
        single = [result.overlay, result.depth, result.composite, result.npz, result.keyframes]
        values = {
            "overlay": str(result.overlay),
            "depth": str(result.depth),
            "side": str(result.composite),
            "plot": timelines(result.times, result.pixel_share, result.attention),
            "legend": legend_html(result.pixel_share.mean(0)),  # shown by the event's last step
            "archive": str(result.archive),
            "files": [str(p) for p in single],
            "summary": summary_html(result, self.decomposer),
            "slot_pick": gr.update(
                choices=[(f"slot {i}", i) for i in range(result.num_slots)], value=0
            ),
            "depth_scale": depth_scale_html(result.depth_range, result.metric_depth),
            "state": state,
        }
        return [values[name] for name in OUTPUTS]

    def show_slot(self, state: dict | None, slot: int, mode: str):
        if not state:
            raise gr.Error("Run a decomposition first.")
        workdir = Path(state["workdir"])
        if not workdir.is_dir():
            raise gr.Error("These results have expired; please run the video again.")
        out = workdir / f"slot_{int(slot)}_{mode}.mp4"
        try:
            return str(
                self.decomposer.render_slot_view(
                    state["video"], workdir, Settings(**state["settings"]), int(slot), mode, out
                )
            )
        except VideoError as err:
            raise gr.Error(str(err)) from None
