"""BERT's forward pass written out by hand, step by step, with the real weights of a loaded model.

``walk_through(model, encoded, layer, head, position)`` recomputes the embeddings and every encoder layer up to
``layer`` from the weight matrices alone (no call to the modules' ``forward``), in float64, and keeps each
intermediate value of the chosen layer, head and token for the "Inside BERT" page. Tests check that it lands on the
core's own hidden states and attention probabilities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .model import Bert, BertLayer


@dataclass(frozen=True)
class Walkthrough:
    """Every intermediate value for one token, one layer and one head (float64 numpy arrays)."""

    tokens: list[str]
    position: int  # the chosen (query) token
    layer: int
    head: int
    d_k: int  # size of one head's query/key/value vectors
    eps: float  # LayerNorm epsilon
    # embeddings of the chosen token (D,)
    word: np.ndarray
    pos: np.ndarray
    segment: np.ndarray
    emb_sum: np.ndarray
    emb_mean: float
    emb_std: float
    emb_out: np.ndarray  # after LayerNorm: the input of layer 0
    # the chosen layer
    x: np.ndarray  # (T, D): the layer's input (all tokens)
    q: np.ndarray  # (T, d_k): this head's queries for all tokens (row `position` is the one we follow)
    k: np.ndarray  # (T, d_k)
    v: np.ndarray  # (T, d_k)
    scores: np.ndarray  # (T,): q_i · k_j
    scaled: np.ndarray  # (T,): ÷ √d_k
    mask: np.ndarray  # (T,): additive mask (0 = may attend; padding would get a huge negative number)
    probs: np.ndarray  # (T,): softmax
    context: np.ndarray  # (d_k,): probs · V for this head
    all_probs: np.ndarray  # (H, T, T): every head's attention in this layer
    concat: np.ndarray  # (D,): all heads' contexts side by side
    attn_out: np.ndarray  # (D,): concat · W_Oᵀ + b_O
    residual1: np.ndarray  # (D,): x_i + attn_out
    ln1: np.ndarray  # (D,)
    ffn_hidden: np.ndarray  # (I,): act(ln1 · W_1ᵀ + b_1)
    ffn_out: np.ndarray  # (D,): ffn_hidden · W_2ᵀ + b_2
    residual2: np.ndarray  # (D,): ln1 + ffn_out
    output: np.ndarray  # (D,): the token's new vector, after LayerNorm
    layer_output: np.ndarray  # (T, D): the layer's output for all tokens


def _w(t: Tensor) -> Tensor:
    return t.detach().to("cpu", torch.float64)


def layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> Tensor:
    """(x − mean) / √(var + eps) · γ + β over the last dimension."""
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * _w(weight) + _w(bias)


def _linear(x: Tensor, lin: torch.nn.Linear) -> Tensor:
    return x @ _w(lin.weight).T + _w(lin.bias)


def softmax(s: Tensor) -> Tensor:
    """exp(s − max) / Σ exp(s − max) over the last dimension."""
    e = torch.exp(s - s.max(-1, keepdim=True).values)
    return e / e.sum(-1, keepdim=True)


def encoder_layer_by_hand(x: Tensor, m: BertLayer, num_heads: int, eps: float) -> dict[str, Tensor]:
    """One post-LN encoder layer on x (T, D) from its weights; returns every intermediate tensor."""
    T, D = x.shape
    dk = D // num_heads
    sa = m.attention.self
    split = lambda t: t.view(T, num_heads, dk).transpose(0, 1)  # noqa: E731  (T, D) -> (H, T, d_k)
    q, k, v = split(_linear(x, sa.query)), split(_linear(x, sa.key)), split(_linear(x, sa.value))
    scores = q @ k.transpose(-1, -2)  # (H, T, T)
    scaled = scores / math.sqrt(dk)
    mask = torch.zeros(T, dtype=x.dtype)  # one unpadded sequence: every key may be attended
    probs = softmax(scaled + mask)
    ctx = probs @ v  # (H, T, d_k)
    concat = ctx.transpose(0, 1).reshape(T, D)
    attn_out = _linear(concat, m.attention.output.dense)
    residual1 = x + attn_out
    ln1 = layer_norm(residual1, m.attention.output.LayerNorm.weight, m.attention.output.LayerNorm.bias, eps)
    hidden = m.intermediate.act(_linear(ln1, m.intermediate.dense))
    ffn_out = _linear(hidden, m.output.dense)
    residual2 = ln1 + ffn_out
    out = layer_norm(residual2, m.output.LayerNorm.weight, m.output.LayerNorm.bias, eps)
    return dict(q=q, k=k, v=v, scores=scores, scaled=scaled, mask=mask, probs=probs, ctx=ctx, concat=concat,
                attn_out=attn_out, residual1=residual1, ln1=ln1, hidden=hidden, ffn_out=ffn_out,
                residual2=residual2, out=out)


@torch.no_grad()
def walk_through(model: Bert, encoded, layer: int, head: int, position: int) -> Walkthrough:
    """Recompute BERT up to ``layer`` by hand and keep the steps for token ``position`` and ``head``."""
    cfg = model.config
    tokens = list(encoded.tokens)
    T = len(tokens)
    if not 0 <= layer < cfg.num_hidden_layers:
        raise ValueError(f"layer must be in 0..{cfg.num_hidden_layers - 1}, got {layer}")
    if not 0 <= head < cfg.num_attention_heads:
        raise ValueError(f"head must be in 0..{cfg.num_attention_heads - 1}, got {head}")
    if not 0 <= position < T:
        raise ValueError(f"position must be in 0..{T - 1}, got {position}")
    emb = model.bert.embeddings
    ids = torch.as_tensor(np.asarray(encoded.input_ids), dtype=torch.long)
    tt = torch.as_tensor(np.asarray(encoded.token_type_ids), dtype=torch.long)
    word = _w(emb.word_embeddings.weight)[ids]  # (T, D)
    pos = _w(emb.position_embeddings.weight)[:T]
    seg = _w(emb.token_type_embeddings.weight)[tt]
    summed = word + pos + seg
    eps = emb.LayerNorm.eps
    x = layer_norm(summed, emb.LayerNorm.weight, emb.LayerNorm.bias, eps)
    emb_out = x
    steps: dict[str, Tensor] = {}
    layer_input = x
    for i in range(layer + 1):
        layer_input = x
        steps = encoder_layer_by_hand(x, model.bert.encoder.layer[i], cfg.num_attention_heads, cfg.layer_norm_eps)
        x = steps["out"]
    n = lambda t: t.numpy().copy()  # noqa: E731
    i, h = position, head
    row = summed[i]
    return Walkthrough(
        tokens=tokens, position=i, layer=layer, head=h, d_k=cfg.head_dim, eps=cfg.layer_norm_eps,
        word=n(word[i]), pos=n(pos[i]), segment=n(seg[i]), emb_sum=n(row), emb_mean=float(row.mean()),
        emb_std=float(((row - row.mean()) ** 2).mean().add(eps).sqrt()), emb_out=n(emb_out[i]),
        x=n(layer_input), q=n(steps["q"][h]), k=n(steps["k"][h]), v=n(steps["v"][h]),
        scores=n(steps["scores"][h, i]), scaled=n(steps["scaled"][h, i]), mask=n(steps["mask"]),
        probs=n(steps["probs"][h, i]), context=n(steps["ctx"][h, i]), all_probs=n(steps["probs"]),
        concat=n(steps["concat"][i]), attn_out=n(steps["attn_out"][i]), residual1=n(steps["residual1"][i]),
        ln1=n(steps["ln1"][i]), ffn_hidden=n(steps["hidden"][i]), ffn_out=n(steps["ffn_out"][i]),
        residual2=n(steps["residual2"][i]), output=n(steps["out"][i]), layer_output=n(steps["out"]),
    )
