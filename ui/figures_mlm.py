"""Pure plotly builders for the masked-word playground: numpy in -> plotly Figure out (no Streamlit here).

Every token or word shown is escaped first: plotly reads a few HTML tags in text, and user text must stay text.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.text import pct

BAR = "#4C78A8"  # BERT's own choices
GUESS = "#F58518"  # the player's guess / a candidate
ANSWER = "#54A24B"  # the word that was really there
MUTED = "#BAB0AC"
AFTER = "#E45756"  # after ablation
_FONT = dict(size=13)


def label(token: str) -> str:
    """A token made safe for plotly text."""
    return html.escape(str(token), quote=False)


def _layout(fig: go.Figure, title: str | None, height: int, **kw) -> go.Figure:
    fig.update_layout(title=dict(text=label(title), x=0, font=dict(size=15)) if title else None, height=height,
                      margin=dict(l=10, r=20, t=44 if title else 10, b=10), font=_FONT, **kw)
    return fig


def _prob_axis(p_max: float, pad: float = 1.2) -> dict:
    """A linear probability axis from 0 that fits the data, with tick labels precise enough for small values."""
    top = min(max(float(p_max) * pad, 1e-9), 1.15)  # room for the labels outside the bars, no 120% tick
    fmt = ".0%" if top >= 0.1 else ".1%" if top >= 0.01 else ".3~%"
    return dict(range=[0, top], tickformat=fmt)


def topk_bar(tokens: Sequence[str], probs: Sequence[float], title: str | None = None,
             highlight: dict[str, str] | None = None) -> go.Figure:
    """Horizontal bars of BERT's top-k tokens, most likely on top. highlight: token -> colour (guess, answer)."""
    toks, p = [str(t) for t in tokens], np.asarray(probs, dtype=float)
    highlight = highlight or {}
    colors = [highlight.get(t, BAR) for t in toks]
    fig = go.Figure(go.Bar(
        x=p, y=list(range(len(toks))), orientation="h", marker_color=colors,
        text=[pct(v) for v in p], textposition="outside", cliponaxis=False,
        customdata=[label(t) for t in toks], hovertemplate="%{customdata}: %{x:.2%}<extra></extra>"))
    fig.update_yaxes(tickvals=list(range(len(toks))), ticktext=[label(t) for t in toks], autorange="reversed")
    fig.update_xaxes(title="probability", **_prob_axis(float(p.max(initial=0)), pad=1.22))
    return _layout(fig, title, height=90 + 26 * len(toks), showlegend=False, bargap=0.25)


def candidates_bar(words: Sequence[str], probs: Sequence[float], ranks: Sequence[int],
                   pieces: Sequence[Sequence[str]], title: str | None = None) -> go.Figure:
    """The user's candidate words by BERT's probability (log axis: candidates often differ by orders of magnitude)."""
    w = [str(x) for x in words]
    p = np.clip(np.asarray(probs, dtype=float), 1e-12, 1.0)
    order = np.argsort(-p)
    ticks = [label(w[i]) + (f" ({len(pieces[i])} pieces)" if len(pieces[i]) > 1 else "") for i in order]
    fig = go.Figure(go.Bar(
        x=p[order], y=list(range(len(w))), orientation="h", marker_color=GUESS,
        text=[f"{pct(p[i])} · rank {ranks[i]:,}" for i in order], textposition="outside", cliponaxis=False,
        customdata=[" ".join(label(t) for t in pieces[i]) for i in order],
        hovertemplate="pieces: %{customdata}<br>probability %{x:.2~%}<extra></extra>"))
    fig.update_yaxes(tickvals=list(range(len(w))), ticktext=ticks, autorange="reversed")
    lo = float(np.log10(p.min())) - 0.5
    fig.update_xaxes(type="log", range=[lo, 0.6], dtick=1, exponentformat="power", title="probability (log scale)")
    return _layout(fig, title, height=110 + 30 * len(w), showlegend=False, bargap=0.3)


def logit_lens_figure(layers: Sequence[str], tracked: dict[str, tuple[np.ndarray, np.ndarray]],
                      top_tokens: Sequence[str], top_probs: Sequence[float], title: str | None = None) -> go.Figure:
    """Probability (top) and rank (bottom, log, 1 on top) of tracked tokens at every layer, with each layer's own
    top token written above the grey dotted line."""
    x = list(layers)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1, row_heights=[0.6, 0.4],
                        subplot_titles=("probability at the [MASK]", "rank (log scale, 1 = BERT's top choice)"))
    fig.add_trace(go.Scatter(x=x, y=np.asarray(top_probs, dtype=float), mode="lines+markers+text",
                             name="this layer's top token", line=dict(color=MUTED, dash="dot"),
                             text=[label(t) for t in top_tokens], textposition="top center",
                             textfont=dict(size=11, color="#555"),
                             hovertemplate="layer %{x}: top token %{text} (%{y:.1%})<extra></extra>"), row=1, col=1)
    colors = [BAR, GUESS, ANSWER, AFTER, "#72B7B2", "#B279A2"]
    for k, (name, (p, r)) in enumerate(tracked.items()):
        c = colors[k % len(colors)]
        fig.add_trace(go.Scatter(x=x, y=np.asarray(p, dtype=float), mode="lines+markers", name=label(name),
                                 line=dict(color=c, width=3), legendgroup=str(k),
                                 hovertemplate="layer %{x}: %{y:.2%}<extra>" + label(name) + "</extra>"), row=1, col=1)
        fig.add_trace(go.Scatter(x=x, y=np.asarray(r, dtype=float), mode="lines+markers", name=label(name),
                                 line=dict(color=c, width=3), legendgroup=str(k), showlegend=False,
                                 hovertemplate="layer %{x}: rank %{y:,}<extra>" + label(name) + "</extra>"),
                      row=2, col=1)
    ymax = max([float(np.max(top_probs, initial=0))] + [float(np.max(p, initial=0)) for p, _ in tracked.values()])
    fig.update_yaxes(row=1, col=1, **_prob_axis(ymax, pad=1.3))
    fig.update_yaxes(type="log", autorange="reversed", dtick=1, row=2, col=1)  # ticks at 1, 10, 100, …
    fig.update_xaxes(type="category", title="layer (emb = embeddings, before any attention)", row=2, col=1)
    _layout(fig, title, height=540, legend=dict(orientation="h", y=-0.18, x=0))
    fig.update_layout(margin=dict(t=64 if title else 36))  # room for the subplot titles
    return fig


def ablation_bars(tokens: Sequence[str], before: Sequence[float], after: Sequence[float],
                  title: str | None = None) -> go.Figure:
    """Grouped bars: probability of each token with all heads (blue) and with the chosen heads knocked out (red)."""
    t = [label(x) for x in tokens]
    fig = go.Figure([
        go.Bar(x=t, y=np.asarray(before, dtype=float), name="all heads", marker_color=BAR,
               hovertemplate="%{x}: %{y:.2%}<extra>all heads</extra>"),
        go.Bar(x=t, y=np.asarray(after, dtype=float), name="heads knocked out", marker_color=AFTER,
               hovertemplate="%{x}: %{y:.2%}<extra>knocked out</extra>"),
    ])
    fig.update_yaxes(tickformat=".0%", title="probability")
    fig.update_xaxes(type="category")
    return _layout(fig, title, height=340, barmode="group", legend=dict(orientation="h", y=1.12, x=0))


def head_importance_heatmap(drop: np.ndarray, target: str, title: str | None = None) -> go.Figure:
    """Layers × heads: how much the target's probability falls when that one head is knocked out (red = needed)."""
    d = np.asarray(drop, dtype=np.float32)
    L, H = d.shape
    lim = float(np.abs(d).max(initial=0)) or 1e-9
    fig = go.Figure(go.Heatmap(
        z=d, x=[f"H{h + 1}" for h in range(H)], y=[f"L{i + 1}" for i in range(L)], zmin=-lim, zmax=lim,
        colorscale="RdBu_r", colorbar=dict(title=dict(text="drop", side="right"),
                                           tickformat=".1%" if lim >= 0.01 else ".3~%" if lim >= 1e-5 else ".1e"),
        hovertemplate="layer %{y}, head %{x}<br>P(" + label(target) + ") falls by %{z:.3~%}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category", side="top")
    return _layout(fig, title, height=max(220, 60 + 34 * L))
