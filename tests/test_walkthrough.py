"""The hand-written walk-through lands on the core's own numbers."""

import math

import numpy as np
import pytest

from bert_core import load_model
from bert_core.walkthrough import walk_through


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return load_model(str(tiny_dir), device="cpu")


@pytest.mark.parametrize("layer,head,position", [(0, 0, 0), (0, 3, 4), (1, 2, 7)])
def test_reproduces_core_hidden_state_and_attention(tiny, layer, head, position):
    ins = tiny.inspect("the cat sat on the mat .", "it was happy")
    w = walk_through(tiny.model, ins.encoded, layer, head, position)
    np.testing.assert_allclose(w.x, ins.hidden_states[layer], atol=1e-5)
    np.testing.assert_allclose(w.layer_output, ins.hidden_states[layer + 1], atol=1e-5)
    np.testing.assert_allclose(w.output, ins.hidden_states[layer + 1, position], atol=1e-5)
    np.testing.assert_allclose(w.probs, ins.attentions[layer, head, position], atol=1e-5)
    np.testing.assert_allclose(w.all_probs, ins.attentions[layer], atol=1e-5)


def test_steps_are_consistent_with_each_other(tiny):
    ins = tiny.inspect("the dog ran to the house")
    w = walk_through(tiny.model, ins.encoded, 1, 1, 2)
    T, dk = len(ins.tokens), w.d_k
    assert w.q.shape == w.k.shape == w.v.shape == (T, dk)
    np.testing.assert_allclose(w.emb_sum, w.word + w.pos + w.segment)
    np.testing.assert_allclose(w.scores, w.k @ w.q[2], rtol=1e-12)
    np.testing.assert_allclose(w.scaled, w.scores / math.sqrt(dk), rtol=1e-12)
    assert np.all(w.mask == 0)
    assert w.probs.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(w.context, w.probs @ w.v, rtol=1e-12)
    np.testing.assert_allclose(w.concat[dk:2 * dk], w.context, rtol=1e-12)  # head 1's slice
    np.testing.assert_allclose(w.residual1, w.x[2] + w.attn_out, rtol=1e-12)
    np.testing.assert_allclose(w.residual2, w.ln1 + w.ffn_out, rtol=1e-12)
    ln = tiny.model.bert.encoder.layer[1].attention.output.LayerNorm
    z = (w.ln1 - ln.bias.double().numpy()) / ln.weight.double().numpy()  # undo γ and β: mean 0, std 1
    assert z.mean() == pytest.approx(0.0, abs=1e-9) and z.std() == pytest.approx(1.0, abs=1e-6)
    assert w.ffn_hidden.shape == (tiny.config.intermediate_size,)


def test_embedding_layer_norm_by_hand(tiny):
    ins = tiny.inspect("the cat")
    w = walk_through(tiny.model, ins.encoded, 0, 0, 1)
    ln = tiny.model.bert.embeddings.LayerNorm
    expected = (w.emb_sum - w.emb_mean) / w.emb_std * ln.weight.double().numpy() + ln.bias.double().numpy()
    np.testing.assert_allclose(w.emb_out, expected, rtol=1e-10)
    np.testing.assert_allclose(w.emb_out, ins.hidden_states[0, 1], atol=1e-5)


def test_bad_indices_raise(tiny):
    enc = tiny.tokenize("the cat")
    for kw in ({"layer": 2, "head": 0, "position": 0}, {"layer": 0, "head": 4, "position": 0},
               {"layer": 0, "head": 0, "position": 4}):
        with pytest.raises(ValueError):
            walk_through(tiny.model, enc, **kw)


def test_bundled_model_last_layer(bundled):
    ins = bundled.inspect("Paris is the capital of France.")
    w = walk_through(bundled.model, ins.encoded, 5, 11, 3)
    np.testing.assert_allclose(w.layer_output, ins.hidden_states[6], atol=1e-4)
    np.testing.assert_allclose(w.probs, ins.attentions[5, 11, 3], atol=1e-5)
