"""Fine-tune from an uploaded CSV full of HTML in a real browser: the run finishes, the report shows, nothing executes."""

from __future__ import annotations

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from browser_fixtures import assert_no_exception, open_page, pick_model, wait_for_app
from test_browser_pretraining import slider_to
from test_finetune import toy_data

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HOSTILE = "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=2</script>"


def test_upload_train_and_try_the_classifier(browser_page, app_server, tiny_dir, tmp_path):
    page = browser_page
    open_page(page, app_server, "")
    open_page(page, app_server, "finetune")
    pick_model(page, tiny_dir)
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
    slider_to(page, "Steps", "Home")  # 10 steps
    main.get_by_role("button", name="Start fine-tuning").click()
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
