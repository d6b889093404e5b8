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


# --- the single-player game's short links, and running its set as a class ------------------------------------------
OWN = ["the {cat} sat on the mat .", "the king ate the {bread} ."]


def playground(model, **params):
    at = new_app(str(model))
    at.session_state["pg_tab"] = "Guessing game"
    at.query_params.update(params)
    at.run()
    at.switch_page("app_pages/playground.py")
    at.run()
    assert not errors(at), errors(at)
    return at


def share_code(at) -> str:
    (code,) = [c.value for c in at.code if "playground?" in c.value]
    return code


def test_the_games_share_link_is_short_and_plays_the_set(tiny_mlm_dir, db, monkeypatch):
    from classroom import ClassStore

    monkeypatch.setenv("BERT_LAB_PUBLIC_URL", "https://bert.school.example/")
    t = playground(tiny_mlm_dir)
    t.text_area(key="pg_game_own").set_value("\n".join(OWN)).run()
    assert not [c for c in t.code if "playground?" in c.value]  # nothing is saved until the teacher asks
    t.button(key="pg_game_share").click().run()
    link = share_code(t)
    sid = link.rsplit("set=", 1)[1].split("&")[0]
    assert link.startswith(f"https://bert.school.example/playground?set={sid}&model=")  # the public address
    assert "localhost" not in link and "game=" not in link and len(sid) <= 10
    assert ClassStore.from_url(db).load_set(sid) == OWN
    t.run()
    assert share_code(t) == link  # saved once: a rerun gives the same id
    (run_as_class,) = t.get("page_link")
    assert run_as_class.proto.page == "classroom" and "set=" + sid in run_as_class.proto.query_string
    s = playground(tiny_mlm_dir, set=sid)  # a student opens the short link
    assert {m.label: m.value for m in s.metric}["Round"] == "1 of 2"
    assert any("shared set of 2 sentences" in c.value for c in s.caption)
    assert any(m.value.startswith("####") and "sat on the mat" in m.value for m in s.markdown)
    wrong = playground(tiny_mlm_dir, set="ZZZZZZZZ")
    assert any("No saved sentence set has this id" in e.value for e in wrong.error)


def test_run_as_a_class_game_preselects_the_saved_set(tiny_mlm_dir, db):
    from classroom import ClassStore

    store = ClassStore.from_url(db)
    sid = store.save_set(OWN)
    t = new_app(str(tiny_mlm_dir))
    t.query_params["set"] = sid
    t.run()
    t.switch_page("app_pages/classroom.py")
    t.run()
    assert t.radio(key="cls_source").value == "A saved set" and t.text_input(key="cls_set_id").value == sid
    assert any("2 sentences, first: the cat sat on the mat" in c.value for c in t.caption), [c.value for c in t.caption]
    t.button(key="cls_start").click().run()
    assert "set" not in t.query_params
    v = store.teacher_view(t.query_params["class"], t.query_params["key"])
    assert v.n_rounds == 2
    t.button(key="cls_open").click().run()
    assert "sat on the mat" in store.teacher_view(v.code, t.query_params["key"]).masked


def test_without_a_database_the_long_link_still_works(tiny_mlm_dir, tmp_path, monkeypatch):
    bad = tmp_path / "class.db"
    bad.write_bytes(b"this is not an SQLite file" * 100)
    monkeypatch.setenv("BERT_LAB_DB", f"sqlite:///{bad}")
    t = playground(tiny_mlm_dir)
    t.text_area(key="pg_game_own").set_value("\n".join(OWN)).run()
    t.button(key="pg_game_share").click().run()
    link = share_code(t)
    assert f"playground?game={game.encode_set(OWN)}" in link and "set=" not in link
    assert not t.get("page_link") or all(p.proto.page != "classroom" for p in t.get("page_link"))
    assert any("long link" in c.value for c in t.caption)
    s = playground(tiny_mlm_dir, game=game.encode_set(OWN))
    assert {m.label: m.value for m in s.metric}["Round"] == "1 of 2"
