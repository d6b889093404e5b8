"""The class game's logic against a temp SQLite database: join, guess, close, reveal, scores, hostile names,
keys and tokens, restart, expiry and a locked or unwritable database."""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import threading

import pytest

from bert_core import game, load_model
from classroom import (CLOSED, LOBBY, OPEN, OVER, REVEALED, ClassError, ClassStore, ClassUnavailable, NotAllowed)
from classroom.rules import CODE_ALPHABET, clean_nickname, safe_cell
from classroom.settings import database_url

SENTENCES = ["The {cat} sat on the mat.", "Paris is the capital of {france}.", "The {dog} ate my food."]


@pytest.fixture(scope="module")
def lm(tiny_mlm_dir):
    return load_model(str(tiny_mlm_dir), device="cpu")


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'class.db'}"


@pytest.fixture
def store(db_url) -> ClassStore:
    return ClassStore.from_url(db_url)


def started(store, lm):
    t = store.create_class(SENTENCES, "tiny")
    return t, store.open_next(t.code, t.key, lm)


def test_join_code_has_no_look_alikes_and_sqlite_runs_in_wal(store, db_url):
    t = store.create_class(SENTENCES, "tiny")
    assert 5 <= len(t.code) <= 6 and set(t.code) <= set(CODE_ALPHABET)
    assert not set("0O1IL2Z5S8B") & set(CODE_ALPHABET)
    with store.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    # a student may type it in lower case with a space
    p = store.join(t.code.lower()[:3] + " " + t.code.lower()[3:], "Ann")
    assert p.code == t.code


def test_a_round_join_guess_close_reveal_and_scores_equal_the_games_points(store, lm):
    t = store.create_class(SENTENCES, "tiny")
    assert store.teacher_view(t.code, t.key).state == LOBBY
    ann, bob, cy = (store.join(t.code, n) for n in ("Ann", "Bob", "Cy"))
    v = store.open_next(t.code, t.key, lm)
    assert (v.state, v.current, v.n_rounds, v.masked) == (OPEN, 1, 3, "The [MASK] sat on the mat.")
    item = game.parse_game_sentence(SENTENCES[0])
    expect = {w: game.score_guess(lm, item, w) for w in ("cat", "dog", "mat")}
    store.submit_guess(t.code, ann.token, "cat", lm)
    store.submit_guess(t.code, bob.token, " DOG ", lm)
    assert store.pulse(t.code).n_guessed == 2
    sv = store.student_view(t.code, ann.token)
    assert sv.my_guess.word == "cat" and sv.my_guess.points is None  # no points before the reveal
    assert sv.reveal is None and "cat" not in repr(sv).replace("word='cat'", "")  # the answer is nowhere else
    assert [(s.nickname, s.score, s.guessed) for s in sv.standings] == [("Ann", 0, True), ("Bob", 0, True),
                                                                         ("Cy", 0, False)]
    store.close(t.code, t.key)
    with pytest.raises(ClassError, match="closed"):
        store.submit_guess(t.code, cy.token, "mat", lm)
    v = store.reveal(t.code, t.key)
    assert v.state == REVEALED
    scores = {s.nickname: s.score for s in v.standings}
    assert scores == {"Ann": expect["cat"].points, "Bob": expect["dog"].points, "Cy": 0}
    assert expect["cat"].points == game.points_for(expect["cat"].guess.rank, True)  # the original word's bonus
    r = v.reveal
    assert sorted((w.word, w.count, w.points, w.rank) for w in r.words) == sorted(
        (w, 1, expect[w].points, expect[w].guess.rank) for w in ("cat", "dog"))
    assert r.answer == "cat" and r.answer_rank == expect["cat"].answer.rank
    assert [tok for tok, _ in r.bert_top] == [tok for tok, _ in game.score_guess(lm, item, "cat").top]
    sv = store.student_view(t.code, bob.token)
    assert sv.reveal == r and sv.my_guess.points == expect["dog"].points and sv.my_score == expect["dog"].points


def test_one_guess_per_player_per_round_and_points_add_up_over_rounds(store, lm):
    t, _ = started(store, lm)
    ann = store.join(t.code, "Ann")
    store.submit_guess(t.code, ann.token, "cat", lm)
    with pytest.raises(ClassError, match="already guessed"):
        store.submit_guess(t.code, ann.token, "dog", lm)
    store.close(t.code, t.key)
    store.reveal(t.code, t.key)
    store.open_next(t.code, t.key, lm)
    store.submit_guess(t.code, ann.token, "paris", lm)  # a new round takes a new guess
    store.close(t.code, t.key)
    v = store.reveal(t.code, t.key)
    total = (game.score_guess(lm, game.parse_game_sentence(SENTENCES[0]), "cat").points
             + game.score_guess(lm, game.parse_game_sentence(SENTENCES[1]), "paris").points)
    assert v.standings[0].score == total


def test_bad_guesses_get_the_games_message_and_do_not_use_up_the_turn(store, lm):
    t, _ = started(store, lm)
    ann = store.join(t.code, "Ann")
    for bad, msg in (("", "empty"), ("two words", "single word"), ("x" * 41, "at most 40")):
        with pytest.raises(ClassError, match=msg):
            store.submit_guess(t.code, ann.token, bad, lm)
    store.submit_guess(t.code, ann.token, "cat", lm)


def test_skip_and_end(store, lm):
    t, _ = started(store, lm)
    ann = store.join(t.code, "Ann")
    store.submit_guess(t.code, ann.token, "cat", lm)
    v = store.skip(t.code, t.key, lm)
    assert (v.state, v.current) == (OPEN, 2)
    store.close(t.code, t.key)
    store.reveal(t.code, t.key)
    assert store.teacher_view(t.code, t.key).standings[0].score == 0  # the skipped round does not count
    v = store.end(t.code, t.key)
    assert v.state == OVER
    with pytest.raises(ClassError, match="over"):
        store.open_next(t.code, t.key, lm)
    with pytest.raises(ClassError, match="finished"):
        store.join(t.code, "Late")


def test_after_the_last_round_the_class_is_over(store, lm):
    t = store.create_class(SENTENCES[:1], "tiny")
    store.open_next(t.code, t.key, lm)
    store.close(t.code, t.key)
    store.reveal(t.code, t.key)
    assert store.open_next(t.code, t.key, lm).state == OVER


def test_transitions_follow_the_state_machine(store, lm):
    t = store.create_class(SENTENCES, "tiny")
    for action in (store.close, store.reveal):
        with pytest.raises(ClassError, match="not possible"):
            action(t.code, t.key)
    store.open_next(t.code, t.key, lm)
    with pytest.raises(ClassError, match="not possible"):
        store.reveal(t.code, t.key)  # close first
    with pytest.raises(ClassError, match="not possible"):
        store.open_next(t.code, t.key, lm)


def test_a_student_token_or_a_wrong_key_cannot_run_the_class(store, lm):
    t = store.create_class(SENTENCES, "tiny")
    ann = store.join(t.code, "Ann")
    for key in (ann.token, "", t.key + "x", t.key[:-1]):
        with pytest.raises(NotAllowed):
            store.open_next(t.code, key, lm)
        for action in (store.close, store.reveal, store.end, store.teacher_view, store.guesses_csv):
            with pytest.raises(NotAllowed):
                action(t.code, key)
        with pytest.raises(NotAllowed):
            store.skip(t.code, key, lm)
    other = store.create_class(SENTENCES, "tiny")
    with pytest.raises(NotAllowed):  # one class's key does not open another's
        store.close(t.code, other.key)
    store.open_next(t.code, t.key, lm)
    with pytest.raises(NotAllowed):  # nor does a player's token of another class guess here
        store.submit_guess(t.code, store.join(other.code, "Bo").token, "cat", lm)
    assert store.teacher_view(t.code, t.key).state == OPEN
    # the database keeps only digests of keys and tokens
    with store.engine.connect() as c:
        dump = " ".join(str(r) for tbl in ("classes", "players") for r in c.exec_driver_sql(f"SELECT * FROM {tbl}"))
    assert t.key not in dump and ann.token not in dump


@pytest.mark.parametrize("name, shown", [
    ("<script>alert(1)</script>", "<script>alert(1)</script>"[:24]),
    ("<b>bold</b>", "<b>bold</b>"),
    ("  Ann   Lee  ", "Ann Lee"),
    ("🦄 unicorn", "🦄 unicorn"),
    ("👩‍🔬", "👩‍🔬"),  # a zero-width joiner inside an emoji is fine
    ("=HYPERLINK(\"x\")", "=HYPERLINK(\"x\")"),
])
def test_hostile_names_are_stored_as_typed(store, name, shown):
    t = store.create_class(SENTENCES, "tiny")
    if len(" ".join(name.split())) > 24:
        with pytest.raises(ClassError, match="at most 24"):
            store.join(t.code, name)
        return
    p = store.join(t.code, name)
    assert p.nickname == shown
    assert store.teacher_view(t.code, t.key).standings[0].nickname == shown


@pytest.mark.parametrize("name, msg", [("", "Pick a nickname"), ("   ", "Pick a nickname"), ("x" * 1000, "at most 24"),
                                       ("bell\x07", "control"), ("a\u202eb", "invisible"), ("zero\u200bwidth", "invisible"),
                                       ("new\nline", None)])
def test_empty_long_and_invisible_names_are_refused(store, name, msg):
    t = store.create_class(SENTENCES, "tiny")
    if msg is None:  # whitespace, newlines included, collapses to one space
        assert store.join(t.code, name).nickname == "new line"
        return
    with pytest.raises(ClassError, match=msg):
        store.join(t.code, name)
    assert store.teacher_view(t.code, t.key).n_players == 0


def test_nicknames_are_unique_per_class_ignoring_case(store):
    t = store.create_class(SENTENCES, "tiny")
    store.join(t.code, "Ann")
    for dup in ("Ann", "ann", " ANN "):
        with pytest.raises(ClassError, match="already has that nickname"):
            store.join(t.code, dup)
    store.join(store.create_class(SENTENCES, "tiny").code, "Ann")  # another class is fine
    assert clean_nickname("｡Ann")[0] != "Ann"  # no over-eager folding of other characters


def test_a_restart_keeps_everything(db_url, lm):
    s1 = ClassStore.from_url(db_url)
    t, _ = started(s1, lm)
    ann = s1.join(t.code, "Ann")
    s1.submit_guess(t.code, ann.token, "cat", lm)
    s1.close(t.code, t.key)
    before = s1.reveal(t.code, t.key)
    s1.engine.dispose()
    s2 = ClassStore.from_url(db_url)  # a new engine on the same file: a restarted server
    assert s2.teacher_view(t.code, t.key) == before
    sv = s2.student_view(t.code, ann.token)  # the student's token still rejoins, with the score
    assert (sv.nickname, sv.my_score) == ("Ann", before.standings[0].score)
    s2.open_next(t.code, t.key, lm)
    s2.submit_guess(t.code, ann.token, "paris", lm)


def test_concurrent_guesses_all_land_once(store, lm):
    t, _ = started(store, lm)
    players = [store.join(t.code, f"p{i}") for i in range(12)]
    errors = []

    def go(p):
        for _ in range(2):  # the second try must be refused
            try:
                store.submit_guess(t.code, p.token, "cat", lm)
            except ClassError as e:
                errors.append(str(e))
    threads = [threading.Thread(target=go, args=(p,)) for p in players]
    [th.start() for th in threads]
    [th.join() for th in threads]
    assert store.pulse(t.code).n_guessed == 12
    assert errors == ["You already guessed in this round."] * 12


def test_expired_classes_are_gone(store, lm):
    old = store.create_class(SENTENCES, "tiny", hours=-1)
    with pytest.raises(ClassError, match="no class with this code"):
        store.join(old.code, "Ann")
    store.create_class(SENTENCES, "tiny")  # starting a class deletes expired ones
    with store.engine.connect() as c:
        codes = [r[0] for r in c.exec_driver_sql("SELECT code FROM classes")]
    assert old.code not in codes and len(codes) == 1


def test_csv_holds_every_guess_and_is_formula_safe(store, lm):
    t, _ = started(store, lm)
    evil = store.join(t.code, "=cmd|' /C calc'!A0")
    plain = store.join(t.code, "<b>Bo</b>")
    store.submit_guess(t.code, evil.token, "cat", lm)
    store.submit_guess(t.code, plain.token, "dog", lm)
    rows = list(csv.reader(io.StringIO(store.guesses_csv(t.code, t.key))))
    assert rows[0][:4] == ["round", "sentence", "nickname", "guess"]
    assert [(r[0], r[2], r[3]) for r in rows[1:]] == [("1", "'=cmd|' /C calc'!A0", "cat"), ("1", "<b>Bo</b>", "dog")]
    assert rows[1][1] == SENTENCES[0] and rows[1][-1] == "no"  # not revealed yet: not counted
    assert [safe_cell(x) for x in ("+1", "-1", "@x", "\tx", "ok")] == ["'+1", "'-1", "'@x", "'\tx", "ok"]


def test_saved_sets_have_short_ids(store):
    sid = store.save_set(SENTENCES + ["", "no braces here at all"])
    assert len(sid) == 8 and store.load_set(sid.lower()) == SENTENCES + ["no braces here at {all}"]
    with pytest.raises(ClassError, match="No saved sentence set"):
        store.load_set("AAAAAAAA")
    with pytest.raises(ClassError, match="No usable sentences"):
        store.save_set(["", "{two} {words}"])


def test_an_unwritable_folder_gives_a_clear_message(tmp_path):
    if os.geteuid() == 0:
        bad = "sqlite:////proc/no-such-dir/class.db"  # root can write anywhere on disk; /proc it cannot
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        bad = f"sqlite:///{tmp_path / 'ro' / 'sub' / 'class.db'}"
    with pytest.raises(ClassUnavailable, match="cannot be used right now.*single-player game"):
        ClassStore.from_url(bad)


def test_a_locked_database_gives_a_clear_message(db_url, tmp_path):
    store = ClassStore.from_url(db_url)
    t = store.create_class(SENTENCES, "tiny")
    store.engine.dispose()
    locked = ClassStore.from_url(db_url)
    with locked.engine.connect() as c:  # shorten the wait for the lock for this test
        pass
    holder = sqlite3.connect(str(tmp_path / "class.db"))
    holder.execute("BEGIN EXCLUSIVE")
    try:
        from sqlalchemy import event

        event.listen(locked.engine, "connect", lambda conn, _r: conn.execute("PRAGMA busy_timeout=200"))
        locked.engine.dispose()
        with pytest.raises(ClassUnavailable, match="locked"):
            locked.join(t.code, "Ann")
    finally:
        holder.rollback()
        holder.close()
    assert locked.join(t.code, "Ann").nickname == "Ann"


def test_default_database_is_a_file_in_the_users_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("BERT_LAB_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert database_url() == f"sqlite:///{tmp_path}/bert-lab/classroom.db"
    monkeypatch.setenv("BERT_LAB_DB", "postgresql+psycopg://u@h/db")
    assert database_url() == "postgresql+psycopg://u@h/db"


def test_join_address_is_never_an_unreachable_localhost():
    from classroom.address import join_address

    a = join_address("http://localhost:8501/classroom?class=X&key=Y", "ABC123", bind_address="", port=8501,
                     network_ip="192.168.1.20")
    assert (a.url, a.reachable) == ("http://192.168.1.20:8501/join?class=ABC123", True) and "localhost" in a.note
    a = join_address("http://localhost:8501/classroom", "ABC123", bind_address="127.0.0.1", port=8501,
                     network_ip="192.168.1.20")
    assert a.url == "http://localhost:8501/join?class=ABC123" and not a.reachable and "Only this computer" in a.note
    a = join_address("https://lab.school.example/bert/classroom", "ABC123")  # behind a proxy, under a path
    assert (a.url, a.reachable, a.note) == ("https://lab.school.example/bert/join?class=ABC123", True, None)
    a = join_address("http://localhost:8501/classroom", "ABC123", public_url="https://bert.example/")
    assert a.url == "https://bert.example/join?class=ABC123" and a.reachable


@pytest.mark.parametrize("source", SENTENCES + ["The {cats} sat on the mat.", "I like {xyzzy} a lot."])
def test_class_scores_equal_the_single_player_scores(lm, source):
    """The class's fast path (one pass per round) gives the game's own numbers, for one- and several-piece words."""
    from classroom.scoring import score

    item = game.parse_game_sentence(source)
    for word in ("cat", "cats", "dog", "Paris", "the", "france", "xyz", "red", "a"):
        want = game.score_guess(lm, item, word)
        got = score(lm, source, word)
        assert (got.rank, got.points, got.is_answer) == (want.guess.rank, want.points, want.is_answer), word
        assert got.prob == pytest.approx(want.guess.prob, rel=1e-5)


def test_a_file_that_is_not_a_database_gives_a_clear_message(tmp_path):
    bad = tmp_path / "class.db"
    bad.write_bytes(b"this is not an SQLite file" * 100)
    with pytest.raises(ClassUnavailable, match="cannot be used right now"):
        ClassStore.from_url(f"sqlite:///{bad}")
