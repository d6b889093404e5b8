"""The class game: a teacher-paced state machine over the database, one ``Session`` per action.

    lobby --open--> open --close--> closed --reveal--> revealed --open--> open ... --> over
                     |  `---skip (round does not count, next one opens)--'                ^
                     `------------------------------- end (any state) -------------------'

Every teacher action checks the teacher key, every guess the player's token, on the server. Views are typed: a
``StudentView`` holds no answer and no BERT top-k before the round is revealed, so a student's page cannot send them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bert_core import game

from . import scoring, settings
from .db import ClassRoom, Guess, Player, Round, SentenceSet, make_engine
from .rules import (SET_ID_LEN, ClassError, ClassUnavailable, NotAllowed, clean_nickname, digest, new_code,
                    new_secret, normalize_code, to_csv)

if TYPE_CHECKING:
    from bert_core import LoadedModel

LOBBY, OPEN, CLOSED, REVEALED, OVER = "lobby", "open", "closed", "revealed", "over"
ROUNDS_DEFAULT = 10
CSV_HEADER = ("round", "sentence", "nickname", "guess", "BERT's rank", "BERT's probability", "points",
              "original word", "counted")


@dataclass(frozen=True)
class TeacherLink:
    code: str
    key: str  # the teacher key: only its holder may run the class


@dataclass(frozen=True)
class PlayerLink:
    code: str
    token: str  # the player's token (in the student's address, so a reload rejoins)
    nickname: str


@dataclass(frozen=True)
class Standing:
    rank: int  # 1 = best; ties share a rank
    nickname: str
    score: int  # points from revealed rounds
    guessed: bool  # has a guess in the current round


@dataclass(frozen=True)
class WordCount:
    word: str  # BERT's spelling of the guess
    count: int  # how many players chose it
    points: int
    rank: int  # BERT's rank for it


@dataclass(frozen=True)
class Reveal:
    number: int
    masked: str
    answer: str
    bert_top: list[tuple[str, float]]
    answer_rank: int | None
    answer_prob: float | None
    words: list[WordCount]  # the class's guesses, most chosen first

    @property
    def n_guesses(self) -> int:
        return sum(w.count for w in self.words)


@dataclass(frozen=True)
class Pulse:
    """What a polling page needs to know whether to redraw: cheap to read every second."""

    state: str
    current: int
    version: int
    n_players: int
    n_guessed: int


@dataclass(frozen=True)
class ClassView:
    """The teacher's view: everything, the current answer included."""

    code: str
    state: str
    current: int  # round number, 0 in the lobby
    n_rounds: int
    masked: str | None
    answer: str | None
    n_players: int
    n_guessed: int
    version: int
    model_name: str
    expires_at: float
    standings: list[Standing]
    reveal: Reveal | None  # the current round, once revealed


@dataclass(frozen=True)
class MyGuess:
    word: str
    points: int | None  # None until the round is revealed
    rank: int | None


@dataclass(frozen=True)
class StudentView:
    """A student's view: the sentence with [MASK], their own guess, the standings; answers only once revealed."""

    code: str
    nickname: str
    state: str
    current: int
    n_rounds: int
    masked: str | None
    my_guess: MyGuess | None
    my_score: int
    my_rank: int | None
    n_players: int
    n_guessed: int
    version: int
    model_name: str
    standings: list[Standing]
    reveal: Reveal | None


def _now() -> float:
    return time.time()


class ClassStore:
    """All class actions. Thread-safe: each call opens its own ``Session``."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str | None = None) -> ClassStore:
        url = url or settings.database_url()
        try:
            return cls(make_engine(url))
        except (OSError, DBAPIError) as e:
            raise ClassUnavailable(_unavailable(url, e)) from e

    # --- plumbing ---------------------------------------------------------------------------------------------
    def _session(self) -> Session:
        return self._sessions()

    def _run(self, fn):
        """Run ``fn(session)`` in one session; database trouble becomes a ClassUnavailable message."""
        try:
            with self._session() as s:
                return fn(s)
        except DBAPIError as e:  # locked, read-only, not a database, server gone
            raise ClassUnavailable(_unavailable(str(self.engine.url), e)) from e

    @staticmethod
    def _class(s: Session, code: str) -> ClassRoom:
        c = s.scalars(select(ClassRoom).where(ClassRoom.code == normalize_code(code))).first()
        if c is None or c.expires_at < _now():
            raise ClassError("There is no class with this code (it may have ended and expired). Check the code.")
        return c

    def _teacher_class(self, s: Session, code: str, key: str) -> ClassRoom:
        c = self._class(s, code)
        if digest(key) != c.teacher_key_hash:
            raise NotAllowed("Only the teacher who started this class can do that (the teacher key does not match).")
        return c

    @staticmethod
    def _player(s: Session, c: ClassRoom, token: str) -> Player:
        p = s.scalars(select(Player).where(Player.token_hash == digest(token), Player.class_id == c.id)).first()
        if p is None:
            raise NotAllowed("This player link does not belong to this class; join again with a nickname.")
        return p

    @staticmethod
    def _round(s: Session, c: ClassRoom) -> Round | None:
        if c.current == 0:
            return None
        return s.scalars(select(Round).where(Round.class_id == c.id, Round.number == c.current)).first()

    # --- sentence sets ----------------------------------------------------------------------------------------
    def save_set(self, sentences: list[str]) -> str:
        """Store a sentence set; returns its short id (for ``?set=`` links and for starting a class from it)."""
        items, problems = game.parse_sentence_set("\n".join(sentences))
        if not items:
            raise ClassError("No usable sentences: " + "; ".join(problems[:3]))

        def fn(s: Session) -> str:
            for _ in range(8):
                sid = new_code(SET_ID_LEN)
                if s.get(SentenceSet, sid) is None:
                    s.add(SentenceSet(id=sid, sentences=[it.source for it in items], created_at=_now()))
                    s.commit()
                    return sid
            raise ClassError("Could not find a free id; try again.")
        return self._run(fn)

    def load_set(self, set_id: str) -> list[str]:
        def fn(s: Session) -> list[str]:
            row = s.get(SentenceSet, normalize_code(set_id))
            if row is None:
                raise ClassError("No saved sentence set has this id; check the link.")
            return list(row.sentences)
        return self._run(fn)

    # --- teacher ----------------------------------------------------------------------------------------------
    def create_class(self, sentences: list[str], model_name: str, hours: float | None = None) -> TeacherLink:
        """A new class in the lobby over these sentences (in this order); returns the join code and teacher key."""
        items, problems = game.parse_sentence_set("\n".join(sentences))
        if not items:
            raise ClassError("No usable sentences: " + "; ".join(problems[:3]))
        key, now = new_secret(), _now()
        ttl = 3600 * (hours if hours is not None else settings.class_hours())

        def fn(s: Session) -> TeacherLink:
            s.execute(delete(ClassRoom).where(ClassRoom.expires_at < now))  # old classes go (cascades)
            s.commit()
            for _ in range(8):
                code = new_code()
                s.add(ClassRoom(code=code, teacher_key_hash=digest(key), model_name=str(model_name),
                                sentences=[it.source for it in items], state=LOBBY, current=0, version=0,
                                created_at=now, expires_at=now + ttl))
                try:
                    s.commit()
                    return TeacherLink(code=code, key=key)
                except IntegrityError:  # the code is taken: draw another
                    s.rollback()
            raise ClassError("Could not find a free join code; try again.")
        return self._run(fn)

    def _transition(self, code: str, key: str, allowed: tuple[str, ...], change) -> ClassView:
        """Check key and state, then apply ``change(session, class)``; compare-and-set on the version, so two
        teacher tabs clicking at once cannot both advance the class."""
        def fn(s: Session) -> None:
            c = self._teacher_class(s, code, key)
            if c.state not in allowed:
                raise ClassError(f"The class is {_state_words(c.state)}; that step is not possible now.")
            try:
                state, current, seen = change(s, c)
                s.flush()
            except IntegrityError:  # another tab added this round first
                s.rollback()
                raise ClassError("The class changed meanwhile (another teacher tab?); look again.") from None
            n = s.execute(update(ClassRoom).where(ClassRoom.id == c.id, ClassRoom.version == seen)
                          .values(state=state, current=current, version=seen + 1)).rowcount
            if n != 1:
                s.rollback()
                raise ClassError("The class changed meanwhile (another teacher tab?); look again.")
            s.commit()
        self._run(fn)
        return self.teacher_view(code, key)

    def open_next(self, code: str, key: str, lm: LoadedModel) -> ClassView:
        """Show the next sentence and take guesses (from the lobby or after a reveal); after the last one: over."""
        facts_for = self._prepare_next(code, key, lm)

        def change(s: Session, c: ClassRoom):
            return self._add_round(s, c, facts_for)
        return self._transition(code, key, (LOBBY, REVEALED), change)

    def skip(self, code: str, key: str, lm: LoadedModel) -> ClassView:
        """Drop the current round (its guesses do not count) and open the next one."""
        facts_for = self._prepare_next(code, key, lm)

        def change(s: Session, c: ClassRoom):
            r = self._round(s, c)
            if r is not None:
                r.skipped = True
            return self._add_round(s, c, facts_for)
        return self._transition(code, key, (OPEN, CLOSED), change)

    def _prepare_next(self, code: str, key: str, lm: LoadedModel) -> tuple[int, scoring.RoundFacts | None]:
        """BERT's facts for the next round, computed outside any transaction (the model is the slow part)."""
        def fn(s: Session):
            c = self._teacher_class(s, code, key)
            return c.current, (list(c.sentences)[c.current] if c.current < len(c.sentences) else None)
        current, source = self._run(fn)
        return current, (scoring.round_facts(lm, source) if source is not None else None)

    @staticmethod
    def _add_round(s: Session, c: ClassRoom, facts_for):
        prepared_at, facts = facts_for
        if prepared_at != c.current:
            raise ClassError("The class changed meanwhile (another teacher tab?); look again.")
        if facts is None:
            return OVER, c.current, c.version
        source = list(c.sentences)[c.current]
        item = game.parse_game_sentence(source)
        s.add(Round(class_id=c.id, number=c.current + 1, source=item.source, masked=item.masked, answer=item.answer,
                    bert_top=[[t, p] for t, p in facts.top], answer_rank=facts.answer_rank,
                    answer_prob=facts.answer_prob, opened_at=_now()))
        return OPEN, c.current + 1, c.version

    def close(self, code: str, key: str) -> ClassView:
        """Stop taking guesses for the current round."""
        return self._transition(code, key, (OPEN,), lambda s, c: (CLOSED, c.current, c.version))

    def reveal(self, code: str, key: str) -> ClassView:
        """Show the answer, BERT's top-k and the class's guesses; the round's points now count."""
        def change(s: Session, c: ClassRoom):
            self._round(s, c).revealed = True
            return REVEALED, c.current, c.version
        return self._transition(code, key, (CLOSED,), change)

    def end(self, code: str, key: str) -> ClassView:
        """Finish the class: final standings. An open round is dropped."""
        def change(s: Session, c: ClassRoom):
            r = self._round(s, c)
            if r is not None and not r.revealed:
                r.skipped = True
            return OVER, c.current, c.version
        return self._transition(code, key, (LOBBY, OPEN, CLOSED, REVEALED), change)

    def teacher_view(self, code: str, key: str) -> ClassView:
        def fn(s: Session) -> ClassView:
            c = self._teacher_class(s, code, key)
            r = self._round(s, c)
            standings = self._standings(s, c, r)
            return ClassView(
                code=c.code, state=c.state, current=c.current, n_rounds=len(c.sentences),
                masked=r.masked if r else None, answer=r.answer if r else None, n_players=len(standings),
                n_guessed=sum(x.guessed for x in standings), version=c.version, model_name=c.model_name,
                expires_at=c.expires_at, standings=standings, reveal=self._reveal(s, r))
        return self._run(fn)

    def guesses_csv(self, code: str, key: str) -> str:
        """Every guess of the class as CSV (cells that a spreadsheet would run as formulas are neutralised)."""
        def fn(s: Session) -> str:
            c = self._teacher_class(s, code, key)
            rows = s.execute(select(Round.number, Round.source, Player.nickname, Guess.word, Guess.rank, Guess.prob,
                                    Guess.points, Guess.is_answer, Round.revealed)
                             .join(Guess, Guess.round_id == Round.id).join(Player, Player.id == Guess.player_id)
                             .where(Round.class_id == c.id).order_by(Round.number, Guess.created_at)).all()
            return to_csv(CSV_HEADER, [(n, src, nick, w, rank, f"{p:.6g}", pts, "yes" if ans else "no",
                                        "yes" if rev else "no") for n, src, nick, w, rank, p, pts, ans, rev in rows])
        return self._run(fn)

    # --- students ---------------------------------------------------------------------------------------------
    def join(self, code: str, nickname: str) -> PlayerLink:
        """Join a class with a nickname (unique in the class, case-insensitive); returns the player's token."""
        name, name_key = clean_nickname(nickname)
        token = new_secret()

        def fn(s: Session) -> PlayerLink:
            c = self._class(s, code)
            if c.state == OVER:
                raise ClassError("This class has finished; ask your teacher for the new code.")
            s.add(Player(class_id=c.id, nickname=name, nickname_key=name_key, token_hash=digest(token),
                         joined_at=_now()))
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                raise ClassError("Someone in this class already has that nickname; pick another.") from None
            return PlayerLink(code=c.code, token=token, nickname=name)
        return self._run(fn)

    def submit_guess(self, code: str, token: str, word: str, lm: LoadedModel) -> MyGuess:
        """One guess per player per round, while the round is open; scored now, counted at the reveal."""
        def read(s: Session):
            c = self._class(s, code)
            p = self._player(s, c, token)
            r = self._round(s, c)
            if c.state != OPEN or r is None:
                raise ClassError("Guessing is closed for this round." if c.state in (CLOSED, REVEALED)
                                 else "No round is open right now; wait for your teacher.")
            return c.id, p.id, r.id, r.number, r.source
        class_id, player_id, round_id, number, source = self._run(read)
        g = scoring.score(lm, source, word)  # the model runs outside any transaction

        def write(s: Session) -> MyGuess:
            s.add(Guess(round_id=round_id, player_id=player_id, word=g.word, word_key=g.word_key, rank=g.rank,
                        prob=g.prob, points=g.points, is_answer=g.is_answer, created_at=_now()))
            try:
                s.flush()
            except IntegrityError:
                s.rollback()
                raise ClassError("You already guessed in this round.") from None
            # The round must still be open now: this row update waits for a concurrent close and then fails.
            still_open = s.execute(update(ClassRoom).where(ClassRoom.id == class_id, ClassRoom.state == OPEN,
                                                           ClassRoom.current == number)
                                   .values(state=OPEN)).rowcount
            if still_open != 1:
                s.rollback()
                raise ClassError("Guessing is closed for this round.")
            s.commit()
            return MyGuess(word=g.word, points=None, rank=None)
        return self._run(write)

    def student_view(self, code: str, token: str) -> StudentView:
        def fn(s: Session) -> StudentView:
            c = self._class(s, code)
            p = self._player(s, c, token)
            r = self._round(s, c)
            standings = self._standings(s, c, r)
            mine = next((x for x in standings if x.nickname == p.nickname), None)
            shown = r is not None and r.revealed
            my_guess = None
            if r is not None:
                g = s.scalars(select(Guess).where(Guess.round_id == r.id, Guess.player_id == p.id)).first()
                if g is not None:
                    my_guess = MyGuess(word=g.word, points=g.points if shown else None, rank=g.rank if shown else None)
            return StudentView(
                code=c.code, nickname=p.nickname, state=c.state, current=c.current, n_rounds=len(c.sentences),
                masked=r.masked if r is not None and not r.skipped else None, my_guess=my_guess,
                my_score=mine.score if mine else 0, my_rank=mine.rank if mine else None, n_players=len(standings),
                n_guessed=sum(x.guessed for x in standings), version=c.version, model_name=c.model_name,
                standings=standings, reveal=self._reveal(s, r) if shown else None)
        return self._run(fn)

    def pulse(self, code: str) -> Pulse:
        """State, round, version and counts of a class (no key needed: nothing secret in it)."""
        def fn(s: Session) -> Pulse:
            c = self._class(s, code)
            r = self._round(s, c)
            players = s.scalar(select(func.count()).select_from(Player).where(Player.class_id == c.id))
            guessed = s.scalar(select(func.count()).select_from(Guess).where(Guess.round_id == r.id)) if r else 0
            return Pulse(state=c.state, current=c.current, version=c.version, n_players=int(players or 0),
                         n_guessed=int(guessed or 0))
        return self._run(fn)

    # --- shared reads -----------------------------------------------------------------------------------------
    @staticmethod
    def _standings(s: Session, c: ClassRoom, r: Round | None) -> list[Standing]:
        counted = case(((Round.revealed.is_(True)) & (Round.skipped.is_(False)), Guess.points), else_=0)
        rows = s.execute(select(Player.id, Player.nickname, func.coalesce(func.sum(counted), 0))
                         .outerjoin(Guess, Guess.player_id == Player.id).outerjoin(Round, Round.id == Guess.round_id)
                         .where(Player.class_id == c.id).group_by(Player.id, Player.nickname, Player.joined_at)
                         .order_by(func.coalesce(func.sum(counted), 0).desc(), Player.joined_at, Player.id)).all()
        guessed = set(s.scalars(select(Guess.player_id).where(Guess.round_id == r.id))) if r is not None else set()
        out, rank, last = [], 0, None
        for i, (pid, nick, score) in enumerate(rows, 1):
            if score != last:
                rank, last = i, score
            out.append(Standing(rank=rank, nickname=nick, score=int(score), guessed=pid in guessed))
        return out

    @staticmethod
    def _reveal(s: Session, r: Round | None) -> Reveal | None:
        if r is None or not r.revealed:
            return None
        rows = s.execute(select(Guess.word_key, func.count(), func.max(Guess.points), func.min(Guess.rank))
                         .where(Guess.round_id == r.id).group_by(Guess.word_key)
                         .order_by(func.count().desc(), func.min(Guess.rank), Guess.word_key)).all()
        return Reveal(number=r.number, masked=r.masked, answer=r.answer, bert_top=[(t, float(p)) for t, p in r.bert_top],
                      answer_rank=r.answer_rank, answer_prob=r.answer_prob,
                      words=[WordCount(word=w, count=int(n), points=int(pts), rank=int(rk)) for w, n, pts, rk in rows])


def _state_words(state: str) -> str:
    return {LOBBY: "in the lobby", OPEN: "taking guesses", CLOSED: "closed for guesses",
            REVEALED: "showing the answer", OVER: "over"}.get(state, state)


def _unavailable(url: str, e: Exception) -> str:
    where = url.split("@")[-1]  # never show a password
    return (f"The class database ({where}) cannot be used right now: {str(e).splitlines()[0][:200]}. "
            "Class games are off until it works again (check that the folder is writable, or set BERT_LAB_DB); "
            "the single-player game and every other page still work.")
