"""Screenshots of every guided-lesson step: projector (1280×720, presenter mode) and phone (390×844).

    python3 scripts/screenshot_lesson.py /tmp/lesson_shots [--steps 1,3]
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from browser_fixtures import CHROMIUM, CHROMIUM_ARGS, open_page, streamlit_server  # noqa: E402

from bert_core.lesson import STEPS  # noqa: E402

VIEWS = {"projector": ({"width": 1280, "height": 720}, "&present=1"), "phone": ({"width": 390, "height": 844}, "")}


def main(out: Path, steps: list[int]) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with streamlit_server() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        for name, (viewport, extra) in VIEWS.items():
            page = browser.new_context(viewport=viewport).new_page()
            page.set_default_timeout(90_000)
            for n in steps:
                open_page(page, url, f"lesson?step={n}{extra}", timeout=120)
                page.screenshot(path=str(out / f"lesson_{n}_{name}.png"))
                page.screenshot(path=str(out / f"lesson_{n}_{name}_full.png"), full_page=True)
                print(out / f"lesson_{n}_{name}.png")
        browser.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    steps = list(range(1, len(STEPS) + 1))
    if "--steps" in args:
        steps = [int(s) for s in args[args.index("--steps") + 1].split(",")]
    main(Path(args[0] if args else "/tmp/lesson_shots"), steps)
