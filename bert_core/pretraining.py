"""The pretraining lab's job: continue MLM(+NSP) training of a checkpoint, or pretrain a tiny BERT from scratch.

    job = jobs.RUNNER.submit(lab_job(lm, LabSettings(steps=200)))

Mirrors ``finetune``: settings dataclass -> job on a private copy of the model, run by ``jobs.RUNNER``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from . import training
from .jobs import HEARTBEAT_TIMEOUT_S, Job, Probes
from .loading import tiny_bert, vocab_size, with_heads
from .training import TrainConfig


@dataclass
class LabCorpus:
    train: list[str] = field(default_factory=list)
    heldout: list[str] = field(default_factory=list)
    note: str = ""


_corpus_lock = threading.Lock()
_corpus_cache: dict[int, LabCorpus] = {}


def lab_corpus(n_train: int, n_heldout: int = 128) -> LabCorpus:
    """A fixed random sample of the WordNet + fortunes corpus (same texts every time). Raises FileNotFoundError."""
    from .corpus import load_corpus

    with _corpus_lock:
        if n_train not in _corpus_cache:
            train, held = load_corpus()
            rng = np.random.default_rng(0)
            pick = sorted(rng.choice(len(train), size=min(n_train, len(train)), replace=False).tolist())
            _corpus_cache[n_train] = LabCorpus(
                train=[train[i] for i in pick], heldout=held[:n_heldout],
                note=f"{min(n_train, len(train)):,} of {len(train):,} training texts, {min(n_heldout, len(held))} "
                     "held-out texts (WordNet glosses and examples + fortunes)")
        return _corpus_cache[n_train]


@dataclass(frozen=True)
class LabSettings:
    """Everything the pretraining lab lets a student choose."""

    mode: str = "continue"  # continue: the picked model (MLM head added if missing) | scratch: a fresh tiny BERT
    steps: int = 200
    batch_size: int = 16
    lr: float = 1e-4
    warmup_ratio: float = 0.1
    schedule: str = "linear"
    mlm_prob: float = 0.15
    whole_word: bool = False
    nsp: bool = False
    mixed_precision: str = "no"  # no | bf16
    seq_len: int = 64
    n_texts: int = 5000
    scratch_layers: int = 2
    scratch_hidden: int = 128
    scratch_heads: int = 2
    seed: int = 0

    def train_config(self, device: str = "auto") -> TrainConfig:
        every = max(1, self.steps // 20)
        return TrainConfig(max_steps=self.steps, batch_size=self.batch_size, lr=self.lr,
                           warmup_ratio=self.warmup_ratio, schedule=self.schedule,
                           mixed_precision=self.mixed_precision, seed=self.seed, eval_every=every, device=device)


def lab_job(lm, s: LabSettings, owner: str = "", corpus: LabCorpus | None = None,
            probe_sentences: Sequence[str] | None = None, heartbeat_timeout: float = HEARTBEAT_TIMEOUT_S) -> Job:
    """A pretraining-lab job on a private copy of ``lm.model`` (or a fresh tiny BERT) with ``lm``'s tokenizer."""
    from .corpus import PROBE_SENTENCES
    from .loading import load_tokenizer

    corpus = corpus or lab_corpus(s.n_texts)
    device = str(lm.device)

    def build():
        tok = load_tokenizer(lm.folder)  # its own tokenizer: a fast tokenizer is not safe to share across threads
        if s.mode == "scratch":
            model = tiny_bert(vocab_size(tok), s.scratch_layers, s.scratch_hidden, s.scratch_heads, nsp=s.nsp,
                              seed=s.seed)
        else:
            model = with_heads(lm.copy_for_training(device), mlm=True, nsp=s.nsp, seed=s.seed)
        objective = training.MLMObjective(tok, corpus.train, corpus.heldout, seq_len=s.seq_len, mlm_prob=s.mlm_prob,
                                          whole_word=s.whole_word, nsp=s.nsp, eval_size=len(corpus.heldout))
        return model, objective, tok

    what = "a tiny BERT from scratch" if s.mode == "scratch" else f"{lm.name} (continued)"
    cfg = s.train_config(device)
    probes = Probes(list(probe_sentences or PROBE_SENTENCES), every=cfg.eval_every)
    extra = {"bert_lab_run": {"settings": {k: getattr(s, k) for k in s.__dataclass_fields__}, "base": lm.name}}
    return Job(what, cfg, build, probes=probes, owner=owner, heartbeat_timeout=heartbeat_timeout, extra_config=extra)
