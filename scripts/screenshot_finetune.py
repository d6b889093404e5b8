"""Screenshots of the fine-tuning lab at 1280x720, 1400x1000 and 390x844: before Start, running, finished, compared.

    nice -n 10 python scripts/screenshot_finetune.py /tmp/shots                 # a tiny random model (quick)
    nice -n 10 python scripts/screenshot_finetune.py /tmp/shots --model bundled

Starts the app offline with a fresh kept-runs folder under OUT, runs the quick demo (cancelled once it shows its
progress) and two short runs, and writes finetune_<state>_<W>x<H>.png (the viewport) for each state.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # the server's torch: one thread (two spin badly on a busy 2-core box)
SIZES = [(1280, 720), (1400, 1000), (390, 844)]
LONG_S = 600_000  # ms: a loaded 2-core machine is slow


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--model", help="a model name or folder (default: a tiny random checkpoint)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model = args.model
    if model is None:
        from conftest import make_checkpoint

        model = tempfile.mkdtemp(prefix="bert-lab-tiny-")
        make_checkpoint(Path(model))
    os.environ["BERT_LAB_FINETUNE_RUNS"] = str(args.out / "kept")
    from playwright.sync_api import sync_playwright

    from browser_fixtures import (CHROMIUM, CHROMIUM_ARGS, app_rerun, local_page, open_page, streamlit_server,
                                  wait_for_app)

    def shot(page, name: str, w: int, h: int, anchor: str | None = None) -> None:
        if anchor:
            page.get_by_text(anchor).first.scroll_into_view_if_needed()
        else:
            page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=str(args.out / f"finetune_{name}_{w}x{h}.png"))
        print("wrote", name, w, h, flush=True)

    def run(page, main, short: bool) -> None:
        if short:  # the steps decide: 10 of them
            if main.get_by_text("Data and settings for the next run").count():
                main.get_by_text("Data and settings for the next run").click()
            for slider in ("Time budget", "Steps", "Training examples", "Held-out examples"):  # off, 10, 100, 100
                main.locator(f"input[aria-label='{slider}']").press("Home")
                wait_for_app(page, 180)
        page.evaluate("() => window.scrollTo(0, 0)")
        with app_rerun(page, 180):
            main.get_by_role("button", name="Start", exact=True).click()

    with streamlit_server() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        for w, h in SIZES:
            page = local_page(browser, w, h, LONG_S)
            open_page(page, url, f"finetune?model={quote(model)}", timeout=600)
            main = page.locator("[data-testid='stMain']")
            main.get_by_text("on this machine (measured:").wait_for()
            wait_for_app(page, 180)
            shot(page, "before", w, h)
            if (w, h) != (1400, 1000):  # the quick demo running, then cancelled
                run(page, main, short=False)
                main.get_by_text(re.compile(r"Training: .* left")).first.wait_for()
                wait_for_app(page, 180)
                shot(page, "running", w, h)
                main.get_by_role("button", name="Cancel").click()
                main.get_by_text("Cancelled after").first.wait_for()
                wait_for_app(page, 180)
            if (w, h) == (1280, 720):  # two short runs: a finished report, then a comparison
                for _ in range(2):
                    run(page, main, short=True)
                    main.get_by_text(re.compile(r"^Saved \(step 10\)")).wait_for()
                    wait_for_app(page, 180)
                shot(page, "finished", w, h)
                shot(page, "report", w, h, "What the trained model gets right and wrong")
            else:
                open_page(page, url, f"finetune?model={quote(model)}", timeout=600)
            shot(page, "kept", w, h, "3 · Kept runs, compared")
            if page.get_by_text("Held-out accuracy of both runs").count():
                shot(page, "compare", w, h, "Held-out accuracy of both runs")
            shot(page, "attention", w, h, "4 · Attention before and after fine-tuning")
            page.context.close()
        browser.close()


if __name__ == "__main__":
    main()
