"""A compact, readable BERT in plain PyTorch.

Reading order: config -> attention -> embeddings -> encoder layer -> encoder -> heads -> model.
Module and parameter names mirror Hugging Face's ``modeling_bert`` so checkpoints load key for key.
Post-LN throughout: ``LayerNorm(dropout(dense(h)) + residual)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class BertConfig:
    vocab_size: int = 30522  # size of the WordPiece vocabulary
    hidden_size: int = 768  # d_model: width of every token vector
    num_hidden_layers: int = 12  # L: number of encoder layers
    num_attention_heads: int = 12  # H: heads per layer; d_k = hidden_size / H
    intermediate_size: int = 3072  # width of the feed-forward layer
    hidden_act: str = "gelu"  # feed-forward non-linearity
    hidden_dropout_prob: float = 0.1  # dropout on every sub-layer output
    attention_probs_dropout_prob: float = 0.1  # dropout on attention probabilities
    max_position_embeddings: int = 512  # longest sequence (learned position table)
    type_vocab_size: int = 2  # number of segments (sentence A / B)
    layer_norm_eps: float = 1e-12  # LayerNorm epsilon
    pad_token_id: int = 0  # id of [PAD]
    num_labels: int = 2  # classes of the sequence-classification head
    extra: dict[str, Any] = field(default_factory=dict, repr=False)  # other keys of config.json, kept verbatim

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BertConfig":
        names = {f.name for f in fields(cls)} - {"extra"}
        known = {k: v for k, v in d.items() if k in names}
        extra = {k: v for k, v in d.items() if k not in names}
        if "num_labels" not in known and isinstance(d.get("id2label"), dict):
            known["num_labels"] = len(d["id2label"])
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        extra = d.pop("extra")
        return {**extra, **d, "model_type": "bert"}


_ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
}


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None,
                                 dropout_p: float = 0.0) -> tuple[Tensor, Tensor]:
    """Compute 'Scaled Dot Product Attention': softmax(Q Kᵀ / √d_k + mask) V.

    q, k, v: (B, H, T, d_k); mask: additive, broadcastable to (B, H, T, T) (0 = keep, very negative = ignore).
    Returns the weighted values (B, H, T, d_k) and the attention probabilities (B, H, T, T).
    """
    d_k = q.size(-1)
    scores = q @ k.transpose(-2, -1) * d_k**-0.5  # (B, H, T, T)
    if mask is not None:
        scores = scores + mask
    probs = scores.softmax(dim=-1)
    if dropout_p > 0.0:
        probs = F.dropout(probs, p=dropout_p)
    return probs @ v, probs


class BertEmbeddings(nn.Module):
    """Token + position + segment embeddings, then LayerNorm and dropout."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=cfg.pad_token_id)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def parts(self, input_ids: Tensor, token_type_ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The three embeddings before they are summed, each (B, T, D)."""
        T = input_ids.size(1)
        positions = torch.arange(T, device=input_ids.device).unsqueeze(0)
        return (self.word_embeddings(input_ids), self.position_embeddings(positions),
                self.token_type_embeddings(token_type_ids))

    def forward(self, input_ids: Tensor, token_type_ids: Tensor) -> Tensor:
        word, pos, seg = self.parts(input_ids, token_type_ids)
        return self.dropout(self.LayerNorm(word + seg + pos))  # (B, T, D)


class BertSelfAttention(nn.Module):
    """Project to per-head Q, K, V and attend."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        self.head_dim = cfg.head_dim
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.dropout_p = cfg.attention_probs_dropout_prob

    def split_heads(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, d_k)

    def forward(self, h: Tensor, mask: Tensor | None, head_mask: Tensor | None = None,
                need_weights: bool = False) -> tuple[Tensor, Tensor | None, tuple[Tensor, Tensor, Tensor]]:
        q, k, v = self.split_heads(self.query(h)), self.split_heads(self.key(h)), self.split_heads(self.value(h))
        p = self.dropout_p if self.training else 0.0
        if need_weights:
            ctx, probs = scaled_dot_product_attention(q, k, v, mask, p)
        else:  # fused kernel, same maths, no probabilities materialised
            ctx, probs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p), None
        if head_mask is not None:  # (H,) of 0/1: knocking a head out zeroes its output
            ctx = ctx * head_mask.view(1, -1, 1, 1).to(ctx.dtype)
        B, H, T, dk = ctx.shape
        return ctx.transpose(1, 2).reshape(B, T, H * dk), probs, (q, k, v)  # (B, T, D)


class BertSelfOutput(nn.Module):
    """Concatenated heads · W_O, dropout, residual, LayerNorm."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, ctx: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(ctx)) + residual)


class BertAttention(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(cfg)
        self.output = BertSelfOutput(cfg)


class BertIntermediate(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.act = _ACTIVATIONS[cfg.hidden_act]

    def forward(self, h: Tensor) -> Tensor:
        return self.act(self.dense(h))  # (B, T, intermediate)


class BertOutput(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, h: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(h)) + residual)


class BertLayer(nn.Module):
    """One encoder layer: self-attention block then feed-forward block, each post-LN."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.attention = BertAttention(cfg)
        self.intermediate = BertIntermediate(cfg)
        self.output = BertOutput(cfg)

    def forward(self, h: Tensor, mask: Tensor | None, head_mask: Tensor | None = None, need_weights: bool = False):
        ctx, probs, qkv = self.attention.self(h, mask, head_mask, need_weights)
        a = self.attention.output(ctx, h)
        return self.output(self.intermediate(a), a), probs, qkv


class BertEncoder(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(cfg) for _ in range(cfg.num_hidden_layers))


class BertPooler(nn.Module):
    """tanh(W · h_[CLS] + b): the sentence vector the NSP and classification heads read."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, h: Tensor) -> Tensor:
        return torch.tanh(self.dense(h[:, 0]))


class BertModel(nn.Module):
    """Embeddings + encoder + pooler (HF's ``BertModel`` layout)."""

    def __init__(self, cfg: BertConfig, pooler: bool = True):
        super().__init__()
        self.embeddings = BertEmbeddings(cfg)
        self.encoder = BertEncoder(cfg)
        self.pooler = BertPooler(cfg) if pooler else None  # BertForMaskedLM checkpoints have none


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.act = _ACTIVATIONS[cfg.hidden_act]
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, h: Tensor) -> Tensor:
        return self.LayerNorm(self.act(self.dense(h)))


class BertLMPredictionHead(nn.Module):
    """MLM head: transform, then scores over the vocabulary with the (tied) word embeddings + bias."""

    def __init__(self, cfg: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.transform = BertPredictionHeadTransform(cfg)
        self.word_embeddings = [word_embeddings]  # a list so the tied matrix is not registered twice
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))

    def forward(self, h: Tensor) -> Tensor:
        return self.transform(h) @ self.word_embeddings[0].weight.T + self.bias  # (..., V)


class BertPreTrainingHeads(nn.Module):
    def __init__(self, cfg: BertConfig, word_embeddings: nn.Embedding, mlm: bool, nsp: bool):
        super().__init__()
        self.predictions = BertLMPredictionHead(cfg, word_embeddings) if mlm else None
        self.seq_relationship = nn.Linear(cfg.hidden_size, 2) if nsp else None


@dataclass
class BertOutputs:
    """What one forward pass returns. Lists run over layers; tensors keep the batch dimension."""

    last_hidden_state: Tensor  # (B, T, D)
    pooled: Tensor | None  # (B, D), None without a pooler
    mlm_logits: Tensor | None = None  # (B, T, V)
    nsp_logits: Tensor | None = None  # (B, 2)
    cls_logits: Tensor | None = None  # (B, num_labels)
    hidden_states: list[Tensor] | None = None  # L+1 × (B, T, D): embeddings output, then each layer
    attentions: list[Tensor] | None = None  # L × (B, H, T, T)
    qkv: list[tuple[Tensor, Tensor, Tensor]] | None = None  # L × (q, k, v), each (B, H, T, d_k)


class Bert(nn.Module):
    """BERT encoder with optional MLM, NSP and sequence-classification heads.

    Absent heads are ``None``, never randomly initialised stand-ins.
    """

    def __init__(self, cfg: BertConfig, mlm_head: bool = True, nsp_head: bool = True, classifier: bool = False,
                 pooler: bool = True):
        super().__init__()
        self.config = cfg
        self.bert = BertModel(cfg, pooler=pooler or nsp_head or classifier)
        self.cls = BertPreTrainingHeads(cfg, self.bert.embeddings.word_embeddings, mlm_head, nsp_head)
        self.classifier = nn.Linear(cfg.hidden_size, cfg.num_labels) if classifier else None
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    @property
    def has_mlm_head(self) -> bool:
        return self.cls.predictions is not None

    @property
    def has_nsp_head(self) -> bool:
        return self.cls.seq_relationship is not None

    def extended_mask(self, attention_mask: Tensor, dtype: torch.dtype) -> Tensor:
        """(B, T) of 1/0 -> additive (B, 1, 1, T): 0 where attended, dtype's minimum where padded."""
        return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min

    def encode(self, input_ids: Tensor, token_type_ids: Tensor | None = None, attention_mask: Tensor | None = None,
               head_mask: Tensor | None = None, output_attentions: bool = False,
               output_hidden_states: bool = False, output_qkv: bool = False) -> BertOutputs:
        """Run embeddings and encoder. head_mask: (L, H) of 1 = keep, 0 = knock the head out."""
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        h = self.bert.embeddings(input_ids, token_type_ids)  # (B, T, D)
        mask = None if attention_mask is None or bool(attention_mask.all()) else self.extended_mask(attention_mask, h.dtype)
        hidden, attns, qkvs = [h], [], []
        for i, layer in enumerate(self.bert.encoder.layer):
            h, probs, qkv = layer(h, mask, None if head_mask is None else head_mask[i], output_attentions)
            hidden.append(h)
            attns.append(probs)
            qkvs.append(qkv)
        return BertOutputs(
            last_hidden_state=h,
            pooled=None if self.bert.pooler is None else self.bert.pooler(h),
            hidden_states=hidden if output_hidden_states else None,
            attentions=attns if output_attentions else None,
            qkv=qkvs if output_qkv else None,
        )

    def mlm_logits(self, h: Tensor) -> Tensor:
        """Vocabulary scores for hidden states h (..., D) -> (..., V). Also used for the logit lens."""
        if self.cls.predictions is None:
            raise RuntimeError("this checkpoint has no MLM head")
        return self.cls.predictions(h)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                head_mask: Tensor | None = None, output_attentions: bool = False,
                output_hidden_states: bool = False, output_qkv: bool = False, heads: bool = True) -> BertOutputs:
        out = self.encode(input_ids, token_type_ids, attention_mask, head_mask,
                          output_attentions, output_hidden_states, output_qkv)
        if heads:
            if self.cls.predictions is not None:
                out.mlm_logits = self.cls.predictions(out.last_hidden_state)
            if self.cls.seq_relationship is not None:
                out.nsp_logits = self.cls.seq_relationship(out.pooled)
            if self.classifier is not None:
                out.cls_logits = self.classifier(self.dropout(out.pooled))
        return out

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
