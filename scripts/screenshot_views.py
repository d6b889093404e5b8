"""Screenshots of the explanation views at the three sizes we check (1280x720, 1400x1000, 390x844).

    python scripts/screenshot_views.py /tmp/shots                 # every view below
    python scripts/screenshot_views.py /tmp/shots --only why lines

Starts the app offline (bundled model) with requests outside localhost blocked, opens each view by its URL and
writes NAME_WIDTHxHEIGHT_top.png (the top of the page) and NAME_WIDTHxHEIGHT.png (scrolled to the view's chart).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

LONG = quote(" ".join(["the quick brown fox jumps over the lazy dog ."] * 60))
VIEWS = {
    "lines": "attention?tab=lines",
    "model_view": "attention?tab=lines",  # then the model view is picked
    "neuron": "attention?tab=neuron&layer=2&head=3",
    "head_512": f"attention?tab=head&text={LONG}",
    "grid_512": f"attention?tab=grid&text={LONG}",
    "head": "attention?tab=head",
    "head_hidden": "attention?tab=head",  # then "Hide [CLS] / [SEP]" is switched on
    "compare": "attention?tab=head&model={run}",  # then "compare with" the bundled model (run: --compare-run)
    "why": "why",
    "embeddings": "embeddings",
}
CHART = {"neuron": 1}  # which chart of the view to scroll to (default: the first)
SIZES = [(1280, 720), (1400, 1000), (390, 844)]


def colour_bars(page) -> str:
    """Heights (px) of each chart's colour bar and of its plot area, e.g. 'bar 310 / map 310'."""
    out = []
    for chart in page.locator("[data-testid='stPlotlyChart']").all():
        bar, area = chart.locator("g.colorbar rect.cbbg"), chart.locator("rect.nsewdrag")
        if bar.count() and area.count():
            b, a = bar.first.bounding_box(), area.first.bounding_box()
            if b and a:
                out.append(f"bar {b['height']:.0f} / map {a['height']:.0f}")
    return "; ".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--only", nargs="*", default=[v for v in VIEWS if v != "compare"])
    ap.add_argument("--compare-run", default="", help="a checkpoint folder with the bundled tokenizer (a lab run)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    from browser_fixtures import CHROMIUM, CHROMIUM_ARGS, local_page, open_page, streamlit_server, wait_for_app

    with streamlit_server() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        for w, h in SIZES:
            page = local_page(browser, w, h, 180_000)
            for name in args.only:
                open_page(page, url, VIEWS[name].format(run=quote(args.compare_run)), timeout=180)
                if name == "model_view":
                    page.get_by_text("Model view (every head)").click()
                    page.wait_for_timeout(300)
                    wait_for_app(page, timeout=180)
                if name == "head_hidden":
                    page.get_by_text("Hide [CLS] / [SEP]").click()
                    page.wait_for_timeout(300)
                    wait_for_app(page, timeout=180)
                if name == "compare":
                    page.wait_for_timeout(800)  # plotly settles; a click during a rerun closes the list again
                    page.get_by_role("combobox", name="Compare with").click()  # Streamlit's selectbox: open, pick
                    page.keyboard.type("Bundled")
                    page.keyboard.press("Enter")
                    page.wait_for_timeout(300)
                    wait_for_app(page, timeout=180)
                page.wait_for_timeout(800)  # let plotly finish its transitions before the picture
                page.screenshot(path=str(args.out / f"{name}_{w}x{h}_top.png"))
                charts = page.locator("[data-testid='stPlotlyChart']")
                if charts.count():  # the app scrolls inside its main block: bring the view's chart into sight
                    charts.nth(CHART.get(name, 0)).scroll_into_view_if_needed()
                    page.wait_for_timeout(500)
                page.screenshot(path=str(args.out / f"{name}_{w}x{h}.png"))
                print("wrote", args.out / f"{name}_{w}x{h}.png", colour_bars(page), flush=True)
            page.context.close()
        browser.close()


if __name__ == "__main__":
    main()
