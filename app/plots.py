"""Per-slot timelines with plotly: each slot's share of the pixels and its encoder attention
mass over time. One legend entry per slot toggles both panels."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from model.palette import slot_color


def timelines(times: np.ndarray, pixel_share: np.ndarray, attention: np.ndarray) -> go.Figure:
    """times (T,) seconds; pixel_share, attention (T, N) fractions in [0, 1]."""
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=("share of the pixels", "encoder attention mass"),
    )
    for i in range(pixel_share.shape[1]):
        color = "rgb({},{},{})".format(*slot_color(i))
        for row, values in ((1, pixel_share[:, i]), (2, attention[:, i])):
            fig.add_trace(
                go.Scatter(
                    x=times,
                    y=values,
                    mode="lines",
                    name=f"slot {i}",
                    legendgroup=f"slot{i}",
                    showlegend=row == 1,
                    line={"color": color, "width": 2},
                    hovertemplate=f"slot {i}<br>t=%{{x:.2f}} s<br>%{{y:.1%}}<extra></extra>",
                ),
                row=row,
                col=1,
            )
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    fig.update_xaxes(title_text="time (s)", row=2, col=1)
    fig.update_layout(
        height=460,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
        hovermode="x unified",
        legend={"orientation": "h", "y": -0.18},
        template="plotly_white",
    )
    return fig
