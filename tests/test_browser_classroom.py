"""The class game in a real browser (Debian chromium): a teacher (1280x720, a projector) and 3 students (390x844
phones) in separate browser contexts play 2 rounds against one live server.

Also the load script's plumbing (scripts/load_class.py, small and untimed): a teacher page and 3 students as
websocket protocol clients play 2 rounds; the timed 30-student run is in BENCHMARKS.md.

Checks: the QR code decodes (zbarimg) to the join address the page shows; hostile nicknames fire no dialog and stay
text; a student's reload keeps name and score; the phone shows the sentence and the guess box on the first screen.
Screenshots go to $BERT_LAB_SHOTS (default: the test's tmp dir).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from apptest_support import wait_for
from browser_fixtures import ROOT, assert_no_exception, open_page, streamlit_server, wait_for_app

pytestmark = pytest.mark.browser
NICKS = ["<svg onload=alert(1)>", "Zoë 🦄", "<b>Bo</b>"]
TIMEOUT = 120_000  # a shared 2-core machine under load can take a minute to serve a page


@pytest.fixture(scope="module")
def class_server(tmp_path_factory):
    db = tmp_path_factory.mktemp("classdb") / "class.db"
    old = os.environ.get("BERT_LAB_DB")
    os.environ["BERT_LAB_DB"] = f"sqlite:///{db}"
    try:
        with streamlit_server() as url:
            yield url
    finally:
        os.environ.pop("BERT_LAB_DB") if old is None else os.environ.__setitem__("BERT_LAB_DB", old)


@pytest.fixture(scope="module")
def browser(browser_page):
    """The session's chromium (one Playwright per test run); each player gets a context of their own."""
    return browser_page.context.browser


def new_page(browser, width: int, height: int, dialogs: list):
    ctx = browser.new_context(viewport={"width": width, "height": height})
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT)
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    return page


def main(page):
    return page.locator("[data-testid='stMain']")


def score_of(page) -> int:
    text = main(page).get_by_text(re.compile(r"^You are ")).first.inner_text()
    return int(re.search(r"(\d+) points", text).group(1))


def click(page, name: str) -> None:
    """Click a control that goes away once its action is done (each moves the class on or joins). One click must
    do it: no retry. The teacher's controls sit inside the desk fragment that polls every second, so this also
    proves that a poll does not swallow a click."""
    button = main(page).get_by_role("button", name=name)
    button.click()
    button.wait_for(state="detached")


def test_a_teacher_and_three_students_play_two_rounds(browser, class_server, tmp_path):
    shots = Path(os.environ.get("BERT_LAB_SHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    dialogs: list[str] = []
    teacher = new_page(browser, 1280, 720, dialogs)
    open_page(teacher, class_server, "")
    open_page(teacher, class_server, "classroom")
    click(teacher, "Start the class")
    assert_no_exception(teacher)
    join = main(teacher).locator("[data-testid='stCode']").filter(has_text=re.compile(r"/join\?class=[A-Z0-9]{6}\s*$"))
    join.first.wait_for()  # the lobby may still be drawing (the teacher link's code block can come first)
    join_url = join.first.inner_text().strip()
    code = re.search(r"class=([A-Z0-9]{6})$", join_url).group(1)
    assert join_url == f"{class_server}/join?class={code}"  # bound to 127.0.0.1: the page says only localhost works
    assert main(teacher).get_by_text("Only this computer can open this address").count() == 1
    assert main(teacher).get_by_text(code, exact=True).count() == 1  # the big code
    assert shutil.which("zbarimg"), "the QR check needs zbarimg (apt-get install zbar-tools; scripts/test.sh does)"
    qr = tmp_path / "qr.png"
    main(teacher).get_by_role("img").first.screenshot(path=str(qr))
    out = subprocess.run(["zbarimg", "--raw", "-q", str(qr)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == join_url
    students = []
    for nick in NICKS:
        s = new_page(browser, 390, 844, dialogs)
        s.goto(join_url, wait_until="domcontentloaded")
        wait_for_app(s)
        main(s).locator("input[aria-label='Nickname']").fill(nick)
        click(s, "Join")
        main(s).get_by_text(f"You are {nick}").wait_for()
        students.append(s)
    main(teacher).get_by_text("Joined3").or_(main(teacher).get_by_text("Joined 3")).first.wait_for()
    totals = [0, 0, 0]
    for rnd, guesses in ((1, ["the", "water", "dog"]), (2, ["a", "the", "sun"])):
        click(teacher, "Show the first sentence" if rnd == 1 else "Next sentence")
        for s, word in zip(students, guesses):
            box = main(s).locator("input[aria-label='Your guess (one word)']")
            box.wait_for()  # the student's page polls and redraws for the new round by itself
            if rnd == 1 and s is students[0]:
                bottom = box.bounding_box()["y"] + box.bounding_box()["height"]
                assert bottom < 844, "the guess box is below the phone's first screen"
                assert main(s).get_by_text("[MASK]").first.bounding_box()["y"] < 844
                s.screenshot(path=str(shots / "class-student-390x844.png"))
            box.fill(word)
            box.press("Enter")
            main(s).get_by_text(f"Your guess {word} is in").wait_for()
        main(teacher).get_by_text("3 of 3").first.wait_for()
        click(teacher, "Close guessing")
        main(teacher).get_by_text("closed", exact=True).wait_for()
        click(teacher, "Reveal")
        try:
            main(teacher).locator(".js-plotly-plot").first.wait_for()
        except Exception:
            teacher.screenshot(path=str(shots / "class-teacher-failed.png"), full_page=True)
            raise
        if rnd == 1:
            teacher.screenshot(path=str(shots / "class-teacher-1280x720.png"))
        for i, s in enumerate(students):
            got = main(s).get_by_text(re.compile(r"^You guessed .* points")).first
            got.wait_for()
            totals[i] += int(re.search(r"\+(\d+) points", got.inner_text()).group(1))
            main(s).locator(".js-plotly-plot").first.wait_for()
            assert score_of(s) == totals[i]
        if rnd == 1:
            students[1].screenshot(path=str(shots / "class-student-reveal-390x844.png"), full_page=True)
        # the teacher's leaderboard shows every student's total
        table = main(teacher).locator("[data-testid='stTable']").last
        rows = [re.escape(nick) + r"\s+" + str(total) + r"\b" for nick, total in zip(NICKS, totals)]
        try:  # the fragment redraws element by element: wait for the table itself, not just the chart beside it
            wait_for(lambda: all(re.search(r, table.inner_text()) for r in rows), timeout=60)
        except AssertionError:
            raise AssertionError(f"leaderboard never showed {rows}: {table.inner_text()!r}") from None
    s = students[0]
    s.reload(wait_until="domcontentloaded")  # a reload rejoins with the same name and score
    main(s).get_by_text(f"You are {NICKS[0]}").wait_for()
    assert score_of(s) == totals[0]
    click(teacher, "End the class")
    main(teacher).get_by_text("Final standings").wait_for()
    teacher.screenshot(path=str(shots / "class-teacher-final-1280x720.png"), full_page=True)
    for p in (teacher, *students):
        assert_no_exception(p)
        assert p.locator("svg[onload], b:text('Bo')").count() == 0  # the names stayed text
    assert dialogs == []


def test_the_load_scripts_protocol_students_join_and_guess(class_server):
    """Every student joins, every guess is acknowledged to its student and shows on the teacher's board."""
    import asyncio
    import sys
    from concurrent.futures import ThreadPoolExecutor

    sys.path.insert(0, str(ROOT / "scripts"))
    import load_class

    with ThreadPoolExecutor(1) as pool:  # its own thread and event loop, apart from the session's sync Playwright
        stats = pool.submit(asyncio.run, load_class.run(class_server, 3, 2, server_pid=None)).result()
    assert stats.errors == []
    assert sorted(stats.joined) == ["student00", "student01", "student02"]
    assert stats.guessed == 6 and len(stats.to_ack) == 6  # each student's "your guess is in", both rounds
    assert stats.shown == 6 and len(stats.to_board) == 6  # each guess's ✓ on the teacher's leaderboard
