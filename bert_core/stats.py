"""Per-head attention statistics (in the spirit of Clark et al. 2019, "What does BERT look at?").

Every statistic is averaged over the query tokens (rows) of one attention map, giving one number per
(layer, head). Also the two information measures the app uses everywhere: ``entropy_bits`` and ``kl_divergence``
(scipy's). Plain numpy and scipy: no torch, no Streamlit.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import numpy as np
from scipy.special import entr, rel_entr

# key -> (label a student reads, one-line meaning)
STATISTICS: dict[str, tuple[str, str]] = {
    "entropy": ("Entropy (bits)", "how spread out a token's attention is: 0 = all on one token, log2(T) = uniform"),
    "distance": ("Mean distance", "how many positions away, on average, the attended tokens are"),
    "cls": ("Share to [CLS]", "fraction of attention that goes to [CLS]"),
    "sep": ("Share to [SEP]", "fraction of attention that goes to [SEP] (often a 'no-op' parking spot)"),
    "self": ("Share to self", "fraction a token spends on itself"),
    "prev": ("Share to previous", "fraction that goes to the token just before"),
    "next": ("Share to next", "fraction that goes to the token just after"),
    "punct": ("Share to punctuation", "fraction that goes to punctuation marks (. , ! ? …)"),
}


def entropy_bits(p, axis: int = -1) -> np.ndarray:
    """Shannon entropy in bits along ``axis``: 0 = everything on one outcome, log2(n) = spread evenly over n."""
    return entr(np.asarray(p, dtype=np.float64)).sum(axis) / np.log(2)


def kl_divergence(p, q, axis: int = -1) -> np.ndarray:
    """KL(p ‖ q) in nats along ``axis``: how far q has moved from p (0 = not at all). Arrays or CPU tensors.

    q is floored at 1e-30 (a float32 softmax can underflow to 0), and float32 rounding can make two near-identical
    distributions give -1e-8: the result is clipped at 0."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    return np.maximum(rel_entr(p, np.maximum(q, 1e-30)).sum(axis), 0.0)


def is_punctuation(token: str) -> bool:
    """True for a wordpiece made only of punctuation characters ('.', ',', '##!' …)."""
    t = token[2:] if token.startswith("##") else token
    return bool(t) and all(unicodedata.category(c).startswith("P") for c in t)


def head_statistics(attentions: np.ndarray, tokens: Sequence[str] | object, cls_token: str = "[CLS]",
                    sep_token: str = "[SEP]") -> dict[str, np.ndarray]:
    """Statistics of every head: a dict of STATISTICS keys -> (L, H) float arrays.

    attentions: (L, H, T, T), row = query, column = key, rows sum to 1.
    tokens: the T wordpieces, or an ``Encoded`` (its ``.tokens`` are used).
    'prev' averages over the queries that have a previous token (positions 1..T-1), 'next' over 0..T-2;
    everything else over all T queries.
    """
    toks = list(getattr(tokens, "tokens", tokens))
    a = np.asarray(attentions, dtype=np.float64)
    if a.ndim != 4 or a.shape[-1] != a.shape[-2] or a.shape[-1] != len(toks):
        raise ValueError(f"attentions must be (L, H, T, T) with T = {len(toks)} tokens, got {a.shape}")
    T = len(toks)
    pos = np.arange(T)
    distance = np.abs(pos[:, None] - pos[None, :])  # (T, T)
    cls = np.array([t == cls_token for t in toks])
    sep = np.array([t == sep_token for t in toks])
    punct = np.array([is_punctuation(t) for t in toks])
    diag = np.diagonal(a, axis1=-2, axis2=-1)  # (L, H, T)
    prev = np.diagonal(a, offset=-1, axis1=-2, axis2=-1)  # a[i, i-1] for i = 1..T-1
    nxt = np.diagonal(a, offset=1, axis1=-2, axis2=-1)  # a[i, i+1] for i = 0..T-2
    nan = np.full(a.shape[:2], np.nan)
    return {
        "entropy": head_entropy(a),
        "distance": (a * distance).sum(-1).mean(-1),
        "cls": a[..., cls].sum(-1).mean(-1),
        "sep": a[..., sep].sum(-1).mean(-1),
        "self": diag.mean(-1),
        "prev": prev.mean(-1) if T > 1 else nan,
        "next": nxt.mean(-1) if T > 1 else nan,
        "punct": a[..., punct].sum(-1).mean(-1),
    }


def segment_crossing(attentions: np.ndarray, token_type_ids: np.ndarray, special: np.ndarray) -> dict[str, np.ndarray]:
    """How much attention crosses between sentence A and sentence B, per layer (averaged over heads).

    Only ordinary tokens count, as queries and as keys ([CLS]/[SEP] are left out). Returns
    {"A → B": (L,), "B → A": (L,)}: the mean share of a query token's attention that lands on the other sentence.
    """
    a = np.asarray(attentions, dtype=np.float64)
    seg = np.asarray(token_type_ids)
    ordinary = ~np.asarray(special, dtype=bool)
    in_a, in_b = ordinary & (seg == 0), ordinary & (seg == 1)
    if not in_a.any() or not in_b.any():
        raise ValueError("segment_crossing needs a sentence pair (tokens in both segment A and segment B)")
    mean_heads = a.mean(1)  # (L, T, T)
    a_to_b = mean_heads[:, in_a][:, :, in_b].sum(-1).mean(-1)
    b_to_a = mean_heads[:, in_b][:, :, in_a].sum(-1).mean(-1)
    return {"A → B": a_to_b, "B → A": b_to_a}


def head_entropy(attentions: np.ndarray) -> np.ndarray:
    """Mean entropy (bits) of each head's attention rows: (L, H, T, T) -> (L, H). Low = focused, high = spread."""
    return entropy_bits(attentions).mean(-1)
