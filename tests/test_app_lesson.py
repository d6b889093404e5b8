"""AppTest walks the guided lesson on the bundled model and on a tiny checkpoint: every step renders its view
without an exception, the charts show the step's numbers, the URL holds the step, predict-then-reveal works."""

from __future__ import annotations

import numpy as np
import pytest
from apptest_support import chart, charts, errors, new_app, open_page, plotly_array

from bert_core import lesson, load_model
from ui.text import head_label

PAGE = "app_pages/lesson.py"
CHART_STEPS = {"attention", "bidirectional", "mlm", "nsp", "training", "family"}


def click(at, label: str, nth: int = -1):
    return [b for b in at.button if b.label == label][nth].click().run()


@pytest.mark.parametrize("which", ["bundled", "tiny"])
def test_walk_the_whole_lesson(which, tiny_dir, bundled):
    model = "bundled" if which == "bundled" else str(tiny_dir)
    lm = bundled if which == "bundled" else load_model(str(tiny_dir), device="cpu")
    at = open_page(PAGE, model)
    for i, step in enumerate(lesson.STEPS):
        assert not errors(at), (step.key, errors(at))
        assert at.header[0].value == f"{i + 1}. {step.title}"
        assert at.query_params["step"] in (str(i + 1), [str(i + 1)])
        assert any(e.label == "Talking points for the teacher" for e in at.expander)
        asked = [r for r in at.radio if r.key == f"lesson_q_{step.key}"]
        if asked:  # the live view would give the answer away: hidden until the students commit and reveal
            assert not charts(at) and [b for b in at.button if b.label == "Reveal"][0].disabled, step.key
            asked[0].set_value(asked[0].options[0]).run()
            click(at, "Reveal", 0)
            assert not any("Predict first, then press" in m.value for m in at.info), step.key
        if step.key in CHART_STEPS and (lm.has_mlm_head or step.key != "mlm"):
            assert charts(at), step.key
        if step.key == "attention":
            r = lesson.step_attention(lm)
            spec = chart(at, f"{head_label(r.layer, r.head)}: where 'it' looks")
            np.testing.assert_allclose(plotly_array(spec["data"][0]["y"]),
                                       lm.inspect(lesson.PRONOUN_TEXT).attentions[r.layer, r.head, r.query], rtol=1e-5)
            assert any(head_label(r.layer, r.head) in m.value and f"layer {r.layer + 1}, head {r.head + 1}" in m.value
                       for m in at.markdown)
        if step.key == "tokens":
            assert [int(x) for x in at.dataframe[0].value["piece id"]] == \
                   [int(x) for x in lm.tokenize(lesson.TOKENS_A, lesson.TOKENS_B).input_ids]
        if i < len(lesson.STEPS) - 1:
            click(at, "Next")
    assert [b for b in at.button if b.label == "Next"][-1].disabled
    click(at, "Back")
    assert at.header[0].value.startswith(f"{len(lesson.STEPS) - 1}.")


def test_predict_then_reveal_shows_the_real_number(bundled):
    at = open_page(PAGE, "bundled")
    reveal = [b for b in at.button if b.label == "Reveal"][0]
    assert reveal.disabled  # students commit first
    r = lesson.step_attention(bundled)
    wrong = next(o for o in r.question.options if o != r.question.options[r.question.answer])
    at.radio(key="lesson_q_attention").set_value(wrong).run()
    click(at, "Reveal", 0)
    assert not at.success and at.warning
    assert f"{r.row[r.top]:.1%}" in at.warning[0].value and r.question.options[r.question.answer] in at.warning[0].value
    at.radio(key="lesson_q_attention").set_value(r.question.options[r.question.answer]).run()
    assert at.success and f"{r.row[r.top]:.1%}" in at.success[0].value


def test_step_and_presenter_mode_from_the_url():
    at = new_app("bundled")
    at.query_params["step"] = "7"
    at.query_params["present"] = "1"
    at.switch_page(PAGE).run()
    assert not errors(at)
    assert at.header[0].value.startswith("7. Training tips")
    assert at.session_state["presenter"] is True
    assert [b.label for b in at.button].count("Next") == 2  # on the projector, Back/Next also at the top
    assert not charts(at) and any("Predict first, then press" in m.value for m in at.info)  # the view's column
    click(at, "Leave presenter mode", 0)
    assert at.session_state["presenter"] is False and "present" not in at.query_params


@pytest.mark.parametrize("raw,expected", [("3", 3), ("0", 1), ("99", len(lesson.STEPS)), ("x", 1)])
def test_junk_step_in_the_url_is_clamped(raw, expected):
    at = new_app("bundled")
    at.query_params["step"] = raw
    at.switch_page(PAGE).run()
    assert not errors(at) and at.header[0].value.startswith(f"{expected}.")
