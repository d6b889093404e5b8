"""End-to-end: a real ``streamlit run app.py`` driven by Debian's chromium through Playwright.

Every page opens without an exception box; the attention explorer, "Inside BERT" and the model picker are used
once each, the way a student would. Later pages add their own tests here, with the same two fixtures.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from browser_fixtures import app_rerun, assert_no_exception, open_page, phone_page, streamlit_server, wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGES = {"": "BERT Lab", "attention": "Attention explorer", "inside": "Inside BERT",
         "playground": "Masked-word playground", "pretraining": "Pretraining lab", "finetune": "Fine-tuning lab",
         "family": "BERT's family"}
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script> the giraffe'


def charts(page, at_least: int = 1):
    """The rendered plotly charts, once at least ``at_least`` of them have drawn (plotly loads lazily)."""
    page.wait_for_function(
        "n => document.querySelectorAll(\"[data-testid='stPlotlyChart'] .js-plotly-plot .main-svg\").length >= n",
        arg=at_least, timeout=30_000)
    return page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot")


def heatmap_title(page) -> str:
    return page.locator(".js-plotly-plot .gtitle").first.text_content()


def click_tab(page, name: str) -> None:
    """Open a tab that reruns the page, and wait for that run to finish."""
    tab = page.get_by_role("tab", name=re.compile(name))
    with app_rerun(page):
        tab.click()
    expect(tab).to_have_attribute("aria-selected", "true")


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_opens_without_an_exception(browser_page, app_server, path):
    page = browser_page
    open_page(page, app_server, path)
    # each expect retries until it holds (a loaded machine may still be drawing the page), then fails with its value
    if PAGES[path]:
        expect(page.locator("h1").first).to_contain_text(PAGES[path], timeout=60_000)
    # the app's frame is there: our navigation and the model picker
    expect(page.locator("[data-testid='stSidebarNav']").get_by_text("Attention explorer")).to_have_count(
        1, timeout=60_000)
    expect(page.get_by_text("Checkpoint").first).to_be_visible(timeout=60_000)
    wait_for_app(page)
    assert_no_exception(page)


def test_attention_explorer(browser_page, app_server):
    page = browser_page
    open_page(page, app_server, "attention")
    assert charts(page).count() >= 1
    assert heatmap_title(page) == "Layer 1, head 1 (L1·H1)"
    ticks = page.locator(".js-plotly-plot .xtick text").all_text_contents()
    assert ticks[0] == "[CLS]" and ticks[-1] == "[SEP]" and ticks.count("the") == 2  # repeated tokens kept apart

    # type a new sentence, including HTML that must stay text
    box = page.get_by_label("Sentence A")
    box.fill(XSS)
    with app_rerun(page):
        box.press("Control+Enter")
    assert_no_exception(page)
    ticks = page.locator(".js-plotly-plot .xtick text").all_text_contents()
    assert "gi" in ticks and "<" in ticks and "script" in ticks  # shown as tokens, as typed
    assert page.evaluate("window.__xss") is None

    # all heads: click the tile of layer index 2, head index 5 (shown from 1) and the large map follows
    click_tab(page, "All layers")
    assert charts(page, 2).count() == 2
    n_heads = 12
    tile = page.locator(".js-plotly-plot").first.locator(".scatterlayer .point").nth(2 * n_heads + 5)
    with app_rerun(page):
        tile.click(force=True)
    assert page.locator(".js-plotly-plot .gtitle").last.text_content() == "Layer 3, head 6 (L3·H6)"
    assert_no_exception(page)

    click_tab(page, "Head statistics")
    assert charts(page).count() == 1 and page.get_by_text("Highest:").count() == 1
    assert_no_exception(page)

    # bertviz: the view when the CDN is reachable, else a clear note (never a blank box), and no script from the text
    click_tab(page, "Lines")
    with app_rerun(page):
        page.get_by_text("bertviz (needs internet)").click()
    page.wait_for_function(
        """() => { const f = document.querySelector("iframe"); const d = f && f.contentDocument;
                   return d && (d.querySelector("svg") || d.querySelector("#bertlab-cdn-note[data-offline]")); }""",
        timeout=20_000)
    inner = page.locator("iframe").first.element_handle().content_frame()
    offline = inner.locator("#bertlab-cdn-note[data-offline]").count() == 1
    if offline:
        assert "could not load" in inner.locator("#bertlab-cdn-note").inner_text()
    else:
        assert inner.locator("svg").count() >= 1
    assert inner.evaluate("window.__xss") is None and page.evaluate("window.__xss") is None
    assert_no_exception(page)


def test_sentence_pair(browser_page, app_server):
    page = browser_page
    open_page(page, app_server, "attention")
    with app_rerun(page):
        page.get_by_text("Add a second sentence (B)").click()
    click_tab(page, "Between sentences")
    assert_no_exception(page)
    assert charts(page).count() == 1
    assert page.locator(".js-plotly-plot .legendtext").all_text_contents() == ["A → B", "B → A"]


def test_inside_bert(browser_page, app_server):
    page = browser_page
    open_page(page, app_server, "inside?stage=5")  # the last stage of the stepper: the layer's output
    assert charts(page, 2).count() >= 2
    assert "layer 1" in page.locator("[data-testid='stAlertContentSuccess']").inner_text()
    page.get_by_role("combobox", name="Layer", exact=True).click()  # the layer selectbox
    with app_rerun(page):
        page.get_by_role("option", name="3", exact=True).click()
    assert_no_exception(page)
    ok = page.locator("[data-testid='stAlertContentSuccess']").inner_text()
    assert "layer 3" in ok
    assert float(re.search(r"up to ([0-9.e+-]+)", ok).group(1)) < 1e-4


def test_model_picker_loads_a_folder_and_falls_back_on_a_bad_one(browser_page, app_server, tiny_dir):
    page = browser_page
    open_page(page, app_server, "")
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_role("combobox", name="Checkpoint").click()
    with app_rerun(page):
        page.get_by_role("option", name="Other hub id or local folder…").click()
    field = sidebar.get_by_role("textbox", name="Hub id or folder path")
    field.fill(str(tiny_dir))
    with app_rerun(page):
        field.press("Enter")
    assert "2 layers × 4 heads" in sidebar.inner_text()
    assert page.locator("[data-testid='stMetricValue']").first.inner_text() == "2"  # home shows the new model
    field = sidebar.get_by_role("textbox", name="Hub id or folder path")
    field.fill("/no/such/folder")
    with app_rerun(page):
        field.press("Enter")
    assert "Could not load" in sidebar.inner_text() and "6 layers × 12 heads" in sidebar.inner_text()
    assert_no_exception(page)


def test_cold_deep_link_runs_inside_the_app_frame(browser_page):
    """A teacher's link straight to a sub-page, as the very first request to a fresh server, gets the full app:
    the shared sidebar (model picker, page navigation), not the page file run on its own."""
    with streamlit_server() as url:
        open_page(browser_page, url, "playground")
        assert_no_exception(browser_page)
        sidebar = browser_page.locator("[data-testid='stSidebar']")
        assert sidebar.get_by_text("Checkpoint").count() >= 1
        nav = browser_page.locator("[data-testid='stSidebarNav']").inner_text()
        assert "Attention explorer" in nav and "Pretraining lab" in nav
        assert "app pages" not in nav.lower() and "playground.py" not in nav


def test_heatmap_toolbar_leaves_the_title_clear_on_a_phone(browser_page, app_server):
    with phone_page(browser_page) as page:
        open_page(page, app_server, "")
        open_page(page, app_server, "attention")
        chart = charts(page).first
        assert chart.locator(".gtitle").text_content() == "Layer 1, head 1 (L1·H1)"
        chart.tap()  # a phone shows plotly's toolbar on a tap
        bar, title = chart.locator(".modebar").bounding_box(), chart.locator(".gtitle").bounding_box()
        assert chart.locator(".modebar-btn").count() == 3  # PNG, zoom, reset
        assert title["x"] + title["width"] <= bar["x"] or title["y"] >= bar["y"] + bar["height"], (title, bar)
        assert_no_exception(page)
