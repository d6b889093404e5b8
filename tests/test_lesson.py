"""The guided lesson's steps: each preset produces what the step's text claims, asserted on the model's numbers,
on the bundled model and on tiny random checkpoints (where the claims must still follow the numbers)."""

from __future__ import annotations

import numpy as np
import pytest

from bert_core import lesson, load_model
from bert_core.stats import head_statistics, segment_crossing
from bert_core.training import lr_at


@pytest.fixture(scope="module", params=["bundled", "tiny", "tiny_mlm"])
def lm(request, bundled, tiny_dir, tiny_mlm_dir):
    return {"bundled": bundled, "tiny": load_model(str(tiny_dir), device="cpu"),
            "tiny_mlm": load_model(str(tiny_mlm_dir), device="cpu")}[request.param]


def answer(q: lesson.Question) -> str:
    return q.options[q.answer]


def test_pronoun_head_is_the_one_where_it_looks_hardest_at_the_noun(lm):
    r = lesson.step_attention(lm)
    ins = lm.inspect(lesson.PRONOUN_TEXT, with_mlm=False)
    assert r.tokens[r.query] == "it"
    assert r.tokens[r.target] in ("animal", "an", "a")  # a tiny vocabulary splits 'animal' into pieces
    np.testing.assert_allclose(r.row, ins.attentions[r.layer, r.head, r.query])
    words = [j for j, t in enumerate(r.tokens) if t not in ("[CLS]", "[SEP]") and j != r.query]
    rows = ins.attentions[:, :, r.query]
    tops = np.array(words)[rows[:, :, words].argmax(-1)]  # each head's top word
    assert r.top == words[int(np.argmax(r.row[words]))]  # the claimed top word really is the top word
    if (tops == r.target).any():  # some head has the noun on top: the chosen one does, with the largest weight
        assert r.noun_is_top
        assert r.row[r.target] == pytest.approx(rows[..., r.target][tops == r.target].max())
    else:
        assert r.row[r.target] == pytest.approx(rows[..., r.target].max())
    assert answer(r.question) == (r.tokens[r.top] if r.tokens[r.top] in lesson.PRONOUN_OPTIONS else "another word")


def test_bundled_has_a_head_that_links_it_to_animal(bundled):
    r = lesson.step_attention(bundled)
    assert r.noun_is_top and answer(r.question) == "animal"
    assert r.row[r.target] > 0.15


def test_tokens_step_counts_sentence_a(lm):
    r = lesson.step_tokens(lm)
    enc = lm.tokenize(lesson.TOKENS_A, lesson.TOKENS_B)
    assert r.tokens == enc.tokens and r.n_a == int((enc.token_type_ids == 0).sum())
    assert r.tokens[0] == "[CLS]" and r.tokens[r.n_a - 1] == "[SEP]" and r.tokens[-1] == "[SEP]"
    assert set(r.segments[r.n_a:]) == {1}
    n = r.n_a
    assert answer(r.question) == ("6 or fewer" if n <= 6 else "7 or 8" if n <= 8 else "9 or more")


def test_next_token_head_has_the_highest_next_share(lm):
    r = lesson.step_bidirectional(lm)
    ins = lm.inspect(lesson.NEXT_TEXT, with_mlm=False)
    nxt = head_statistics(ins.attentions, ins.tokens)["next"]
    assert r.share == pytest.approx(np.nanmax(nxt)) == pytest.approx(nxt[r.layer, r.head])
    assert r.share == pytest.approx(np.diagonal(r.attention, offset=1).mean())
    assert answer(r.question) == ("under 20%" if r.share < 0.2 else "20% to 50%" if r.share <= 0.5 else "over 50%")
    if lm.has_mlm_head:
        assert [g[0] for g in r.guesses] == [lm.fill_mask(t, 1)[0][0] for t in lesson.BIDI_TEXTS]


def test_bundled_next_head_and_both_sides(bundled):
    r = lesson.step_bidirectional(bundled)
    assert r.share > 0.5  # a clear 'look right' head exists in the bundled model
    assert r.guesses[0][0][0] != r.guesses[1][0][0]  # the words after the blank change BERT's top guess


def test_mlm_step(lm):
    r = lesson.step_mlm(lm)
    if not lm.has_mlm_head:
        assert r is None
        return
    assert r.top == lm.fill_mask(lesson.MLM_TEXT, 10)[0]
    top = r.top[0][0]
    assert answer(r.question) == (top if top in lesson.MLM_OPTIONS else "another word")


def test_nsp_step(lm):
    r = lesson.step_nsp(lm)
    ins = lm.inspect(lesson.NSP_A, lesson.NSP_NEXT, with_mlm=False)
    cross = segment_crossing(ins.attentions, ins.token_type_ids, ins.encoded.special)
    assert r.cross_share == pytest.approx(cross["A → B"].mean())
    if lm.has_nsp_head:
        assert r.p_next[0] == pytest.approx(float(ins.nsp_probs[0]))
        assert r.p_next[1] == pytest.approx(float(lm.inspect(lesson.NSP_A, lesson.NSP_RANDOM).nsp_probs[0]))
    else:
        assert r.p_next is None
        s = r.cross_share
        assert answer(r.question) == ("under 10%" if s < 0.1 else "10% to 30%" if s <= 0.3 else "over 30%")


def test_finetune_step(lm):
    r = lesson.step_finetune(lm)
    D = lm.config.hidden_size
    assert r.head_params == 2 * D + 2 and answer(r.question) == f"about {2 * D + 2:,}"
    assert r.model_params == sum(p.numel() for p in lm.model.parameters())
    np.testing.assert_allclose(r.probs.sum(1), 1.0)
    np.testing.assert_allclose(r.cls_vectors[0], lm.inspect(lesson.FINETUNE_TEXTS[0]).hidden_states[-1, 0], rtol=1e-6)


def test_training_and_family_steps(lm):
    r = lesson.step_training(lm)
    assert r.lr_at_question == lr_at(lesson.SCHEDULE_STEP, lesson.SCHEDULE)
    assert answer(r.question) == "about half the peak"  # step 50 of a 100-step warm-up
    assert r.lrs[0] < r.lrs[r.steps.index(100)] == pytest.approx(lesson.SCHEDULE.lr) and r.lrs[-1] == 0
    d = lesson.step_family(lm)
    assert answer(d.question) == "6"
    if lm.has_mlm_head:
        assert d.tokens[0] == lm.fill_mask(lesson.MLM_TEXT, 1)[0][0][0]
        assert d.soft[0] / d.soft[-1] < d.hard[0] / d.hard[-1]  # temperature narrows the gap to the runners-up


def test_word_position_uses_offsets_not_token_text(tiny_dir):
    tiny = load_model(str(tiny_dir), device="cpu")
    enc = tiny.tokenize("The animal sat.")
    i = lesson.word_position(enc, "The animal sat.", "animal")
    assert enc.offsets[i][0] == 4
    with pytest.raises(ValueError):
        lesson.word_position(enc, "The animal sat.", "dog")
