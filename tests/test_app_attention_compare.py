"""AppTest: the explorer's "One head" tab: the strongest link among the tokens shown, the colour bar, and the same
head of two models side by side."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from apptest_support import APP, charts, errors
from apptest_support import plotly_array as decode
from bert_core import load_model
from ui.figures_attention import attention_heatmap, strongest_link

SENTENCE = "the cat sat on the mat because it was tired"


def heatmaps(at: AppTest) -> dict[str, dict]:
    """The single-head heatmaps on the page by title."""
    return {(c["layout"].get("title") or {}).get("text", ""): c for c in charts(at)
            if c["data"] and c["data"][0].get("type") == "heatmap"}


def link_line(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("Strongest single link"))


def explorer(*models: str, **state) -> AppTest:
    """Load each model in turn in one session (the last one stays picked), then open the explorer."""
    at = AppTest.from_file(APP, default_timeout=60)
    for name in models:
        at.session_state["model_name"] = name
        at.run()
    for k, v in state.items():
        at.session_state[k] = v
    at.switch_page("app_pages/attention.py")
    at.run()
    assert not errors(at)
    return at


def test_strongest_link_names_only_tokens_shown(bundled):
    ins = bundled.inspect(SENTENCE)
    special = ins.encoded.special
    # a head whose strongest link overall touches [CLS]/[SEP]: the case the summary used to get wrong
    layer, head = next((l, h) for l in range(6) for h in range(12)
                       if special[list(np.unravel_index(ins.attentions[l, h].argmax(), (len(special),) * 2))].any())
    at = explorer("bundled", att_text=SENTENCE, att_layer=layer, att_head=head)
    q, k, _ = strongest_link(ins.attentions[layer, head])
    assert special[q] or special[k]
    assert f"(#{q})" in link_line(at) and f"(#{k})" in link_line(at)  # every token shown: the overall maximum
    at.toggle(key="att_hide_special").set_value(True).run()
    a = ins.attentions[layer, head].copy()
    a[special, :] = a[:, special] = -1
    q, k = np.unravel_index(a.argmax(), a.shape)
    line = link_line(at)
    assert "among the tokens shown" in line and "[CLS]" not in line and "[SEP]" not in line
    assert re.search(rf"\*\*{re.escape(ins.tokens[q])}\*\* \(#{q}\) → \*\*{re.escape(ins.tokens[k])}\*\* \(#{k}\), "
                     rf"weight {a[q, k]:.2f}", line), line


def test_the_colour_bar_spans_the_map_exactly():
    fig = attention_heatmap(np.full((5, 5), 0.2), list("abcde")).to_plotly_json()
    bar, yaxis = fig["data"][0]["colorbar"], fig["layout"]["yaxis"]
    assert bar["len"] == 1 and bar["lenmode"] == "fraction" and bar["y"] == 0.5
    assert "scaleanchor" not in yaxis and "constrain" not in yaxis  # the map fills the plot's full height


@pytest.fixture(scope="module")
def copy_of_tiny(tiny_dir, tmp_path_factory):
    """The same weights in another folder: what a kept run looks like before it trains."""
    d = tmp_path_factory.mktemp("tiny_copy") / "run1"
    shutil.copytree(tiny_dir, d)
    return d


def test_compare_with_shows_both_models_same_head_side_by_side(tiny_dir, tiny_mlm_dir, copy_of_tiny):
    a, b = str(tiny_dir), str(tiny_mlm_dir)
    at = explorer(b, str(copy_of_tiny), a, att_text=SENTENCE, att_layer=1, att_head=2)
    options = at.selectbox(key="att_compare").options
    assert options[0] == "nothing (one model)" and len(options) == 4  # bundled, b, the copy (not a: it is picked)
    at.selectbox(key="att_compare").set_value(b).run()
    assert not errors(at)
    maps = heatmaps(at)
    assert len(maps) == 2 and all(t.endswith(": L2·H3") for t in maps)
    mine, other = (decode(m["data"][0]["z"]) for m in maps.values())
    np.testing.assert_allclose(mine, load_model(a, device="cpu").inspect(SENTENCE).attentions[1, 2], atol=1e-6)
    np.testing.assert_allclose(other, load_model(b, device="cpu").inspect(SENTENCE).attentions[1, 2], atol=1e-6)
    assert np.abs(mine - other).max() > 1e-3  # different weights, different maps (random tiny heads: nearly flat)
    assert len({m["data"][0]["zmax"] for m in maps.values()}) == 1  # one colour scale for both
    [x, y] = [m["layout"]["xaxis"]["ticktext"] for m in maps.values()]
    assert x == y  # the same tokens
    assert any(f"Largest difference: {np.abs(mine - other).max():.3f}" in c.value for c in at.caption)
    at.selectbox(key="att_compare").set_value(str(copy_of_tiny)).run()
    mine, same = (decode(m["data"][0]["z"]) for m in heatmaps(at).values())
    np.testing.assert_array_equal(mine, same)  # same weights, same map
    assert any("Largest difference: 0.000 " in c.value for c in at.caption)
    at.selectbox(key="att_compare").set_value("bundled").run()  # another tokenizer: said, not drawn
    assert any("different wordpieces" in i.value for i in at.info) and len(heatmaps(at)) == 0
