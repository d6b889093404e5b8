"""The pretraining lab's figure builders: the numbers in the figure are the numbers given, tokens stay text."""

from __future__ import annotations

import numpy as np
import pytest

from bert_core.stats import head_entropy
from ui import figures_training as figs


def test_ema_is_bias_corrected_and_smooths():
    assert figs.ema([5.0, 5.0, 5.0]).tolist() == pytest.approx([5.0, 5.0, 5.0])  # no pull towards 0 at the start
    noisy = np.array([1.0, 3.0] * 50)
    assert figs.ema(noisy)[-20:].std() < 0.3 * noisy[-20:].std()


def test_loss_curve_carries_the_losses_and_the_heldout_points():
    fig = figs.loss_curve([1, 2, 3], [3.0, 2.5, 2.0], [0, 3], [3.2, 2.1], "Loss")
    raw, smooth, held = fig.data
    assert list(raw.y) == [3.0, 2.5, 2.0] and list(held.x) == [0, 3] and list(held.y) == [3.2, 2.1]
    assert smooth.y[-1] > 2.0  # smoothing lags behind a falling loss


def test_accuracy_axis_is_a_percentage_that_fits_the_data():
    fig = figs.accuracy_curve([0, 10], [0.0, 0.3], [0.1, 0.6])
    assert fig.layout.yaxis.tickformat == ".0%" and fig.layout.yaxis.range[1] >= 0.6


def test_attention_snapshots_share_one_scale_and_escape_tokens():
    a = np.full((3, 3), 1 / 3)
    b = np.eye(3)
    fig = figs.attention_snapshots([a, b], ["[CLS]", "<b>x</b>", "[SEP]"], [0, 50])
    assert [t.zmax for t in fig.data] == [1.0, 1.0]
    assert "&lt;b&gt;x&lt;/b&gt;" in fig.layout.xaxis.ticktext
    assert [ann.text for ann in fig.layout.annotations] == ["step 0", "step 50"]


def test_entropy_heatmap_rows_are_heads_and_scale_is_fixed():
    att = np.stack([np.full((2, 3, 4, 4), 0.25), np.tile(np.eye(4), (2, 3, 1, 1))])  # (S=2, L, H, T, T)
    ent = np.stack([head_entropy(x) for x in att])
    fig = figs.entropy_heatmap([0, 10], ent, max_bits=2.0)
    z = np.asarray(fig.data[0].z)
    assert z.shape == (6, 2) and z[:, 0] == pytest.approx(2.0) and z[:, 1] == pytest.approx(0.0, abs=1e-6)
    assert list(fig.data[0].y)[:2] == ["L1 H1", "L1 H2"] and fig.data[0].zmin == 0 and fig.data[0].zmax == 2.0


def test_lr_schedule_shades_the_warmup():
    fig = figs.lr_schedule([1, 2, 3, 4], [0.5, 1.0, 0.5, 0.0], 2)
    assert list(fig.data[0].y) == [0.5, 1.0, 0.5, 0.0]
    assert fig.layout.shapes[0].x1 == 2
