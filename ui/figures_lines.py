"""Our own offline line views of attention (after bertviz's head and model views), as pure plotly figures.

- ``head_lines``: two columns of tokens, the query on the left and the key on the right, one line per link weighted
  by attention and coloured by head; ``focus`` keeps only one query's lines (a click on a left token sets it).
- ``model_lines``: small multiples of every layer and head, each a miniature of the same picture.

Lines are grouped into a few opacity/width buckets per head (one plotly trace each, segments separated by None),
weak links are dropped and each figure keeps at most a fixed number of segments, so a 512-token input stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from ui.text import head_name

from .figures_attention import _base_layout, head_names, label, thinned

HEAD_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#8c6d31", "#7b4173", "#3182bd"]
BUCKETS = (0.05, 0.15, 0.35, 0.6)  # lower edges of the weight buckets: fainter, thinner lines below
MIN_WEIGHT = BUCKETS[0]
MAX_SEGMENTS = 12_000  # per figure, over all heads
MAX_TOKEN_LABELS = 80  # token names written beside the columns (all of them are in the hover)


def head_color(head: int) -> str:
    return HEAD_COLORS[head % len(HEAD_COLORS)]


def strongest_links(a: np.ndarray, budget: int, min_weight: float = MIN_WEIGHT) -> tuple[np.ndarray, ...]:
    """(rows, cols, weights) of the links ≥ min_weight in a (T, T) map, the strongest ``budget`` of them."""
    r, c = np.nonzero(a >= min_weight)
    w = a[r, c]
    if len(w) > budget:
        top = np.argpartition(-w, budget - 1)[:budget]
        r, c, w = r[top], c[top], w[top]
    return r, c, w


def _segments(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Line segments as one x and one y array with NaN gaps (plotly breaks a line at a gap)."""
    n = len(x0)
    xs, ys = np.full(3 * n, np.nan), np.full(3 * n, np.nan)
    xs[0::3], xs[1::3], ys[0::3], ys[1::3] = x0, x1, y0, y1
    return xs, ys


def _bucket_traces(fig: go.Figure, xs0, ys0, xs1, ys1, w, color: str, name: str, legend: bool) -> None:
    """Add the links of one head as one trace per weight bucket (darker and thicker for stronger links)."""
    for b, low in enumerate(BUCKETS):
        high = BUCKETS[b + 1] if b + 1 < len(BUCKETS) else np.inf
        sel = (w >= low) & (w < high)
        if not sel.any():
            continue
        x, y = _segments(xs0[sel], ys0[sel], xs1[sel], ys1[sel])
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", hoverinfo="skip", name=name, legendgroup=name,
                                 showlegend=legend and b == 0, opacity=0.25 + 0.2 * b,
                                 line=dict(color=color, width=0.8 + 1.2 * b)))
        legend = legend and b != 0


def head_lines(attn: np.ndarray, tokens: Sequence[str], heads: Sequence[int], focus: int | None = None,
               title: str | None = None) -> go.Figure:
    """One layer's heads (attn: (H, T, T)) as lines from each query (left) to the keys it attends to (right).

    Markers on the left carry customdata [position] (a click focuses that token) and a hover listing the keys the
    token attends to most in each shown head.
    """
    a = np.asarray(attn, dtype=np.float32)
    T = a.shape[-1]
    toks = [label(t) for t in tokens]
    heads = [int(h) for h in heads]
    fig = go.Figure()
    budget = max(1, MAX_SEGMENTS // max(1, len(heads)))
    for h in heads:
        m = a[h] if focus is None else np.where(np.arange(T)[:, None] == focus, a[h], 0.0)
        r, c, w = strongest_links(m, budget)
        _bucket_traces(fig, np.zeros(len(r)), -r.astype(float), np.ones(len(r)), -c.astype(float), w,
                       head_color(h), head_name(h), legend=True)
    ys = -np.arange(T, dtype=float)
    top = np.argsort(-a[heads], axis=-1)[..., :3]  # (h, T, 3)
    hover = ["<br>".join(f"{head_name(h)}: " + ", ".join(f"{toks[j]} {a[h, i, j]:.2f}" for j in top[n, i])
                         for n, h in enumerate(heads)) for i in range(T)]
    shown = set(thinned(T, MAX_TOKEN_LABELS).tolist())
    if focus is not None:
        shown.add(int(focus))
    text = [t if i in shown else "" for i, t in enumerate(toks)]
    sizes = np.where(np.arange(T) == (focus if focus is not None else -1), 11, 7)
    fig.add_trace(go.Scatter(x=np.zeros(T), y=ys, mode="markers+text", text=text, textposition="middle left",
                             marker=dict(size=sizes, color="#444"), customdata=np.arange(T)[:, None],
                             hovertext=[f"#{i} {toks[i]} looks at:<br>{hover[i]}" for i in range(T)],
                             hovertemplate="%{hovertext}<extra>click to focus</extra>", showlegend=False))
    fig.add_trace(go.Scatter(x=np.ones(T), y=ys, mode="markers+text", text=text, textposition="middle right",
                             marker=dict(size=5, color="#999"), hovertext=[f"#{i} {t}" for i, t in enumerate(toks)],
                             hovertemplate="%{hovertext} (key)<extra></extra>", showlegend=False))
    fig.update_xaxes(visible=False, range=[-0.75, 1.75], fixedrange=True)
    fig.update_yaxes(visible=False, range=[-T + 0.2, 0.8], fixedrange=T <= MAX_TOKEN_LABELS)
    fig.update_layout(dragmode="pan" if T > MAX_TOKEN_LABELS else False, clickmode="event+select",
                      legend=dict(x=1.0, y=1.0, xanchor="right"), hovermode="closest")
    return _base_layout(fig, title, height=int(max(320, min(1400, 17 * T + 110))))


def model_lines(attentions: np.ndarray, selected: tuple[int, int] | None = None,
                title: str | None = None, width: int = 1000) -> go.Figure:
    """Every layer (row) and head (column) as a small line plot; customdata [layer, head] on each cell's centre."""
    a = np.asarray(attentions, dtype=np.float32)
    L, H, T = a.shape[:3]
    gap = 0.35
    budget = max(1, MAX_SEGMENTS // (L * H))
    fig = go.Figure()
    yy = 1 - np.arange(T) / max(T - 1, 1)  # token position -> height inside a cell (0..1, first on top)
    for h in range(H):
        xs0, ys0, xs1, ys1, ws = [], [], [], [], []
        for layer in range(L):
            r, c, w = strongest_links(a[layer, h], budget, min_weight=0.1)
            x0, y0 = h * (1 + gap), -layer * (1 + gap)
            xs0.append(np.full(len(r), x0))
            xs1.append(np.full(len(r), x0 + 1.0))
            ys0.append(y0 + yy[r])
            ys1.append(y0 + yy[c])
            ws.append(w)
        _bucket_traces(fig, *(np.concatenate(v) for v in (xs0, ys0, xs1, ys1, ws)), head_color(h), head_name(h),
                       legend=False)
    ll, hh = np.meshgrid(np.arange(L), np.arange(H), indexing="ij")
    fig.add_trace(go.Scatter(x=hh.ravel() * (1 + gap) + 0.5, y=-ll.ravel() * (1 + gap) + 0.5, mode="markers",
                             marker=dict(size=max(10, min(50, 700 // max(L, H))), symbol="square",
                                         color="rgba(0,0,0,0)"), customdata=np.stack([ll.ravel(), hh.ravel()], 1),
                             text=head_names(ll.ravel(), hh.ravel()), showlegend=False,
                             hovertemplate="%{text}<extra>click to open</extra>"))
    shapes = []
    if selected is not None:
        sl, sh = selected
        shapes.append(dict(type="rect", x0=sh * (1 + gap) - 0.08, x1=sh * (1 + gap) + 1.08,
                           y0=-sl * (1 + gap) - 0.08, y1=-sl * (1 + gap) + 1.08, line=dict(color="#e4572e", width=3)))
    fig.update_layout(shapes=shapes, dragmode=False, clickmode="event+select", hovermode="closest")
    fig.update_xaxes(tickmode="array", tickvals=[h * (1 + gap) + 0.5 for h in range(H)],
                     ticktext=[str(h + 1) for h in range(H)], title_text="head", side="top", showgrid=False,
                     zeroline=False, range=[-0.2, H * (1 + gap) - gap + 0.2], fixedrange=True)
    fig.update_yaxes(tickmode="array", tickvals=[-layer * (1 + gap) + 0.5 for layer in range(L)],
                     ticktext=[str(layer + 1) for layer in range(L)], title_text="layer", showgrid=False,
                     zeroline=False, range=[-(L - 1) * (1 + gap) - 0.2, 1.2], fixedrange=True)
    return _base_layout(fig, title, height=max(260, min(1300, int(width * L / H) + 80)))
