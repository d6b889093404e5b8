"""The playground's figure builders: right data in, user text escaped, sensible axes."""

from __future__ import annotations

import numpy as np
import pytest

from ui import figures_mlm as figs


def test_topk_bar_order_colours_and_escaping():
    fig = figs.topk_bar(["<script>", "dog", "cat"], [0.5, 0.3, 0.2], "t", {"dog": figs.GUESS})
    bar = fig.data[0]
    assert list(bar.x) == [0.5, 0.3, 0.2] and list(bar.customdata) == ["&lt;script&gt;", "dog", "cat"]
    assert list(bar.marker.color) == [figs.BAR, figs.GUESS, figs.BAR]
    assert list(fig.layout.yaxis.ticktext) == ["&lt;script&gt;", "dog", "cat"]
    assert fig.layout.yaxis.autorange == "reversed"  # most likely on top
    assert fig.layout.xaxis.range[1] >= 0.5 * 1.2


def test_small_probabilities_get_a_fitting_axis():
    fig = figs.topk_bar(["a", "b"], [2e-4, 1e-4])
    lo, hi = fig.layout.xaxis.range
    assert lo == 0 and 2e-4 < hi < 1e-3 and fig.layout.xaxis.tickformat == ".3~%"


def test_candidates_sorted_by_probability_on_a_log_axis():
    fig = figs.candidates_bar(["x", "y"], [1e-5, 0.2], [900, 2], [("x",), ("y", "##z")])
    assert list(fig.data[0].x) == [0.2, 1e-5]
    assert list(fig.layout.yaxis.ticktext) == ["y (2 pieces)", "x"]
    assert fig.layout.xaxis.type == "log"


def test_logit_lens_figure_traces():
    tracked = {"final": (np.array([0.1, 0.5, 0.9]), np.array([40, 3, 1])), "<b>guess</b>": (np.zeros(3), np.ones(3))}
    fig = figs.logit_lens_figure(["emb", "1", "2"], tracked, ["a", "b", "c"], [0.2, 0.5, 0.9])
    assert len(fig.data) == 1 + 2 * 2
    assert list(fig.data[0].text) == ["a", "b", "c"]
    assert list(fig.data[2].y) == [40, 3, 1] and fig.data[3].name == "&lt;b&gt;guess&lt;/b&gt;"
    assert fig.layout.yaxis2.type == "log" and fig.layout.yaxis2.autorange == "reversed"


def test_head_heatmap_is_symmetric_around_zero():
    d = np.array([[0.1, -0.3], [0.0, 0.2]])
    fig = figs.head_importance_heatmap(d, "x")
    np.testing.assert_allclose(np.asarray(fig.data[0].z), d, rtol=1e-6)
    assert fig.data[0].zmin == pytest.approx(-0.3) and fig.data[0].zmax == pytest.approx(0.3)
    assert list(fig.data[0].y) == ["L1", "L2"] and list(fig.data[0].x) == ["H1", "H2"]


def test_ablation_bars():
    fig = figs.ablation_bars(["a", "<i>"], [0.6, 0.1], [0.2, 0.3])
    assert [t.name for t in fig.data] == ["all heads", "heads knocked out"]
    assert list(fig.data[1].y) == [0.2, 0.3] and list(fig.data[0].x) == ["a", "&lt;i&gt;"]
