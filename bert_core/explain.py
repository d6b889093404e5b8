"""Why did BERT say that? Token attributions, attention rollout and the neuron view (no Streamlit here).

``attributions(lm, text, target, method)`` scores every input token for one output of the model:
- the **target** is a word at the first [MASK] (f = its log-probability) or a class of a fine-tuned classifier
  (f = its logit);
- ``"ig"``: integrated gradients (Sundararajan et al., 2017) through captum's ``LayerIntegratedGradients`` on the
  word-embedding layer. The **baseline** is the same input with every word's wordpiece replaced by [PAD]; [CLS],
  [SEP] and [MASK] stay, and so do positions and segments. It asks the same question with no words to go on, so
  the scores sum to f(input) − f(baseline) (completeness), and tokens kept in the baseline score exactly 0;
- ``"grad_x_input"``: the gradient of f with respect to each word embedding, dotted with that embedding;
- ``"rollout"``: attention rollout (Abnar & Zuidema, 2020): average the heads, mix in the identity for the
  residual connection, renormalise rows, multiply through the layers; the target token's row. It ignores the
  target word: it says where information could flow, not what it did.

``neuron_view`` spells out one head's attention for one query: q and k per dimension, q⊙k, the sum, ÷√d_k and
the softmax over keys, which equals the attention map.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .loaded import MASK_PATTERN, Encoded, Inspection, InputError, LoadedModel, NoMaskError
from .model import Bert

METHODS = {"ig": "Integrated gradients", "grad_x_input": "Gradient × input", "rollout": "Attention rollout"}
BASELINE = ("the same input with every word's wordpiece replaced by [PAD]; [CLS], [SEP], [MASK], positions and "
            "segments stay")
IG_STEPS = 32  # Gauss-Legendre: completeness within 0.2% on the bundled probes (16 steps: up to 5%)
ROLLOUT_RESIDUAL = 0.5  # share of the identity mixed into each layer's head-averaged attention


@dataclass(frozen=True)
class Target:
    """What is explained: ``kind`` "mask" (a vocabulary word at a [MASK]) or "class" (a classifier's class)."""

    kind: str
    position: int  # the token whose output is read: the first [MASK], or [CLS] (0) for a class
    index: int  # vocabulary id or class index
    label: str  # the word or the class name

    def describe(self) -> str:
        if self.kind == "mask":
            return f"log P('{self.label}' at [MASK] #{self.position})"
        return f"logit of class '{self.label}'"


@dataclass(frozen=True)
class TokenAttribution:
    """One score per input token for one target, by one method."""

    method: str  # a key of METHODS
    tokens: list[str]
    scores: np.ndarray  # (T,) float64
    special: np.ndarray  # (T,) bool: [CLS], [SEP], …
    target: Target
    target_value: float | None = None  # f(input) (IG and gradient × input)
    baseline_value: float | None = None  # f(baseline) (IG)
    delta: float | None = None  # captum's convergence delta: sum(scores) − (f(input) − f(baseline))
    n_steps: int | None = None  # IG's integration steps


# --- targets ---------------------------------------------------------------------------------------------
def resolve_target(lm: LoadedModel, enc: Encoded, target: str | int | Target | None,
                   text: str | None = None, which_mask: int = 0) -> Target:
    """Turn the user's target into a Target.

    A classifier checkpoint explains a class when ``target`` is a class index or name, or None without a [MASK]
    (None: the predicted class). Otherwise ``target`` is a word at the first [MASK] (``which_mask``: another one;
    None: BERT's top guess there);
    it must be one wordpiece of the vocabulary. text: the text ``enc`` was cut from (for the no-[MASK] message).
    """
    if isinstance(target, Target):
        return target
    mask_id = lm.tokenizer.mask_token_id
    masks = np.flatnonzero(enc.input_ids == mask_id)
    names = lm.label_names if lm.has_classifier else []
    if lm.has_classifier and (isinstance(target, (int, np.integer)) or target in names
                              or (target is None and len(masks) == 0)):
        if target is None:
            with torch.inference_mode():
                ids, tt = lm.tensors(enc)
                logits = lm.model.classifier(lm.model.encode(ids, tt).pooled)[0]
            index = int(logits.argmax())
        else:
            index = int(target) if isinstance(target, (int, np.integer)) else names.index(target)
        if not 0 <= index < len(names):
            raise InputError(f"Class {index} does not exist: this classifier has {len(names)} classes.")
        return Target("class", 0, index, names[index])
    lm.require_mlm()
    if which_mask >= len(masks):  # none, or the wanted one was cut off
        raise NoMaskError(len(enc.input_ids) if enc.truncated and MASK_PATTERN.search(text or "") else None)
    pos = int(masks[which_mask])
    if target is None:
        with torch.inference_mode():
            ids, tt = lm.tensors(enc)
            h = lm.model.encode(ids, tt).last_hidden_state[0, pos]
            index = int(lm.model.mlm_logits(h).argmax())
        return Target("mask", pos, index, lm.tokenizer.convert_ids_to_tokens(index))
    word = str(target).strip()
    with lm._tok_lock:
        pieces = lm.tokenizer(word, add_special_tokens=False)["input_ids"]
    if len(pieces) != 1 or pieces[0] == lm.tokenizer.unk_token_id:
        shown = " ".join(lm.tokenizer.convert_ids_to_tokens(pieces)) or "nothing"
        raise InputError(f"'{word}' is not one wordpiece of this model's vocabulary (it reads as: {shown}). "
                         "Pick a single word BERT knows, for example one of its top guesses.")
    return Target("mask", pos, int(pieces[0]), lm.tokenizer.convert_ids_to_tokens(pieces[0]))


# --- gradients ----------------------------------------------------------------------------------------------
def _hookable(model: Bert) -> tuple[Bert, nn.Embedding]:
    """A shallow copy of ``model`` that shares every weight but has its own word-embedding module.

    captum hooks the layer it attributes to. Hooking the shared model's module would alter the forward passes
    other sessions run at the same moment; only this private module is ever hooked.
    """
    word = model.bert.embeddings.word_embeddings
    mine = nn.Embedding.from_pretrained(word.weight, freeze=True, padding_idx=word.padding_idx)  # same storage
    emb = copy.copy(model.bert.embeddings)
    emb._modules = {**emb._modules, "word_embeddings": mine}
    bert = copy.copy(model.bert)
    bert._modules = {**bert._modules, "embeddings": emb}
    view = copy.copy(model)
    view._modules = {**view._modules, "bert": bert}
    return view, mine


def target_function(model: Bert, target: Target, token_type_ids: torch.Tensor):
    """f(ids) -> (B,): the target's log-probability at its [MASK] or its class logit, for a batch of ids."""

    def f(ids: torch.Tensor) -> torch.Tensor:
        out = model.encode(ids, token_type_ids.expand(ids.shape[0], -1))
        if target.kind == "mask":
            logits = model.mlm_logits(out.last_hidden_state[:, target.position]).float()
            return logits.log_softmax(-1)[:, target.index]
        return model.classifier(out.pooled).float()[:, target.index]

    return f


def baseline_ids(lm: LoadedModel, enc: Encoded) -> np.ndarray:
    """The IG baseline: every word's wordpiece becomes [PAD]; specials and [MASK] stay."""
    keep = enc.special | (enc.input_ids == lm.tokenizer.mask_token_id)
    return np.where(keep, enc.input_ids, lm.tokenizer.pad_token_id)


def attributions(lm: LoadedModel, text: str, target: str | int | Target | None, method: str = "ig",
                 text_pair: str | None = None, n_steps: int = IG_STEPS,
                 max_tokens: int | None = None) -> TokenAttribution:
    """Score every token of ``text`` (and ``text_pair``) for ``target`` with ``method`` (a key of METHODS).

    max_tokens: cut the input to this many wordpieces (IG's cost grows with n_steps × T²).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    enc = lm.tokenize(text, text_pair, max_tokens=max_tokens)
    tgt = resolve_target(lm, enc, target, text)
    common = dict(method=method, tokens=enc.tokens, special=enc.special, target=tgt)
    if method == "rollout":
        with torch.inference_mode():
            ids, tt = lm.tensors(enc)
            att = lm.model.encode(ids, tt, output_attentions=True).attentions
            roll = attention_rollout(np.stack([a[0].float().cpu().numpy() for a in att]))
        return TokenAttribution(scores=roll[tgt.position].astype(np.float64), **common)

    from captum.attr import LayerGradientXActivation, LayerIntegratedGradients

    view, word = _hookable(lm.model)
    ids, tt = lm.tensors(enc)
    f = target_function(view, tgt, tt)
    with torch.inference_mode(False), torch.enable_grad():
        with torch.no_grad():
            value = float(f(ids)[0])
        if method == "grad_x_input":
            attr = LayerGradientXActivation(f, word).attribute(ids)
            return TokenAttribution(scores=_per_token(attr), target_value=value, **common)
        base = torch.as_tensor(baseline_ids(lm, enc), device=lm.device).unsqueeze(0)
        with torch.no_grad():
            base_value = float(f(base)[0])
        attr, delta = LayerIntegratedGradients(f, word).attribute(
            ids, baselines=base, n_steps=n_steps, method="gausslegendre", return_convergence_delta=True,
            internal_batch_size=max(1, 4096 // ids.shape[1]))
    return TokenAttribution(scores=_per_token(attr), target_value=value, baseline_value=base_value,
                            delta=float(delta[0]), n_steps=n_steps, **common)


def _per_token(attr: torch.Tensor) -> np.ndarray:
    """(1, T, D) attributions per embedding dimension -> (T,) one score per token."""
    return attr[0].detach().double().sum(-1).cpu().numpy()


# --- attention rollout ---------------------------------------------------------------------------------------
def attention_rollout(attentions: np.ndarray, residual: float = ROLLOUT_RESIDUAL) -> np.ndarray:
    """(L, H, T, T) attention maps -> (T, T) rollout: Â_L ··· Â_1 with Â = rownorm(residual·I + (1−residual)·mean_h A).

    Row i says how much of token i's final vector can be traced back to each input token.
    """
    a = np.asarray(attentions, dtype=np.float64)
    T = a.shape[-1]
    rollout = np.eye(T)
    for layer in a:
        mixed = residual * np.eye(T) + (1 - residual) * layer.mean(axis=0)
        mixed /= mixed.sum(axis=-1, keepdims=True)
        rollout = mixed @ rollout
    return rollout


# --- all three, and how far they agree --------------------------------------------------------------------------
def explain_all(lm: LoadedModel, text: str, target: str | int | Target | None, text_pair: str | None = None,
                max_tokens: int | None = None, which_mask: int = 0) -> dict[str, TokenAttribution]:
    """The three methods for one target (resolved once, so all explain the same thing)."""
    tgt = resolve_target(lm, lm.tokenize(text, text_pair, max_tokens=max_tokens), target, text, which_mask)
    return {m: attributions(lm, text, tgt, m, text_pair, max_tokens=max_tokens) for m in METHODS}


def compared_tokens(attr: TokenAttribution) -> np.ndarray:
    """Positions the methods are compared on: real tokens, not specials and not the [MASK] being explained."""
    keep = ~attr.special.copy()
    if attr.target.kind == "mask":
        keep[attr.target.position] = False
    return np.flatnonzero(keep)


def rank_agreement(attrs: dict[str, TokenAttribution]) -> np.ndarray:
    """Spearman rank correlation of |score| between every two methods, over ``compared_tokens`` (NaN if < 3)."""
    from scipy.stats import spearmanr

    names = list(attrs)
    cols = compared_tokens(attrs[names[0]])
    out = np.eye(len(names))
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            a, b = np.abs(attrs[names[i]].scores[cols]), np.abs(attrs[names[j]].scores[cols])
            rho = np.nan if len(cols) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0 else float(spearmanr(a, b)[0])
            out[i, j] = out[j, i] = rho
    return out


# --- the neuron view -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NeuronView:
    """One head's attention for one query token, step by step (all float64)."""

    tokens: list[str]
    layer: int
    head: int
    query: int
    q: np.ndarray  # (d_k,) the query token's query vector
    k: np.ndarray  # (T, d_k) every token's key vector
    qk: np.ndarray  # (T, d_k) q ⊙ k, element by element
    scores: np.ndarray  # (T,) the sum over dimensions: q · k
    scaled: np.ndarray  # (T,) scores ÷ √d_k
    probs: np.ndarray  # (T,) softmax over the keys: this query's row of the attention map


def neuron_view(ins: Inspection, layer: int, head: int, query: int) -> NeuronView:
    """The neuron view from an inspection made with ``with_qkv=True``."""
    if ins.qkv is None:
        raise ValueError("the inspection has no Q/K/V: call lm.inspect(..., with_qkv=True)")
    q = ins.qkv[0, layer, head, query].astype(np.float64)
    k = ins.qkv[1, layer, head].astype(np.float64)
    qk = q[None, :] * k
    scores = qk.sum(axis=1)
    scaled = scores / np.sqrt(q.shape[0])
    e = np.exp(scaled - scaled.max())
    return NeuronView(tokens=ins.tokens, layer=layer, head=head, query=query, q=q, k=k, qk=qk, scores=scores,
                      scaled=scaled, probs=e / e.sum())
