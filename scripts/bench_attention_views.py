"""Browser time to draw the attention explorer's views for long inputs (issue #14).

    python scripts/bench_attention_views.py                     # T = 128 and 512, 2 repeats each
    python scripts/bench_attention_views.py --tokens 512 --repeats 3

Starts ``streamlit run app.py`` (bundled model, offline), opens the attention explorer in headless chromium,
types a sentence of exactly T wordpieces and times, from the key press (or tab click) until the chart is drawn
and the app is idle:
- "one head": the single-head heatmap (its plotted z has T rows), after typing the text (forward pass included);
- "next head": the heatmap of the next head after one step of the head slider (forward pass cached);
- "grid": the all layers × heads tab;
- "lines" (when the page has it): the line head view.
Each time includes the server's forward pass and the page rerun, as a student waits for them.
With --plotly-only: Plotly.newPlot of this checkout's figures alone (random attention, no server, no model).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(1, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WORDS = "the quick brown fox jumps over lazy dog and cat sat on mat by river bank".split()

# Largest square heatmap on the page whose plotted z has n rows, drawn (has calcdata).
_HEAD_DRAWN = """n => [...document.querySelectorAll('.js-plotly-plot')].some(gd =>
    gd.calcdata && gd.calcdata[0] && gd.calcdata[0][0] && gd.calcdata[0][0].z && gd.calcdata[0][0].z.length === n
    && gd.calcdata[0][0].z[0].length === n)"""
_TITLE_DRAWN = """t => [...document.querySelectorAll('.js-plotly-plot')].some(gd =>
    gd.calcdata && gd.layout && gd.layout.title && String(gd.layout.title.text).replace(/<[^>]*>/g, "") === t)"""
_CHART_IN_TAB = """() => { const p = document.querySelector("[role='tabpanel']:not([hidden])");
    return !!p && [...p.querySelectorAll('.js-plotly-plot')].some(gd => gd.calcdata && gd.calcdata.length); }"""


def sentence(n_tokens: int) -> str:
    """A text of exactly n_tokens wordpieces with [CLS] and [SEP] (each word is one wordpiece)."""
    return " ".join(WORDS[i % len(WORDS)] for i in range(n_tokens - 2))


def painted(page) -> None:
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def time_head(page, text: str, n: int) -> float:
    from browser_fixtures import wait_for_app

    box = page.get_by_label("Sentence A")
    box.fill(text)
    t0 = time.perf_counter()
    box.press("Control+Enter")
    page.wait_for_function(_HEAD_DRAWN, arg=n, timeout=300_000, polling=100)
    wait_for_app(page, timeout=300, settle=0.0)
    painted(page)
    return time.perf_counter() - t0


def time_next_head(page) -> float:
    """Move the head slider one step (the forward pass is cached): the new head's heatmap is drawn."""
    from browser_fixtures import wait_for_app

    thumb = page.locator("[data-testid='stSlider']").nth(1).get_by_role("slider")
    thumb.focus()
    t0 = time.perf_counter()
    thumb.press("ArrowRight")
    from ui.text import head_label, head_name, layer_name

    title = f"{layer_name(0).capitalize()}, {head_name(1)} ({head_label(0, 1)})"  # as the explorer titles it
    page.wait_for_function(_TITLE_DRAWN, arg=title, timeout=300_000, polling=100)
    wait_for_app(page, timeout=300, settle=0.0)
    painted(page)
    return time.perf_counter() - t0


def time_tab(page, name: str) -> float:
    import re

    from browser_fixtures import wait_for_app

    t0 = time.perf_counter()
    page.get_by_role("tab", name=re.compile(name)).click()
    page.wait_for_function(_CHART_IN_TAB, timeout=300_000, polling=100)
    wait_for_app(page, timeout=300, settle=0.0)
    painted(page)
    return time.perf_counter() - t0


def plotly_only(page, n: int, repeats: int) -> dict[str, float]:
    """Plotly alone (no Streamlit, no model): Plotly.newPlot of this checkout's figures on random attention."""
    import numpy as np
    import plotly

    sys.path.insert(0, str(ROOT))
    from ui import figures_attention as fa

    rng = np.random.default_rng(0)
    a = np.exp(rng.normal(size=(6, 12, n, n)) * 3).astype(np.float32)
    a /= a.sum(-1, keepdims=True)
    toks = [WORDS[i % len(WORDS)] for i in range(n)]
    figs = {"one head": fa.attention_heatmap(a[0, 0], toks, "Layer 0, head 0"), "grid": fa.head_grid(a)}
    try:
        from ui import figures_lines

        figs["lines"] = figures_lines.head_lines(a[0], toks, [0])
    except ImportError:  # a checkout from before the line views
        pass
    page.set_content("<div id='g' style='width:1000px'></div>")
    page.add_script_tag(path=str(Path(plotly.__file__).parent / "package_data" / "plotly.min.js"))
    out = {}
    for name, fig in figs.items():
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            page.evaluate("s => { const f = JSON.parse(s); return Plotly.newPlot('g', f.data, f.layout); }",
                          fig.to_json())
            painted(page)
            times.append(time.perf_counter() - t0)
            page.evaluate("() => Plotly.purge('g')")
        out[name] = statistics.median(times)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, nargs="+", default=[128, 512])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--plotly-only", action="store_true", help="time Plotly.newPlot of the figures alone")
    args = ap.parse_args()
    if args.plotly_only:
        from playwright.sync_api import sync_playwright

        from browser_fixtures import CHROMIUM, CHROMIUM_ARGS

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(600_000)
            for n in args.tokens:
                res = plotly_only(page, n, args.repeats)
                print(f"T={n} plotly only: " + ", ".join(f"{k} {v:.2f} s" for k, v in res.items()), flush=True)
            browser.close()
        return
    from playwright.sync_api import sync_playwright

    from browser_fixtures import CHROMIUM, CHROMIUM_ARGS, open_page, streamlit_server

    with streamlit_server() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(300_000)
        results = {}
        for n in args.tokens:
            runs: dict[str, list[float]] = {"one head": [], "next head": [], "grid": [], "lines": []}
            for _ in range(args.repeats):
                open_page(page, url, "attention", timeout=300)
                runs["one head"].append(time_head(page, sentence(n), n))
                runs["next head"].append(time_next_head(page))
                runs["grid"].append(time_tab(page, "All layers"))
                if page.get_by_role("tab", name="Lines").count():
                    runs["lines"].append(time_tab(page, "Lines"))
            results[n] = {k: statistics.median(v) for k, v in runs.items() if v}
            print(f"T={n}: " + ", ".join(f"{k} {v:.1f} s" for k, v in results[n].items())
                  + "  (runs: " + "; ".join(f"{k} " + "/".join(f"{x:.1f}" for x in v) for k, v in runs.items() if v)
                  + ")", flush=True)
        browser.close()


if __name__ == "__main__":
    main()
