"""The per-head attention change: Jensen–Shannon divergence per query row, averaged, checked against numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bert_core import load_model
from bert_core.attention_change import attention_change, head_change, js_divergence

TEXT = "the cat sat on the mat and the dog ran"


def direct_change(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The same quantity written out with plain numpy loops: mean over rows of ½KL(p‖m) + ½KL(q‖m), in bits."""
    L, H, T, _ = before.shape
    out = np.zeros((L, H))
    for layer in range(L):
        for h in range(H):
            rows = []
            for i in range(T):
                p, q = before[layer, h, i].astype(np.float64), after[layer, h, i].astype(np.float64)
                m = (p + q) / 2
                kl = lambda a: np.sum(np.where(a > 0, a * np.log2(np.where(a > 0, a, 1) / m), 0.0))  # noqa: E731
                rows.append(0.5 * kl(p) + 0.5 * kl(q))
            out[layer, h] = np.mean(rows)
    return out


def test_js_divergence_bounds():
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)
    assert js_divergence([0.3, 0.7], [0.3, 0.7]) == 0.0
    assert 0 < js_divergence([0.5, 0.5], [0.9, 0.1]) < 1


def test_the_grid_equals_a_direct_computation_and_only_the_changed_head_moves(tiny_dir):
    base = load_model(str(tiny_dir))
    tuned = load_model(str(tiny_dir))  # a second copy, then one head of layer 1 is changed
    same = attention_change(base, tuned, TEXT)
    assert same.change.shape == (2, 4) and np.all(same.change == 0.0)  # identical models: exactly 0

    d = tuned.config.hidden_size // tuned.config.num_attention_heads
    with torch.no_grad():
        tuned.model.bert.encoder.layer[0].attention.self.query.weight[2 * d:3 * d] *= 3.0  # head 3 of layer 1
    ch = attention_change(base, tuned, TEXT)
    np.testing.assert_allclose(ch.change, direct_change(ch.before, ch.after), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ch.change, head_change(base.inspect(TEXT).attentions, tuned.inspect(TEXT).attentions))
    assert ch.change[0, 2] > 1e-5
    assert np.all(ch.change[0, [0, 1, 3]] == 0.0)  # the other heads of layer 1 read unchanged queries
    assert np.all(ch.change[1] > 0)  # layer 2 reads layer 1's changed output
    assert ch.most_changed(1)[0][:2] in {(0, 2)} | {(1, h) for h in range(4)}
    assert ch.tokens == base.inspect(TEXT).tokens
