"""Scoring a class guess with the game's own rules (``bert_core.game``): the same points as single-player."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bert_core import InputError, game, mlm

from .rules import ClassError

if TYPE_CHECKING:
    from bert_core import LoadedModel

TOP_K = 10
MAX_GUESS_CHARS = 40


@dataclass(frozen=True)
class RoundFacts:
    """What BERT says about a round, computed once when it opens and stored, so every replica reveals the same."""

    top: list[tuple[str, float]]  # BERT's top-k tokens for the slot
    answer_rank: int | None  # None when BERT's vocabulary cannot spell the answer
    answer_prob: float | None


@dataclass(frozen=True)
class ScoredGuess:
    word: str  # as typed (trimmed)
    word_key: str  # BERT's spelling: its wordpieces joined ("Paris" -> "paris" in an uncased model)
    rank: int
    prob: float
    points: int  # game.points_for(rank, is_answer)
    is_answer: bool


def round_facts(lm: LoadedModel, source: str) -> RoundFacts:
    """BERT's top-k for the round's [MASK] and its rank for the hidden word. Reads the shared model, never changes it."""
    item = game.parse_game_sentence(source)
    try:
        res = game.score_guess(lm, item, item.answer, top_k=TOP_K)
        return RoundFacts(top=[(t, float(p)) for t, p in res.top], answer_rank=int(res.answer.rank),
                          answer_prob=float(res.answer.prob))
    except InputError:  # the answer is [UNK] for this vocabulary: still show BERT's guesses
        pred = mlm.predict(lm, mlm.prepare(lm, item.masked), TOP_K)
        return RoundFacts(top=[(t, float(p)) for t, p in pred.top(0)], answer_rank=None, answer_prob=None)


@dataclass(frozen=True)
class _Slot:
    probs: np.ndarray  # (V,) BERT's distribution at the round's [MASK]
    answer_pieces: tuple[str, ...] | None  # None when the vocabulary cannot spell the answer


_slots: OrderedDict[tuple[int, str], _Slot] = OrderedDict()  # (model, round) -> slot; a few rounds per process
_slots_lock = threading.Lock()


def _slot(lm: LoadedModel, item: game.GameItem) -> _Slot:
    """One forward pass per round and model, shared by every guess of the round (30 guesses, one pass)."""
    key = (id(lm), item.source)
    with _slots_lock:
        if key in _slots:
            _slots.move_to_end(key)
            return _slots[key]
    probs = mlm.predict(lm, mlm.prepare(lm, item.masked), 1).probs[0]
    try:
        answer = tuple(mlm.word_pieces(lm, item.answer)[1])
    except InputError:
        answer = None
    with _slots_lock:
        _slots[key] = _Slot(probs, answer)
        while len(_slots) > 32:
            _slots.popitem(last=False)
    return _slots[key]


def _key(pieces) -> str:
    return "".join(p[2:] if p.startswith("##") else p for p in pieces)


def score(lm: LoadedModel, source: str, guess: str) -> ScoredGuess:
    """A player's guess for the round ``source`` -> points; ClassError with the game's message for a bad guess.

    The same numbers as ``game.score_guess``: a one-piece word reads its probability and rank off the round's
    distribution (computed once per round); a word of several pieces runs the game's chain rule.
    """
    guess = " ".join(str(guess or "").split())
    if len(guess) > MAX_GUESS_CHARS:
        raise ClassError(f"A guess is one word of at most {MAX_GUESS_CHARS} characters.")
    try:
        item = game.parse_game_sentence(source)
        ids, pieces = mlm.word_pieces(lm, guess)
        if len(ids) == 1:
            slot = _slot(lm, item)
            p = float(slot.probs[ids[0]])
            rank = min(int((slot.probs > p).sum()) + 1, slot.probs.size)
            is_answer = slot.answer_pieces == tuple(pieces)
            return ScoredGuess(word=guess, word_key=_key(pieces), rank=rank, prob=p,
                               points=game.points_for(rank, is_answer), is_answer=is_answer)
        res = game.score_guess(lm, item, guess, top_k=1)
    except InputError as e:
        raise ClassError(str(e)) from e
    return ScoredGuess(word=guess, word_key=_key(res.guess.pieces), rank=int(res.guess.rank),
                       prob=float(res.guess.prob), points=int(res.points), is_answer=bool(res.is_answer))
