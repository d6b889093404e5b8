"""AppTest: the "Why did BERT say that?" page, the Why panel on a classifier, and the contextual-embeddings page."""

from __future__ import annotations

import numpy as np
import pytest
from apptest_support import charts, errors, new_app, open_page
from apptest_support import plotly_array as decode
from conftest import make_checkpoint
from streamlit.testing.v1 import AppTest

from bert_core import load_model
from bert_core.embeddings import encode_corpus, nearest_neighbours, occurrences, user_sentences, CORPUS
from bert_core.explain import explain_all

HOSTILE = {
    "html": '<img src=x onerror="alert(1)"><script>alert(2)</script> the [MASK] sat',
    "20 masks": " ".join(["[MASK]"] * 20),
    "700 words": "the cat sat on the [MASK] . " + "words and more words " * 175,
    "emoji": "😀 I love [MASK] 🎉",
}


def bars(at: AppTest) -> dict:
    """The attribution chart (three bar subplots)."""
    return next(c for c in charts(at) if sum(t["type"] == "bar" for t in c["data"]) == 3)


def test_why_page_explains_the_top_guess_with_three_methods(bundled):
    at = open_page("app_pages/why.py", why_text="Paris is the capital of [MASK].")
    assert not errors(at)
    top = bundled.fill_mask("Paris is the capital of [MASK].", top_k=1)[0][0][0]
    assert at.pills(key="why_pick_mask").value == top
    attrs = explain_all(bundled, "Paris is the capital of [MASK].", top)
    spec = bars(at)
    for trace, method in zip(spec["data"], ("ig", "grad_x_input", "rollout")):
        np.testing.assert_allclose(decode(trace["y"]), attrs[method].scores, rtol=1e-4, atol=1e-6)
    table = at.dataframe[1].value  # IG completeness
    assert table.loc["sum of IG scores", "value"] == pytest.approx(table.loc["difference", "value"], rel=0.02)
    agree = at.dataframe[0].value
    assert list(agree.columns) == ["Integrated gradients", "Gradient × input", "Attention rollout"]
    assert any("attention is not explanation" in m.value for m in at.markdown)
    assert at.query_params["why_text"] == "Paris is the capital of [MASK]."
    at.text_input(key="why_word").set_value("france").run()
    assert "france" in " ".join(m.value for m in at.markdown)


@pytest.mark.parametrize("case", list(HOSTILE))
def test_why_page_hostile_text(case):
    at = open_page("app_pages/why.py", why_text=HOSTILE[case])
    assert not errors(at)
    assert bars(at)
    md = " ".join(m.value for m in at.markdown)
    assert "<script>" not in md and "<img" not in md
    if case == "700 words":
        assert len(bars(at)["data"][0]["customdata"]) == 128
        assert any("first 128 wordpieces" in c.value for c in at.caption)


def test_why_page_without_mask_or_with_a_mask_too_far_says_what_to_do():
    at = open_page("app_pages/why.py", why_text="no mask here")
    assert not errors(at) and any("no [MASK]" in i.value for i in at.info)
    at.text_area(key="why_text").set_value("word " * 300 + "[MASK]").run()
    assert not errors(at) and any("comes after token 128" in i.value for i in at.info)


def test_why_panel_explains_a_classifiers_class(tmp_path_factory):
    d = tmp_path_factory.mktemp("why_cls")
    make_checkpoint(d, "BertForSequenceClassification", seed=3, num_labels=3, initializer_range=0.2,
                    id2label={"0": "negative", "1": "neutral", "2": "positive"},
                    label2id={"negative": 0, "neutral": 1, "positive": 2})
    at = open_page("app_pages/why.py", str(d), why_text="the movie was very good")
    assert not errors(at)
    lm = load_model(str(d), device="cpu")
    predicted = lm.classify("the movie was very good")[0][0]
    assert at.pills(key="why_pick_class").value == predicted
    ig = explain_all(lm, "the movie was very good", predicted)["ig"]
    np.testing.assert_allclose(decode(bars(at)["data"][0]["y"]), ig.scores, rtol=1e-4, atol=1e-6)
    assert f"logit of class" in " ".join(m.value for m in at.markdown)


# --- contextual embeddings -------------------------------------------------------------------------------------------
def test_embeddings_page_maps_every_occurrence_and_lists_neighbours(bundled):
    at = open_page("app_pages/embeddings.py", emb_word="bat", emb_layer=5,
                   emb_user="<b>The bat</b> <script>x</script> flew 😀\nHe swung the bat.")
    assert not errors(at)
    corpus = encode_corpus(bundled, [*CORPUS, *user_sentences(at.session_state["emb_user"])])
    occ = occurrences(corpus, "bat", 5)
    scatter = charts(at)[0]
    assert scatter["layout"]["title"]["text"].startswith("“bat” at layer 5")
    shown = sum(len(t["x"]) if isinstance(t["x"], list) else len(decode(t["x"])) for t in scatter["data"]
                if t["name"] != "picked")
    assert shown == len(occ.texts) == 14
    yours = next(t for t in scatter["data"] if t["name"] == "your sentence")
    assert "&lt;b&gt;The bat&lt;/b&gt; &lt;script&gt;x&lt;/script&gt; flew 😀" in yours["hovertext"]
    at.selectbox(key="emb_pick").set_value(3).run()
    nn = nearest_neighbours(corpus, 5, occ.vectors[3], exclude=(int(occ.sentence[3]), occ.positions[3]))
    table = at.dataframe[0].value
    assert list(table["sentence"]) == list(nn["sentence"])
    np.testing.assert_allclose(table["cosine"], nn["cosine"].round(3))


def test_embeddings_page_layer_zero_tsne_and_hostile_lines(tiny_dir):
    at = open_page("app_pages/embeddings.py", str(tiny_dir), emb_word="bank",
                   emb_user="\n".join(["<script>bank</script>", "[MASK] " * 20, "bank " * 700, "😀 bank"]))
    assert not errors(at)
    at.radio(key="emb_method").set_value("tsne").run()
    at.slider(key="emb_layer").set_value(0).run()
    assert not errors(at)
    assert at.slider(key="emb_layer").max == 2  # the tiny model has 2 layers
    assert charts(at)[0]["layout"]["title"]["text"].startswith("“bank” at the embeddings (t-SNE")


# --- the playground: the Why toggle under the chart, the sentence in the URL -------------------------------------------
def test_playground_why_panel_explains_the_charted_mask(bundled):
    text = "The [MASK] sat on the [MASK]."
    at = open_page("app_pages/playground.py", pg_text=text, pg_pred_mask=1)
    assert not errors(at)
    assert at.query_params["text"] == text
    at.toggle(key="pg_why").set_value(True).run()
    assert not errors(at)
    ig = explain_all(bundled, text, None, which_mask=1)["ig"]
    assert ig.target.position == 6
    np.testing.assert_allclose(decode(bars(at)["data"][0]["y"]), ig.scores, rtol=1e-4, atol=1e-6)
    fresh = new_app()  # someone opens the shared link: it restores the sentence
    fresh.query_params["text"] = "Birds can [MASK] in the sky."
    fresh.run()
    fresh.switch_page("app_pages/playground.py")
    fresh.run()
    assert fresh.text_area(key="pg_text").value == "Birds can [MASK] in the sky."
