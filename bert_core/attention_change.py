"""How much each head's attention changed with fine-tuning, on one probe sentence.

    ch = attention_change(base_lm, tuned_lm, "the flight was late again")
    ch.change          # (layers, heads): Jensen–Shannon divergence in bits, 0 = the same map, 1 = disjoint
    ch.before[l, h]    # (T, T) that head's map before, ch.after[l, h] after

Each query token's attention row is a probability distribution over the keys; the change of a head is the
Jensen–Shannon divergence between its row before and after, averaged over the rows. JS is symmetric and bounded
(0 to 1 bit), unlike KL. Built on ``stats.kl_divergence``. No Streamlit here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .stats import kl_divergence


def js_divergence(p, q, axis: int = -1) -> np.ndarray:
    """Jensen–Shannon divergence in bits along ``axis``: ½ KL(p ‖ m) + ½ KL(q ‖ m), m = (p + q) / 2.

    Exactly 0 for identical distributions, at most 1 for distributions with no outcome in common. Both are first
    rescaled to sum to 1 in float64 (a float32 softmax row sums to 1 ± 1e-7, which would otherwise swamp small
    changes), as scipy's ``jensenshannon`` does."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    p, q = p / p.sum(axis, keepdims=True), q / q.sum(axis, keepdims=True)
    m = (p + q) / 2
    return (kl_divergence(p, m, axis) + kl_divergence(q, m, axis)) / (2 * np.log(2))


def head_change(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """(L, H) mean over query rows of the JS divergence between two (L, H, T, T) stacks of attention maps."""
    before, after = np.asarray(before), np.asarray(after)
    if before.shape != after.shape:
        raise ValueError(f"attention shapes differ: {before.shape} vs {after.shape}")
    return js_divergence(before, after).mean(-1)


@dataclass(frozen=True)
class AttentionChange:
    tokens: list[str]
    before: np.ndarray  # (L, H, T, T) the base model's maps
    after: np.ndarray  # the fine-tuned model's maps
    change: np.ndarray  # (L, H) head_change(before, after)

    def most_changed(self, k: int = 3) -> list[tuple[int, int, float]]:
        """The k heads that changed most: (layer index, head index, JS divergence), biggest first."""
        order = np.argsort(-self.change, axis=None)[:k]
        return [(int(i // self.change.shape[1]), int(i % self.change.shape[1]), float(self.change.flat[i]))
                for i in order]


def attention_change(before_lm, after_lm, text: str) -> AttentionChange:
    """Both models' attention on ``text`` (LoadedModel.inspect) and the per-head change. The two must share a
    tokenizer and a shape (a fine-tuned model and the model it started from do); raises ValueError otherwise."""
    a = before_lm.inspect(text, with_mlm=False)
    b = after_lm.inspect(text, with_mlm=False)
    if a.tokens != b.tokens:
        raise ValueError("The two models split the sentence into different tokens: they do not share a tokenizer.")
    if a.attentions.shape != b.attentions.shape:
        raise ValueError(f"The two models have different shapes (layers, heads): {a.attentions.shape[:2]} vs "
                         f"{b.attentions.shape[:2]}.")
    return AttentionChange(list(a.tokens), a.attentions, b.attentions, head_change(a.attentions, b.attentions))
