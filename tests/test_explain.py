"""bert_core.explain: attributions add up, match direct autograd, rollout and the neuron view match the model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from conftest import make_checkpoint
from scipy.stats import spearmanr

from bert_core import InputError, LoadedModel, load_model
from bert_core.explain import (METHODS, Target, attention_rollout, attributions, baseline_ids, compared_tokens,
                               explain_all, neuron_view, rank_agreement, resolve_target, target_function)
from bert_core.loaded import NoMaskError
from bert_core.model import Bert, init_weights

LABELS = {"0": "negative", "1": "neutral", "2": "positive"}


@pytest.fixture(scope="module")
def tiny_cls(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny_cls")
    make_checkpoint(d, "BertForSequenceClassification", seed=3, num_labels=3, id2label=LABELS,
                    label2id={v: int(k) for k, v in LABELS.items()}, initializer_range=0.2)
    return load_model(str(d), device="cpu")


@pytest.fixture(scope="module")
def tiny_mlm(tmp_path_factory):
    """Weights 10× BERT's init scale, so the random model's guesses depend visibly on the words."""
    d = tmp_path_factory.mktemp("tiny_mlm_explain")
    make_checkpoint(d, "BertForMaskedLM", seed=1, initializer_range=0.2)
    return load_model(str(d), device="cpu")


@pytest.fixture(scope="module")
def bundled_cls(bundled):
    """The bundled encoder with a fresh (random) 3-class head: a class target on the real model."""
    cfg = dataclasses.replace(bundled.config, num_labels=3, extra={**bundled.config.extra, "id2label": LABELS})
    torch.manual_seed(0)
    model = init_weights(Bert(cfg, mlm_head=False, nsp_head=False, classifier=True, pooler=True))
    state = {k: v for k, v in bundled.model.state_dict().items() if not k.startswith("cls.")}
    _, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected
    with torch.no_grad():  # BERT's init (std 0.02) barely moves a logit; a unit-scale head does
        model.classifier.weight.normal_(0.0, 1.0)
    model.eval().requires_grad_(False)
    return LoadedModel(model, bundled.tokenizer, "bundled+classifier", "test", bundled.folder,
                       torch.device("cpu"), torch.float32)


def assert_complete(a, tol=0.02):
    """Completeness: the IG scores add up to f(input) − f(baseline) within ``tol`` (relative)."""
    diff = a.target_value - a.baseline_value
    assert abs(diff) > 0.05, "a target that does not move says nothing about completeness"
    assert abs(a.scores.sum() - diff) <= tol * abs(diff), (a.scores.sum(), diff, a.delta)
    assert a.delta == pytest.approx(a.scores.sum() - diff, abs=1e-3)


# --- integrated gradients ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,word", [("Paris is the capital of [MASK].", "france"),
                                       ("I drink a cup of [MASK] every morning .", "coffee")])
def test_ig_completeness_bundled_mask_target(bundled, text, word):
    a = attributions(bundled, text, word, "ig")
    assert a.target.kind == "mask" and a.target.label == word
    enc = bundled.tokenize(text)
    ids, tt = bundled.tensors(enc)
    with torch.no_grad():
        logp = bundled.model.mlm_logits(bundled.model.encode(ids, tt).last_hidden_state[0, a.target.position])
    assert a.target_value == pytest.approx(float(logp.log_softmax(-1)[a.target.index]), abs=1e-5)
    assert_complete(a)
    kept = baseline_ids(bundled, enc) == enc.input_ids  # [CLS], [SEP], [MASK]: same in the baseline, score 0
    assert kept.sum() == 3 and np.all(a.scores[kept] == 0)


def test_ig_completeness_bundled_class_target(bundled_cls):
    a = attributions(bundled_cls, "what a lovely sunny day , i love it", "positive", "ig")
    assert a.target == Target("class", 0, 2, "positive")
    assert_complete(a)


def test_ig_completeness_tiny_mask_and_class_targets(tiny_mlm, tiny_cls):
    assert_complete(attributions(tiny_mlm, "the cat sat on the [MASK] .", "mat", "ig"))
    a = attributions(tiny_cls, "the movie was very good", 1, "ig")
    assert a.target.label == "neutral"
    assert_complete(a)
    with torch.no_grad():
        ids, tt = tiny_cls.tensors(tiny_cls.tokenize("the movie was very good"))
        logit = tiny_cls.model.classifier(tiny_cls.model.encode(ids, tt).pooled)[0, 1]
    assert a.target_value == pytest.approx(float(logit), abs=1e-5)


def test_attribution_leaves_the_shared_model_untouched(bundled):
    word = bundled.model.bert.embeddings.word_embeddings
    before = bundled.inspect("the cat sat on the mat").hidden_states
    attributions(bundled, "the [MASK] sat on the mat", "cat", "ig")
    attributions(bundled, "the [MASK] sat on the mat", "cat", "grad_x_input")
    assert not word._forward_hooks and not word._forward_pre_hooks
    assert all(p.grad is None for p in bundled.model.parameters())
    np.testing.assert_array_equal(bundled.inspect("the cat sat on the mat").hidden_states, before)


# --- gradient × input ------------------------------------------------------------------------------------------------
def direct_grad_x_input(lm, text, target):
    """∂f/∂e · e for each word embedding e, by plain autograd through a hook on a private model."""
    enc = lm.tokenize(text)
    ids, tt = lm.tensors(enc)
    model = Bert(lm.config, mlm_head=lm.has_mlm_head, nsp_head=False, classifier=lm.has_classifier,
                 pooler=lm.model.bert.pooler is not None)
    model.load_state_dict(lm.model.state_dict(), strict=False)
    model.eval()
    e = model.bert.embeddings.word_embeddings(ids).detach().requires_grad_(True)
    model.bert.embeddings.word_embeddings.register_forward_hook(lambda *_: e)
    f = target_function(model, target, tt)(ids)[0]
    (grad,) = torch.autograd.grad(f, e)
    return (grad * e).sum(-1)[0].detach().double().numpy(), float(f.detach())


@pytest.mark.parametrize("which", ["mask", "class"])
def test_grad_x_input_equals_direct_autograd(which, tiny_mlm, tiny_cls):
    lm, text, target = ((tiny_mlm, "the dog ate the [MASK] .", "food") if which == "mask"
                        else (tiny_cls, "i love this book", "positive"))
    a = attributions(lm, text, target, "grad_x_input")
    expected, f = direct_grad_x_input(lm, text, a.target)
    np.testing.assert_allclose(a.scores, expected, rtol=1e-4, atol=1e-6)
    assert a.target_value == pytest.approx(f, abs=1e-5)
    assert np.abs(a.scores).max() > 0


# --- rollout -------------------------------------------------------------------------------------------------------------
def test_rollout_rows_are_distributions():
    rng = np.random.default_rng(0)
    att = rng.random((4, 3, 9, 9))
    att /= att.sum(-1, keepdims=True)
    r = attention_rollout(att)
    assert np.all(r >= 0)
    np.testing.assert_allclose(r.sum(-1), 1.0, atol=1e-12)


def test_rollout_of_a_one_layer_model_is_the_identity_mixed_attention(tmp_path):
    make_checkpoint(tmp_path, "BertForMaskedLM", seed=5, num_hidden_layers=1)
    lm = load_model(str(tmp_path), device="cpu")
    text = "the king and the [MASK] ate bread"
    a = attributions(lm, text, "queen", "rollout")
    att = lm.inspect(text).attentions[0]  # (H, T, T)
    expected = 0.5 * np.eye(att.shape[-1]) + 0.5 * att.mean(axis=0)
    np.testing.assert_allclose(a.scores, expected[a.target.position], atol=1e-6)
    assert a.scores.sum() == pytest.approx(1.0)


def test_rollout_reads_the_cls_row_for_a_class(tiny_cls):
    a = attributions(tiny_cls, "the film was bad", None, "rollout")
    full = attention_rollout(tiny_cls.inspect("the film was bad").attentions)
    np.testing.assert_allclose(a.scores, full[0], atol=1e-6)


# --- targets and agreement -------------------------------------------------------------------------------------------
def test_targets_and_their_messages(bundled, tiny_cls):
    enc = bundled.tokenize("Paris is the capital of [MASK].")
    top = bundled.fill_mask("Paris is the capital of [MASK].", top_k=1)[0][0][0]
    assert resolve_target(bundled, enc, None).label == top
    enc20 = bundled.tokenize(" ".join(["[MASK]"] * 20))
    assert resolve_target(bundled, enc20, "the").position == 1  # the first of 20 masks
    with pytest.raises(NoMaskError):
        resolve_target(bundled, bundled.tokenize("no mask here"), "cat")
    with pytest.raises(InputError, match="not one wordpiece"):
        resolve_target(bundled, enc, "antidisestablishmentarianism")
    with pytest.raises(InputError, match="not one wordpiece"):
        resolve_target(bundled, enc, "😀")
    label = tiny_cls.classify("the film was bad")[0][0]
    assert resolve_target(tiny_cls, tiny_cls.tokenize("the film was bad"), None).label == label


def test_rank_agreement_is_spearman_over_the_words(bundled):
    attrs = explain_all(bundled, "The doctor works in a [MASK].", "hospital")
    assert list(attrs) == list(METHODS) and len({a.target for a in attrs.values()}) == 1
    rho = rank_agreement(attrs)
    cols = compared_tokens(attrs["ig"])
    assert [bundled.tokenize("The doctor works in a [MASK].").tokens[i] for i in cols] == \
        ["the", "doctor", "works", "in", "a", "."]
    expected = spearmanr(np.abs(attrs["ig"].scores[cols]), np.abs(attrs["rollout"].scores[cols]))[0]
    assert rho[0, 2] == pytest.approx(expected) and rho[2, 0] == rho[0, 2]
    np.testing.assert_array_equal(np.diag(rho), 1.0)


# --- the neuron view ----------------------------------------------------------------------------------------------------
def test_neuron_view_softmax_equals_the_attention_map(tiny_dir, bundled):
    tiny = load_model(str(tiny_dir), device="cpu")
    for lm, text, pair in ((tiny, "the cat sat on the mat", "it was happy"), (bundled, "Dogs bark at night.", None)):
        ins = lm.inspect(text, pair, with_qkv=True)
        L, H, T = ins.attentions.shape[:3]
        for layer in range(L):
            for head in range(H):
                for q in range(T):
                    nv = neuron_view(ins, layer, head, q)
                    np.testing.assert_allclose(nv.probs, ins.attentions[layer, head, q], atol=1e-6)
        nv = neuron_view(ins, L - 1, H - 1, 2)
        np.testing.assert_allclose(nv.qk.sum(1), nv.k @ nv.q)
        np.testing.assert_allclose(nv.scaled, nv.scores / np.sqrt(lm.config.head_dim))
