"""The class game's tables (SQLAlchemy 2.0) and the engine: SQLite in WAL mode by default, any URL works.

"One guess per player per round" and "one nickname per class" are unique constraints, so they hold across
threads, processes and replicas, not only in the page that asked.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (JSON, Boolean, Float, ForeignKey, Integer, String, UniqueConstraint, create_engine, event,
                        make_url)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NICK_MAX = 24
CODE_LEN = 6


class Base(DeclarativeBase):
    pass


class SentenceSet(Base):
    """A saved sentence set behind a short id (the class game and the single-player short link)."""

    __tablename__ = "sentence_sets"
    id: Mapped[str] = mapped_column(String(12), primary_key=True)
    sentences: Mapped[list] = mapped_column(JSON)  # sources with {answer}, in order
    created_at: Mapped[float] = mapped_column(Float)


class ClassRoom(Base):
    __tablename__ = "classes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(CODE_LEN), unique=True)
    teacher_key_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the key; the key itself is not stored
    model_name: Mapped[str] = mapped_column(String(500))
    sentences: Mapped[list] = mapped_column(JSON)  # the rounds' sources, in play order
    state: Mapped[str] = mapped_column(String(10), default="lobby")  # lobby, open, closed, revealed, over
    current: Mapped[int] = mapped_column(Integer, default=0)  # round number (1-based); 0 in the lobby
    version: Mapped[int] = mapped_column(Integer, default=0)  # bumped by every teacher action (pages poll it)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    players: Mapped[list[Player]] = relationship(cascade="all, delete-orphan", passive_deletes=True)
    rounds: Mapped[list[Round]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class Player(Base):
    __tablename__ = "players"
    __table_args__ = (UniqueConstraint("class_id", "nickname_key", name="uq_player_nickname"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id", ondelete="CASCADE"), index=True)
    nickname: Mapped[str] = mapped_column(String(4 * NICK_MAX))  # as typed (trimmed); shown only as text
    nickname_key: Mapped[str] = mapped_column(String(4 * NICK_MAX))  # casefolded: "Ann" and "ann" are one name
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    joined_at: Mapped[float] = mapped_column(Float)


class Round(Base):
    __tablename__ = "rounds"
    __table_args__ = (UniqueConstraint("class_id", "number", name="uq_round_number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(400))
    masked: Mapped[str] = mapped_column(String(400))
    answer: Mapped[str] = mapped_column(String(400))
    bert_top: Mapped[list] = mapped_column(JSON)  # [[token, prob], ...] computed once when the round opens
    answer_rank: Mapped[int | None] = mapped_column(Integer, nullable=True)
    answer_prob: Mapped[float | None] = mapped_column(Float, nullable=True)
    revealed: Mapped[bool] = mapped_column(Boolean, default=False)
    skipped: Mapped[bool] = mapped_column(Boolean, default=False)
    opened_at: Mapped[float] = mapped_column(Float)
    guesses: Mapped[list[Guess]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class Guess(Base):
    __tablename__ = "guesses"
    __table_args__ = (UniqueConstraint("round_id", "player_id", name="uq_one_guess_per_round"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"), index=True)
    word: Mapped[str] = mapped_column(String(100))  # as typed (trimmed)
    word_key: Mapped[str] = mapped_column(String(100))  # BERT's spelling (its wordpieces joined): groups the chart
    rank: Mapped[int] = mapped_column(Integer)
    prob: Mapped[float] = mapped_column(Float)
    points: Mapped[int] = mapped_column(Integer)
    is_answer: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[float] = mapped_column(Float)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer; several processes share the file
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")  # wait for a lock instead of failing at once
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the tables created; SQLite files get WAL mode and their folder is created."""
    u = make_url(url)
    kw: dict = {"pool_pre_ping": True}
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kw = {"connect_args": {"timeout": 10, "check_same_thread": False}}
    engine = create_engine(u, **kw)
    if u.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    Base.metadata.create_all(engine)
    return engine
