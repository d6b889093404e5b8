"""Pure plotly builder for the class game's reveal: the class's guesses beside BERT's top-k (no Streamlit here)."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .figures_mlm import ANSWER, BAR, GUESS, MUTED, _layout, label
from .text import pct as _pct

MAX_WORDS = 15


def class_vs_bert(words: Sequence[str], counts: Sequence[int], points: Sequence[int], bert_tokens: Sequence[str],
                  bert_probs: Sequence[float], answer: str, title: str | None = None) -> go.Figure:
    """Left: how many players chose each word (with its points); right: BERT's top-k. Green: the original word;
    orange on the right: BERT's words the class also chose."""
    words, counts, points = list(words)[:MAX_WORDS], list(counts)[:MAX_WORDS], list(points)[:MAX_WORDS]
    ans = str(answer).lower()
    chosen = {str(w).lower() for w in words}
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.14,
                        subplot_titles=("The class's guesses (players)", f"BERT's top {len(bert_tokens)}"))
    fig.add_trace(go.Bar(
        x=counts, y=list(range(len(words))), orientation="h", name="class",
        marker_color=[ANSWER if str(w).lower() == ans else GUESS for w in words],
        text=[f"{c} · +{p}" for c, p in zip(counts, points)], textposition="outside", cliponaxis=False,
        customdata=[label(w) for w in words], hovertemplate="%{customdata}: %{x} players<extra></extra>"), 1, 1)
    fig.add_trace(go.Bar(
        x=list(bert_probs), y=list(range(len(bert_tokens))), orientation="h", name="BERT",
        marker_color=[ANSWER if str(t).lower() == ans else GUESS if str(t).lower() in chosen else BAR
                      for t in bert_tokens],
        text=[_pct(p) for p in bert_probs], textposition="outside", cliponaxis=False,
        customdata=[label(t) for t in bert_tokens], hovertemplate="%{customdata}: %{x:.2%}<extra></extra>"), 1, 2)
    fig.update_yaxes(tickvals=list(range(len(words))), ticktext=[label(w) for w in words], autorange="reversed",
                     row=1, col=1)
    fig.update_yaxes(tickvals=list(range(len(bert_tokens))), ticktext=[label(t) for t in bert_tokens],
                     autorange="reversed", row=1, col=2)
    fig.update_xaxes(title="players", range=[0, max(counts, default=1) * 1.35 + 0.5], dtick=1 if max(
        counts, default=1) <= 10 else None, row=1, col=1)
    fig.update_xaxes(title="BERT's probability", range=[0, max(bert_probs, default=0.01) * 1.3], tickformat=".0%",
                     row=1, col=2)
    rows = max(len(words), len(bert_tokens), 3)
    if not words:
        fig.add_annotation(text="no guesses", x=0.2, y=0.5, xref="paper", yref="paper", showarrow=False,
                           font=dict(color=MUTED))
    fig = _layout(fig, title, height=130 + 30 * rows, showlegend=False, bargap=0.25)
    if title:
        fig.update_layout(margin=dict(t=84))  # room for the title above the two panels' titles
    return fig
