"""The pretraining lab's job: continue MLM(+NSP) training of a checkpoint, or pretrain a tiny BERT from scratch.

    job = jobs.RUNNER.submit(lab_job(lm, LabSettings(steps=200)))
    job.view().snapshots      # (Snapshot, ...): the probe sentences' guesses and the attention maps every few steps

Mirrors ``finetune``: settings dataclass -> job on a private copy of the model, run by ``jobs.RUNNER``; what the
lab watches while it trains is a typed ``Snapshot``. No Streamlit here. From the terminal, one process or DDP:

    python -m bert_core.pretraining --steps 200 --out runs/mlm            # continue MLM on the bundled model
    torchrun --nproc_per_node=2 -m bert_core.pretraining --mode scratch --steps 500
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np

from . import training
from .jobs import HEARTBEAT_TIMEOUT_S, Job, JobView, RunSettings, Watcher
from .loaded import top_k_at
from .loading import tiny_bert, vocab_size, with_heads
from .model import Bert

CONTINUE, SCRATCH = "continue", "scratch"
DEFAULT_LR = {CONTINUE: 1e-4, SCRATCH: 1e-3}  # a fresh model takes bigger steps than a trained one
ATTENTION_PROBE = "The cat sat on the mat because it was tired."


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
class LabSettings(RunSettings):
    """Everything the pretraining lab lets a student choose (the shared knobs in ``jobs.RunSettings``)."""

    lr: float = DEFAULT_LR[CONTINUE]
    mode: str = CONTINUE  # continue: the picked model (MLM head added if missing) | scratch: a fresh tiny BERT
    mlm_prob: float = 0.15
    whole_word: bool = False
    nsp: bool = False
    seq_len: int = 64
    n_texts: int = 5000
    scratch_layers: int = 2
    scratch_hidden: int = 128
    scratch_heads: int = 2
    evaluations: ClassVar[int] = 20


# --- what the lab watches -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProbePrediction:
    sentence: str
    tokens: tuple[str, ...]  # top-k at the (first) [MASK], most likely first
    probs: tuple[float, ...]


@dataclass(frozen=True)
class Snapshot:
    """What the model does on the fixed probes at one step."""

    step: int
    probes: tuple[ProbePrediction, ...]  # empty when the model has no MLM head
    attentions: np.ndarray  # (L, H, T, T) on the attention probe sentence
    tokens: tuple[str, ...]  # the attention probe sentence's T tokens


class Probes(Watcher):
    """Every ``every`` steps: the top-k guesses on cloze sentences and the attention maps of one sentence."""

    def __init__(self, sentences: Sequence[str], every: int = 10, top_k: int = 5,
                 attention_sentence: str = ATTENTION_PROBE):
        self.sentences, self.attention_sentence = list(sentences), attention_sentence
        self.every, self.top_k = every, top_k

    def prepare(self, model: Bert, objective, tok) -> None:
        self.tok, self.cloze = tok, []
        for s in self.sentences:
            enc = tok(s, truncation=True, max_length=128, return_tensors="pt")
            where = (enc["input_ids"][0] == tok.mask_token_id).nonzero()
            if len(where):
                self.cloze.append((s, enc["input_ids"], enc["token_type_ids"], int(where[0, 0])))
        att = tok(self.attention_sentence, truncation=True, max_length=64, return_tensors="pt")
        self.att_ids, self.att_tt = att["input_ids"], att["token_type_ids"]
        self.attention_tokens = tuple(tok.convert_ids_to_tokens(att["input_ids"][0].tolist()))

    def snapshot(self, model: Bert, step: int) -> Snapshot:
        device = next(model.parameters()).device
        preds = []
        if model.has_mlm_head:
            for s, ids, tt, pos in self.cloze:
                top = top_k_at(model, ids.to(device), [pos], self.top_k, token_type_ids=tt.to(device))
                (pairs,) = top.pairs(self.tok)
                preds.append(ProbePrediction(s, tuple(t for t, _ in pairs), tuple(p for _, p in pairs)))
        out = model.encode(self.att_ids.to(device), self.att_tt.to(device), output_attentions=True)
        att = np.stack([a[0].float().cpu().numpy() for a in out.attentions])  # (L, H, T, T)
        return Snapshot(step=step, probes=tuple(preds), attentions=att, tokens=self.attention_tokens)


def scored_evals(v: JobView) -> list[tuple[int, dict[str, float]]]:
    """The held-out evaluations that scored masked tokens (step, metrics)."""
    return [(s, m) for s, m in v.evals if m.get("masked_tokens")]


# --- the job ------------------------------------------------------------------------------------------------------

def lab_job(lm, s: LabSettings, owner: str = "", corpus: LabCorpus | None = None,
            probe_sentences: Sequence[str] | None = None, heartbeat_timeout: float = HEARTBEAT_TIMEOUT_S,
            clock=None) -> Job:
    """A pretraining-lab job on a private copy of ``lm.model`` (or a fresh tiny BERT) with ``lm``'s tokenizer."""
    from .corpus import PROBE_SENTENCES
    from .loading import load_tokenizer

    corpus = corpus or lab_corpus(s.n_texts)
    device = str(lm.device)

    def build():
        tok = load_tokenizer(lm.folder)  # its own tokenizer: a fast tokenizer is not safe to share across threads
        if s.mode == SCRATCH:
            model = tiny_bert(vocab_size(tok), s.scratch_layers, s.scratch_hidden, s.scratch_heads, nsp=s.nsp,
                              seed=s.seed)
        else:
            model = with_heads(lm.copy_for_training(device), mlm=True, nsp=s.nsp, seed=s.seed)
        objective = training.MLMObjective(tok, corpus.train, corpus.heldout, seq_len=s.seq_len, mlm_prob=s.mlm_prob,
                                          whole_word=s.whole_word, nsp=s.nsp, eval_size=len(corpus.heldout))
        return model, objective, tok

    what = "a tiny BERT from scratch" if s.mode == SCRATCH else f"{lm.name} (continued)"
    cfg = s.train_config(device)
    probes = Probes(probe_sentences or PROBE_SENTENCES, every=cfg.eval_every)
    extra = {"bert_lab_run": {"settings": asdict(s), "base": lm.name}}
    return Job(what, cfg, build, watcher=probes, owner=owner, heartbeat_timeout=heartbeat_timeout,
               extra_config=extra, clock=clock)


def main(argv: Sequence[str] | None = None) -> int:
    """The pretraining CLI: the lab's settings as defaults; under torchrun each rank trains on its share of the
    batches (DDP, ``accel``), rank 0 alone evaluates, prints and saves. The last stdout line is JSON."""
    import argparse
    import json
    import sys
    from dataclasses import replace

    from . import accel
    from .loading import ModelLoadError, load_model

    d = LabSettings()
    ap = argparse.ArgumentParser(prog="python -m bert_core.pretraining", description=main.__doc__)
    ap.add_argument("--model", default="bundled")
    ap.add_argument("--mode", choices=[CONTINUE, SCRATCH], default=d.mode)
    for name, default in (("steps", d.steps), ("batch-size", d.batch_size), ("seq-len", d.seq_len),
                          ("texts", d.n_texts), ("seed", d.seed)):
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--time-budget", type=float, default=0.0, help="seconds; the schedule follows the clock")
    ap.add_argument("--nsp", action="store_true")
    ap.add_argument("--whole-word", action="store_true")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", help="save the trained model here (a Hugging Face folder)")
    a = ap.parse_args(argv)
    s = replace(d, mode=a.mode, steps=a.steps, batch_size=a.batch_size, seq_len=a.seq_len, n_texts=a.texts,
                seed=a.seed, lr=DEFAULT_LR[a.mode] if a.lr is None else a.lr, nsp=a.nsp, whole_word=a.whole_word)
    device = accel.setup(a.device)
    try:
        lm = load_model(a.model, device=None if device == "auto" else device)
    except ModelLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    job = lab_job(lm, s)  # its build() makes the private model and the objective, as the lab does
    model, objective, tok = job.build()
    cfg = replace(job.cfg, time_budget_s=a.time_budget, device=str(lm.device))
    lead = accel.rank() == 0

    def on_step(ev: training.StepEvent) -> None:
        if ev.metrics or ev.note:
            print(f"step {ev.step}/{ev.max_steps} loss {ev.loss:.3f} {ev.note}"
                  + " ".join(f"{k} {v:.3f}" for k, v in (ev.metrics or {}).items()), file=sys.stderr, flush=True)

    result = training.train(model, objective, cfg, callback=on_step)
    accel.write_digest(model, [ev.loss for ev in result.history])
    if lead:
        if a.out:
            training.save_checkpoint(model.cpu(), tok, a.out, job.extra_config)
        print(json.dumps({"steps": result.steps, **result.final_metrics, "processes": accel.world()}), flush=True)
    accel.teardown()
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
