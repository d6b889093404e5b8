"""Start a tiny pretraining run in a real browser and watch the live loss curve grow (Debian chromium, Playwright)."""

from __future__ import annotations

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from browser_fixtures import assert_no_exception, open_page, pick_model, wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LOSS_POINTS = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const title = p => ((p.layout && p.layout.title && p.layout.title.text) || '').replace(/<[^>]*>/g, '');
  const loss = plots.find(p => title(p) === 'Loss');
  return loss ? loss.data[0].y.length : -1;
}"""


def slider_to(page, label: str, key: str) -> None:
    """Move a slider to its first ("Home") or last ("End") option with the keyboard."""
    page.locator(f"[data-testid='stMain'] input[aria-label='{label}']").press(key)
    wait_for_app(page)


def loss_points(page, timeout: float = 120.0, more_than: int = 0) -> int:
    """Wait until the page's loss curve has more than ``more_than`` points; how many it has then."""
    try:
        handle = page.wait_for_function(f"min => {{ const n = ({LOSS_POINTS})(); return n > min ? n : false; }}",
                                        arg=more_than, timeout=timeout * 1000)
    except PlaywrightTimeout:
        raise AssertionError(f"the loss curve did not grow past {more_than} points "
                             f"(last seen {page.evaluate(LOSS_POINTS)})") from None
    return handle.json_value()


def test_a_tiny_run_updates_the_loss_curve_live(browser_page, app_server, tiny_dir):
    page = browser_page
    open_page(page, app_server, "")  # let the app's navigation register before a deep link
    open_page(page, app_server, "pretraining")
    pick_model(page, tiny_dir)
    main = page.locator("[data-testid='stMain']")
    slider_to(page, "Batch size (sequences per step)", "Home")
    slider_to(page, "Sequence length (tokens)", "Home")
    slider_to(page, "Steps", "End")  # long enough that Cancel is still there on a fast, idle machine
    main.get_by_role("button", name="Start training").click()
    first = loss_points(page)  # the fragment polls while the worker trains: the curve appears …
    later = loss_points(page, more_than=first)  # … and grows without any click
    assert later > first >= 1
    assert main.get_by_text("Training").count() >= 1
    main.get_by_role("button", name="Cancel").click()
    main.get_by_text("Cancelled after").first.wait_for(timeout=60_000)
    wait_for_app(page)
    assert main.get_by_text("Checkpoint saved").count() == 1
    assert_no_exception(page)
