"""Pure plotly builders for the BERT's-family page (no Streamlit here)."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from ui.figures_training import _layout, label

PART_COLOURS = {"embeddings": "#4C78A8", "attention": "#F58518", "feed-forward": "#54A24B", "LayerNorms": "#B279A2",
                "pooler": "#9D755D"}


def parameter_bars(names: Sequence[str], breakdowns: Sequence[dict[str, int]], title: str | None = None) -> go.Figure:
    """One stacked horizontal bar per model: millions of parameters in each part."""
    fig = go.Figure()
    for part, colour in PART_COLOURS.items():
        fig.add_trace(go.Bar(y=[label(n) for n in names], x=[b.get(part, 0) / 1e6 for b in breakdowns], name=part,
                             orientation="h", marker_color=colour,
                             hovertemplate="%{y}<br>" + part + ": %{x:.2f}M<extra></extra>"))
    totals = [sum(b.values()) / 1e6 for b in breakdowns]
    fig.add_trace(go.Scatter(y=[label(n) for n in names], x=totals, mode="text", text=[f"  {t:.1f}M" for t in totals],
                             textposition="middle right", showlegend=False, hoverinfo="skip"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(title="parameters (millions)", range=[0, max(totals) * 1.15])
    return _layout(fig, title, height=120 + 46 * len(names), barmode="stack",
                   legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"))


def soft_targets(tokens: Sequence[str], hard: Sequence[float], soft: Sequence[float], temperature: float,
                 title: str | None = None) -> go.Figure:
    """The teacher's top words at T = 1 and at temperature T, side by side."""
    y = [label(t) for t in tokens]
    fig = go.Figure([
        go.Bar(y=y, x=list(hard), name="T = 1 (the normal prediction)", orientation="h", marker_color="#4C78A8",
               hovertemplate="%{y}: %{x:.2%}<extra>T = 1</extra>"),
        go.Bar(y=y, x=list(soft), name=f"T = {temperature:g} (soft targets)", orientation="h", marker_color="#F58518",
               hovertemplate="%{y}: %{x:.2%}<extra>T = " + f"{temperature:g}" + "</extra>")])
    fig.update_yaxes(autorange="reversed", type="category")
    names = {1e-5: "0.001%", 1e-4: "0.01%", 1e-3: "0.1%", 0.01: "1%", 0.1: "10%", 1.0: "100%"}
    ticks = [t for t in names if t >= min([*hard, *soft, 1.0]) / 10]
    fig.update_xaxes(title="probability (log scale)", type="log", tickvals=ticks, ticktext=[names[t] for t in ticks])
    return _layout(fig, title, height=140 + 30 * len(tokens), barmode="group",
                   legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"))
