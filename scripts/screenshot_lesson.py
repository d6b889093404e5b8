"""Screenshots of every guided-lesson step, before and after the reveal, at the three sizes we check: projector
(1280×720 and 1400×1000, presenter mode) and phone (390×844). Prints where the Reveal button sits.

    python3 scripts/screenshot_lesson.py /tmp/lesson_shots [--steps 1,3] [--sizes projector,phone]

Writes lesson_N_SIZE.png (the first screen, question not answered), lesson_N_SIZE_full.png (the whole page) and
lesson_N_SIZE_revealed.png (after picking the first answer and pressing Reveal, scrolled to the live view).
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from browser_fixtures import CHROMIUM, CHROMIUM_ARGS, open_page, streamlit_server, wait_for_app  # noqa: E402

from bert_core.lesson import STEPS  # noqa: E402

VIEWS = {"projector": ({"width": 1280, "height": 720}, "&present=1"),
         "projector_large": ({"width": 1400, "height": 1000}, "&present=1"),
         "phone": ({"width": 390, "height": 844}, "")}


def reveal_position(page, height: int) -> str:
    """Where the Reveal button is on the first screen: 'Reveal bottom 612 of 720 (visible)'."""
    button = page.get_by_role("button", name="Reveal")
    if not button.count():
        return "no Reveal"
    box = button.first.bounding_box()
    bottom = box["y"] + box["height"]
    return f"Reveal bottom {bottom:.0f} of {height} ({'visible' if bottom <= height else 'BELOW THE FOLD'})"


def main(out: Path, steps: list[int], sizes: list[str]) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with streamlit_server() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        for name in sizes:
            viewport, extra = VIEWS[name]
            page = browser.new_context(viewport=viewport).new_page()
            page.set_default_timeout(90_000)
            for n in steps:
                open_page(page, url, f"lesson?step={n}{extra}", timeout=120)
                page.wait_for_timeout(500)  # plotly's first layout
                page.screenshot(path=str(out / f"lesson_{n}_{name}.png"))
                page.screenshot(path=str(out / f"lesson_{n}_{name}_full.png"), full_page=True)
                where = reveal_position(page, viewport["height"])
                radios = page.locator("[data-testid='stRadio'] [role='radiogroup'] label")
                if radios.count():
                    radios.first.click()
                    wait_for_app(page, 120)
                    page.get_by_role("button", name="Reveal").first.click()
                    wait_for_app(page, 120)
                    page.mouse.move(0, 0)  # no tooltip over the answers
                    page.wait_for_timeout(500)
                    charts = page.locator("[data-testid='stPlotlyChart']")
                    if charts.count() and name == "phone":
                        charts.first.scroll_into_view_if_needed()
                    page.screenshot(path=str(out / f"lesson_{n}_{name}_revealed.png"))
                print(out / f"lesson_{n}_{name}.png", where, flush=True)
        browser.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    steps = list(range(1, len(STEPS) + 1))
    if "--steps" in args:
        steps = [int(s) for s in args[args.index("--steps") + 1].split(",")]
    sizes = list(VIEWS)
    if "--sizes" in args:
        sizes = args[args.index("--sizes") + 1].split(",")
    main(Path(args[0] if args and not args[0].startswith("--") else "/tmp/lesson_shots"), steps, sizes)
