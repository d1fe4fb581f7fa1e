"""Where the benchmarks' plotly figures go: HTML always, PNG beside it where kaleido is
installed (it is not a dependency)."""

from __future__ import annotations

from pathlib import Path

# one colour per model in every figure (bench.scaling's MODELS)
MODEL_COLOURS = {
    "slotssm": "#1f77b4",
    "single_ssm": "#9467bd",
    "slot_rnn": "#ff7f0e",
    "slot_transformer": "#d62728",
}


def save_figure(fig, path: Path) -> list[str]:
    """Writes path.html (and path.png with kaleido); returns the paths written."""
    written = [str(path.with_suffix(".html"))]
    fig.write_html(written[0], include_plotlyjs="cdn")
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return written
    fig.write_image(str(path.with_suffix(".png")))
    return [*written, str(path.with_suffix(".png"))]
