"""Pure plotly builders for the pretraining lab: numbers in -> plotly Figure out (no Streamlit here).

Tokens are escaped before plotly sees them (plotly reads a few HTML tags in text).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

LOSS = "#4C78A8"
SMOOTH = "#1F3B5C"
EVAL = "#F58518"
TOP1 = "#54A24B"
TOP5 = "#B279A2"
LR = "#E45756"
_FONT = dict(size=13)


def label(token: str) -> str:
    return html.escape(str(token), quote=False)


def _layout(fig: go.Figure, title: str | None, height: int, **kw) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=15)) if title else None, height=height,
                      margin=dict(l=10, r=20, t=44 if title else 10, b=10), font=_FONT, **kw)
    return fig


def ema(values: Sequence[float], alpha: float = 0.1) -> np.ndarray:
    """Exponential moving average (bias-corrected), the usual smoothing of a noisy loss curve."""
    v = np.asarray(values, dtype=float)
    out = np.empty_like(v)
    acc = 0.0
    for i, x in enumerate(v):
        acc = (1 - alpha) * acc + alpha * x
        out[i] = acc / (1 - (1 - alpha) ** (i + 1))
    return out


def lr_schedule(steps: Sequence[int], lrs: Sequence[float], warmup_steps: int, title: str | None = None) -> go.Figure:
    """Learning rate per optimizer step, the warm-up shaded."""
    fig = go.Figure(go.Scatter(x=list(steps), y=list(lrs), mode="lines", line=dict(color=LR, width=2.5),
                               name="learning rate", hovertemplate="step %{x}: lr %{y:.2e}<extra></extra>"))
    if warmup_steps > 0:
        fig.add_vrect(x0=0, x1=warmup_steps, fillcolor=LR, opacity=0.08, line_width=0,
                      annotation_text="warm-up", annotation_position="top left")
    fig.update_xaxes(title="optimizer step")
    fig.update_yaxes(title="learning rate", exponentformat="e", rangemode="tozero")
    return _layout(fig, title, height=240, showlegend=False)


def loss_curve(steps: Sequence[int], losses: Sequence[float], eval_steps: Sequence[int] = (),
               eval_losses: Sequence[float] = (), title: str | None = None) -> go.Figure:
    """Training loss per step (raw and smoothed) and held-out loss at the evaluations."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=list(steps), y=list(losses), mode="lines", name="training batch",
                             line=dict(color=LOSS, width=1), opacity=0.45,
                             hovertemplate="step %{x}: %{y:.3f}<extra>batch</extra>"))
    if len(losses) > 1:
        fig.add_trace(go.Scatter(x=list(steps), y=ema(losses).tolist(), mode="lines", name="training (smoothed)",
                                 line=dict(color=SMOOTH, width=2.5),
                                 hovertemplate="step %{x}: %{y:.3f}<extra>smoothed</extra>"))
    if len(eval_steps):
        fig.add_trace(go.Scatter(x=list(eval_steps), y=list(eval_losses), mode="lines+markers", name="held-out",
                                 line=dict(color=EVAL, width=2, dash="dot"), marker=dict(size=7),
                                 hovertemplate="step %{x}: %{y:.3f}<extra>held-out</extra>"))
    fig.update_xaxes(title="optimizer step", rangemode="tozero")
    fig.update_yaxes(title="cross-entropy (nats)")
    return _layout(fig, title, height=330, legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"))


def accuracy_curve(eval_steps: Sequence[int], top1: Sequence[float], top5: Sequence[float],
                   title: str | None = None) -> go.Figure:
    """Held-out masked-token accuracy (top-1, top-5) at each evaluation."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=list(eval_steps), y=list(top5), mode="lines+markers", name="top-5",
                             line=dict(color=TOP5, width=2.5), hovertemplate="step %{x}: %{y:.1%}<extra>top-5</extra>"))
    fig.add_trace(go.Scatter(x=list(eval_steps), y=list(top1), mode="lines+markers", name="top-1",
                             line=dict(color=TOP1, width=2.5), hovertemplate="step %{x}: %{y:.1%}<extra>top-1</extra>"))
    hi = max([0.1, *top5, *top1])
    fig.update_xaxes(title="optimizer step", rangemode="tozero")
    fig.update_yaxes(title="masked tokens right", tickformat=".0%", range=[0, min(1.0, hi * 1.15)])
    return _layout(fig, title, height=330, legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"))


def attention_snapshots(maps: Sequence[np.ndarray], tokens: Sequence[str], steps: Sequence[int],
                        title: str | None = None) -> go.Figure:
    """One head's attention map (query rows × key columns) at several steps, side by side, on one colour scale."""
    n = len(maps)
    toks = [label(t) for t in tokens]
    T = len(toks)
    zmax = max(0.05, max(float(np.max(a)) for a in maps))
    fig = make_subplots(rows=1, cols=n, subplot_titles=[f"step {s}" for s in steps], horizontal_spacing=0.02)
    for i, a in enumerate(maps):
        fig.add_trace(go.Heatmap(z=np.asarray(a, dtype=float), x=list(range(T)), y=list(range(T)),
                                 zmin=0, zmax=zmax, colorscale="Blues", showscale=i == n - 1,
                                 colorbar=dict(title="weight", thickness=12),
                                 customdata=[[[q, k] for k in toks] for q in toks],
                                 hovertemplate="%{customdata[0]} → %{customdata[1]}: %{z:.2f}<extra></extra>"),
                      row=1, col=i + 1)
        fig.update_xaxes(tickvals=list(range(T)), ticktext=toks, tickangle=-60, tickfont=dict(size=11),
                         row=1, col=i + 1)
        fig.update_yaxes(tickvals=list(range(T)), ticktext=toks if i == 0 else [""] * T, tickfont=dict(size=11),
                         autorange="reversed", row=1, col=i + 1)
    return _layout(fig, title, height=max(320, 150 + 17 * T))


def entropy_heatmap(steps: Sequence[int], entropy: np.ndarray, title: str | None = None,
                    max_bits: float | None = None) -> go.Figure:
    """Mean attention entropy (bits) of every head (rows 'L1 H1' …) at every snapshot (columns).

    The colour scale runs from 0 (all attention on one token) to ``max_bits`` (log2 T: perfectly even).
    """
    e = np.asarray(entropy, dtype=float)  # (S, L, H)
    S, L, H = e.shape
    rows = [f"L{l + 1} H{h + 1}" for l in range(L) for h in range(H)]
    fig = go.Figure(go.Heatmap(z=e.reshape(S, L * H).T, x=[str(s) for s in steps], y=rows, colorscale="Viridis",
                               zmin=0, zmax=max_bits if max_bits else float(e.max(initial=1.0)),
                               colorbar=dict(title="bits", thickness=12),
                               hovertemplate="%{y}, step %{x}: %{z:.2f} bits<extra></extra>"))
    fig.update_xaxes(title="step", type="category")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, height=min(900, 160 + 16 * L * H))
