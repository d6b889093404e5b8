"""How good and how copy-prone a masked-language model's guesses are: the one measurement behind the bundled
model's card, ``scripts/train_bundled_mlm.py --evaluate-only`` and ``tests/test_bundled_mlm.py``.

- Everyday probes (``corpus.EVERYDAY_CLOZE``): hit@1 / hit@5 against each sentence's answer key, and the copy
  rate: the share of sentences whose top-1 guess is a word that is already elsewhere in the sentence.
- Held-out corpus texts (masked once with a fixed seed, as ``MLMObjective`` does): top-1 / top-5 / loss and the
  same copy rate over every masked token.
- The built-in game sentences: the rank of each hidden word among the model's guesses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from bert_core.corpus import EVERYDAY_CLOZE, ClozeProbe
from bert_core.game import BUILTIN_SENTENCES, parse_game_sentence
from bert_core.loaded import top_k_at
from bert_core.model import Bert
from bert_core.training import MLMObjective


@dataclass(frozen=True)
class ProbeResult:
    sentence: str
    top5: list[str]
    hit1: bool  # the top guess is in the answer key
    hit5: bool  # an answer-key word is among the top 5
    copied: bool  # the top guess is a word of the sentence itself


@dataclass(frozen=True)
class GameRank:
    sentence: str
    answer: str
    rank: int  # 1 = the model's top choice (of the answer's first word piece)
    top1: str


@dataclass(frozen=True)
class HeldOut:
    eval_loss: float
    top1: float
    top5: float
    copy_rate: float  # share of masked tokens whose top-1 guess is another token of the same text
    wrong_copy_rate: float  # ... and is not the right answer
    masked_tokens: int


def copy_guesses(b: dict[str, torch.Tensor], sel: torch.Tensor, top1: torch.Tensor, special: torch.Tensor) -> torch.Tensor:
    """(N,) bool: is each masked position's top-1 guess a token found elsewhere in the same text (a copy)?"""
    original = torch.where(sel, b["labels"], b["input_ids"])
    rows, cols = sel.nonzero(as_tuple=True)
    same = (original[rows] == top1[:, None]) & ((b["attention_mask"] == 1) & ~torch.isin(original, special))[rows]
    same[torch.arange(len(rows), device=same.device), cols] = False  # the mask itself is not "elsewhere"
    return same.any(-1)


# (token ids (N, T), the [MASK] column of each row, (N, V) logits there) -> (N, V) scores: another scorer of the
# model's guesses, e.g. a training script's teacher, measured the same way as the model itself
Rescore = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _mask_guesses(model: Bert, tok, sentences: list[str], k: int, rescore: Rescore | None = None):
    """(top-k token lists, (N, V) logits, tokenised sentences) at the one [MASK] of each sentence."""
    enc = tok(sentences, return_tensors="pt", padding=True)
    rows, cols = (enc["input_ids"] == tok.mask_token_id).nonzero(as_tuple=True)
    assert rows.tolist() == list(range(len(sentences))), "each sentence needs exactly one [MASK]"
    model.eval()
    with torch.no_grad():
        top = top_k_at(model, enc["input_ids"], (rows.numpy(), cols.numpy()), k,
                       token_type_ids=enc["token_type_ids"], attention_mask=enc["attention_mask"])
    logits, indices = top.logits, top.indices
    if rescore is not None:
        logits = rescore(enc["input_ids"], cols, logits.float())
        indices = logits.topk(k, -1).indices
    tokens = [tok.convert_ids_to_tokens(r) for r in indices.tolist()]
    words = [[t for t in tok.tokenize(s) if t != tok.mask_token] for s in sentences]
    return tokens, logits, words


def probe_results(model: Bert, tok, probes: tuple[ClozeProbe, ...] = EVERYDAY_CLOZE,
                  rescore: Rescore | None = None) -> list[ProbeResult]:
    tops, _, words = _mask_guesses(model, tok, [p.sentence for p in probes], 5, rescore)
    return [ProbeResult(p.sentence, top, top[0] in p.answers, any(t in p.answers for t in top), top[0] in ws)
            for p, top, ws in zip(probes, tops, words)]


def game_ranks(model: Bert, tok, lines: tuple[str, ...] = BUILTIN_SENTENCES,
               rescore: Rescore | None = None) -> list[GameRank]:
    items = [parse_game_sentence(line) for line in lines]
    tops, logits, _ = _mask_guesses(model, tok, [it.masked for it in items], 1, rescore)
    out = []
    for i, it in enumerate(items):
        answer_id = tok.convert_tokens_to_ids(tok.tokenize(it.answer)[0])
        rank = 1 + int((logits[i] > logits[i, answer_id]).sum())
        out.append(GameRank(it.source, it.answer, rank, tops[i][0]))
    return out


def held_out(model: Bert, objective: MLMObjective) -> HeldOut:
    """Top-1/top-5/loss and copy rate on the objective's fixed held-out masks."""
    model.eval()
    with torch.no_grad():
        m = objective.evaluate(model, copies=True)
    return HeldOut(*(round(m[k], 4) for k in ("eval_loss", "top1", "top5", "copy_rate", "wrong_copy_rate")),
                   int(m["masked_tokens"]))


@dataclass(frozen=True)
class MLMReport:
    probes: list[ProbeResult]
    game: list[GameRank]
    held_out: dict[str, HeldOut]  # split name -> figures

    @property
    def probe_copy_rate(self) -> float:
        return sum(p.copied for p in self.probes) / len(self.probes)

    @property
    def probe_hit1(self) -> float:
        return sum(p.hit1 for p in self.probes) / len(self.probes)

    @property
    def probe_hit5(self) -> float:
        return sum(p.hit5 for p in self.probes) / len(self.probes)

    @property
    def game_in_top10(self) -> int:
        return sum(g.rank <= 10 for g in self.game)

    def card_figures(self) -> dict:
        """The figures the model card records (and the test re-measures)."""
        return {
            "everyday": {"sentences": len(self.probes), "copy_rate": round(self.probe_copy_rate, 4),
                         "hit1": round(self.probe_hit1, 4), "hit5": round(self.probe_hit5, 4)},
            "game": {"sentences": len(self.game), "in_top10": self.game_in_top10, "top1": sum(g.rank == 1 for g in
                     self.game), "ranks": {g.sentence: g.rank for g in self.game}},
            "held_out_splits": {k: asdict(v) for k, v in self.held_out.items()},
            "probes": [{"sentence": p.sentence, "top5": p.top5} for p in self.probes],
        }


def measure(model: Bert, tok, objectives: dict[str, MLMObjective]) -> MLMReport:
    """Everything at once: everyday probes, game ranks and each held-out split."""
    return MLMReport(probe_results(model, tok), game_ranks(model, tok),
                     {name: held_out(model, obj) for name, obj in objectives.items()})


def held_out_objectives(tok, seq_len: int = 64) -> dict[str, MLMObjective]:
    """Every held-out text of each split, masked once with seed 1234. 'wordnet+fortunes' is the split (and masking)
    the earlier artifacts were measured on, so figures stay comparable when the corpus grows."""
    from bert_core.corpus import load_corpus

    out = {}
    for name, sources in (("wordnet+fortunes", ("wordnet", "fortunes")), ("tweets", ("tweets",))):
        train, held = load_corpus(sources)
        out[name] = MLMObjective(tok, train[:50], held, seq_len=seq_len, eval_size=len(held), eval_seed=1234)
    return out
