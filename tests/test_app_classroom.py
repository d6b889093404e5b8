"""AppTest for the class game: one teacher and two students (three AppTest sessions) share one database and play
a round; the leaderboard values and the reveal chart's data are asserted, and a student never gets the answer
before the reveal."""

from __future__ import annotations

import pytest

from apptest_support import charts, errors, new_app
from apptest_support import plotly_array as arr
from bert_core import game, load_model

SENTENCES = "The {cat} sat on the mat.\nParis is the capital of {france}."


@pytest.fixture
def db(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'class.db'}"
    monkeypatch.setenv("BERT_LAB_DB", url)
    return url


def teacher(model) -> tuple:
    t = new_app(str(model))
    t.run()
    t.switch_page("app_pages/classroom.py")
    t.run()
    t.radio(key="cls_source").set_value("My own sentences").run()
    t.text_area(key="cls_own").set_value(SENTENCES).run()
    t.button(key="cls_start").click().run()
    assert not errors(t), errors(t)
    return t, t.query_params["class"], t.query_params["key"]


def student(code: str, nickname: str):
    s = new_app()
    s.query_params["class"] = code
    s.switch_page("app_pages/join.py")
    s.run()
    s.text_input[1].input(nickname)
    s.button[0].click().run()
    assert not errors(s), errors(s)
    return s


def metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def board(at) -> list[tuple]:
    """The leaderboard's rows (the page's only table)."""
    (table,) = at.table
    return [tuple(r) for r in table.value.itertuples(index=False)]


def test_a_teacher_and_two_students_play_a_round(tiny_mlm_dir, db):
    lm = load_model(str(tiny_mlm_dir), device="cpu")
    t, code, key = teacher(tiny_mlm_dir)
    assert len(code) == 6 and len(key) >= 30
    ann, bob = student(code, "Ann"), student(code, "<b>Bob</b>")
    # a joined student's navigation is the class game alone, and the sidebar has no model picker
    assert [p for p in ann.main.markdown if "Wait for your teacher" in str(p.value)] or ann.info
    assert "Ann" in ann.caption[0].value and "0 points" in ann.caption[0].value
    t.run()
    assert metrics(t)["Joined"] == "2"
    t.button(key="cls_open").click().run()
    assert metrics(t)["Round"] == "1 of 2" and metrics(t)["Now"] == "guessing"
    for s, word in ((ann, "cat"), (bob, "dog")):
        s.run()
        assert any("\\[MASK\\]" in m.value and "sat on the mat" in m.value for m in s.markdown)
        assert not any("cat" in m.value for m in s.markdown)  # the answer is not on the page
        s.text_input(key="cls_guess").input(word)
        s.button[0].click().run()
        assert not errors(s), errors(s)
        assert any(f"Your guess **{word}** is in" in x.value for x in s.success)
    t.run()
    assert metrics(t)["Guessed this round"] == "2 of 2"
    assert board(t) == [(1, "Ann", 0, "✓"), (1, "<b>Bob</b>", 0, "✓")]
    t.button(key="cls_close").click().run()
    ann.run()
    assert not charts(ann)  # closed, not revealed: no chart, no answer
    t.button(key="cls_reveal").click().run()
    item = game.parse_game_sentence("The {cat} sat on the mat.")
    cat, dog = game.score_guess(lm, item, "cat"), game.score_guess(lm, item, "dog")
    expected = sorted([("Ann", cat.points), ("<b>Bob</b>", dog.points)], key=lambda x: -x[1])
    assert [(n, p) for _, n, p in board(t)] == expected
    spec = charts(t)[0]
    cls_bar, bert_bar = spec["data"]
    assert sorted(zip(cls_bar["customdata"], arr(cls_bar["x"]).tolist())) == [("cat", 1), ("dog", 1)]
    assert sorted(cls_bar["text"]) == sorted([f"1 · +{cat.points}", f"1 · +{dog.points}"])
    assert bert_bar["customdata"] == [tok for tok, _ in cat.top]
    assert arr(bert_bar["x"]).tolist() == pytest.approx([p for _, p in cat.top], rel=1e-5)
    ann.run()
    assert charts(ann)[0]["data"][1]["customdata"] == bert_bar["customdata"]  # every screen shows the same reveal
    assert any(f"+{cat.points} points" in x.value for x in ann.success)
    assert f"{cat.points} points" in ann.caption[0].value
    bob.run()
    assert [(n, p) for _, n, p in board(bob)] == expected


def test_students_cannot_reach_teacher_controls(tiny_mlm_dir, db):
    t, code, key = teacher(tiny_mlm_dir)
    ann = student(code, "Ann")
    ann.run()
    with pytest.raises(ValueError, match="Known pages: \\['[^']*join.py'\\]"):
        ann.switch_page("app_pages/classroom.py")  # the joined student's app has no other page
    for forged in (ann.query_params["p"], "guessed-key", key[:-2]):  # their own token, a guess, a near miss
        thief = new_app()
        thief.query_params.update({"class": code, "key": forged})
        thief.run()
        thief.switch_page("app_pages/classroom.py")
        thief.run()
        assert any("Only the teacher" in e.value for e in thief.error)
        assert not [b for b in thief.button if b.key in ("cls_open", "cls_close", "cls_reveal", "cls_end")]
    t.run()
    assert metrics(t)["Now"] == "joining"


def test_a_reload_rejoins_with_the_same_name(tiny_mlm_dir, db):
    t, code, key = teacher(tiny_mlm_dir)
    ann = student(code, "Ann")
    again = new_app()  # a fresh session with the address the student had
    again.query_params.update({"class": code, "p": ann.query_params["p"]})
    again.run()
    assert "Ann" in again.caption[0].value
    assert not again.text_input  # no join form again
    s = new_app()
    s.query_params["class"] = code
    s.switch_page("app_pages/join.py")
    s.run()
    s.text_input[1].input("ANN")
    s.button[0].click().run()
    assert any("already has that nickname" in e.value for e in s.error)
