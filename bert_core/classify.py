"""Sequence classification for ``training.train``: the objective (cross-entropy of the classifier head on the
sentence vector) with dynamic padding and a small held-out sample scored during training.
"""

from __future__ import annotations

import random
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .model import Bert
from .training import epochs_of_indices

BUCKET = 16  # batches sorted by length together


class ClassificationObjective:
    """Fine-tuning: cross-entropy of the classifier head on the pooled sentence vector ([CLS] or mean, as the
    model's config says). Each batch is padded to its longest text only; ``evaluate`` scores the first
    ``eval_sample`` held-out rows (0: all), ``predict`` any texts."""

    def __init__(self, tokenizer, train: list[tuple[str, int]], evalset: list[tuple[str, int]], max_len: int = 64,
                 eval_sample: int = 0):
        self.tok, self.max_len, self.bucket = tokenizer, max_len, BUCKET
        self.train_set, self.eval_set = train, evalset[:eval_sample] if eval_sample else evalset

    def _collate(self, rows: list[tuple[str, int]]) -> dict[str, Tensor]:
        enc = self.tok([r[0] for r in rows], truncation=True, max_length=self.max_len, padding=True,
                       return_tensors="pt")
        return {"input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"],
                "attention_mask": enc["attention_mask"], "labels": torch.tensor([r[1] for r in rows])}

    def lengths(self, texts: list[str]) -> np.ndarray:
        """Tokens of each text (with [CLS] and [SEP]), cut at ``max_len``."""
        ids = self.tok(texts, truncation=True, max_length=self.max_len, add_special_tokens=True)["input_ids"]
        return np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(texts))

    def batches(self, batch_size: int, rng: random.Random) -> Iterator[dict[str, Tensor]]:
        """Random batches of texts of similar length (less padding, same data): each window of ``self.bucket`` random
        batches is sorted by length, cut into batches, and those are yielded in random order."""
        n = len(self.train_set)
        if self.bucket <= 1:  # plain random batches
            for chosen in epochs_of_indices(n, batch_size, rng):
                yield self._collate([self.train_set[i] for i in chosen])
        window = epochs_of_indices(n, batch_size * self.bucket, rng)
        while True:  # lengths window by window: a short run tokenizes only what it trains on
            chosen = next(window)
            length = self.lengths([self.train_set[i][0] for i in chosen])
            chosen = [chosen[j] for j in np.argsort(length, kind="stable")]
            groups = [chosen[i:i + batch_size] for i in range(0, len(chosen), batch_size)]
            rng.shuffle(groups)
            for g in groups:
                yield self._collate([self.train_set[i] for i in g])

    def loss(self, model: Bert, batch: dict[str, Tensor]) -> Tensor:
        out = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
        return F.cross_entropy(out.cls_logits.float(), batch["labels"])

    @torch.no_grad()
    def predict(self, model: Bert, texts: list[str]) -> np.ndarray:
        """Class probabilities (N, C), in eval mode."""
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        order = np.argsort(self.lengths(list(texts)), kind="stable")  # similar lengths together: less padding
        probs = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
        for i in range(0, len(texts), 64):
            rows = order[i:i + 64]
            b = {k: v.to(device) for k, v in self._collate([(texts[j], 0) for j in rows]).items()}
            probs[rows] = model(b["input_ids"], b["token_type_ids"], b["attention_mask"]).cls_logits.float() \
                .softmax(-1).cpu().numpy()
        model.train(was_training)
        return probs

    def evaluate(self, model: Bert) -> dict[str, float]:
        from sklearn.metrics import accuracy_score, f1_score

        if not self.eval_set:
            return {}
        probs = self.predict(model, [t for t, _ in self.eval_set])
        gold = np.asarray([y for _, y in self.eval_set])
        pred = probs.argmax(-1)
        loss = float(-np.log(np.clip(probs[np.arange(len(gold)), gold], 1e-12, None)).mean())
        return {"eval_loss": loss, "accuracy": float(accuracy_score(gold, pred)),
                "macro_f1": float(f1_score(gold, pred, average="macro"))}


