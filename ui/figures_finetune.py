"""Pure plotly builders for the fine-tuning lab: numbers in -> plotly Figure out (no Streamlit here).

Class names and texts come from users' CSV files: they are escaped before plotly sees them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.figures_training import _layout, label

PALETTE = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D", "#BAB0AC",
           "#EECA3B"]
ACC, F1 = "#54A24B", "#B279A2"


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def class_balance(names: Sequence[str], train_counts: Sequence[int], test_counts: Sequence[int],
                  title: str | None = None) -> go.Figure:
    """Examples per class in the training and held-out sets (horizontal bars)."""
    y = [label(n) for n in names]
    fig = go.Figure([
        go.Bar(y=y, x=list(train_counts), name="training", orientation="h", marker_color="#4C78A8",
               hovertemplate="%{y}: %{x} training examples<extra></extra>"),
        go.Bar(y=y, x=list(test_counts), name="held-out", orientation="h", marker_color="#F58518",
               hovertemplate="%{y}: %{x} held-out examples<extra></extra>")])
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(title="examples")
    return _layout(fig, title, height=120 + 42 * len(names), barmode="group",
                   legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"))


def metric_curves(eval_steps: Sequence[int], accuracy: Sequence[float], macro_f1: Sequence[float],
                  baseline: float | None = None, title: str | None = None) -> go.Figure:
    """Held-out accuracy and macro-F1 at each evaluation, with the majority-class baseline dotted."""
    fig = go.Figure([
        go.Scatter(x=list(eval_steps), y=list(accuracy), mode="lines+markers", name="accuracy",
                   line=dict(color=ACC, width=2.5), hovertemplate="step %{x}: %{y:.1%}<extra>accuracy</extra>"),
        go.Scatter(x=list(eval_steps), y=list(macro_f1), mode="lines+markers", name="macro F1",
                   line=dict(color=F1, width=2.5), hovertemplate="step %{x}: %{y:.1%}<extra>macro F1</extra>")])
    if baseline is not None:
        fig.add_hline(y=baseline, line=dict(color="#888", dash="dot"),
                      annotation_text=f"always the biggest class: {baseline:.0%}", annotation_position="bottom right")
    fig.update_xaxes(title="optimizer step", rangemode="tozero")
    fig.update_yaxes(title="held-out", tickformat=".0%", range=[0, 1.02])
    return _layout(fig, title, height=330, legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"))


def confusion_matrix(matrix: np.ndarray, names: Sequence[str], title: str | None = None) -> go.Figure:
    """Counts of (true class row, predicted class column); the colour is the share of the row."""
    m = np.asarray(matrix, dtype=float)
    share = m / np.clip(m.sum(1, keepdims=True), 1, None)
    ticks = [label(n) for n in names]
    n = len(names)
    fig = go.Figure(go.Heatmap(z=share, x=list(range(n)), y=list(range(n)), zmin=0, zmax=1, colorscale="Blues",
                               text=m.astype(int), texttemplate="%{text}", customdata=np.dstack([m, share]),
                               colorbar=dict(title="share of row", tickformat=".0%", thickness=12),
                               hovertemplate="true %{y}, predicted %{x}: %{customdata[0]:.0f} "
                                             "(%{customdata[1]:.0%} of the row)<extra></extra>"))
    fig.update_xaxes(title="predicted", tickvals=list(range(n)), ticktext=ticks, side="bottom")
    fig.update_yaxes(title="true", tickvals=list(range(n)), ticktext=ticks, autorange="reversed")
    return _layout(fig, title, height=160 + 48 * n)


def cls_scatter(before: np.ndarray, after: np.ndarray, labels: Sequence[int], names: Sequence[str],
                texts: Sequence[str], title: str | None = None) -> go.Figure:
    """The held-out examples' [CLS] vectors (PCA to 2-D) before and after training, coloured by true class."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["before training", "after training"],
                        horizontal_spacing=0.06)
    y = np.asarray(labels)
    short = [label(t if len(t) <= 90 else t[:87] + "…") for t in texts]
    for col, pts in ((1, np.asarray(before)), (2, np.asarray(after))):
        for c, name in enumerate(names):
            sel = np.flatnonzero(y == c)
            fig.add_trace(go.Scatter(x=pts[sel, 0], y=pts[sel, 1], mode="markers", name=label(name),
                                     legendgroup=str(c), showlegend=col == 1,
                                     marker=dict(color=colour(c), size=7, opacity=0.75,
                                                 line=dict(width=0.5, color="white")),
                                     customdata=[short[i] for i in sel],
                                     hovertemplate="%{customdata}<extra>" + label(name) + "</extra>"),
                          row=1, col=col)
        fig.update_xaxes(showticklabels=False, title="PCA 1", row=1, col=col)
        fig.update_yaxes(showticklabels=False, title="PCA 2" if col == 1 else None, row=1, col=col)
    fig = _layout(fig, title, height=440, legend=dict(orientation="h", y=-0.08, yanchor="top", x=0.5,
                                                      xanchor="center"))
    return fig.update_layout(margin=dict(t=76 if title else 30))  # room for the subplot titles under the title


def class_probabilities(names: Sequence[str], probs: Sequence[float], title: str | None = None) -> go.Figure:
    """The classifier's probability for every class of one text."""
    order = np.argsort(-np.asarray(probs))
    fig = go.Figure(go.Bar(x=[float(probs[i]) for i in order], y=[label(names[i]) for i in order], orientation="h",
                           marker_color=[colour(int(i)) for i in order], text=[f"{probs[i]:.1%}" for i in order],
                           textposition="auto", hovertemplate="%{y}: %{x:.2%}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(range=[0, 1], tickformat=".0%", title="probability")
    return _layout(fig, title, height=110 + 34 * len(names))


def compare_curves(series: Sequence[tuple[str, Sequence[float], Sequence[float]]], title: str | None = None,
                   y_title: str = "held-out accuracy", percent: bool = True) -> go.Figure:
    """Several runs' curves on one chart: (name, x, y) each, one colour per run."""
    fig = go.Figure([go.Scatter(x=list(x), y=list(y), mode="lines+markers" if len(x) < 40 else "lines",
                                name=label(name), line=dict(color=colour(i), width=2.5),
                                hovertemplate="step %{x}: %{y" + (":.1%" if percent else ":.3f") + "}<extra>"
                                              + label(name) + "</extra>")
                     for i, (name, x, y) in enumerate(series)])
    fig.update_xaxes(title="optimizer step", rangemode="tozero")
    fig.update_yaxes(title=y_title, **({"tickformat": ".0%", "range": [0, 1.02]} if percent else {}))
    return _layout(fig, title, height=330, legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1,
                                                       xanchor="right"))
