"""Head statistics on hand-made attention maps whose answers are known."""

import numpy as np
import pytest

from bert_core.stats import STATISTICS, head_statistics, is_punctuation, segment_crossing

TOKENS = ["[CLS]", "the", "cat", "sat", ".", "[SEP]"]
T = len(TOKENS)


def maps(*heads: np.ndarray) -> np.ndarray:
    """Stack (T, T) maps into one layer: (1, H, T, T)."""
    return np.stack(heads)[None]


def one_hot_rows(targets: list[int]) -> np.ndarray:
    a = np.zeros((len(targets), len(targets)))
    a[np.arange(len(targets)), targets] = 1.0
    return a


def test_previous_token_head():
    a = one_hot_rows([0, 0, 1, 2, 3, 4])  # row 0 has no previous token: it looks at itself
    s = head_statistics(maps(a), TOKENS)
    assert set(s) == set(STATISTICS)
    assert s["prev"][0, 0] == pytest.approx(1.0)  # every row 1..5 puts everything on i-1
    assert s["next"][0, 0] == pytest.approx(0.0)
    assert s["self"][0, 0] == pytest.approx(1 / 6)
    assert s["entropy"][0, 0] == pytest.approx(0.0)
    assert s["distance"][0, 0] == pytest.approx(5 / 6)  # five rows at distance 1, one at 0
    assert s["cls"][0, 0] == pytest.approx(2 / 6)  # rows 0 and 1 land on [CLS]
    assert s["punct"][0, 0] == pytest.approx(1 / 6)  # row 5 ([SEP]) looks at '.'


def test_uniform_head_and_sep_head():
    uniform = np.full((T, T), 1 / T)
    to_sep = one_hot_rows([5] * T)
    s = head_statistics(maps(uniform, to_sep), TOKENS)
    assert s["entropy"][0].tolist() == pytest.approx([np.log2(T), 0.0])
    assert s["sep"][0].tolist() == pytest.approx([1 / T, 1.0])
    assert s["cls"][0].tolist() == pytest.approx([1 / T, 0.0])
    # mean |i - j| under the uniform map: sum over all pairs / T^2
    i = np.arange(T)
    assert s["distance"][0, 0] == pytest.approx(np.abs(i[:, None] - i[None]).mean())
    assert s["distance"][0, 1] == pytest.approx(np.mean(5 - i))  # everyone looks at position 5
    assert s["next"][0].tolist() == pytest.approx([1 / T, 1 / (T - 1)])  # only row 4 → 5 counts, over 5 rows


def test_shapes_over_layers_and_heads_and_encoded_input():
    rng = np.random.default_rng(0)
    a = rng.random((3, 4, T, T))
    a /= a.sum(-1, keepdims=True)

    class Enc:  # anything with .tokens works, like bert_core.Encoded
        tokens = TOKENS

    s = head_statistics(a, Enc())
    for key, v in s.items():
        assert v.shape == (3, 4), key
    # shares of disjoint token sets can never exceed 1 together
    assert np.all(s["cls"] + s["sep"] + s["punct"] <= 1 + 1e-9)


def test_wrong_shape_is_rejected():
    with pytest.raises(ValueError, match="T = 6"):
        head_statistics(np.ones((1, 1, 5, 5)) / 5, TOKENS)


def test_punctuation_detection():
    assert is_punctuation(".") and is_punctuation("##!") and is_punctuation("?!")
    assert not is_punctuation("cat") and not is_punctuation("[SEP]") and not is_punctuation("##s")


def test_segment_crossing_known_answer():
    tokens = ["[CLS]", "a", "b", "[SEP]", "c", "d", "[SEP]"]
    tt = np.array([0, 0, 0, 0, 1, 1, 1])
    special = np.array([t in ("[CLS]", "[SEP]") for t in tokens])
    a = np.zeros((2, 1, 7, 7))
    a[0, 0] = np.eye(7)  # layer 0: everyone on itself → nothing crosses
    a[1, 0, :, 4] = 1.0  # layer 1: everyone on 'c' (segment B)
    out = segment_crossing(a, tt, special)
    assert out["A → B"].tolist() == pytest.approx([0.0, 1.0])
    assert out["B → A"].tolist() == pytest.approx([0.0, 0.0])
    with pytest.raises(ValueError, match="pair"):
        segment_crossing(a, np.zeros(7, dtype=int), special)
