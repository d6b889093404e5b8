"""The fine-tuning lab in a real browser: the quick demo's progress is in sight at 1280 × 720 without scrolling and
cancels; a run on an uploaded CSV full of HTML finishes, its report shows, and nothing in it executes."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from browser_fixtures import app_rerun, assert_no_exception, open_page, wait_for_app
from test_browser_pretraining import slider_to
from test_finetune import toy_data

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HOSTILE = "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=2</script>"


def test_upload_train_and_try_the_classifier(browser_page, app_server, tiny_dir, tmp_path):
    page = browser_page
    open_page(page, app_server, f"finetune?model={quote(str(tiny_dir))}", timeout=180)  # the tiny model
    main = page.locator("[data-testid='stMain']")
    d = toy_data()
    csv = tmp_path / "hostile.csv"
    csv.write_text("text,label\n" + "\n".join(f"\"{t} {HOSTILE.replace(chr(34), chr(34) * 2)}\",{d.names[y]}"
                                              for t, y in zip(d.texts, d.labels)))
    main.get_by_text("Upload a CSV").click()
    wait_for_app(page)
    main.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(csv))
    main.get_by_text("Examples per class").first.wait_for(timeout=60_000)
    wait_for_app(page)
    slider_to(page, "Time budget", "Home")  # off: the steps decide
    slider_to(page, "Steps", "Home")  # 10 steps
    main.get_by_role("button", name="Start", exact=True).click()
    try:  # a loaded 2-core machine can be many times slower than an idle one
        main.get_by_text("What the trained model gets right and wrong").wait_for(timeout=360_000)
    except PlaywrightTimeout:
        raise AssertionError("no report; the run says: " + " | ".join(main.locator(
            "[data-testid='stProgress'], [data-testid='stAlert']").all_inner_texts())) from None
    wait_for_app(page)
    assert main.get_by_text("Confusion matrix (held-out)").count() >= 1
    assert main.get_by_text("Saved (step 10)").count() == 1
    box = main.locator("input[aria-label='Type a sentence for your classifier']")
    box.fill("i hate this bad film " + HOSTILE)
    box.press("Enter")
    wait_for_app(page)
    assert page.evaluate("() => window.__pwned === undefined")  # the HTML in the data and the box never ran
    assert_no_exception(page)


def test_the_quick_demo_progress_is_in_sight_at_1280x720_and_cancels(browser_page, app_server, tiny_dir):
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 720})
    try:
        open_page(page, app_server, f"finetune?model={quote(str(tiny_dir))}", timeout=180)  # the tiny model
        main = page.locator("[data-testid='stMain']")
        main.get_by_text("on this machine (measured:").wait_for(timeout=120_000)  # the estimate, before Start
        assert page.evaluate("() => window.scrollY") == 0
        with app_rerun(page):
            main.get_by_role("button", name="Start", exact=True).click()
        bar = main.locator("[data-testid='stProgress']").first
        bar.wait_for(timeout=60_000)
        main.get_by_text(re.compile(r"Training: .* left")).first.wait_for(timeout=240_000)  # it trains: time left
        box = bar.bounding_box()
        assert page.evaluate("() => window.scrollY") == 0
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 720, box  # no scrolling needed
        cancel = main.get_by_role("button", name="Cancel")
        cbox = cancel.bounding_box()
        assert cbox is not None and cbox["y"] + cbox["height"] <= 720, cbox  # and Cancel beside it
        cancel.click()
        main.get_by_text("Cancelled after").first.wait_for(timeout=120_000)
        wait_for_app(page)
        assert main.get_by_role("button", name="Cancel").count() == 0
        assert_no_exception(page)
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})
