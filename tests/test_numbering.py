"""One numbering: a head named in one view is the same head everywhere. The knock-out ranking names heads 1-based
('L2·H3') and links each to the Attention explorer; following that link opens the very same head there."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from apptest_support import APP, charts, errors, open_page, plotly_array
from streamlit.testing.v1 import AppTest

from bert_core import lens, load_model, mlm
from ui.text import explorer_link, head_label, hidden_state_name, layer_name

TEXT = "the king and the [MASK] ate bread ."
ROOT = Path(__file__).resolve().parent.parent


def test_labels_count_from_one():
    assert head_label(0, 0) == "L1·H1" and head_label(5, 7) == "L6·H8"
    assert layer_name(0) == "layer 1" and hidden_state_name(0) == "embeddings" and hidden_state_name(1) == "layer 1"
    q = parse_qs(urlsplit(explorer_link("a [MASK] b", 5, 7, "bundled")).query)
    assert q == {"text": ["a [MASK] b"], "layer": ["5"], "head": ["7"], "tab": ["head"], "model": ["bundled"]}


def ranking_rows(tiny_dir):
    at = open_page("app_pages/playground.py", str(tiny_dir), pg_text=TEXT, pg_view="Knock out heads")
    assert not errors(at)
    table = at.dataframe[-1].value
    return table["head"].tolist(), table["see it"].tolist()


def test_knockout_ranking_names_and_links_the_same_head(tiny_dir):
    lm = load_model(str(tiny_dir), device="cpu")
    imp = lens.head_importance(lm, mlm.prepare(lm, TEXT))
    names, links = ranking_rows(tiny_dir)
    assert names == [head_label(l0, h0) for l0, h0, _, _ in imp.ranking(len(names))]
    for name, link in zip(names, links):
        q = parse_qs(urlsplit(link).query)
        assert urlsplit(link).path == "attention" and q["text"] == [TEXT] and q["model"] == [str(tiny_dir)]
        assert head_label(int(q["layer"][0]), int(q["head"][0])) == name


@pytest.mark.skipif(not (ROOT / "ui" / "share.py").exists(),
                    reason="the Attention explorer reads ?layer=&head= from the URL once branch 'explain' is merged")
def test_the_linked_head_opens_in_the_explorer(tiny_dir):
    lm = load_model(str(tiny_dir), device="cpu")
    names, links = ranking_rows(tiny_dir)
    q = {k: v[0] for k, v in parse_qs(urlsplit(links[0]).query).items()}
    at = AppTest.from_file(APP, default_timeout=60)  # a fresh tab: the link's parameters are all it has
    for k, v in q.items():
        at.query_params[k] = v
    at.run()
    at.switch_page("app_pages/attention.py").run()
    assert not errors(at)
    l0, h0 = int(at.session_state["att_layer"]), int(at.session_state["att_head"])
    assert head_label(l0, h0) == names[0] and at.session_state["att_text"] == TEXT
    spec = next(c for c in charts(at) if head_label(l0, h0) in ((c["layout"].get("title") or {}).get("text") or ""))
    np.testing.assert_allclose(plotly_array(spec["data"][0]["z"]), lm.inspect(TEXT).attentions[l0, h0], atol=1e-6)
