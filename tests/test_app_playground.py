"""AppTest for the masked-word playground: predictions, multi-mask fills, logit lens, ablation, the guessing game
and bad input, on tiny random checkpoints (asserting on the numbers the page shows)."""

from __future__ import annotations

import urllib.parse

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from apptest_support import APP, charts
from apptest_support import open_page as open_app_page
from apptest_support import plotly_array as arr
from bert_core import game, lens, load_model, mlm
from conftest import make_checkpoint

GAME = "Guessing game"


def open_page(folder, **state) -> AppTest:
    at = open_app_page("app_pages/playground.py", folder, **state)
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_link(folder=None, **params) -> AppTest:
    """A fresh session opens the playground through a link with these query parameters (?game=…, ?model=…)."""
    at = AppTest.from_file(APP, default_timeout=60)
    if folder is not None:
        at.session_state["model_name"] = str(folder)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    at.switch_page("app_pages/playground.py").run()
    return at


@pytest.fixture(autouse=True)
def class_db(tmp_path, monkeypatch):
    """The game's short links save sets in the class database: a temp one, never the user's."""
    url = f"sqlite:///{tmp_path / 'class.db'}"
    monkeypatch.setenv("BERT_LAB_DB", url)
    return url


@pytest.fixture(scope="module")
def lm(tiny_mlm_dir):
    return load_model(str(tiny_mlm_dir), device="cpu")


def test_topk_chart_shows_the_models_numbers(tiny_mlm_dir, lm):
    at = open_page(tiny_mlm_dir)
    text = at.text_area(key="pg_text").value
    assert "[MASK]" in text
    pred = mlm.predict(lm, mlm.prepare(lm, text), 10)
    bar = charts(at)[0]["data"][0]
    np.testing.assert_allclose(arr(bar["x"]), pred.top_probs[0], rtol=1e-5)
    assert bar["customdata"] == pred.top_tokens[0]
    at.slider(key="pg_topk").set_value(5).run()
    assert len(arr(charts(at)[0]["data"][0]["x"])) == 5


def test_lowercase_mask_and_candidates(tiny_mlm_dir, lm):
    at = open_page(tiny_mlm_dir, pg_text="the dog sat on the [mask] .")
    assert not at.warning and not at.error
    at.text_input(key="pg_cands").input("mat, dogs, two words, <b>x</b>").run()
    bar = charts(at)[1]["data"][0]
    scores = mlm.score_candidates(lm, mlm.prepare(lm, "the dog sat on the [MASK] ."), ["mat", "dogs"])
    expect = sorted(((s.prob, s.word) for s in scores), reverse=True)
    np.testing.assert_allclose(arr(bar["x"]), [p for p, _ in expect], rtol=1e-5)
    warnings = [w.value for w in at.warning]
    assert any("two words" in w and "single word" in w for w in warnings)
    assert any("\\<b\\>x\\</b\\>" in w for w in warnings)  # HTML shown as text, escaped for markdown


def test_no_mask_is_a_hint_not_an_error(tiny_mlm_dir):
    at = open_page(tiny_mlm_dir, pg_text="the cat sat on the mat .")
    assert not at.error and not at.exception
    assert any("no [MASK]" in i.value for i in at.info)
    assert not at.get("plotly_chart")
    at.text_area(key="pg_text").input("   ").run()
    assert any("empty" in i.value for i in at.info) and not at.exception


def test_clicking_a_word_masks_all_its_pieces(tiny_mlm_dir, lm):
    at = open_page(tiny_mlm_dir, pg_text="the dogs played in the house")
    pills = at.button_group[0]
    assert pills.options == ["the", "dogs", "played", "in", "the", "house"]
    pills.set_value([1]).run()
    assert any("**dogs** (2 pieces: dog \\#\\#s)" in c.value for c in at.caption)
    mi = mlm.mask_words(lm, "the dogs played in the house", [1])
    pred = mlm.predict(lm, mi, 10)
    np.testing.assert_allclose(arr(charts(at)[0]["data"][0]["x"]), pred.top_probs[0], rtol=1e-5)
    joint = mlm.joint_fill(lm, mi)
    assert any(m.value.startswith(">") and "played in the house" in m.value for m in at.markdown)
    assert any("Fill order" in c.value for c in at.caption) and len(joint.tokens) == 2
    beam = mlm.beam_fill(lm, mi, 3)
    shown = [m.value for m in at.markdown if "violet-background" in m.value]
    filled = [t for t, is_filled in mlm.render_segments(mi, beam.tokens) if is_filled]
    assert len(shown) == 1 and filled and all(f"[**{t}**]" in shown[0] for t in filled)
    assert any(m.value.startswith("**Beam search**") and f"{np.prod(beam.probs):.1%}"[:3] in m.value
               for m in at.markdown)


def test_twenty_masks_and_a_cut_mask(tiny_mlm_dir):
    at = open_page(tiny_mlm_dir, pg_text=" ".join(["[MASK]"] * 20))
    assert any("20 masks" in i.value for i in at.info)
    assert len(at.dataframe[0].value) == 20
    assert len(at.selectbox(key="pg_pred_mask").options) == 20
    long_text = "[MASK] " + "the cat sat on the mat . " * 90 + " [MASK]"
    at.text_area(key="pg_text").input(long_text).run()
    assert any("BERT reads only the first 512" in w.value and "1 [MASK] after the cut is ignored" in w.value
               for w in at.warning)
    at.text_area(key="pg_text").input("the cat sat on the mat . " * 90 + " [MASK]").run()
    assert any("first 512 tokens" in i.value for i in at.info) and not at.exception


def test_html_in_the_sentence_stays_text(tiny_mlm_dir):
    at = open_page(tiny_mlm_dir, pg_text="<script>alert(1)</script> the [MASK] and the [MASK] .")
    assert not at.exception
    filled = [m.value for m in at.markdown if m.value.startswith(">")]
    assert filled and all("\\<script\\>" in v and "<script>" not in v for v in filled)


def test_logit_lens_and_ablation_views(tiny_dir):
    lm = load_model(str(tiny_dir), device="cpu")
    at = open_page(tiny_dir, pg_text="the king and the [MASK] ate bread .", pg_view="Logit lens: layer by layer")
    lens_fig = charts(at)[0]
    ll = lens.logit_lens(lm, mlm.prepare(lm, "the king and the [MASK] ate bread ."))
    assert lens_fig["data"][0]["x"] == ["emb", "1", "2"] and lens_fig["data"][0]["text"] == ll.top_tokens
    at.text_input(key="pg_lens_word").input("queen").run()
    names = [d.get("name") for d in charts(at)[0]["data"]]
    assert "'queen'" in names

    at.session_state["pg_view"] = "Knock out heads"
    at.run()
    heat = [c for c in charts(at) if c["data"][0]["type"] == "heatmap"][0]
    imp = lens.head_importance(lm, mlm.prepare(lm, "the king and the [MASK] ate bread ."))
    np.testing.assert_allclose(arr(heat["data"][0]["z"]), imp.drop, atol=1e-6)
    assert len(at.dataframe[0].value) == 8
    at.multiselect(key="pg_abl_layers").set_value([1]).run()
    hm = np.ones((2, 4), np.float32)
    hm[0] = 0
    ab = lens.ablate(lm, mlm.prepare(lm, "the king and the [MASK] ate bread ."), hm)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics[f"P('{ab.target}') knocked out"] == f"{ab.p_after:.1%}"
    assert metrics["KL(before ‖ after)"] == f"{ab.kl:.3f} nats"


def test_model_without_mlm_head(tmp_path):
    make_checkpoint(tmp_path, "BertModel", seed=3)
    at = open_page(tmp_path)
    assert any("no masked-language-model head" in w.value for w in at.warning)
    assert not at.get("plotly_chart") and not at.error


# --- the game ---------------------------------------------------------------------------------------------------
def test_game_round_guess_score_next(tiny_mlm_dir, lm):
    at = open_page(tiny_mlm_dir, pg_tab=GAME)
    ss = at.session_state
    item = ss["pg_game"].item
    assert {m.label: m.value for m in at.metric} == {"Round": "1 of 10", "Score": "0"}
    shown = [m.value for m in at.markdown if m.value.startswith("####")]
    words = item.masked.split("[MASK]")[0].split()
    assert len(shown) == 1 and "\\[MASK\\]" in shown[0] and all(w.strip(".,!'") in shown[0] for w in words)

    at.text_input(key="pg_game_guess").input("").run()
    at.button[0].click().run()  # empty guess
    assert any("empty" in w.value for w in at.warning) and ss["pg_game"].score == 0

    at.text_input(key="pg_game_guess").input("<script>alert(1)</script>")
    at.button[0].click().run()
    assert any("\\<script\\>" in w.value and "single word" in w.value for w in at.warning)
    assert ss["pg_game"].result is None

    expect = game.score_guess(lm, item, "dog")
    at.text_input(key="pg_game_guess").input("dog")
    at.button[0].click().run()
    assert not at.exception
    assert ss["pg_game"].score == expect.points
    assert {m.label: m.value for m in at.metric}["Score"] == str(expect.points)
    boxes = [*at.success, *at.info, *at.warning]
    assert any(f"rank {expect.guess.rank:,}" in b.value and f"+{expect.points} points" in b.value for b in boxes)
    top = charts(at)[0]["data"][0]
    assert top["customdata"] == [t for t, _ in expect.top]
    assert ss["pg_game"].history[0].guess == "dog"
    lens = charts(at)[1]  # the reveal's layer-by-layer chart follows the guess and the original word
    names = [d.get("name") for d in lens["data"]]
    assert "'dog'" in names and f"'{item.answer}'" in " ".join(n for n in names if n)

    at.button(key="pg_game_next").click().run()
    assert {m.label: m.value for m in at.metric}["Round"] == "2 of 10"
    assert ss["pg_game"].result is None


def test_shared_link_plays_the_teachers_set(tiny_mlm_dir, lm):
    sents = ["the {cat} sat on the mat .", "the king ate the {bread} ."]
    at = open_link(tiny_mlm_dir, game=game.encode_set(sents))
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Round"] == "1 of 2"
    assert any("shared set of 2 sentences" in c.value for c in at.caption)
    assert any(m.value.startswith("####") and "the :orange-background" in m.value and "sat on the mat" in m.value
               for m in at.markdown)
    for guess in ["cat", "bread"]:  # play the whole set: the original words get the bonus
        at.text_input(key="pg_game_guess").input(guess)
        at.button[0].click().run()
        at.button(key="pg_game_next").click().run()
    total = sum(game.score_guess(lm, game.parse_game_sentence(s), g).points for s, g in zip(sents, ["cat", "bread"]))
    assert any(f"You scored **{total}**" in s.value for s in at.success)
    assert len(at.dataframe[0].value) == 2


def test_history_shows_skips_as_a_dash_and_sentences_without_braces(tiny_mlm_dir, lm):
    sents = ["the {cat} sat on the mat .", "the king ate the {bread} ."]
    at = open_link(tiny_mlm_dir, game=game.encode_set(sents))
    assert any(f"Points come from BERT's rank for your guess: {game.points_rule()}." in m.value for m in at.markdown)
    at.button(key="pg_game_skip").click().run()
    assert {m.label: m.value for m in at.metric} == {"Round": "2 of 2", "Score": "0"}
    at.text_input(key="pg_game_guess").input("bread")
    at.button[0].click().run()
    bread = game.score_guess(lm, game.parse_game_sentence(sents[1]), "bread")
    assert any(f"(including {game.ANSWER_BONUS} for the original word)" in b.value for b in [*at.success, *at.info])
    at.button(key="pg_game_next").click().run()
    table = at.dataframe[0].value
    assert table["sentence"].tolist() == ["the cat sat on the mat .", "the king ate the bread ."]
    assert table.iloc[0][["your guess", "BERT's probability", "rank", "points", "BERT's top word"]].tolist() == \
        ["(skipped)", "–", "–", 0, "–"]
    assert table.iloc[1][["your guess", "rank", "points", "BERT's top word"]].tolist() == \
        ["bread", f"{bread.guess.rank:,}", bread.points, bread.top[0][0]]
    assert any(f"You scored **{bread.points}** of {2 * 120} points" in x.value for x in at.success)
    assert "None" not in table.astype(str).to_numpy().ravel().tolist()
    at.button(key="pg_game_again").click().run()  # the same set again, in the same order, from 0 points
    assert {m.label: m.value for m in at.metric} == {"Round": "1 of 2", "Score": "0"}
    assert at.session_state["pg_game"].item.answer == "cat" and not at.dataframe


def test_damaged_link_and_teacher_panel(tiny_mlm_dir, class_db):
    from classroom import ClassStore

    at = open_link(tiny_mlm_dir, game="not-a-real-code")
    assert any("damaged" in e.value for e in at.error) and not at.exception
    at.text_area(key="pg_game_own").input("The {cat} sat.\n{a} {b}\nThe <b>{dog}</b> ran.").run()
    assert any("line 2" in w.value for w in at.warning)
    at.button(key="pg_game_share").click().run()
    link = at.code[0].value
    sid = link.split("?set=")[1].split("&model=")[0]
    assert ClassStore.from_url(class_db).load_set(sid) == ["The {cat} sat.", "The <b>{dog}</b> ran."]
    at.button(key="pg_game_play_own").click().run()
    assert {m.label: m.value for m in at.metric}["Round"] == "1 of 2"
    assert at.query_params["set"] in ([sid], sid) and "game" not in at.query_params


def test_a_shared_game_link_pins_the_model(tiny_mlm_dir):
    at = open_link(tiny_mlm_dir, game=game.encode_set(["The {dog} ran."]))  # opens the game tab
    at.text_area(key="pg_game_own").input("The {cat} sat.").run()
    at.button(key="pg_game_share").click().run()
    link = at.code[0].value
    sid = link.split("?set=")[1].split("&")[0]
    assert link.endswith("&model=" + urllib.parse.quote(str(tiny_mlm_dir), safe=""))

    pupil = open_link(set=sid, model=str(tiny_mlm_dir))  # a fresh session opens the link: bundled by default …
    assert not pupil.exception
    assert pupil.session_state["model_name"] == str(tiny_mlm_dir)  # … but the link picks the teacher's model
    assert {m.label: m.value for m in pupil.metric}["Round"] == "1 of 1"
    pupil.session_state["model_name"] = "bundled"  # picking another model later sticks
    pupil.run()
    assert pupil.session_state["model_name"] == "bundled"


def test_a_link_to_a_model_that_cannot_load_falls_back_with_a_message():
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["model"] = "/no/such/folder"
    at.run()
    assert not at.exception
    assert at.session_state["model_name"] == "bundled"
    assert any("/no/such/folder" in e.value for e in at.sidebar.error)
