"""Play one round of the guessing game in a real browser (Debian chromium via Playwright), from a teacher's link."""

from __future__ import annotations

import re

import pytest

from bert_core import game, load_model
from browser_fixtures import app_rerun, assert_no_exception, open_page, pick_model

pytestmark = pytest.mark.browser


def test_play_one_round_from_a_shared_link(browser_page, app_server, tiny_mlm_dir):
    page = browser_page
    sentences = ["the {cat} sat on the mat .", "the <b>king</b> ate the {bread} ."]
    open_page(page, app_server, "")  # let the app's navigation register before a deep link
    open_page(page, app_server, f"playground?game={game.encode_set(sentences)}")
    pick_model(page, tiny_mlm_dir)
    main = page.locator("[data-testid='stMain']")
    assert main.get_by_text("a shared set of 2 sentences").count() == 1
    assert main.get_by_text("1 of 2").count() == 1
    assert main.locator("h4").first.inner_text().replace("\n", " ").strip() == "the [MASK] sat on the mat ."

    guess = main.locator("input[aria-label='Your guess (one word)']")
    guess.fill("dog")
    with app_rerun(page):
        guess.press("Enter")
    assert_no_exception(page)
    lm = load_model(str(tiny_mlm_dir), device="cpu")
    expect = game.score_guess(lm, game.parse_game_sentence(sentences[0]), "dog")
    verdict = main.get_by_text(re.compile(r"You guessed dog")).first.inner_text()
    assert f"rank {expect.guess.rank:,}" in verdict and f"+{expect.points} points" in verdict
    assert main.locator("[data-testid='stMetric']").nth(1).inner_text().endswith(str(expect.points))

    with app_rerun(page):
        main.get_by_role("button", name="Next round").click()
    assert main.get_by_text("2 of 2").count() == 1
    heading = main.locator("h4").first.inner_text()
    assert "<b>king</b>" in heading and page.locator("b", has_text="king").count() == 0  # HTML stays text
    assert_no_exception(page)
