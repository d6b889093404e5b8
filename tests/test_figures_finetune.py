"""The fine-tuning lab's pure figure builders: the numbers they are given are the numbers they draw."""

from __future__ import annotations

import numpy as np

from apptest_support import plotly_array as arr
from ui import figures_finetune as f


def test_confusion_matrix_shows_counts_coloured_by_row_share():
    m = np.array([[8, 2, 0], [1, 5, 4], [0, 0, 3]])
    fig = f.confusion_matrix(m, ["neg", "<b>neu</b>", "pos"], "cm").to_plotly_json()
    hm = fig["data"][0]
    np.testing.assert_array_equal(arr(hm["text"]), m)
    np.testing.assert_allclose(arr(hm["z"]), m / m.sum(1, keepdims=True))
    assert list(fig["layout"]["yaxis"]["ticktext"]) == ["neg", "&lt;b&gt;neu&lt;/b&gt;", "pos"]


def test_an_empty_row_does_not_divide_by_zero():
    hm = f.confusion_matrix(np.array([[0, 0], [3, 1]]), ["a", "b"]).to_plotly_json()["data"][0]
    np.testing.assert_allclose(arr(hm["z"]), [[0, 0], [0.75, 0.25]])


def test_cls_scatter_has_one_trace_per_class_and_panel_with_the_right_points():
    rng = np.random.default_rng(0)
    before, after = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    labels = [0, 1, 0, 1, 1, 0]
    fig = f.cls_scatter(before, after, labels, ["neg", "pos"], [f"text {i} <script>" for i in range(6)], "t")
    data = fig.to_plotly_json()["data"]
    assert [d["name"] for d in data] == ["neg", "pos", "neg", "pos"]
    np.testing.assert_allclose(arr(data[1]["x"]), before[[1, 3, 4], 0])
    np.testing.assert_allclose(arr(data[2]["y"]), after[[0, 2, 5], 1])
    assert list(data[0]["customdata"]) == ["text 0 &lt;script&gt;", "text 2 &lt;script&gt;", "text 5 &lt;script&gt;"]


def test_class_probabilities_are_sorted_and_metric_curves_show_the_baseline():
    fig = f.class_probabilities(["a", "b", "c"], [0.2, 0.7, 0.1]).to_plotly_json()
    assert list(fig["data"][0]["y"]) == ["b", "a", "c"]
    np.testing.assert_allclose(arr(fig["data"][0]["x"]), [0.7, 0.2, 0.1])
    curves = f.metric_curves([0, 10], [0.4, 0.8], [0.3, 0.7], baseline=0.43).to_plotly_json()
    assert [d["name"] for d in curves["data"]] == ["accuracy", "macro F1"]
    assert curves["layout"]["shapes"][0]["y0"] == 0.43
    bal = f.class_balance(["x", "y"], [10, 20], [2, 4]).to_plotly_json()
    assert [list(arr(d["x"])) for d in bal["data"]] == [[10, 20], [2, 4]]
