"""``LoadedModel``: a checkpoint with its tokenizer, and what the app asks of it (``loading.load_model`` makes one)."""

from __future__ import annotations

import copy
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .model import Bert, BertConfig

MAX_TOKENS = 512
MASK_PATTERN = re.compile(r"\[\s*mask\s*\]", re.IGNORECASE)  # [MASK], [mask], [ Mask ] …


class InputError(ValueError):
    """Input a user typed that the model cannot take; the message is meant for the user."""


class NoMaskError(InputError):
    """The text has no [MASK] (a hint for the user rather than a failure)."""

    def __init__(self, cut_at: int | None = None):
        if cut_at is not None:
            msg = (f"Your [MASK] comes after token {cut_at}: BERT reads only the first {cut_at} tokens. "
                   "Move it earlier or shorten the text.")
        else:
            msg = "There is no [MASK] in the text yet. Write [MASK] where BERT should guess a word, e.g. " \
                  "'Paris is the capital of [MASK].'"
        super().__init__(msg)


class MissingHeadError(RuntimeError):
    """The checkpoint lacks the head (MLM or NSP) that a call needs."""


@dataclass(frozen=True)
class TopK:
    """BERT's guesses at some token positions: the logits, and the k most likely tokens with their probabilities."""

    logits: torch.Tensor  # (N, V) float32, on the model's device
    values: torch.Tensor  # (N, k) probabilities, most likely first
    indices: torch.Tensor  # (N, k) token ids

    @property
    def probs(self) -> torch.Tensor:
        """(N, V) softmax over the vocabulary."""
        return self.logits.softmax(-1)

    def pairs(self, tokenizer) -> list[list[tuple[str, float]]]:
        """[(token, probability), …] for each position, most likely first."""
        return [list(zip(tokenizer.convert_ids_to_tokens(ix.tolist()), ps.tolist()))
                for ps, ix in zip(self.values.cpu(), self.indices.cpu())]


def as_head_mask(head_mask, device: torch.device, dtype: torch.dtype) -> torch.Tensor | None:
    """A head mask given as array or tensor ((L, H) or (B, L, H), 1 = keep) on the model's device and dtype."""
    if head_mask is None:
        return None
    hm = head_mask if isinstance(head_mask, torch.Tensor) else np.asarray(head_mask)
    return torch.as_tensor(hm, device=device, dtype=dtype)


@torch.inference_mode()
def top_k_at(model: Bert, ids: torch.Tensor, positions, k: int = 5, token_type_ids: torch.Tensor | None = None,
             attention_mask: torch.Tensor | None = None, head_mask=None) -> TopK:
    """The one place that reads BERT's guesses: top-k at ``positions`` of ``ids`` (B, T).

    ``positions``: token positions in row 0 (a list or 1-D array), or a (rows, cols) pair for a batch.
    """
    device = ids.device
    if isinstance(positions, tuple) and len(positions) == 2:
        rows, cols = (torch.as_tensor(np.asarray(x), device=device, dtype=torch.long) for x in positions)
    else:
        cols = torch.as_tensor(np.asarray(positions), device=device, dtype=torch.long).reshape(-1)
        rows = torch.zeros_like(cols)
    hm = as_head_mask(head_mask, device, next(model.parameters()).dtype)
    h = model.encode(ids, token_type_ids, attention_mask, head_mask=hm).last_hidden_state[rows, cols]
    logits = model.mlm_logits(h).float()
    top = logits.softmax(-1).topk(min(k, logits.size(-1)), dim=-1)
    return TopK(logits=logits, values=top.values, indices=top.indices)


@dataclass(frozen=True)
class Encoded:
    """One tokenised input, possibly truncated to the model's limit."""

    tokens: list[str]
    input_ids: np.ndarray  # (T,) int64
    token_type_ids: np.ndarray  # (T,) int64: 0 = segment A, 1 = segment B
    special: np.ndarray  # (T,) bool: [CLS], [SEP], …
    word_ids: list[int | None]  # word index per token (None for specials)
    offsets: list[tuple[int, int]]  # character span per token, in its own segment's text
    n_original: int  # tokens before truncation
    truncated: bool


@dataclass(frozen=True)
class Inspection:
    """Everything one forward pass exposes, as detached CPU float32 arrays."""

    encoded: Encoded
    attentions: np.ndarray  # (L, H, T, T): row = query token, column = key token
    hidden_states: np.ndarray  # (L+1, T, D): embeddings output, then each layer
    mlm_logits: np.ndarray | None  # (T, V)
    nsp_probs: np.ndarray | None  # (2,): P(B follows A), P(B is random)
    qkv: np.ndarray | None  # (3, L, H, T, d_k)

    @property
    def tokens(self) -> list[str]:
        return self.encoded.tokens

    @property
    def input_ids(self) -> np.ndarray:
        return self.encoded.input_ids

    @property
    def token_type_ids(self) -> np.ndarray:
        return self.encoded.token_type_ids


def normalize_masks(text: str, mask_token: str = "[MASK]") -> str:
    """Accept [mask], [Mask], [ MASK ] … as the mask token."""
    return MASK_PATTERN.sub(mask_token, text)


class LoadedModel:
    """A loaded BERT: ``model`` (eval mode, never trained in place), its fast tokenizer, and facts about it."""

    def __init__(self, model: Bert, tokenizer, name: str, kind: str, folder: Path, device: torch.device,
                 dtype: torch.dtype, model_card: dict | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.name, self.kind, self.folder = name, kind, folder
        self.device, self.dtype = device, dtype
        self.model_card = model_card
        self._tok_lock = threading.Lock()  # fast tokenizers raise "Already borrowed" when shared across threads

    # --- facts -------------------------------------------------------------------------------------
    @property
    def config(self) -> BertConfig:
        return self.model.config

    @property
    def has_mlm_head(self) -> bool:
        return self.model.has_mlm_head

    @property
    def has_nsp_head(self) -> bool:
        return self.model.has_nsp_head

    @property
    def mask_token(self) -> str:
        return self.tokenizer.mask_token

    @property
    def max_tokens(self) -> int:
        return min(MAX_TOKENS, self.config.max_position_embeddings)

    @property
    def has_classifier(self) -> bool:
        return self.model.classifier is not None

    @property
    def label_names(self) -> list[str]:
        """Class names of the sequence-classification head (config id2label, else LABEL_i)."""
        id2label = self.config.extra.get("id2label") or {}
        return [str(id2label.get(str(i), id2label.get(i, f"LABEL_{i}"))) for i in range(self.config.num_labels)]

    def facts(self) -> dict[str, object]:
        c = self.config
        return {"model": self.name, "layers": c.num_hidden_layers, "heads": c.num_attention_heads,
                "hidden": c.hidden_size, "parameters": self.model.num_parameters(), "vocab": c.vocab_size,
                "device": str(self.device), "dtype": str(self.dtype).replace("torch.", ""),
                "MLM head": self.has_mlm_head, "NSP head": self.has_nsp_head}

    def copy_for_training(self, device: str | torch.device | None = None) -> Bert:
        """A private fp32 copy of the model; the shared one is never trained."""
        m = copy.deepcopy(self.model).float().train()
        for p in m.parameters():
            p.requires_grad_(True)
        from .loading import pick_device  # loading imports this module

        return m.to(pick_device(device) if device is not None else self.device)

    # --- tokenising ----------------------------------------------------------------------------------
    def tokenize(self, text: str, text_pair: str | None = None, max_tokens: int | None = None) -> Encoded:
        """Wordpieces with [CLS]/[SEP] and segment ids; longer input is cut to ``max_tokens`` (512)."""
        if text is None or not str(text).strip():
            raise InputError("Please type some text first (the input is empty).")
        text = normalize_masks(str(text), self.mask_token)
        if text_pair is not None and not str(text_pair).strip():
            text_pair = None
        if text_pair is not None:
            text_pair = normalize_masks(str(text_pair), self.mask_token)
        limit = min(max_tokens or self.max_tokens, self.max_tokens)
        with self._tok_lock:
            n_original = len(self.tokenizer(text, text_pair, verbose=False)["input_ids"])
            enc = self.tokenizer(text, text_pair, truncation=True, max_length=limit, return_offsets_mapping=True,
                                 return_special_tokens_mask=True, return_token_type_ids=True)
            word_ids = enc.word_ids()
            tokens = enc.tokens()
        ids = np.asarray(enc["input_ids"], dtype=np.int64)
        if len(ids) <= 2 + (text_pair is not None):
            raise InputError("The text has no characters BERT can read (only spaces or control characters?).")
        return Encoded(tokens=list(tokens), input_ids=ids,
                       token_type_ids=self._segments(enc.get("token_type_ids", [0] * len(ids))),
                       special=np.asarray(enc["special_tokens_mask"], dtype=bool), word_ids=list(word_ids),
                       offsets=[tuple(o) for o in enc["offset_mapping"]], n_original=n_original,
                       truncated=n_original > len(ids))

    def _segments(self, types) -> np.ndarray:
        # a checkpoint trained with one segment (type_vocab_size 1) has no row for B: both sentences use A's
        tt = np.asarray(types, dtype=np.int64)
        return np.minimum(tt, self.config.type_vocab_size - 1)

    def tensors(self, enc: Encoded) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.as_tensor(enc.input_ids, device=self.device).unsqueeze(0)
        tt = torch.as_tensor(enc.token_type_ids, device=self.device).unsqueeze(0)
        return ids, tt

    # --- forward -------------------------------------------------------------------------------------
    @torch.inference_mode()
    def inspect(self, text: str, text_pair: str | None = None, head_mask: np.ndarray | torch.Tensor | None = None,
                with_qkv: bool = False, with_mlm: bool = True) -> Inspection:
        """One forward pass with every attention map and hidden state (and Q/K/V on request)."""
        enc = self.tokenize(text, text_pair)
        ids, tt = self.tensors(enc)
        hm = as_head_mask(head_mask, self.device, self.dtype)
        out = self.model(ids, tt, head_mask=hm, output_attentions=True, output_hidden_states=True,
                         output_qkv=with_qkv, heads=False)
        f32 = lambda t: t.detach().float().cpu().numpy()  # noqa: E731
        mlm = f32(self.model.mlm_logits(out.last_hidden_state)[0]) if with_mlm and self.has_mlm_head else None
        nsp = None
        if self.has_nsp_head and text_pair is not None:
            nsp = f32(self.model.cls.seq_relationship(out.pooled)[0].float().softmax(-1))
        qkv = None
        if with_qkv:
            qkv = np.stack([np.stack([f32(t[0]) for t in layer]) for layer in out.qkv], axis=1)  # (3, L, H, T, d_k)
        return Inspection(encoded=enc, attentions=np.stack([f32(a[0]) for a in out.attentions]),
                          hidden_states=np.stack([f32(h[0]) for h in out.hidden_states]),
                          mlm_logits=mlm, nsp_probs=nsp, qkv=qkv)

    @torch.inference_mode()
    def classify(self, text: str, text_pair: str | None = None) -> list[tuple[str, float]]:
        """(class name, probability) from the sequence-classification head, most likely first."""
        if not self.has_classifier:
            raise MissingHeadError(f"'{self.name}' has no sequence-classification head; fine-tune one in the "
                                   "fine-tuning lab first.")
        ids, tt = self.tensors(self.tokenize(text, text_pair))
        probs = self.model.classifier(self.model.encode(ids, tt).pooled)[0].float().softmax(-1).cpu().tolist()
        return sorted(zip(self.label_names, probs), key=lambda x: -x[1])

    def require_mlm(self) -> None:
        if not self.has_mlm_head:
            raise MissingHeadError(
                f"'{self.name}' has no masked-language-model head, so it cannot fill in [MASK]. "
                "Use the bundled model (with its MLM adaptation) or a hub model such as bert-base-uncased.")

    def find_masks(self, text: str) -> tuple[Encoded, np.ndarray]:
        """Tokenise ``text`` (any casing of [MASK]) and find its [MASK] positions; NoMaskError when none survive."""
        text = normalize_masks(str(text or ""), self.mask_token)
        enc = self.tokenize(text)
        positions = np.flatnonzero(enc.input_ids == self.tokenizer.mask_token_id)
        if len(positions) == 0:
            raise NoMaskError(self.max_tokens if MASK_PATTERN.search(text) else None)
        return enc, positions

    def mask_probs(self, text: str, head_mask=None) -> tuple[Encoded, torch.Tensor]:
        """Softmax over the vocabulary at every [MASK]: (Encoded, probs (M, V) float32 on CPU)."""
        self.require_mlm()
        enc, positions = self.find_masks(text)
        ids, tt = self.tensors(enc)
        return enc, top_k_at(self.model, ids, positions, 1, token_type_ids=tt, head_mask=head_mask).probs.cpu()

    def fill_mask(self, text: str, top_k: int = 5) -> list[list[tuple[str, float]]]:
        """Top-k (token, probability) for each [MASK], each mask predicted independently."""
        self.require_mlm()
        enc, positions = self.find_masks(text)
        ids, tt = self.tensors(enc)
        top = top_k_at(self.model, ids, positions, top_k, token_type_ids=tt)
        return top.pairs(self.tokenizer)
