"""Pure plotly builders for the attention explorer and the "Inside BERT" page: numpy in -> plotly Figure out.

No Streamlit here, so every figure can be tested on its data. Payload matters (a figure travels to the browser
on every rerun): matrices go out as float32/uint8 arrays, which plotly encodes compactly as base64.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ui.text import head_name, layer_name

ATTN_COLORS = "Blues"
DIVERGING = "RdBu_r"
CELL_LABEL_LIMIT = 160  # above this many tokens per side, no per-cell hover strings (categorical axes instead)
MAX_TICK_LABELS = 32  # most tick labels on one axis of a heatmap (about 14 px apart on a laptop)
_FONT = dict(size=12)


def label(token: str) -> str:
    """A token made safe for plotly's text (plotly reads a few HTML tags; user text must stay text)."""
    return html.escape(str(token), quote=False)


def tick_labels(tokens: Sequence[str]) -> list[str]:
    return [label(t) for t in tokens]


def _base_layout(fig: go.Figure, title: str | None, height: int, **kw) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=15)) if title else None, height=height,
                      margin=dict(l=10, r=10, t=40 if title else 10, b=10), font=_FONT, **kw)
    return fig


def thinned(n: int, most: int) -> np.ndarray:
    """At most ``most`` evenly spaced positions out of n (all of them when n <= most), first and last included."""
    return np.arange(n) if n <= most else np.unique(np.linspace(0, n - 1, most).round().astype(int))


def strongest_link(attn: np.ndarray, keep: np.ndarray | None = None) -> tuple[int, int, float]:
    """(query, key, weight) of the largest weight among the tokens shown (``keep``: the same mask as the map's)."""
    a = np.asarray(attn, dtype=np.float64)
    shown = np.arange(a.shape[0]) if keep is None else np.flatnonzero(keep)
    sub = a[np.ix_(shown, shown)]
    r, c = np.unravel_index(int(np.argmax(sub)), sub.shape)
    return int(shown[r]), int(shown[c]), float(sub[r, c])


def attention_heatmap(attn: np.ndarray, tokens: Sequence[str], title: str | None = None,
                      keep: np.ndarray | None = None, key_tokens: Sequence[str] | None = None,
                      zmax: float | None = None) -> go.Figure:
    """One head's attention map: row = query token, column = key token, hover 'query → key : weight'.

    Axes are positions, so repeated tokens stay separate. Up to CELL_LABEL_LIMIT tokens the axes are integers
    with per-cell hover text; beyond, they are categories named '#position token' (the hover still names both
    tokens, without a string per cell). At most MAX_TICK_LABELS tick labels per axis: hundreds of rotated labels
    smear into a grey block and cost plotly tens of seconds to lay out.
    keep: optional boolean mask (T,) of tokens to show (e.g. without [CLS]/[SEP]); rows are NOT renormalised.
    zmax: the top of the colour scale (default: the map's maximum); two maps compared side by side share one.
    The map fills the plot area (cells need not be square), so the colour bar beside it is exactly as tall.
    """
    a = np.asarray(attn, dtype=np.float32)
    toks = list(tokens)
    keys = list(key_tokens) if key_tokens is not None else toks
    rows = np.arange(a.shape[0]) if keep is None else np.flatnonzero(keep)
    cols = np.arange(a.shape[1]) if keep is None else np.flatnonzero(keep)
    z = a[np.ix_(rows, cols)]
    q_lab = [label(toks[i]) for i in rows]
    k_lab = [label(keys[j]) for j in cols]
    n_r, n_c = len(rows), len(cols)
    top = float(max(z.max(initial=0.0), 1e-6)) if zmax is None else float(zmax)
    trace = dict(z=z, x=np.arange(n_c), y=np.arange(n_r), colorscale=ATTN_COLORS, zmin=0.0, zmax=top,
                 colorbar=dict(title="weight", thickness=12, len=1.0, lenmode="fraction", y=0.5, yanchor="middle"))
    if max(n_r, n_c) <= CELL_LABEL_LIMIT:
        trace["text"] = [[f"{q} → {k}" for k in k_lab] for q in q_lab]
        trace["hovertemplate"] = "%{text} : %{z:.3f}<extra></extra>"
        x_at, y_at = list(range(n_c)), list(range(n_r))
    else:
        trace["x"] = x_at = [f"#{j} {k}" for j, k in zip(cols, k_lab)]
        trace["y"] = y_at = [f"#{i} {q}" for i, q in zip(rows, q_lab)]
        trace["hovertemplate"] = "%{y} → %{x} : %{z:.3f}<extra></extra>"
    fig = go.Figure(go.Heatmap(**trace))
    side = max(380, min(950, 24 * n_r + 150))
    xs, ys = thinned(n_c, MAX_TICK_LABELS), thinned(n_r, MAX_TICK_LABELS)
    fig.update_xaxes(tickmode="array", tickvals=[x_at[j] for j in xs], ticktext=[k_lab[j] for j in xs],
                     tickangle=-60, title_text="key (attended to)", side="bottom", showgrid=False, zeroline=False)
    fig.update_yaxes(tickmode="array", tickvals=[y_at[i] for i in ys], ticktext=[q_lab[i] for i in ys],
                     autorange="reversed", title_text="query (attending)", showgrid=False, zeroline=False)
    return _base_layout(fig, title, side)


def _pool(m: np.ndarray, size: int) -> np.ndarray:
    """Block-average a (T, T) map down to at most (size, size)."""
    T = m.shape[0]
    if T <= size:
        return m
    edges = np.linspace(0, T, size + 1).round().astype(int)
    rows = np.add.reduceat(m, edges[:-1], axis=0) / np.diff(edges)[:, None]
    return np.add.reduceat(rows, edges[:-1], axis=1) / np.diff(edges)[None, :]


def head_names(layers, heads) -> list[str]:
    """Hover names ('layer 1, head 1') for 0-based layer and head indexes (one numbering: people count from 1)."""
    return [f"{layer_name(layer)}, {head_name(h)}" for layer, h in zip(layers, heads)]


def head_grid(attentions: np.ndarray, selected: tuple[int, int] | None = None, size: int = 24,
              title: str | None = None, width: int = 1000) -> go.Figure:
    """All layers × heads as one tiled image of small maps (layer = row of tiles, head = column).

    Each tile is the head's map, block-averaged to at most ``size`` × ``size`` and scaled to its own maximum
    (so weak patterns stay visible), sent as uint8. Invisible markers at the tile centres carry
    customdata [layer, head], so a click selects a head. width: the expected display width (px), for the height.
    """
    a = np.asarray(attentions, dtype=np.float32)
    L, H = a.shape[:2]
    s = min(a.shape[-1], size)
    tiles = np.zeros((L * s, H * s), dtype=np.uint8)
    for layer in range(L):
        for head in range(H):
            t = _pool(a[layer, head], s)
            t = t / max(float(t.max()), 1e-9)
            tiles[layer * s:(layer + 1) * s, head * s:(head + 1) * s] = np.round(t * 255).astype(np.uint8)
    fig = go.Figure(go.Heatmap(z=tiles, colorscale=ATTN_COLORS, showscale=False, hoverinfo="skip", zmin=0, zmax=255))
    ll, hh = np.meshgrid(np.arange(L), np.arange(H), indexing="ij")
    fig.add_trace(go.Scatter(
        x=(hh.ravel() * s + (s - 1) / 2), y=(ll.ravel() * s + (s - 1) / 2), mode="markers",
        marker=dict(size=max(6, min(40, 600 // max(L, H))), symbol="square", color="rgba(0,0,0,0)"),
        customdata=np.stack([ll.ravel(), hh.ravel()], axis=1), text=head_names(ll.ravel(), hh.ravel()),
        hovertemplate="%{text}<extra>click to open</extra>",
        showlegend=False))
    shapes = [dict(type="line", x0=h * s - 0.5, x1=h * s - 0.5, y0=-0.5, y1=L * s - 0.5,
                   line=dict(color="white", width=2)) for h in range(1, H)]
    shapes += [dict(type="line", y0=layer * s - 0.5, y1=layer * s - 0.5, x0=-0.5, x1=H * s - 0.5,
                    line=dict(color="white", width=2)) for layer in range(1, L)]
    if selected is not None:
        sl, sh = selected
        shapes.append(dict(type="rect", x0=sh * s - 0.5, x1=(sh + 1) * s - 0.5, y0=sl * s - 0.5,
                           y1=(sl + 1) * s - 0.5, line=dict(color="#e4572e", width=3)))
    fig.update_layout(shapes=shapes, dragmode=False, clickmode="event+select")
    fig.update_xaxes(tickmode="array", tickvals=[h * s + (s - 1) / 2 for h in range(H)],
                     ticktext=[str(h + 1) for h in range(H)], title_text="head", side="top", showgrid=False,
                     zeroline=False, range=[-0.5, H * s - 0.5], constrain="domain")
    fig.update_yaxes(tickmode="array", tickvals=[layer * s + (s - 1) / 2 for layer in range(L)],
                     ticktext=[str(layer + 1) for layer in range(L)], title_text="layer", autorange="reversed",
                     showgrid=False, zeroline=False, scaleanchor="x", constrain="domain")
    return _base_layout(fig, title, height=max(240, min(1100, int(width * L / H) + 70)))


def stats_heatmap(values: np.ndarray, name: str, selected: tuple[int, int] | None = None,
                  fmt: str = ".2f", colorscale: str = "Viridis") -> go.Figure:
    """A (L, H) statistic as a layer × head heatmap with the values written in; a click selects a head."""
    v = np.asarray(values, dtype=np.float32)
    L, H = v.shape
    fig = go.Figure(go.Heatmap(z=v, x=np.arange(H), y=np.arange(L), colorscale=colorscale, hoverinfo="skip",
                               texttemplate=f"%{{z:{fmt}}}", textfont=dict(size=10 if H > 12 else 11),
                               colorbar=dict(title=label(name), thickness=12), xgap=1, ygap=1))
    ll, hh = np.meshgrid(np.arange(L), np.arange(H), indexing="ij")
    fig.add_trace(go.Scatter(x=hh.ravel(), y=ll.ravel(), mode="markers", showlegend=False,
                             marker=dict(size=max(8, min(36, 480 // max(L, H))), symbol="square",
                                         color="rgba(0,0,0,0)"),
                             customdata=np.stack([ll.ravel(), hh.ravel(), v.ravel()], axis=1),
                             text=head_names(ll.ravel(), hh.ravel()),
                             hovertemplate=(f"%{{text}}<br>{label(name)}: "
                                            f"%{{customdata[2]:{fmt}}}<extra>click to open</extra>")))
    shapes = []
    if selected is not None:
        sl, sh = selected
        shapes.append(dict(type="rect", x0=sh - 0.5, x1=sh + 0.5, y0=sl - 0.5, y1=sl + 0.5,
                           line=dict(color="#e4572e", width=3)))
    fig.update_layout(shapes=shapes, dragmode=False, clickmode="event+select")
    fig.update_xaxes(tickmode="array", tickvals=list(range(H)), ticktext=[str(h + 1) for h in range(H)],
                     title_text="head", side="top", showgrid=False, zeroline=False)
    fig.update_yaxes(tickmode="array", tickvals=list(range(L)), ticktext=[str(layer + 1) for layer in range(L)],
                     title_text="layer", autorange="reversed", showgrid=False, zeroline=False)
    return _base_layout(fig, None, height=max(240, min(800, 34 * L + 90)))


def cross_segment_chart(crossing: dict[str, np.ndarray]) -> go.Figure:
    """Per layer, the share of attention that crosses from one sentence to the other (grouped bars, in %)."""
    fig = go.Figure()
    for name, vals in crossing.items():
        v = np.asarray(vals, dtype=np.float64) * 100
        fig.add_trace(go.Bar(x=np.arange(len(v)), y=v.round(2), name=name, text=[layer_name(i) for i in range(len(v))],
                             textposition="none", hovertemplate=f"%{{text}}<br>{name}: %{{y:.1f}}%<extra></extra>"))
    n = len(next(iter(crossing.values())))
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=1.12, x=0))
    fig.update_xaxes(tickmode="array", tickvals=list(range(n)), ticktext=[str(i + 1) for i in range(n)],
                     title_text="layer")
    fig.update_yaxes(title_text="attention to the other sentence (%)", rangemode="tozero")
    return _base_layout(fig, None, 320)


def token_bars(values: np.ndarray, tokens: Sequence[str], name: str, highlight: int | None = None,
               fmt: str = ".3f") -> go.Figure:
    """One number per token (e.g. a query's scores or softmax weights over the keys) as bars."""
    v = np.asarray(values, dtype=np.float64)
    colors = ["#e4572e" if i == highlight else "#4c78a8" for i in range(len(v))]
    fig = go.Figure(go.Bar(x=np.arange(len(v)), y=v, marker_color=colors, text=[f"{x:{fmt}}" for x in v],
                           textposition="outside", cliponaxis=False,
                           customdata=tick_labels(tokens),
                           hovertemplate=f"%{{customdata}} (#%{{x}})<br>{label(name)}: %{{y:{fmt}}}<extra></extra>"))
    fig.update_xaxes(tickmode="array", tickvals=list(range(len(v))), ticktext=tick_labels(tokens), tickangle=-45)
    fig.update_yaxes(title_text=label(name))
    return _base_layout(fig, None, 300)


def vector_strip(values: np.ndarray, name: str, highlight: tuple[int, int] | None = None) -> go.Figure:
    """A long vector (e.g. a 384-dim hidden state) as a one-row heatmap coloured around 0; hover shows dim & value.

    highlight: an optional [start, stop) range of dimensions to outline (e.g. one head's slice).
    """
    v = np.asarray(values, dtype=np.float32).reshape(1, -1)
    m = float(np.abs(v).max(initial=0.0)) or 1.0
    fig = go.Figure(go.Heatmap(z=v, x=np.arange(v.shape[1]), colorscale=DIVERGING, zmid=0, zmin=-m, zmax=m,
                               colorbar=dict(thickness=10, len=1.0),
                               hovertemplate="dim %{x}: %{z:.4f}<extra></extra>"))
    if highlight is not None:
        fig.add_shape(type="rect", x0=highlight[0] - 0.5, x1=highlight[1] - 0.5, y0=-0.5, y1=0.5,
                      line=dict(color="black", width=2))
    fig.update_yaxes(showticklabels=False, title_text=label(name), showgrid=False)
    fig.update_xaxes(title_text="dimension", showgrid=False)
    return _base_layout(fig, None, 130)


def matrix_heatmap(m: np.ndarray, row_labels: Sequence[str], name: str, highlight_row: int | None = None,
                   col_title: str = "dimension") -> go.Figure:
    """A small (rows × dims) matrix such as one head's K or V, rows labelled by token, coloured around 0."""
    z = np.asarray(m, dtype=np.float32)
    lim = float(np.abs(z).max(initial=0.0)) or 1.0
    rows = tick_labels(row_labels)
    fig = go.Figure(go.Heatmap(z=z, x=np.arange(z.shape[1]), y=np.arange(z.shape[0]), colorscale=DIVERGING,
                               zmid=0, zmin=-lim, zmax=lim, colorbar=dict(thickness=10),
                               customdata=np.array([[r] * z.shape[1] for r in rows]),
                               hovertemplate=f"%{{customdata}} · {col_title} %{{x}}: %{{z:.4f}}<extra></extra>"))
    if highlight_row is not None:
        fig.add_shape(type="rect", x0=-0.5, x1=z.shape[1] - 0.5, y0=highlight_row - 0.5, y1=highlight_row + 0.5,
                      line=dict(color="#e4572e", width=2))
    fig.update_yaxes(tickmode="array", tickvals=list(range(len(rows))), ticktext=rows, autorange="reversed",
                     showgrid=False)
    fig.update_xaxes(title_text=col_title, showgrid=False)
    return _base_layout(fig, label(name), max(200, min(700, 22 * z.shape[0] + 90)))


def attention_table(attn: np.ndarray, tokens: Sequence[str], decimals: int = 4) -> pd.DataFrame:
    """An attention map as a table for CSV export: rows 'i:query', columns 'j:key' (positions keep repeats apart)."""
    names = [f"{i}:{t}" for i, t in enumerate(tokens)]
    return pd.DataFrame(np.round(np.asarray(attn, dtype=np.float64), decimals), index=pd.Index(names, name="query"),
                        columns=names)


def clicked(event, per_row: int | None = None) -> list[int] | None:
    """The integer customdata of the first clicked point of a plotly selection event (None when nothing was hit).

    per_row: for markers laid out row by row without customdata, (point_index // per_row, point_index % per_row).
    """
    for p in (event.selection.points if event is not None else []):
        cd = p.get("customdata")
        if isinstance(cd, dict):  # plotly may hand an array back as {"0": …, "1": …}
            cd = [cd[k] for k in sorted(cd, key=int)]
        if isinstance(cd, (list, tuple)) and cd:
            return [int(v) for v in cd]
        if per_row and p.get("point_index") is not None:
            return list(divmod(int(p["point_index"]), per_row))
    return None


def figure_bytes(fig: go.Figure) -> int:
    """Size of the JSON a figure sends to the browser."""
    return len(fig.to_json(validate=False).encode())
