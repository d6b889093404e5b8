"""The masked-word guessing game: sentences with a {hidden} word, share codes, points from BERT's rank, and the
single-player game's rounds as a ``GameState``.

    state = GameState.start(items, "the built-in sentences", shuffle=True)
    state = state.guess(lm, "dog")          # scores the guess (InputError for a bad one), shows the result
    state = state.next()                    # on to the next round; state.skip() records a skipped one
    state.over, state.score, state.history  # the history: one typed HistoryRow per round played

No Streamlit here: the playground page and the class game only render what this module decides.
"""

from __future__ import annotations

import base64
import json
import random
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .loaded import MASK_PATTERN, InputError, LoadedModel
from .mlm import CandidateScore, predict, prepare, score_candidates, word_pieces


# Everyday sentences; the word in {braces} is hidden. Each is one wordpiece in BERT's uncased vocabulary.
BUILTIN_SENTENCES: tuple[str, ...] = (
    "I brush my {teeth} every morning and every night.",
    "She put the milk back in the {fridge}.",
    "The {sun} rises in the east and sets in the west.",
    "It was raining, so I took my {umbrella}.",
    "After the long run he drank a glass of cold {water}.",
    "We need eggs, flour and {sugar} to bake a cake.",
    "Don't forget to lock the {door} when you leave.",
    "The teacher wrote the answer on the {board}.",
    "There are seven {days} in a week.",
    "I'm so hungry I could eat a {horse}.",
    "She called her best friend on the {phone}.",
    "The {moon} was full and bright in the night sky.",
    "He wears {glasses} because he can't see very well.",
    "Please wash your {hands} before dinner.",
    "The bus was late, so we had to {walk} to school.",
    "Bees make {honey}.",
    "In winter the lake freezes and turns to {ice}.",
    "The doctor told him to stay in {bed} for a few days.",
    "We planted tomatoes and carrots in the {garden}.",
    "The referee blew his {whistle} to end the match.",
    "It was cold outside, so I put on my warm {coat}.",
    "Happy {birthday} to you!",
    "He paid for the coffee with his credit {card}.",
    "Turn off the {lights} before you go to sleep.",
    "The capital of France is {Paris}.",
    "Two plus two equals {four}.",
    "The dog wagged its {tail} when we came home.",
    "I can't find my {keys}, so I can't open the door.",
    "We borrowed some books from the {library}.",
    "Take off your muddy {shoes} before you come inside.",
    "Every morning I eat a bowl of cereal for {breakfast}.",
    "The children built a snowman in the {snow}.",
)
GAME_ROUNDS = 10
MAX_SET_SENTENCES = 60
MAX_SENTENCE_CHARS = 300
_BRACES = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class GameItem:
    """One round: the sentence shown with a [MASK], and the word that was hidden."""

    source: str  # the line as written, with {answer}
    masked: str  # the sentence with [MASK] instead of the answer
    answer: str

    @property
    def plain(self) -> str:
        """The sentence as a reader sees it: the answer in place, without its {braces}."""
        return self.masked.replace("[MASK]", self.answer, 1)


def parse_game_sentence(line: str) -> GameItem:
    """'The {cat} sat.' -> masked sentence and answer. Without braces the last word of 3+ letters is hidden."""
    line = " ".join(str(line or "").split())
    if not line:
        raise InputError("The sentence is empty.")
    if len(line) > MAX_SENTENCE_CHARS:
        raise InputError(f"The sentence is longer than {MAX_SENTENCE_CHARS} characters.")
    if MASK_PATTERN.search(line):
        raise InputError("Mark the hidden word with {braces}, e.g. 'The {cat} sat on the mat.', instead of [MASK].")
    found = _BRACES.findall(line)
    if len(found) > 1:
        raise InputError("Put {braces} around only one word per sentence.")
    if found:
        answer = found[0].strip()
        if not answer or len(answer.split()) != 1:
            raise InputError("The {braces} must hold exactly one word.")
        m = _BRACES.search(line)
        return GameItem(source=line, masked=line[:m.start()] + "[MASK]" + line[m.end():], answer=answer)
    candidates = list(re.finditer(r"[^\W\d_]{3,}", line))
    if not candidates:
        raise InputError("No word of three or more letters to hide; mark one with {braces}.")
    m = candidates[-1]
    return GameItem(source=line[:m.start()] + "{" + m.group() + "}" + line[m.end():],
                    masked=line[:m.start()] + "[MASK]" + line[m.end():], answer=m.group())


def parse_sentence_set(text: str) -> tuple[list[GameItem], list[str]]:
    """One sentence per line -> (rounds, problems as 'line n: why')."""
    items, problems = [], []
    lines = [ln for ln in str(text or "").splitlines() if ln.strip()]
    for n, ln in enumerate(lines[:MAX_SET_SENTENCES], 1):
        try:
            items.append(parse_game_sentence(ln))
        except InputError as e:
            problems.append(f"line {n}: {e}")
    if len(lines) > MAX_SET_SENTENCES:
        problems.append(f"only the first {MAX_SET_SENTENCES} sentences are used")
    return items, problems


def encode_set(sentences: list[str]) -> str:
    """A sentence set as a short URL-safe code (zlib + base64) for a share link."""
    raw = json.dumps([str(s) for s in sentences], ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode().rstrip("=")


def decode_set(code: str) -> list[str]:
    """Inverse of encode_set; InputError for a damaged link."""
    try:
        code = str(code).strip()
        raw = zlib.decompress(base64.urlsafe_b64decode(code + "=" * (-len(code) % 4)), bufsize=1 << 16)
        data = json.loads(raw.decode())
        if not isinstance(data, list) or not all(isinstance(s, str) for s in data):
            raise ValueError
        return data[:MAX_SET_SENTENCES]
    except Exception as e:  # noqa: BLE001 - any damage reads the same to the user
        raise InputError("This game link is damaged or incomplete; ask your teacher for the link again.") from e


POINTS = ((1, 100), (3, 70), (10, 50), (50, 25), (200, 10))  # (rank up to, points)
ANSWER_BONUS = 20


def points_for(rank: int, is_answer: bool = False) -> int:
    """Points for a guess BERT ranks ``rank`` (1 = its top choice), plus a bonus for the sentence's own word."""
    pts = next((p for limit, p in POINTS if 0 < rank <= limit), 0)
    return pts + (ANSWER_BONUS if is_answer else 0)


def points_rule() -> str:
    """The scoring rule in words, for the players: 'its top choice scores 100, top 3 scores 70, …'."""
    tiers = ", ".join(f"{'its top choice' if limit == 1 else f'top {limit}'} scores {p}" for limit, p in POINTS)
    return f"{tiers}, plus {ANSWER_BONUS} if you also found the original word"


@dataclass(frozen=True)
class GuessResult:
    """A scored guess: BERT's view of the guess and of the original word, the points, and BERT's own top-k."""

    guess: CandidateScore
    answer: CandidateScore
    is_answer: bool
    points: int
    top: list[tuple[str, float]]  # BERT's own top-k for the slot


def score_guess(lm: LoadedModel, item: GameItem, guess: str, top_k: int = 10) -> GuessResult:
    """Score a player's guess by BERT's probability and rank for it; InputError for an empty or invalid guess."""
    word_pieces(lm, guess)  # raises a user-facing message for empty / several words / [UNK]
    mi = prepare(lm, item.masked)
    g, a = score_candidates(lm, mi, [guess, item.answer])
    same = g.pieces == a.pieces and not a.error
    top = predict(lm, mi, top_k).top(0)
    return GuessResult(guess=g, answer=a, is_answer=same, points=points_for(g.rank, same), top=top)


# --- one player's game ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HistoryRow:
    """One finished round. A skipped round has no guess, probability, rank or BERT word (None)."""

    round: int  # 1-based
    sentence: str  # as a reader sees it: the answer in place, no {braces}
    guess: str | None
    prob: float | None
    rank: int | None
    points: int
    bert_top: str | None  # BERT's own top word for the slot

    @property
    def skipped(self) -> bool:
        return self.guess is None


@dataclass(frozen=True)
class GameState:
    """A single player's game: which sentences, in which order, the round being played, the score and history.

    Immutable: every move returns a new state. A round is either waiting for a guess (``result`` is None) or shows
    the scored guess until ``next()``. ``round == n_rounds`` means the game is over.
    """

    items: tuple[GameItem, ...]  # the whole set, as given
    order: tuple[int, ...]  # indices into items: the rounds, in play order
    label: str  # what is being played, e.g. "the built-in sentences"
    shuffled: bool = False  # "play again" reshuffles a shuffled game
    round: int = 0  # 0-based index into order
    score: int = 0
    history: tuple[HistoryRow, ...] = ()
    result: GuessResult | None = None  # this round's scored guess, shown until next()

    @classmethod
    def start(cls, items: Sequence[GameItem], label: str, shuffle: bool = False, rounds: int = GAME_ROUNDS,
              rng: random.Random | None = None) -> GameState:
        """A new game. Shuffled: ``rounds`` sentences in random order; else every sentence in the given order."""
        if not items:
            raise InputError("There are no sentences to play.")
        order = list(range(len(items)))
        if shuffle:
            (rng or random.Random()).shuffle(order)  # own generator: other modules may seed the global one
            order = order[:rounds]
        return cls(items=tuple(items), order=tuple(order), label=label, shuffled=shuffle)

    @classmethod
    def builtin(cls, rng: random.Random | None = None) -> GameState:
        """GAME_ROUNDS built-in sentences in random order."""
        items = [parse_game_sentence(s) for s in BUILTIN_SENTENCES]
        return cls.start(items, "the built-in sentences", shuffle=True, rng=rng)

    def restart(self, rng: random.Random | None = None) -> GameState:
        """Play the same set again from round 1 (reshuffled if this game was)."""
        return GameState.start(self.items, self.label, shuffle=self.shuffled, rng=rng)

    @property
    def n_rounds(self) -> int:
        return len(self.order)

    @property
    def over(self) -> bool:
        return self.round >= self.n_rounds

    @property
    def last_round(self) -> bool:
        """This is the final round (after it comes the final score)."""
        return self.round + 1 >= self.n_rounds

    @property
    def item(self) -> GameItem:
        """The sentence of the round being played."""
        if self.over:
            raise InputError("The game is over.")
        return self.items[self.order[self.round]]

    @property
    def max_score(self) -> int:
        """The best possible total: BERT's top choice, and the original word, every round."""
        return self.n_rounds * points_for(1, is_answer=True)

    def guess(self, lm: LoadedModel, word: str) -> GameState:
        """Score ``word`` for this round and show the result; InputError (state unchanged) for a bad guess."""
        if self.result is not None:
            raise InputError("You already guessed this round; go on to the next one.")
        res = score_guess(lm, self.item, word)
        row = HistoryRow(round=self.round + 1, sentence=self.item.plain, guess=res.guess.word, prob=res.guess.prob,
                         rank=res.guess.rank, points=res.points, bert_top=res.top[0][0] if res.top else None)
        return replace(self, score=self.score + res.points, history=self.history + (row,), result=res)

    def skip(self) -> GameState:
        """Give up this round: a history row with no guess and 0 points, and on to the next round."""
        if self.over or self.result is not None:  # nothing to skip: a guessed round just moves on
            return self.next()
        row = HistoryRow(round=self.round + 1, sentence=self.item.plain, guess=None, prob=None, rank=None, points=0,
                         bert_top=None)
        return replace(self, history=self.history + (row,), round=self.round + 1)

    def next(self) -> GameState:
        """On to the next round (the final score after the last one); a round left without a guess is skipped."""
        if self.over:
            return self
        if self.result is None:
            return self.skip()
        return replace(self, round=self.round + 1, result=None)
