"""AppTest: home, attention explorer and "Inside BERT" pages, asserting on what they render."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from bert_core import load_model
from apptest_support import charts, errors, new_app, open_page
from apptest_support import plotly_array as decode
from bert_core.stats import head_statistics, segment_crossing
from ui.figures_attention import MAX_TICK_LABELS

TABS = {"one": 0, "grid": 1, "lines": 2, "neuron": 3, "stats": 4, "pair": 5}


# --- helpers ---------------------------------------------------------------------------------------------
def heatmap(at: AppTest) -> dict:
    """The large single-head heatmap (the chart whose title says 'Layer …, head …')."""
    for spec in charts(at):
        title = (spec["layout"].get("title") or {}).get("text", "")
        if title.startswith("Layer "):
            return spec
    raise AssertionError("no single-head heatmap on the page")


def sidebar_caption(at: AppTest) -> str:
    return next(c.value for c in at.caption if "layers ×" in c.value)


def open_attention(model: str | None = None, tab: str = "one", **state) -> AppTest:
    at = open_page("app_pages/attention.py", model)
    assert not errors(at)
    if tab != "one" or state:
        for k, v in state.items():
            at.session_state[k] = v
        at.session_state["att_tab"] = at.tabs[TABS[tab]].label
        at.run()
    return at


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return load_model(str(tiny_dir), device="cpu")


# --- home --------------------------------------------------------------------------------------------------
def test_home_says_what_to_do_and_shows_model_facts():
    at = new_app()
    at.run()
    assert not errors(at)
    assert at.title[0].value == "BERT Lab"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Layers"] == "6" and metrics["Heads per layer"] == "12" and metrics["Hidden size"] == "384"
    text = " ".join(m.value for m in at.markdown)
    for idea in ("softmax", "[CLS]", "position", "MLM", "NSP", "Fine-tuning", "RoBERTa", "ALBERT", "distillation"):
        assert idea in text, idea
    assert "6 layers × 12 heads" in sidebar_caption(at)


# --- attention explorer --------------------------------------------------------------------------------------
def test_default_heatmap_shows_the_models_attention(bundled):
    at = open_attention()
    ins = bundled.inspect(at.session_state["att_text"])
    spec = heatmap(at)
    hm = spec["data"][0]
    assert spec["layout"]["xaxis"]["ticktext"] == ins.tokens
    assert decode(spec["layout"]["xaxis"]["tickvals"]).tolist() == list(range(len(ins.tokens)))
    np.testing.assert_allclose(decode(hm["z"]), ins.attentions[0, 0], atol=1e-6)
    assert hm["text"][1][2] == f"{ins.tokens[1]} → {ins.tokens[2]}"
    # the token table: every wordpiece with its id
    table = at.dataframe[0].value
    assert list(table.loc["token"]) == ins.tokens
    assert list(table.loc["id"]) == [str(i) for i in ins.input_ids]


def test_layer_head_sliders_and_hiding_specials(bundled):
    at = open_attention()
    at.select_slider(key="att_layer").set_value(3)
    at.select_slider(key="att_head").set_value(5)
    at.run()
    ins = bundled.inspect(at.session_state["att_text"])
    spec = heatmap(at)
    assert spec["layout"]["title"]["text"] == "Layer 4, head 6 (L4·H6)"  # indexes 3, 5 shown from 1
    np.testing.assert_allclose(decode(spec["data"][0]["z"]), ins.attentions[3, 5], atol=1e-6)
    at.toggle(key="att_hide_special").set_value(True).run()
    spec = heatmap(at)
    assert "[CLS]" not in spec["layout"]["xaxis"]["ticktext"] and "[SEP]" not in spec["layout"]["yaxis"]["ticktext"]
    np.testing.assert_allclose(decode(spec["data"][0]["z"]), ins.attentions[3, 5][1:-1, 1:-1], atol=1e-6)
    # the statistics of this head, next to the map
    stats = head_statistics(ins.attentions, ins.tokens)
    side = at.dataframe[1].value.set_index("statistic")
    assert side.loc["Share to [SEP]", "value"] == pytest.approx(round(float(stats["sep"][3, 5]), 3))


def test_switching_to_a_tiny_checkpoint_and_sentence_pair(tiny_dir, tiny):
    home = new_app(str(tiny_dir))
    home.run()
    assert "2 layers × 4 heads" in sidebar_caption(home) and "NSP head: yes" in sidebar_caption(home)
    at = open_attention(str(tiny_dir))
    assert at.select_slider(key="att_layer").options == ["1", "2"]
    assert at.select_slider(key="att_head").options == ["1", "2", "3", "4"]
    at.text_area(key="att_text").set_value("the cat sat on the mat")
    at.toggle(key="att_pair").set_value(True).run()
    at.text_area(key="att_text_b").set_value("it was happy").run()
    ins = tiny.inspect("the cat sat on the mat", "it was happy")
    table = at.dataframe[0].value
    assert list(table.loc["segment"]) == ["A"] * 8 + ["B"] * 4
    assert list(table.loc["special"]).count("yes") == 3
    at.session_state["att_tab"] = at.tabs[TABS["pair"]].label
    at.run()
    assert not errors(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["P(B follows A)"] == f"{ins.nsp_probs[0]:.1%}"
    cross = segment_crossing(ins.attentions, ins.token_type_ids, ins.encoded.special)
    bars = charts(at)[0]["data"]
    np.testing.assert_allclose(decode(bars[0]["y"]), np.round(cross["A → B"] * 100, 2), atol=1e-9)


def test_grid_and_statistics_tabs(tiny_dir, tiny):
    at = open_attention(str(tiny_dir), tab="grid", att_layer=1, att_head=2)
    ins = tiny.inspect(at.session_state["att_text"])
    grid, big = charts(at)
    z = decode(grid["data"][0]["z"])
    T = len(ins.tokens)
    assert z.shape == (2 * T, 4 * T)  # 2 layers × 4 heads of T × T tiles (T < 24: not pooled)
    tile = z[T:2 * T, 2 * T:3 * T].astype(float)  # layer 1, head 2
    np.testing.assert_allclose(tile / 255, ins.attentions[1, 2] / ins.attentions[1, 2].max(), atol=3e-3)
    assert big["layout"]["title"]["text"] == "Layer 2, head 3 (L2·H3)"
    at.session_state["att_tab"] = at.tabs[TABS["stats"]].label
    at.run()
    stats = head_statistics(ins.attentions, ins.tokens)
    np.testing.assert_allclose(decode(charts(at)[0]["data"][0]["z"]), stats["sep"], atol=1e-6)
    at.segmented_control(key="att_stat").set_value("prev").run()
    np.testing.assert_allclose(decode(charts(at)[0]["data"][0]["z"]), stats["prev"], atol=1e-6)
    assert not errors(at)


def test_single_sentence_pair_tab_says_how_to_get_a_pair(tiny_dir):
    at = open_attention(str(tiny_dir), tab="pair")
    assert any("second sentence" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_checkpoint_without_nsp_head_says_so(tiny_mlm_dir):
    at = open_attention(str(tiny_mlm_dir), tab="pair", att_pair=True)
    assert any("no NSP head" in i.value for i in at.info)
    assert len(at.get("plotly_chart")) == 1  # the crossing chart still works


def test_bertviz_tab_embeds_escaped_html(bundled):
    text = "<script>alert('x')</script> the cat"
    at = open_attention(tab="lines", att_text=text, att_lines_view="bertviz")
    doc = at.get("iframe")[0].proto.srcdoc
    assert "<script>alert" not in doc and "</script> the" not in doc
    params = json.loads(re.search(r"const params = (\{.*?\});\n", doc, re.S).group(1))
    assert params["attention"][0]["left_text"] == bundled.tokenize(text).tokens  # shown as typed, inside JSON escapes
    assert '"\\u003c"' in doc
    assert "cdnjs.cloudflare.com" in doc and "bertlab-cdn-note" in doc


def test_bertviz_too_long_input_explains_instead_of_sending_megabytes():
    at = open_attention(tab="lines", att_text="the cat sat on the mat . " * 100, att_lines_view="bertviz")
    assert not at.get("iframe")
    assert any("shorten the text" in i.value for i in at.info)


@pytest.mark.parametrize("text,expected", [
    ("", "empty"),
    ("   \n\t ", "empty"),
    ("\x00\x01\x02", "no characters"),
])
def test_unreadable_input_gives_a_message_not_a_traceback(tiny_dir, text, expected):
    at = open_attention(str(tiny_dir))
    at.text_area(key="att_text").set_value(text).run()
    assert not errors(at)
    assert any(expected in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_html_emoji_and_long_input_are_shown_as_text():
    at = open_attention()
    at.text_area(key="att_text").set_value('<script>alert(1)</script><b onclick="x">bold</b> 😀 the cat').run()
    assert not errors(at)
    ticks = heatmap(at)["layout"]["xaxis"]["ticktext"]
    assert "&lt;" in ticks and "&gt;" in ticks and "<" not in "".join(ticks)
    assert "[UNK]" in ticks  # the emoji is not in the vocabulary
    assert any("[UNK]" in c.value for c in at.caption)
    at.text_area(key="att_text").set_value("the cat sat . " * 200).run()
    assert not errors(at)
    assert any("at most 512" in w.value and "cut off" in w.value for w in at.warning)
    spec = heatmap(at)
    assert decode(spec["data"][0]["z"]).shape == (512, 512)
    assert len(spec["layout"]["xaxis"]["ticktext"]) == MAX_TICK_LABELS  # 512 labels smear into a grey block
    assert spec["data"][0]["x"][2] == "#2 cat" and "%{y} → %{x}" in spec["data"][0]["hovertemplate"]


def test_failed_load_shows_the_error_and_falls_back_to_bundled():
    at = new_app("/no/such/folder")
    at.run()
    assert not errors(at)
    msgs = [e.value for e in at.error]
    assert any("Could not load" in m and "Folder not found" in m and "bundled offline model" in m for m in msgs)
    assert at.session_state["model_name"] == "bundled"
    assert "6 layers × 12 heads" in sidebar_caption(at)
    assert at.selectbox(key="sb_model_choice").value.startswith("Bundled")
    assert {m.label: m.value for m in at.metric}["Layers"] == "6"  # the page goes on with the bundled model


def test_unavailable_device_and_hub_id_offline_fall_back_with_a_clear_message(tiny_dir):
    import torch

    if not torch.cuda.is_available():
        at = new_app(str(tiny_dir))
        at.session_state["model_device"] = "cuda"
        at.run()
        assert any("CUDA is not available" in e.value for e in at.error)
        assert "6 layers × 12 heads" in sidebar_caption(at) and at.session_state["model_device"] == "auto"
    at = new_app("google/bert_uncased_L-2_H-128_A-2")
    at.run()
    assert not errors(at)
    assert any("offline" in e.value for e in at.error) or "2 layers × 2 heads" in sidebar_caption(at)


def test_picker_shows_a_folder_choice_as_other(tiny_dir):
    at = new_app(str(tiny_dir))
    at.run()
    assert at.selectbox(key="sb_model_choice").value == "Other hub id or local folder…"
    assert at.text_input(key="sb_model_other").value == str(tiny_dir)
    assert "2 layers × 4 heads" in sidebar_caption(at) and "MLM head: yes" in sidebar_caption(at)


# --- inside BERT ---------------------------------------------------------------------------------------------
def test_inside_bert_walks_through_the_chosen_token(tiny_dir, tiny):
    at = open_page("app_pages/inside_bert.py", str(tiny_dir), inside_text="the cat sat on the mat", inside_all=True)
    assert not errors(at)
    assert at.selectbox(key="inside_layer").options == ["1", "2"]  # layers count from 1 on screen
    at.selectbox(key="inside_layer").set_value(1)
    at.selectbox(key="inside_head").set_value(2)
    at.selectbox(key="inside_pos").set_value(3).run()
    assert not errors(at)
    ins = tiny.inspect("the cat sat on the mat")
    steps = [s.value for s in at.subheader if s.value[:1].isdigit()]
    assert steps[0].startswith("1. Token + position + segment") and len(steps) == 12
    assert steps[-1].startswith("12. Residual connection + LayerNorm")
    probs = next(c for c in charts(at) if c["data"][0].get("type") == "bar"
                 and "attention weight" in c["layout"]["yaxis"]["title"]["text"])
    np.testing.assert_allclose(decode(probs["data"][0]["y"]), ins.attentions[1, 2, 3], atol=1e-6)
    final = at.dataframe[-1].value
    np.testing.assert_allclose(final.loc["layer output (after LayerNorm)"].iloc[:8].astype(float),
                               ins.hidden_states[2, 3, :8].round(4), atol=2e-4)
    ok = at.success[0].value
    assert "matches the model's own hidden state for layer 2" in ok  # index 1 = the second layer
    assert float(ok.split("up to ")[1].split(" ")[0]) < 1e-5


def test_inside_bert_one_stage_per_screen(tiny_dir):
    at = open_page("app_pages/inside_bert.py", str(tiny_dir), inside_text="the cat sat on the mat")
    seen = []
    for _ in range(5):
        assert not errors(at)
        seen.append([s.value.split(".")[0] for s in at.subheader if s.value[:1].isdigit()])
        assert at.selectbox(key="inside_layer") and at.selectbox(key="inside_head")  # pickers on every stage
        assert at.query_params["stage"] in (str(len(seen)), [str(len(seen))])
        next_button = [b for b in at.button if b.label == "Next"][0]
        if next_button.disabled:
            break
        next_button.click().run()
    assert seen == [["1", "2"], ["3"], ["4", "5", "6", "7"], ["8", "9"], ["10", "11", "12"]]
    assert "layer 1" in at.success[0].value


def test_inside_bert_bad_input_and_html(tiny_dir):
    at = open_page("app_pages/inside_bert.py", str(tiny_dir), inside_text="   ")
    assert not errors(at) and any("empty" in i.value for i in at.info)
    at.text_input(key="inside_text").set_value("<img src=x onerror=alert(1)> *cat*").run()
    assert not errors(at)
    md = " ".join(m.value for m in at.markdown)
    assert "<img" not in md  # tokens reach Markdown escaped (\<), never as HTML


# --- payload ---------------------------------------------------------------------------------------------------
def page_bytes(at: AppTest) -> int:
    """Bytes of every element the last run sent (the deltas' payload), charts and iframes included."""
    total, stack = 0, [at._tree]
    while stack:
        node = stack.pop()
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            stack.extend(children.values())
        proto = getattr(node, "proto", None)
        if proto is not None and type(node).__name__ not in ("Block", "SpecialBlock", "ElementTree"):
            total += proto.ByteSize()
    return total


def test_one_interaction_sends_at_most_2_mb_at_128_tokens(bundled):
    text = " ".join(["the quick brown fox jumps over the lazy dog ."] * 12)
    T = len(bundled.tokenize(text).tokens)
    assert 120 <= T <= 128
    at = open_attention(att_text=text)
    sizes = {"one head": page_bytes(at)}
    at.session_state["att_lines_view"] = "bertviz"
    for tab in ("grid", "stats", "lines"):
        at.session_state["att_tab"] = at.tabs[TABS[tab]].label
        at.run()
        assert not errors(at)
        sizes[tab] = page_bytes(at)
    at.select_slider(key="att_head").set_value(7).run()  # an interaction on the heaviest tab
    sizes["lines (bertviz), new head"] = page_bytes(at)
    assert at.get("iframe"), "the bertviz head view should fit at 128 tokens"
    at.switch_page("app_pages/inside_bert.py")
    at.session_state["inside_text"] = text
    at.run()
    sizes["inside"] = page_bytes(at)
    print({k: f"{v / 1e6:.2f} MB" for k, v in sizes.items()})
    assert max(sizes.values()) <= 2_000_000, sizes
    assert sizes["grid"] < 1_000_000  # 72 thumbnails, not 72 full maps


# --- line views, neuron view, shareable URL (issue #14) ----------------------------------------------------------
def line_segments(spec: dict, name: str) -> int:
    """Number of line segments drawn for one head (its traces' x arrays hold 3 entries per segment)."""
    return sum(len(decode(t["x"])) // 3 for t in spec["data"] if t.get("mode") == "lines" and t.get("name") == name)


def test_line_head_view_draws_the_models_links_and_a_click_focuses_a_token(tiny_dir, tiny):
    at = open_attention(str(tiny_dir), tab="lines", att_layer=1, att_head=2)
    ins = tiny.inspect(at.session_state["att_text"])
    spec = charts(at)[0]
    assert spec["layout"]["title"]["text"] == "Layer 2"
    assert line_segments(spec, "head 3") == int((ins.attentions[1, 2] >= 0.05).sum())
    left = next(t for t in spec["data"] if t.get("customdata") is not None and t["x"] and decode(t["x"])[0] == 0)
    assert [label.split(" ")[1] for label in left["hovertext"]] == ins.tokens
    at.selectbox(key="att_focus").set_value(3).run()  # as a click on token 3 does
    spec = charts(at)[0]
    assert line_segments(spec, "head 3") == int((ins.attentions[1, 2, 3] >= 0.05).sum())
    at.pills(key="att_lines_heads").set_value([0, 2]).run()
    assert line_segments(charts(at)[0], "head 1") == int((ins.attentions[1, 0, 3] >= 0.05).sum())
    assert not errors(at)


def test_line_model_view_has_every_head_and_opens_the_selected_one(tiny_dir):
    at = open_attention(str(tiny_dir), tab="lines", att_lines_view="model", att_layer=1, att_head=3)
    spec = charts(at)[0]
    cells = next(t for t in spec["data"] if t.get("mode") == "markers")
    assert decode(cells["customdata"]).tolist() == [[la, h] for la in range(2) for h in range(4)]
    assert len(spec["layout"]["shapes"]) == 1  # the selected head is outlined
    assert not errors(at)


def test_neuron_view_softmax_is_the_attention_row(tiny_dir, tiny):
    at = open_attention(str(tiny_dir), tab="neuron", att_layer=1, att_head=1, att_query=2)
    ins = tiny.inspect(at.session_state["att_text"])
    neuron = next(c for c in charts(at) if len(c["data"]) == 4)
    np.testing.assert_allclose(decode(neuron["data"][3]["x"]), ins.attentions[1, 1, 2], atol=1e-6)
    assert "largest difference" in at.success[0].value
    assert float(at.success[0].value.split("difference ")[1].rstrip(".")) < 1e-6


def test_url_round_trips_the_explorers_view():
    at = open_attention(tab="grid", att_text="<b>dogs</b> bark 😀", att_layer=4, att_head=7)
    flat = dict(at.query_params)
    assert flat["text"] == "<b>dogs</b> bark 😀"
    assert (flat["layer"], flat["head"], flat["tab"], flat["pair"]) == ("4", "7", "grid", "0")
    fresh = new_app()  # someone opens the shared link
    for k, v in flat.items():
        fresh.query_params[k] = v
    fresh.run()
    fresh.switch_page("app_pages/attention.py")
    fresh.run()
    assert not errors(fresh)
    assert fresh.text_area(key="att_text").value == "<b>dogs</b> bark 😀"
    assert (fresh.select_slider(key="att_layer").value, fresh.select_slider(key="att_head").value) == (4, 7)
    assert fresh.session_state["att_tab"] == at.tabs[TABS["grid"]].label
    assert heatmap(fresh)["layout"]["title"]["text"] == "Layer 5, head 8 (L5·H8)"
    assert len(charts(fresh)) == 2  # the grid tab is the one open


def test_url_with_nonsense_values_falls_back():
    at = new_app()
    at.query_params.update({"layer": "x", "head": "99", "tab": "nope"})
    at.run()
    at.switch_page("app_pages/attention.py")
    at.run()
    assert not errors(at)
    assert at.select_slider(key="att_head").value == 11 and at.select_slider(key="att_layer").value == 0
