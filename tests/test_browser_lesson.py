"""In a real browser: the guided lesson stepped through in presenter mode, and the guessing game on a phone
(390 × 844) with its question on the first screen."""

from __future__ import annotations

import pytest

from bert_core import game, lesson
from browser_fixtures import app_rerun, assert_no_exception, open_page, phone_page, wait_for_app

pytestmark = pytest.mark.browser
STEP_TIMEOUT_S = 180.0  # an upper bound only: the test goes on as soon as the step is there


def inside_viewport(box: dict, width: int, height: int) -> bool:
    return box is not None and box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= width \
        and box["y"] + box["height"] <= height


def test_lesson_in_presenter_mode(browser_page, app_server):
    page = browser_page
    open_page(page, app_server, "lesson?present=1", timeout=STEP_TIMEOUT_S)
    main = page.locator("[data-testid='stMain']")
    assert page.locator("[data-testid='stSidebar']").is_hidden()  # presenter mode hides the sidebar
    for i, step in enumerate(lesson.STEPS):
        heading = main.locator("h2").filter(has_text=f"{i + 1}. {step.title}")
        heading.first.wait_for(timeout=STEP_TIMEOUT_S * 1000)  # each step runs the model live: slow when loaded
        wait_for_app(page, STEP_TIMEOUT_S)
        assert_no_exception(page)
        assert main.locator("h2").first.inner_text().strip() == f"{i + 1}. {step.title}"
        assert f"step={i + 1}" in page.url
        if i < len(lesson.STEPS) - 1:
            main.get_by_role("button", name="Next").first.click()
    with app_rerun(page, timeout=STEP_TIMEOUT_S):
        main.get_by_role("button", name="Leave presenter mode").click()
    assert page.locator("[data-testid='stSidebar']").is_visible()


def test_game_question_on_the_first_phone_screen(browser_page, app_server):
    with phone_page(browser_page) as page:
        sentences = ["the {cat} sat on the mat .", "paris is the capital of {france} ."]
        open_page(page, app_server, "")
        open_page(page, app_server, f"playground?game={game.encode_set(sentences)}")
        assert_no_exception(page)
        main = page.locator("[data-testid='stMain']")
        question = main.locator("h4").first
        assert question.inner_text().replace("\n", " ").strip() == "the [MASK] sat on the mat ."
        assert inside_viewport(question.bounding_box(), 390, 844), question.bounding_box()
        guess = main.locator("input[aria-label='Your guess (one word)']")
        assert inside_viewport(guess.bounding_box(), 390, 844), guess.bounding_box()
        guess.fill("dog")
        with app_rerun(page):
            guess.press("Enter")
        assert_no_exception(page)
        assert main.get_by_text("You guessed dog").count() >= 1
