"""A compact, readable BERT in plain PyTorch, in reading order: config, attention, embeddings, layer, encoder, heads.

Module and parameter names mirror Hugging Face's ``modeling_bert``, so checkpoints load key for key and every number
equals ``transformers``' bit for bit (tests/test_parity.py). Post-LN: ``LayerNorm(dropout(dense(h)) + residual)``.
Shapes: B = batch, T = tokens, D = hidden size, H = heads, d_k = D / H, L = layers, V = vocabulary.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class BertConfig:
    vocab_size: int = 30522  # size of the WordPiece vocabulary
    hidden_size: int = 768  # D: width of every token vector
    num_hidden_layers: int = 12  # L: number of encoder layers
    num_attention_heads: int = 12  # H: heads per layer; d_k = hidden_size / H
    intermediate_size: int = 3072  # width of the feed-forward layer
    hidden_act: str = "gelu"  # feed-forward non-linearity (a key of ACT2FN)
    hidden_dropout_prob: float = 0.1  # dropout on every sub-layer output
    attention_probs_dropout_prob: float = 0.1  # dropout on attention probabilities
    max_position_embeddings: int = 512  # longest sequence (learned position table)
    type_vocab_size: int = 2  # number of segments (sentence A / B)
    layer_norm_eps: float = 1e-12  # LayerNorm epsilon
    initializer_range: float = 0.02  # std of the normal distribution fresh weights are drawn from
    pad_token_id: int = 0  # id of [PAD]
    num_labels: int = 2  # classes of the sequence-classification head
    extra: dict[str, Any] = field(default_factory=dict, repr=False)  # other keys of config.json, kept verbatim

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BertConfig":
        """From config.json's keys; num_labels defaults to the size of id2label."""
        names = {f.name for f in fields(cls)} - {"extra"}
        known = {"num_labels": len(d.get("id2label") or {}) or 2} | {k: v for k, v in d.items() if k in names}
        return cls(**known, extra={k: v for k, v in d.items() if k not in names})

    def to_dict(self) -> dict[str, Any]:
        """For config.json: the extra keys, then ours."""
        return {**self.extra, **{k: v for k, v in asdict(self).items() if k != "extra"}, "model_type": "bert"}


# transformers' names; "gelu_new" is GELU's tanh approximation written out, as Google's BERT computes it
ACT2FN = {"gelu": F.gelu, "gelu_pytorch_tanh": partial(F.gelu, approximate="tanh"), "relu": F.relu, "silu": F.silu,
          "swish": F.silu,
          "gelu_new": lambda x: 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3.0))))}

LayerOut = tuple[Tensor, Tensor | None, tuple[Tensor, Tensor, Tensor]]  # (B, T, D), probs or None, (q, k, v)


def additive_mask(attention_mask: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    """(B, T) of 1 = token, 0 = padding -> additive (B, 1, 1, T): 0 where attended, the dtype's minimum at padding."""
    if attention_mask is None or bool(attention_mask.all()):
        return None  # nothing padded
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None,
                                 dropout_p: float = 0.0) -> tuple[Tensor, Tensor]:
    """softmax(Q Kᵀ / √d_k + mask) V, written out so that the probabilities can be returned.

    q, k, v: (B, H, T, d_k); mask: additive, broadcastable to (B, H, T, T) (0 = attend, very negative = ignore).
    Returns the weighted values (B, H, T, d_k) and the attention probabilities (B, H, T, T)."""
    scores = torch.matmul(q, k.transpose(-2, -1)) * q.size(-1) ** -0.5  # (B, H, T, T)
    probs = (scores if mask is None else scores + mask).softmax(dim=-1)
    probs = F.dropout(probs, p=dropout_p) if dropout_p > 0.0 else probs
    return torch.matmul(probs, v), probs


class BertEmbeddings(nn.Module):
    """Token + position + segment embeddings, then LayerNorm and dropout."""
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=cfg.pad_token_id)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor) -> Tensor:
        positions = torch.arange(input_ids.size(1), device=input_ids.device).unsqueeze(0)  # (1, T)
        h = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)  # (B, T, D)
        return self.dropout(self.LayerNorm(h + self.position_embeddings(positions)))


class BertSelfAttention(nn.Module):
    """Project to per-head Q, K, V and attend; ``head_mask`` knocks chosen heads out."""
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.num_heads, self.head_dim = cfg.num_attention_heads, cfg.head_dim
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.dropout_p = cfg.attention_probs_dropout_prob

    def forward(self, h: Tensor, mask: Tensor | None = None, head_mask: Tensor | None = None,
                need_weights: bool = False) -> LayerOut:
        """h (B, T, D); head_mask (B or 1, H) of 1 = keep, 0 = off. Returns the heads' outputs side by side
        (B, T, D), the attention probabilities (B, H, T, T) when need_weights (else None), and (q, k, v)."""
        B, T, D = h.shape
        split = lambda x: x.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # noqa: E731 (B, H, T, d_k)
        q, k, v = split(self.query(h)), split(self.key(h)), split(self.value(h))
        p = self.dropout_p if self.training else 0.0
        if need_weights:
            ctx, probs = scaled_dot_product_attention(q, k, v, mask, p)
        else:  # PyTorch's fused kernel: the same maths (and transformers' "sdpa" path), no (T, T) maps kept
            ctx, probs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p), None
        ctx = ctx if head_mask is None else ctx * head_mask[:, :, None, None]  # a head knocked out gives zeros
        return ctx.transpose(1, 2).reshape(B, T, D), probs, (q, k, v)


class BertOutput(nn.Module):
    """Back to D, dropout, residual, LayerNorm: ends the attention block (d_in = D) and the feed-forward block."""
    def __init__(self, cfg: BertConfig, d_in: int):
        super().__init__()
        self.dense = nn.Linear(d_in, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, h: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(h)) + residual)  # (B, T, D)


class BertAttention(nn.Module):
    """The self-attention block: attend, then project back and add & norm."""
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(cfg)
        self.output = BertOutput(cfg, cfg.hidden_size)  # HF's BertSelfOutput

    def forward(self, h: Tensor, mask: Tensor | None = None, head_mask: Tensor | None = None,
                need_weights: bool = False) -> LayerOut:
        ctx, probs, qkv = self.self(h, mask, head_mask, need_weights)
        return self.output(ctx, h), probs, qkv  # (B, T, D)


class BertIntermediate(nn.Module):
    """The feed-forward block's first half: widen to intermediate_size, then the non-linearity."""
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.act = ACT2FN[cfg.hidden_act]

    def forward(self, h: Tensor) -> Tensor:
        return self.act(self.dense(h))  # (B, T, intermediate)


class BertLayer(nn.Module):
    """One encoder layer: self-attention block then feed-forward block, each post-LN."""
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.attention = BertAttention(cfg)
        self.intermediate = BertIntermediate(cfg)
        self.output = BertOutput(cfg, cfg.intermediate_size)

    def forward(self, h: Tensor, mask: Tensor | None = None, head_mask: Tensor | None = None,
                need_weights: bool = False) -> LayerOut:
        a, probs, qkv = self.attention(h, mask, head_mask, need_weights)
        return self.output(self.intermediate(a), a), probs, qkv  # (B, T, D)


class BertEncoder(nn.Module):
    """The stack of L layers."""
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(cfg) for _ in range(cfg.num_hidden_layers))

    def forward(self, h: Tensor, mask: Tensor | None = None, head_mask: Tensor | None = None,
                output_attentions: bool = False, output_qkv: bool = False, start: int = 0) -> tuple[list, list, list]:
        """Layers start..L-1 on h (B, T, D), layer start's input; head_mask (B or 1, L, H). Returns the hidden states
        (h, then each layer's output), the attentions and the (q, k, v) of each layer (empty lists unless asked)."""
        hidden, attentions, qkvs = [h], [], []
        for i in range(start, len(self.layer)):
            h, probs, qkv = self.layer[i](h, mask, None if head_mask is None else head_mask[:, i], output_attentions)
            hidden.append(h)
            if output_attentions:
                attentions.append(probs)
            if output_qkv:
                qkvs.append(qkv)
        return hidden, attentions, qkvs


class BertPooler(nn.Module):
    """tanh(W · h_[CLS] + b): the sentence vector the NSP and classification heads read; with config.json's
    "pooling": "mean", the mean of the real tokens' vectors instead (as sentence encoders such as MiniLM learn)."""
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.mean = cfg.extra.get("pooling") == "mean"

    def forward(self, h: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        if self.mean:  # padding left out
            m = torch.ones_like(h[..., 0]) if attention_mask is None else attention_mask.to(h.dtype)  # (B, T)
            return (h * m[..., None]).sum(1) / m.sum(1, keepdim=True)  # (B, D)
        return torch.tanh(self.dense(h[:, 0]))  # (B, D)


@dataclass
class EncoderResult:
    """What one forward pass returns. Lists run over layers; tensors keep the batch dimension."""
    last_hidden_state: Tensor  # (B, T, D)
    pooled: Tensor | None  # (B, D), None without a pooler
    mlm_logits: Tensor | None = None  # (B, T, V)
    nsp_logits: Tensor | None = None  # (B, 2)
    cls_logits: Tensor | None = None  # (B, num_labels)
    hidden_states: list[Tensor] | None = None  # L+1 × (B, T, D): embeddings output, then each layer
    attentions: list[Tensor] | None = None  # L × (B, H, T, T)
    qkv: list[tuple[Tensor, Tensor, Tensor]] | None = None  # L × (q, k, v), each (B, H, T, d_k)


class BertModel(nn.Module):
    """Embeddings + encoder + pooler (HF's ``BertModel`` layout)."""
    def __init__(self, cfg: BertConfig, pooler: bool = True):
        super().__init__()
        self.embeddings = BertEmbeddings(cfg)
        self.encoder = BertEncoder(cfg)
        self.pooler = BertPooler(cfg) if pooler else None  # BertForMaskedLM checkpoints have none

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                head_mask: Tensor | None = None, output_attentions: bool = False,
                output_hidden_states: bool = False, output_qkv: bool = False) -> EncoderResult:
        """input_ids (B, T); attention_mask (B, T) of 1 = token, 0 = padding; head_mask (L, H) or (B, L, H)."""
        h = self.embeddings(input_ids, torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids)
        mask = additive_mask(attention_mask, h.dtype)
        if head_mask is not None:
            head_mask = (head_mask if head_mask.dim() == 3 else head_mask.unsqueeze(0)).to(h.dtype)  # (B or 1, L, H)
        hidden, attentions, qkv = self.encoder(h, mask, head_mask, output_attentions, output_qkv)
        return EncoderResult(last_hidden_state=hidden[-1],
                             pooled=None if self.pooler is None else self.pooler(hidden[-1], attention_mask),
                             hidden_states=hidden if output_hidden_states else None,
                             attentions=attentions if output_attentions else None,
                             qkv=qkv if output_qkv else None)


class BertPredictionHeadTransform(nn.Module):
    """dense, activation, LayerNorm: the MLM head's first step."""
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.act = ACT2FN[cfg.hidden_act]
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, h: Tensor) -> Tensor:
        return self.LayerNorm(self.act(self.dense(h)))  # (..., D)


class BertLMPredictionHead(nn.Module):
    """MLM head: transform, then scores over the vocabulary with the (tied) word embeddings + bias."""
    def __init__(self, cfg: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.transform = BertPredictionHeadTransform(cfg)
        self.word_embeddings = [word_embeddings]  # a list so the tied matrix is not registered twice
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))

    def forward(self, h: Tensor) -> Tensor:
        return F.linear(self.transform(h), self.word_embeddings[0].weight, self.bias)  # (..., V)


class BertPreTrainingHeads(nn.Module):
    """The two pretraining heads, either of which may be absent (None): MLM on every token, NSP on the pooled one."""
    def __init__(self, cfg: BertConfig, word_embeddings: nn.Embedding, mlm: bool, nsp: bool):
        super().__init__()
        self.predictions = BertLMPredictionHead(cfg, word_embeddings) if mlm else None
        self.seq_relationship = nn.Linear(cfg.hidden_size, 2) if nsp else None

    def forward(self, h: Tensor, pooled: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
        return (None if self.predictions is None else self.predictions(h),  # (B, T, V)
                None if self.seq_relationship is None else self.seq_relationship(pooled))  # (B, 2)


class Bert(nn.Module):
    """BERT with optional MLM, NSP and sequence-classification heads (absent heads are None), BERT-initialised."""
    def __init__(self, cfg: BertConfig, mlm_head: bool = True, nsp_head: bool = True, classifier: bool = False,
                 pooler: bool = True):
        super().__init__()
        self.config = cfg
        self.bert = BertModel(cfg, pooler=pooler or nsp_head or classifier)
        self.cls = BertPreTrainingHeads(cfg, self.bert.embeddings.word_embeddings, mlm_head, nsp_head)
        self.classifier = nn.Linear(cfg.hidden_size, cfg.num_labels) if classifier else None
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """BERT's initialisation: normal(0, initializer_range) weights, zero biases, LayerNorm 1 and 0."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=self.config.initializer_range)
        if isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
        if isinstance(module, (nn.Linear, nn.LayerNorm, BertLMPredictionHead)) and module.bias is not None:
            nn.init.zeros_(module.bias)

    @property
    def has_mlm_head(self) -> bool:
        return self.cls.predictions is not None

    @property
    def has_nsp_head(self) -> bool:
        return self.cls.seq_relationship is not None

    def encode(self, input_ids: Tensor, token_type_ids: Tensor | None = None, attention_mask: Tensor | None = None,
               head_mask: Tensor | None = None, output_attentions: bool = False,
               output_hidden_states: bool = False, output_qkv: bool = False) -> EncoderResult:
        """Run the model without its heads (embeddings, encoder, pooler): ``BertModel.forward``."""
        return self.bert(input_ids, token_type_ids, attention_mask, head_mask, output_attentions,
                         output_hidden_states, output_qkv)

    def mlm_logits(self, h: Tensor) -> Tensor:
        """Vocabulary scores for hidden states h (..., D) -> (..., V). Also used for the logit lens."""
        if self.cls.predictions is None:
            raise RuntimeError("this checkpoint has no MLM head")
        return self.cls.predictions(h)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                head_mask: Tensor | None = None, output_attentions: bool = False,
                output_hidden_states: bool = False, output_qkv: bool = False, heads: bool = True) -> EncoderResult:
        """``encode``, then every head the model has (heads=False: none)."""
        out = self.encode(input_ids, token_type_ids, attention_mask, head_mask,
                          output_attentions, output_hidden_states, output_qkv)
        if heads:
            out.mlm_logits, out.nsp_logits = self.cls(out.last_hidden_state, out.pooled)
            out.cls_logits = None if self.classifier is None else self.classifier(self.dropout(out.pooled))  # (B, C)
        return out

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Parameters counted once each (the tied MLM decoder is the word embedding table)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


# --- helpers ----------------------------------------------------------------------------------------------------------
def init_weights(model: Bert) -> Bert:
    """Draw all of ``model``'s weights afresh, as ``Bert(...)`` does."""
    return model.apply(model._init_weights)


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``with evaluating(m):`` runs the block in eval mode (no dropout), then restores the mode m had."""
    was = model.training
    try:
        yield model.eval()
    finally:
        model.train(was)
