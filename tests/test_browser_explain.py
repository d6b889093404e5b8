"""End-to-end (chromium): the offline line views, the neuron view, shared URLs, the Why and embeddings pages.

The line views are opened with every request outside localhost aborted, as in a classroom without internet.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, quote, urlparse

import pytest
from playwright.sync_api import expect
from browser_fixtures import app_rerun, assert_no_exception, open_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script> the giraffe'
HOSTILE = {
    "html": XSS + " ate the [MASK] .",
    "20 masks": " ".join(["[MASK]"] * 20),
    "700 words": "the cat sat on the [MASK] . " + "words and more words " * 175,
    "emoji": "😀 I love [MASK] 🎉",
}


@pytest.fixture
def offline_page(browser_page):
    """A fresh tab whose requests to anything but localhost are aborted (no CDN, no internet)."""
    ctx = browser_page.context.browser.new_context(viewport={"width": 1400, "height": 1000})
    blocked = []

    def route(r):
        host = urlparse(r.request.url).hostname or ""
        if host in ("127.0.0.1", "localhost"):
            return r.continue_()
        blocked.append(r.request.url)
        return r.abort()

    ctx.route("**/*", route)
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    page.blocked = blocked
    yield page
    ctx.close()


def drawn_lines(page) -> int:
    """Line traces drawn by plotly in the page (the line views' links)."""
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .scatterlayer path.js-line').length > 0",
                           timeout=30_000)
    return page.locator(".js-plotly-plot .scatterlayer path.js-line").count()


def shown_value(page, label: str) -> str:
    """What a selectbox shows (its text and its input's value)."""
    box = page.locator("[data-testid='stSelectbox']").filter(has=page.get_by_role("combobox", name=label))
    return box.evaluate("el => el.innerText + ' ' + [...el.querySelectorAll('input')].map(i => i.value).join(' ')")


def test_line_views_render_offline_and_a_click_focuses(offline_page, app_server):
    page = offline_page
    open_page(page, app_server, "attention?tab=lines&text=" + quote(XSS))
    assert_no_exception(page)
    assert drawn_lines(page) >= 1
    assert page.evaluate("window.__xss") is None
    assert "every token" in shown_value(page, "Focus on")
    left = page.locator(".js-plotly-plot .scatterlayer .trace").nth(-2).locator(".point")
    with app_rerun(page):
        left.nth(3).click(force=True)  # token #3 on the query side
    assert "#3 " in shown_value(page, "Focus on")
    assert_no_exception(page)

    with app_rerun(page):
        page.get_by_text("Model view (every head)").click()
    assert drawn_lines(page) >= 12
    cells = page.locator(".js-plotly-plot .scatterlayer .trace").last.locator(".point")
    with app_rerun(page):
        cells.nth(2 * 12 + 5).click(force=True)  # layer 2, head 5
    assert parse_qs(urlparse(page.url).query)["layer"] == ["2"] and parse_qs(urlparse(page.url).query)["head"] == ["5"]
    assert_no_exception(page)
    assert not any("127.0.0.1" in u for u in page.blocked)


def test_shared_url_restores_the_view(browser_page, app_server):
    page = browser_page
    open_page(page, app_server, "attention?text=" + quote("Dogs <b>bark</b> 😀") + "&layer=3&head=4&tab=grid")
    expect(page.get_by_label("Sentence A")).to_have_value("Dogs <b>bark</b> 😀", timeout=60_000)
    assert_no_exception(page)
    page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot .gtitle')]"
                           ".some(t => t.textContent === 'Layer 4, head 5 (L4·H5)')", timeout=30_000)
    assert page.get_by_role("tab", name=re.compile("All layers")).get_attribute("aria-selected") == "true"
    thumb = page.locator("[data-testid='stSlider']").nth(1).get_by_role("slider")
    thumb.focus()
    with app_rerun(page):
        thumb.press("ArrowRight")
    q = parse_qs(urlparse(page.url).query)
    assert (q["head"], q["layer"], q["tab"], q["text"]) == (["5"], ["3"], ["grid"], ["Dogs <b>bark</b> 😀"])


def test_neuron_view(offline_page, app_server):
    page = offline_page
    open_page(page, app_server, "attention?tab=neuron&layer=2&head=3")
    assert_no_exception(page)
    ok = page.locator("[data-testid='stAlertContentSuccess']").inner_text()
    assert "layer 3, head 4" in ok and float(re.search(r"difference ([0-9.e+-]+)\.", ok).group(1)) < 1e-6
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 2", timeout=30_000)


@pytest.mark.parametrize("case", list(HOSTILE))
def test_why_page_hostile_text(browser_page, app_server, case):
    page = browser_page
    open_page(page, app_server, "why")
    box = page.get_by_label("Sentence (with [MASK] for a word guess)")
    box.fill(HOSTILE[case])
    with app_rerun(page, timeout=300):  # 700 words: a 512-token guess, then integrated gradients on 128
        box.press("Control+Enter")
    assert_no_exception(page)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .barlayer .point').length >= 3",
                           timeout=60_000)
    assert page.get_by_text("Do they agree?").count() == 1
    assert page.evaluate("window.__xss") is None


def test_embeddings_page(offline_page, app_server):
    page = offline_page
    open_page(page, app_server, "embeddings")
    assert_no_exception(page)
    box = page.get_by_label("Your own sentences with the word (one per line, up to 20)")
    box.fill(XSS.replace("giraffe", "bank") + "\n😀 bank " + "[MASK] " * 20)
    with app_rerun(page, timeout=120):
        box.press("Control+Enter")
    assert_no_exception(page)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .scatterlayer .point').length >= 14",
                           timeout=30_000)
    assert page.locator(".js-plotly-plot .legendtext").all_text_contents()[:3] == ["river side", "money",
                                                                                   "your sentence"]
    assert page.evaluate("window.__xss") is None
    assert page.locator("[data-testid='stDataFrame']").count() == 1
