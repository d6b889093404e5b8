"""Pure plotly builders for explanations: attributions, the neuron view and contextual embeddings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bert_core.explain import METHODS, NeuronView, TokenAttribution
from .figures_attention import DIVERGING, MAX_TICK_LABELS, _base_layout, label, thinned

SENSE_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"]
YOURS_COLOR, OTHER_COLOR = "#d62728", "#7f7f7f"


def attribution_figure(attrs: dict[str, TokenAttribution]) -> go.Figure:
    """The methods one above the other over the same tokens: one bar per token (blue +, red −, the target ringed)."""
    names = list(attrs)
    first = attrs[names[0]]
    T = len(first.tokens)
    toks = [label(t) for t in first.tokens]
    fig = make_subplots(rows=len(names), cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=[METHODS[n] for n in names])
    for r, name in enumerate(names, start=1):
        s = np.asarray(attrs[name].scores, dtype=np.float64)
        colors = np.where(s >= 0, "#4c78a8", "#e45756").astype(object)
        if first.target.kind == "mask":
            colors[first.target.position] = "#bbbbbb"
        fig.add_trace(go.Bar(x=np.arange(T), y=s, marker_color=list(colors), customdata=toks, showlegend=False,
                             hovertemplate=f"%{{customdata}} (#%{{x}})<br>{METHODS[name]}: %{{y:.4f}}<extra></extra>"),
                      row=r, col=1)
    shown = thinned(T, MAX_TICK_LABELS)
    fig.update_xaxes(tickmode="array", tickvals=shown.tolist(), ticktext=[toks[i] for i in shown], tickangle=-60,
                     row=len(names), col=1)
    fig.update_yaxes(zeroline=True, zerolinecolor="#888")
    _base_layout(fig, None, height=170 * len(names) + 110)
    fig.update_layout(margin=dict(t=30))  # room for the first subplot's title
    return fig


def agreement_figure(rho: np.ndarray, names: Sequence[str]) -> go.Figure:
    """The Spearman rank agreement between methods as a small annotated matrix."""
    labels = [METHODS[n] for n in names]
    z = np.asarray(rho, dtype=np.float64)
    fig = go.Figure(go.Heatmap(z=z, x=labels, y=labels, zmin=-1, zmax=1, colorscale=DIVERGING, showscale=False,
                               texttemplate="%{z:.2f}", hovertemplate="%{y} vs %{x}: ρ = %{z:.2f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return _base_layout(fig, None, height=260)


def neuron_figure(nv: NeuronView) -> go.Figure:
    """The neuron view for one query: k per dimension, q ⊙ k, then q·k/√d_k and the softmax, one row per key."""
    toks = [label(t) for t in nv.tokens]
    T, d = nv.k.shape
    fig = make_subplots(rows=1, cols=4, shared_yaxes=True, column_widths=[0.33, 0.33, 0.17, 0.17],
                        horizontal_spacing=0.02,
                        subplot_titles=["k", "q ⊙ k", "q·k/√d_k", "softmax"])
    for col, m in ((1, nv.k), (2, nv.qk)):
        lim = float(np.abs(m).max(initial=0.0)) or 1.0
        fig.add_trace(go.Heatmap(z=m.astype(np.float32), x=np.arange(d), y=np.arange(T), colorscale=DIVERGING,
                                 zmid=0, zmin=-lim, zmax=lim, showscale=False,
                                 hovertemplate="key #%{y} · dim %{x}: %{z:.4f}<extra></extra>"), row=1, col=col)
    for col, v, fmt in ((3, nv.scaled, ".2f"), (4, nv.probs, ".3f")):
        colors = ["#e4572e" if i == nv.query else "#4c78a8" for i in range(T)]
        fig.add_trace(go.Bar(x=v, y=np.arange(T), orientation="h", marker_color=colors, showlegend=False,
                             text=[f"{x:{fmt}}" for x in v] if T <= 40 else None, textposition="auto",
                             hovertemplate=f"key #%{{y}}: %{{x:{fmt}}}<extra></extra>"), row=1, col=col)
    shown = thinned(T, MAX_TICK_LABELS)
    fig.update_yaxes(tickmode="array", tickvals=shown.tolist(), ticktext=[toks[i] for i in shown],
                     autorange="reversed", row=1, col=1)
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title_text="dimension", row=1, col=1)
    fig.update_xaxes(title_text="dimension", row=1, col=2)
    _base_layout(fig, None, height=int(max(300, min(1200, 20 * T + 140))))
    fig.update_layout(margin=dict(t=30))  # room for the subplot titles
    fig.update_annotations(font_size=12)  # the subplot titles, narrow on a phone
    return fig


def embedding_scatter(xy: np.ndarray, senses: Sequence[str], texts: Sequence[str], title: str | None = None,
                      highlight: int | None = None) -> go.Figure:
    """A 2-D map of a word's occurrences, one colour per sense; hover shows the sentence (escaped)."""
    xy = np.asarray(xy, dtype=np.float64)
    fig = go.Figure()
    order = [s for s in dict.fromkeys(senses) if s not in ("your sentence", "other")]
    order += [s for s in ("other", "your sentence") if s in senses]
    for n, sense in enumerate(order):
        idx = [i for i, s in enumerate(senses) if s == sense]
        color = {"your sentence": YOURS_COLOR, "other": OTHER_COLOR}.get(sense, SENSE_COLORS[n % len(SENSE_COLORS)])
        fig.add_trace(go.Scatter(x=xy[idx, 0], y=xy[idx, 1], mode="markers", name=label(sense),
                                 marker=dict(size=11 if sense == "your sentence" else 9, color=color,
                                             symbol="star" if sense == "your sentence" else "circle",
                                             line=dict(width=1, color="white")),
                                 customdata=np.array(idx)[:, None], hovertext=[label(texts[i]) for i in idx],
                                 hovertemplate="%{hovertext}<extra></extra>"))
    if highlight is not None:
        fig.add_trace(go.Scatter(x=[xy[highlight, 0]], y=[xy[highlight, 1]], mode="markers", name="picked",
                                 marker=dict(size=18, color="rgba(0,0,0,0)", line=dict(width=2.5, color="black")),
                                 hoverinfo="skip"))
    fig.update_layout(legend=dict(orientation="h", y=-0.15, x=0, yanchor="top"), hovermode="closest")
    fig.update_xaxes(title_text="component 1", zeroline=False)
    fig.update_yaxes(title_text="component 2", zeroline=False)
    _base_layout(fig, title, height=500)
    fig.update_layout(margin=dict(b=40))
    return fig


def layer_curve(values: np.ndarray, name: str, selected: int | None = None) -> go.Figure:
    """One number per layer (0 = embeddings) as a line with the selected layer marked."""
    v = np.asarray(values, dtype=np.float64) * 100
    fig = go.Figure(go.Scatter(x=np.arange(len(v)), y=v, mode="lines+markers", name=label(name),
                               hovertemplate="layer %{x}: %{y:.0f}%<extra></extra>"))
    if selected is not None:
        fig.add_vline(x=selected, line=dict(color="#e4572e", dash="dot"))
    fig.update_xaxes(tickmode="array", tickvals=list(range(len(v))), title_text="layer (0 = embeddings)")
    fig.update_yaxes(title_text=label(name), range=[0, 105])
    return _base_layout(fig, None, height=260)
