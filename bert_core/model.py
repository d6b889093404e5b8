"""A compact, readable BERT in plain PyTorch.

Reading order: config -> attention -> embeddings -> encoder layer -> encoder -> heads -> model.
Module and parameter names mirror Hugging Face's ``modeling_bert`` so checkpoints load key for key.
Post-LN throughout: ``LayerNorm(dropout(dense(h)) + residual)``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from collections.abc import Sequence
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
_ACTIVATIONS_INPLACE = {  # the same functions, overwriting their input: used only when no gradient is needed
    "gelu": torch.ops.aten.gelu_,
    "gelu_new": lambda x: torch.ops.aten.gelu_(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: torch.ops.aten.gelu_(x, approximate="tanh"),
    "relu": torch.relu_,
    "silu": lambda x: F.silu(x, inplace=True),
    "swish": lambda x: F.silu(x, inplace=True),
}


def _onednn_linear():
    """oneDNN's fused matmul + bias for CPU, if this torch build has it and it agrees with F.linear."""
    try:
        op = torch.ops.mkldnn._linear_pointwise
        x, w, b = torch.linspace(-1, 1, 240).view(3, 5, 16), torch.linspace(-1, 2, 128).view(8, 16).cos(), torch.ones(8)
        with torch.no_grad():
            same = torch.allclose(op(x, w, b, "none", [], ""), F.linear(x, w, b), atol=1e-5)
        if torch.backends.mkldnn.is_available() and same:
            return op
    except Exception:  # an older/newer torch without this kernel: plain F.linear everywhere
        pass
    return None


_ONEDNN_LINEAR = _onednn_linear()
# Opt-in: oneDNN matmuls are ~2x faster on some CPUs but round differently from transformers (up to ~2e-5 on
# 512-token hidden states). Off by default, so our numbers equal transformers' bit for bit.
FAST_LINEAR = os.environ.get("BERT_LAB_FAST_KERNELS", "0") == "1"


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x Wᵀ + b. With FAST_LINEAR, fp32 CPU inference uses oneDNN's kernel (often ~2x faster than the default
    BLAS on AMD CPUs; equal up to float rounding). Otherwise, and whenever gradients are needed, F.linear."""
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
    if (FAST_LINEAR and _ONEDNN_LINEAR is not None and not needs_grad and x.device.type == "cpu"
            and x.dtype == weight.dtype == torch.float32):
        return _ONEDNN_LINEAR(x, weight, bias, "none", [], "")
    return F.linear(x, weight, bias)


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and state-dict keys) whose inference runs through ``linear`` above."""

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None,
                                 dropout_p: float = 0.0) -> tuple[Tensor, Tensor]:
    """Compute 'Scaled Dot Product Attention': softmax(Q Kᵀ / √d_k + mask) V.

    q, k, v: (B, H, T, d_k); mask: additive, broadcastable to (B, H, T, T) (0 = keep, very negative = ignore).
    Returns the weighted values (B, H, T, d_k) and the attention probabilities (B, H, T, T).
    """
    B, H, T, d_k = q.shape
    S = k.size(-2)
    q3, k3, v3 = q.reshape(B * H, T, d_k), k.reshape(B * H, S, d_k), v.reshape(B * H, S, d_k)
    scores = torch.bmm(q3, k3.transpose(1, 2)).view(B, H, T, S).mul_(d_k**-0.5)  # in place: no extra (B,H,T,S)
    if mask is not None:
        scores.add_(mask)
    probs = scores.softmax(dim=-1)
    if dropout_p > 0.0:
        probs = F.dropout(probs, p=dropout_p)
    return torch.bmm(probs.view(B * H, T, S), v3).view(B, H, T, d_k), probs


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
        self.query = Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = Linear(cfg.hidden_size, cfg.hidden_size)
        self.dropout_p = cfg.attention_probs_dropout_prob

    def split_heads(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, d_k)

    def fused_qkv(self) -> tuple[Tensor, Tensor] | None:
        """W_Q, W_K, W_V stacked into one (3D, D) matrix for a single matmul; None for trainable weights.

        A cache, not a parameter: the state dict keeps HF's query/key/value keys. It is rebuilt whenever a frozen
        weight changes (``load_state_dict``, in-place edits, ``.to()``), detected by each tensor's version and
        address. Weights that require grad are never cached, even under no_grad: fused optimizers (AdamW
        fused=True) update them without bumping the version counter, so a cache could not see the change.
        """
        params = (self.query.weight, self.key.weight, self.value.weight,
                  self.query.bias, self.key.bias, self.value.bias)
        if any(p.requires_grad for p in params):
            return None
        try:
            stamp = tuple((p.data_ptr(), p._version, p.dtype) for p in params)
        except RuntimeError:  # inference tensors carry no version counter: never cache those
            return None
        cache = self.__dict__.get("_qkv_cache")
        if cache is None or cache[0] != stamp:
            with torch.inference_mode(False), torch.no_grad():  # a plain tensor, usable outside inference mode
                cache = (stamp, torch.cat(params[:3]), torch.cat(params[3:]))
            self.__dict__["_qkv_cache"] = cache
        return cache[1], cache[2]

    def _apply(self, fn, recurse=True):  # .to() / .half() / .cuda(): the cache would hold the old weights
        self.__dict__.pop("_qkv_cache", None)
        return super()._apply(fn, recurse)

    def forward(self, h: Tensor, mask: Tensor | None, head_mask: Tensor | None = None,
                need_weights: bool = False) -> tuple[Tensor, Tensor | None, tuple[Tensor, Tensor, Tensor]]:
        fused = self.fused_qkv()
        if fused is None:  # training: three projections, so gradients reach each weight
            q, k, v = self.split_heads(self.query(h)), self.split_heads(self.key(h)), self.split_heads(self.value(h))
        else:  # inference: the same three projections as one matmul
            B, T, _ = h.shape
            qkv = linear(h, *fused).view(B, T, 3, self.num_heads, self.head_dim)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, T, d_k)
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
        self.dense = Linear(cfg.hidden_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, ctx: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(ctx)).add_(residual))  # in place: one tensor fewer


class BertAttention(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(cfg)
        self.output = BertSelfOutput(cfg)


class BertIntermediate(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = Linear(cfg.hidden_size, cfg.intermediate_size)
        self.act = _ACTIVATIONS[cfg.hidden_act]
        self.act_ = _ACTIVATIONS_INPLACE[cfg.hidden_act]

    def forward(self, h: Tensor) -> Tensor:
        x = self.dense(h)  # (B, T, intermediate)
        return self.act_(x) if not (torch.is_grad_enabled() and x.requires_grad) else self.act(x)


class BertOutput(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = Linear(cfg.intermediate_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, h: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(h)).add_(residual))  # in place: one tensor fewer


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
        self.dense = Linear(cfg.hidden_size, cfg.hidden_size)

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
        self.dense = Linear(cfg.hidden_size, cfg.hidden_size)
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
        return linear(self.transform(h), self.word_embeddings[0].weight, self.bias)  # (..., V)


class BertPreTrainingHeads(nn.Module):
    def __init__(self, cfg: BertConfig, word_embeddings: nn.Embedding, mlm: bool, nsp: bool):
        super().__init__()
        self.predictions = BertLMPredictionHead(cfg, word_embeddings) if mlm else None
        self.seq_relationship = Linear(cfg.hidden_size, 2) if nsp else None


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
        self.classifier = Linear(cfg.hidden_size, cfg.num_labels) if classifier else None
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
               output_hidden_states: bool = False, output_qkv: bool = False) -> EncoderResult:
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
        return EncoderResult(
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
                output_hidden_states: bool = False, output_qkv: bool = False, heads: bool = True) -> EncoderResult:
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


def init_weights(model: Bert, std: float = 0.02, only: Sequence[torch.nn.Module] | None = None) -> Bert:
    """BERT's initialisation: normal(0, 0.02) weights, zero biases, LayerNorm 1/0."""
    for root in (only or [model]):
        for mod in root.modules():
            if isinstance(mod, torch.nn.Linear):
                torch.nn.init.normal_(mod.weight, std=std)
                if mod.bias is not None:
                    torch.nn.init.zeros_(mod.bias)
            elif isinstance(mod, torch.nn.Embedding):
                torch.nn.init.normal_(mod.weight, std=std)
            elif isinstance(mod, torch.nn.LayerNorm):
                torch.nn.init.ones_(mod.weight)
                torch.nn.init.zeros_(mod.bias)
    if only is None or any(m is model.cls for m in only):
        if model.cls.predictions is not None:
            torch.nn.init.zeros_(model.cls.predictions.bias)
    return model


def with_heads(model: Bert, mlm: bool = True, nsp: bool = False, seed: int = 0) -> Bert:
    """``model`` with fresh (BERT-initialised) MLM/NSP heads added where it lacks them; same weights otherwise."""
    need_mlm, need_nsp = mlm and not model.has_mlm_head, nsp and not model.has_nsp_head
    if not (need_mlm or need_nsp):
        return model
    torch.manual_seed(seed)
    new = Bert(model.config, mlm_head=model.has_mlm_head or mlm, nsp_head=model.has_nsp_head or nsp,
               classifier=model.classifier is not None, pooler=model.bert.pooler is not None or nsp)
    init_weights(new)
    missing, unexpected = new.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected, unexpected
    assert all(k.startswith(("cls.", "bert.pooler.")) for k in missing), missing
    return new.to(next(model.parameters()).device).train()


def tiny_bert(vocab_size: int, layers: int = 2, hidden: int = 128, heads: int = 2, max_len: int = 512,
              nsp: bool = False, seed: int = 0) -> Bert:
    """A fresh, randomly initialised small BERT (intermediate = 4 × hidden) with an MLM head."""
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                     intermediate_size=4 * hidden, max_position_embeddings=max_len)
    return init_weights(Bert(cfg, mlm_head=True, nsp_head=nsp, pooler=nsp)).train()
