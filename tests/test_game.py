"""bert_core.game's GameState without Streamlit: start, guess, skip, next, the score and the typed history."""

from __future__ import annotations

import random

import pytest

from bert_core import InputError, game, load_model

SENTENCES = ["the {cat} sat on the mat .", "the king ate the {bread} .", "the dogs played in the {house}"]


@pytest.fixture(scope="module")
def lm(tiny_mlm_dir):
    return load_model(str(tiny_mlm_dir), device="cpu")


def items(sentences=SENTENCES) -> list[game.GameItem]:
    return [game.parse_game_sentence(s) for s in sentences]


def test_start_in_order_or_shuffled():
    s = game.GameState.start(items(), "three")
    assert (s.order, s.round, s.score, s.history, s.result) == ((0, 1, 2), 0, 0, (), None)
    assert s.n_rounds == 3 and not s.over and s.item.answer == "cat" and not s.shuffled
    b = game.GameState.builtin(rng=random.Random(1))
    assert b.shuffled and b.n_rounds == game.GAME_ROUNDS == len(set(b.order)) and b.label == "the built-in sentences"
    assert [b.items[i].source for i in b.order] != list(game.BUILTIN_SENTENCES[:game.GAME_ROUNDS])  # shuffled
    assert b.order == game.GameState.builtin(rng=random.Random(1)).order  # the generator decides, not global state
    with pytest.raises(InputError, match="no sentences"):
        game.GameState.start([], "nothing")


def test_guess_scores_records_and_waits_for_next(lm):
    s0 = game.GameState.start(items(), "three")
    expect = game.score_guess(lm, s0.item, "dog")
    s1 = s0.guess(lm, "dog")
    assert s0.score == 0 and s0.result is None and s0.history == ()  # states are values: the old one is unchanged
    assert s1.score == expect.points and s1.round == 0 and s1.result.guess.rank == expect.guess.rank
    assert s1.history == (game.HistoryRow(round=1, sentence="the cat sat on the mat .", guess="dog",
                                          prob=expect.guess.prob, rank=expect.guess.rank, points=expect.points,
                                          bert_top=expect.top[0][0]),)
    with pytest.raises(InputError, match="already guessed"):
        s1.guess(lm, "cat")
    s2 = s1.next()
    assert (s2.round, s2.result, s2.score, s2.item.answer) == (1, None, expect.points, "bread")
    cat = game.score_guess(lm, s0.item, "cat")
    assert s0.guess(lm, "cat").score == cat.points == game.points_for(cat.guess.rank) + game.ANSWER_BONUS


@pytest.mark.parametrize("bad", ["", "   ", "two words", "<script>alert(1)</script>", "[mask]"])
def test_a_bad_guess_raises_and_changes_nothing(lm, bad):
    s = game.GameState.start(items(), "three")
    with pytest.raises(InputError):
        s.guess(lm, bad)
    assert s.round == 0 and s.score == 0 and s.history == () and s.result is None


def test_skip_records_an_empty_round_without_braces():
    s = game.GameState.start(items(), "three").skip()
    assert s.round == 1 and s.score == 0 and s.result is None
    row = s.history[0]
    assert row.skipped and (row.round, row.sentence, row.guess, row.rank, row.prob, row.points, row.bert_top) == \
        (1, "the cat sat on the mat .", None, None, None, 0, None)
    assert s.next().history[1].sentence == "the king ate the bread ."  # leaving a round unguessed skips it


def test_a_whole_game_then_play_again(lm):
    s = game.GameState.start(items(), "three", shuffle=True, rng=random.Random(0))
    total = 0
    for k in range(3):
        assert not s.over and s.last_round == (k == 2)
        if k == 2:
            s = s.skip()
            continue
        guess = s.item.answer if k == 0 else "dog"
        total += game.score_guess(lm, s.item, guess).points
        s = s.guess(lm, guess).next()
    assert s.over and s.round == 3 and s.score == total and s.max_score == 3 * 120
    assert [r.round for r in s.history] == [1, 2, 3] and [r.skipped for r in s.history] == [False, False, True]
    assert s.history[0].points == total - s.history[1].points and s.history[0].points >= game.ANSWER_BONUS
    assert s.next() is s and s.skip() is s
    with pytest.raises(InputError, match="over"):
        s.item
    again = s.restart(rng=random.Random(5))
    assert (again.round, again.score, again.history, again.shuffled, again.items) == (0, 0, (), True, s.items)
    assert sorted(again.order) == [0, 1, 2]


def test_points_rule_is_written_from_the_points_table(monkeypatch):
    assert game.points_rule() == ("its top choice scores 100, top 3 scores 70, top 10 scores 50, top 50 scores 25, "
                                  "top 200 scores 10, plus 20 if you also found the original word")
    monkeypatch.setattr(game, "POINTS", ((1, 5), (4, 2)))
    monkeypatch.setattr(game, "ANSWER_BONUS", 7)
    assert game.points_rule() == "its top choice scores 5, top 4 scores 2, plus 7 if you also found the original word"
    assert game.points_for(3, is_answer=True) == 9
    assert game.GameState.start(items(), "three").max_score == 3 * (5 + 7)


def test_item_plain_has_no_braces():
    assert game.parse_game_sentence("The {cat} sat.").plain == "The cat sat."
    assert game.parse_game_sentence("I like green apples, really.").plain == "I like green apples, really."
