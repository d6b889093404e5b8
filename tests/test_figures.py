"""Figure builders, checked on the data they carry (no Streamlit)."""

import io
import json
import re

import numpy as np
import pandas as pd
import pytest

from ui import figures_attention as figures
from ui.bertviz_embed import NOTE_ID, bertviz_bytes, bertviz_html, bertviz_size
from ui.text import md_escape

TOKENS = ["[CLS]", "the", "cat", "saw", "the", "dog", "[SEP]"]


def random_attention(L, H, T, seed=0):
    a = np.random.default_rng(seed).random((L, H, T, T)).astype(np.float32)
    return a / a.sum(-1, keepdims=True)


def test_attention_heatmap_keeps_repeated_tokens_apart_and_hovers_query_to_key():
    a = random_attention(1, 1, 7)[0, 0]
    fig = figures.attention_heatmap(a, TOKENS, "L0 H0")
    hm = fig.data[0]
    np.testing.assert_array_equal(hm.z, a)
    assert list(hm.x) == list(range(7)) and list(hm.y) == list(range(7))  # integer axes
    assert list(fig.layout.xaxis.ticktext) == TOKENS and list(fig.layout.xaxis.tickvals) == list(range(7))
    assert list(fig.layout.yaxis.ticktext) == TOKENS  # both "the"s are there, at 1 and 4
    assert hm.text[2][5] == "cat → dog" and hm.text[4][1] == "the → the"
    assert "%{text} : %{z:.3f}" in hm.hovertemplate
    assert fig.layout.yaxis.autorange == "reversed"  # first token at the top


def test_attention_heatmap_hides_specials_without_renormalising():
    a = random_attention(1, 1, 7)[0, 0]
    keep = np.array([t not in ("[CLS]", "[SEP]") for t in TOKENS])
    fig = figures.attention_heatmap(a, TOKENS, keep=keep)
    np.testing.assert_array_equal(fig.data[0].z, a[1:6, 1:6])
    assert list(fig.layout.xaxis.ticktext) == TOKENS[1:6]
    assert fig.data[0].z.sum(-1).max() < 1  # the share that went to [CLS]/[SEP] is not put back


def test_user_text_is_escaped_in_plotly_labels():
    toks = ["[CLS]", "<", "script", ">", "&", "[SEP]"]
    fig = figures.attention_heatmap(np.eye(6), toks)
    assert list(fig.layout.xaxis.ticktext) == ["[CLS]", "&lt;", "script", "&gt;", "&amp;", "[SEP]"]
    assert "<" not in "".join(fig.data[0].text[1])
    assert md_escape("<b>*x*</b> $1$") == r"\<b\>\*x\*\</b\> \$1\$"


def test_long_inputs_thin_their_labels_and_hover_by_name():
    T = 128
    a = random_attention(1, 1, T)[0, 0]
    fig = figures.attention_heatmap(a, [f"w{i}" for i in range(T)])
    assert fig.data[0].text is not None  # 128 tokens still get 'query → key' labels
    assert figures.figure_bytes(fig) < 600_000
    ticks = list(fig.layout.xaxis.tickvals)
    assert len(ticks) == figures.MAX_TICK_LABELS and ticks[0] == 0 and ticks[-1] == T - 1
    assert list(fig.layout.xaxis.ticktext) == [f"w{i}" for i in ticks]
    big = figures.attention_heatmap(random_attention(1, 1, 512)[0, 0], ["<b>"] + [f"w{i}" for i in range(1, 512)])
    assert big.data[0].text is None and big.data[0].hovertemplate.startswith("%{y} → %{x}")
    assert big.data[0].x[0] == "#0 &lt;b&gt;" and big.data[0].y[511] == "#511 w511"  # hover names both tokens
    assert len(big.layout.yaxis.tickvals) == figures.MAX_TICK_LABELS and big.layout.yaxis.tickvals[-1] == "#511 w511"
    np.testing.assert_array_equal(big.data[0].z, random_attention(1, 1, 512)[0, 0])


def test_head_grid_tiles_every_head_and_marks_the_selected_one():
    L, H, T = 2, 3, 5
    a = np.zeros((L, H, T, T), dtype=np.float32)
    a[1, 2] = np.eye(T)  # layer 1, head 2 attends to itself
    a[0, 0, :, 0] = 1.0  # layer 0, head 0 attends to the first token
    fig = figures.head_grid(a, selected=(1, 2))
    z = np.asarray(fig.data[0].z)
    assert z.shape == (L * T, H * T) and z.dtype == np.uint8
    np.testing.assert_array_equal(z[T:2 * T, 2 * T:3 * T], np.eye(T) * 255)  # tile (1, 2)
    np.testing.assert_array_equal(z[0:T, 0], np.full(T, 255))  # tile (0, 0): first column dark
    clicks = np.asarray(fig.data[1].customdata)
    assert clicks.tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]  # 0-based indexes for a click…
    assert fig.data[1].text[5] == "layer 2, head 3" and fig.data[1].hovertemplate.startswith("%{text}")  # …1-based
    assert list(fig.layout.xaxis.ticktext) == ["1", "2", "3"] and list(fig.layout.yaxis.ticktext) == ["1", "2"]
    rect = [s for s in fig.layout.shapes if s.type == "rect"][0]
    assert (rect.x0, rect.x1, rect.y0, rect.y1) == (2 * T - 0.5, 3 * T - 0.5, T - 0.5, 2 * T - 0.5)


def test_head_grid_pools_long_inputs_and_is_small_for_base_size_models():
    a = random_attention(12, 12, 128)
    fig = figures.head_grid(a, size=24)
    assert np.asarray(fig.data[0].z).shape == (12 * 24, 12 * 24)
    assert figures.figure_bytes(fig) < 300_000  # 144 maps, not 144 × 128 × 128 floats
    pooled = figures._pool(np.eye(128), 24)
    assert pooled.shape == (24, 24) and pooled.trace() > pooled.sum() - pooled.trace()  # still diagonal


def test_stats_heatmap_values_and_click_data():
    v = np.arange(6, dtype=float).reshape(2, 3) / 10
    fig = figures.stats_heatmap(v, "Share to [SEP]", selected=(0, 1))
    np.testing.assert_allclose(fig.data[0].z, v, rtol=1e-6)
    cd = np.asarray(fig.data[1].customdata)
    assert cd[4].tolist() == pytest.approx([1, 1, 0.4])  # layer index 1, head index 1, value
    assert fig.data[1].text[4] == "layer 2, head 2" and fig.data[1].hovertemplate.startswith("%{text}")
    assert list(fig.layout.xaxis.ticktext) == ["1", "2", "3"] and list(fig.layout.yaxis.ticktext) == ["1", "2"]
    assert fig.layout.shapes[0].x0 == 0.5 and fig.layout.shapes[0].y0 == -0.5


def test_cross_segment_chart_in_percent():
    fig = figures.cross_segment_chart({"A → B": np.array([0.1, 0.25]), "B → A": np.array([0.0, 0.5])})
    assert [t.name for t in fig.data] == ["A → B", "B → A"]
    assert list(fig.data[0].y) == [10.0, 25.0] and list(fig.data[1].y) == [0.0, 50.0]
    assert fig.layout.barmode == "group"
    assert list(fig.data[0].text) == ["layer 1", "layer 2"] and list(fig.layout.xaxis.ticktext) == ["1", "2"]


def test_token_bars_vector_strip_matrix():
    bars = figures.token_bars(np.array([0.2, 0.5, 0.3]), ["a", "<b>", "c"], "weight", highlight=1)
    assert list(bars.data[0].marker.color) == ["#4c78a8", "#e4572e", "#4c78a8"]
    assert list(bars.layout.xaxis.ticktext) == ["a", "&lt;b&gt;", "c"]
    strip = figures.vector_strip(np.array([-2.0, 1.0, 0.5]), "h", highlight=(1, 3))
    assert strip.data[0].zmin == -2.0 and strip.data[0].zmax == 2.0
    assert strip.layout.shapes[0].x0 == 0.5
    m = figures.matrix_heatmap(np.ones((3, 4)), ["a", "b", "c"], "K", highlight_row=2)
    assert np.asarray(m.data[0].z).shape == (3, 4) and m.layout.shapes[0].y0 == 1.5


def test_attention_table_csv_round_trip():
    a = random_attention(1, 1, 7)[0, 0]
    df = figures.attention_table(a, TOKENS)
    back = pd.read_csv(io.StringIO(df.to_csv()), index_col=0)
    assert list(back.index) == [f"{i}:{t}" for i, t in enumerate(TOKENS)]
    assert list(back.columns)[4] == "4:the"  # repeated token, still its own column
    np.testing.assert_allclose(back.to_numpy(), a, atol=5e-5)


def _bertviz_params(doc: str) -> dict:
    m = re.search(r"const params = (\{.*?\});\n", doc, re.S)
    return json.loads(m.group(1))


@pytest.mark.parametrize("view", ["head", "model"])
def test_bertviz_keeps_user_text_as_text(view):
    toks = ["[CLS]", "<", "/", "script", ">", "<", "img", "&", "[SEP]"]
    doc = bertviz_html(random_attention(2, 2, len(toks)), toks, view, sentence_b_start=None)
    assert doc.count("<script") == doc.count("</script>") == 3  # our note + bertviz's two; none from the text
    assert "<img" not in doc
    params = _bertviz_params(doc)
    assert params["attention"][0]["left_text"] == toks  # the browser still shows the tokens as typed
    assert NOTE_ID in doc and "cdnjs.cloudflare.com" in doc  # the offline note is there


def test_bertviz_head_view_one_layer_rounded_and_size_estimate():
    a = random_attention(6, 12, 30)
    doc = bertviz_html(a, [f"w{i}" for i in range(30)], "head", sentence_b_start=15, layers=[3])
    attn = _bertviz_params(doc)["attention"]
    assert len(attn) == 5  # all, A→A, B→B, A→B, B→A
    assert len(attn[0]["attn"]) == 1  # only the chosen layer
    np.testing.assert_allclose(attn[0]["attn"][0][2], np.round(a[3, 2], 2), atol=1e-12)
    est = bertviz_bytes("head", 6, 12, 30, pair=True)
    assert 0.6 * est < len(doc.encode()) < 1.2 * est
    ok, why = bertviz_size("model", 12, 12, 128, pair=False)
    assert not ok and "shorten" in why


# --- line views and explanation figures (issue #14) --------------------------------------------------------------
from ui import figures_explain, figures_lines  # noqa: E402


def segments(fig, name=None):
    """(query, key) pairs drawn as lines (y = −position), per trace name."""
    out = []
    for t in fig.data:
        if t.mode == "lines" and (name is None or t.name == name):
            y = np.asarray(t.y, dtype=float)
            out += [(-int(y[i]), -int(y[i + 1])) for i in range(0, len(y), 3)]
    return sorted(out)


def test_head_lines_draw_every_link_above_the_threshold_in_its_heads_colour():
    a = random_attention(1, 3, 7, seed=2)[0]
    a[2] = np.eye(7)
    fig = figures_lines.head_lines(a, TOKENS, heads=[1, 2])
    assert segments(fig, "head 3") == [(i, i) for i in range(7)]  # index 2, named from 1
    expected = sorted(zip(*np.nonzero(a[1] >= figures_lines.MIN_WEIGHT)))
    assert segments(fig, "head 2") == [(int(r), int(c)) for r, c in expected]
    assert {t.line.color for t in fig.data if t.name == "head 3"} == {figures_lines.head_color(2)}
    strong = [t for t in fig.data if t.name == "head 3"][0]
    assert strong.line.width > [t for t in fig.data if t.name == "head 2"][0].line.width  # weight 1 is thickest
    focused = figures_lines.head_lines(a, TOKENS, heads=[1], focus=3)
    assert {q for q, _ in segments(focused)} == {3}
    left = fig.data[-2]
    assert list(np.asarray(left.customdata).ravel()) == list(range(7))
    assert left.hovertext[2].startswith("#2 cat looks at:")


def test_head_lines_stay_within_budget_and_escape_tokens_at_512():
    T = 512
    z = np.exp(np.random.default_rng(1).normal(size=(12, T, T)) * 5)  # peaked rows, as real heads have
    a = (z / z.sum(-1, keepdims=True)).astype(np.float32)
    toks = ["<script>"] + [f"w{i}" for i in range(1, T)]
    fig = figures_lines.head_lines(a, toks, heads=range(12))
    assert 0 < len(segments(fig)) <= figures_lines.MAX_SEGMENTS
    assert fig.data[-2].text[0] == "&lt;script&gt;"
    assert sum(bool(t) for t in fig.data[-2].text) <= figures_lines.MAX_TOKEN_LABELS
    assert figures.figure_bytes(fig) < 2_000_000


def test_model_lines_cells_carry_layer_and_head():
    a = random_attention(2, 3, 6)
    fig = figures_lines.model_lines(a, selected=(1, 2))
    cells = fig.data[-1]
    assert np.asarray(cells.customdata).tolist() == [[la, h] for la in range(2) for h in range(3)]
    assert cells.text[5] == "layer 2, head 3" and list(fig.layout.xaxis.ticktext) == ["1", "2", "3"]
    n = sum(len(t.x) // 3 for t in fig.data if t.mode == "lines")
    assert n == int((a >= 0.1).sum())
    assert len(fig.layout.shapes) == 1


def test_neuron_and_attribution_figures_carry_the_numbers():
    from bert_core.explain import NeuronView, Target, TokenAttribution

    rng = np.random.default_rng(0)
    q, k = rng.normal(size=4), rng.normal(size=(7, 4))
    s = k @ q / 2
    p = np.exp(s) / np.exp(s).sum()
    nv = NeuronView(TOKENS, 0, 1, 2, q, k, q * k, k @ q, s, p)
    fig = figures_explain.neuron_figure(nv)
    np.testing.assert_allclose(fig.data[1].z, (q * k).astype(np.float32))
    np.testing.assert_allclose(fig.data[3].x, p)
    assert list(fig.layout.yaxis.ticktext) == TOKENS
    tgt = Target("mask", 2, 5, "cat")
    attrs = {m: TokenAttribution(m, TOKENS, rng.normal(size=7), np.zeros(7, bool), tgt)
             for m in ("ig", "grad_x_input", "rollout")}
    fig = figures_explain.attribution_figure(attrs)
    for trace, m in zip(fig.data, attrs):
        np.testing.assert_allclose(trace.y, attrs[m].scores)
    assert fig.data[0].marker.color[2] == "#bbbbbb"  # the [MASK] being explained
