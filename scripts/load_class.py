"""Load test of the class game: one teacher and N students (headless chromium contexts) play R rounds against
one `streamlit run app.py` server; the browsers run at lower priority (`nice`) than the server.

Reports the time from a student's guess to the teacher's live leaderboard showing it (p50/p95), the time to the
student's own "your guess is in", errors, and the server's CPU time per guess.

    python scripts/load_class.py                         # 30 students, 3 rounds, own server on a temp database
    python scripts/load_class.py --students 10 --rounds 1
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from browser_fixtures import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

WORDS = ["the", "water", "dog", "sun", "home", "car", "book", "door", "bed", "school", "food", "tea", "hand", "it"]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
TIMEOUT_MS = 120_000


@dataclass
class Stats:
    to_board: list[float] = field(default_factory=list)  # guess -> teacher's leaderboard shows the student's ✓
    to_ack: list[float] = field(default_factory=list)  # guess -> the student's own "your guess is in"
    errors: list[str] = field(default_factory=list)
    submitted: dict[str, float] = field(default_factory=dict)  # nickname -> when the guess was sent (this round)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its reaped children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def pct(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[int(q) - 1] if len(xs) > 1 else (xs or [float("nan")])[0]


async def idle(page) -> None:
    await page.wait_for_selector(IDLE, timeout=TIMEOUT_MS)


async def click(page, name: str) -> None:
    await page.get_by_role("button", name=name).click(timeout=TIMEOUT_MS)


async def student(browser, join_url: str, nick: str, rounds: int, stats: Stats, round_open: list[asyncio.Event],
                  rng: random.Random, arrivals: asyncio.Semaphore, joined: list[str]) -> None:
    ctx = await browser.new_context(viewport={"width": 390, "height": 844})
    page = await ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("dialog", lambda d: stats.errors.append(f"{nick}: dialog {d.message!r}"))
    try:
        async with arrivals:  # students walk in a few at a time (and the browser loads a few pages at a time)
            await page.goto(join_url, wait_until="domcontentloaded")
            await idle(page)
            await page.locator("input[aria-label='Nickname']").fill(nick)
            await click(page, "Join")
            await page.get_by_text(f"You are {nick}").wait_for()
        joined.append(nick)
        for r in range(rounds):
            await round_open[r].wait()
            box = page.locator("input[aria-label='Your guess (one word)']")
            await box.wait_for()
            await asyncio.sleep(rng.uniform(0, 8))  # students type at different speeds
            word = rng.choice(WORDS)
            await box.fill(word)
            stats.submitted[nick] = time.monotonic()
            await box.press("Enter")
            await page.get_by_text(f"Your guess {word} is in").wait_for()
            stats.to_ack.append(time.monotonic() - stats.submitted[nick])
        if await page.locator("[data-testid='stException']").count():
            stats.errors.append(f"{nick}: exception box")
    except Exception as e:  # noqa: BLE001 - every failure is counted and reported
        stats.errors.append(f"{nick}: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
    finally:
        await ctx.close()


async def watch_board(page, names: list[str], stats: Stats, seen: set[str]) -> None:
    """Poll the teacher's leaderboard; note when each student's ✓ first shows."""
    while len(seen) < len(names):
        text = await page.evaluate("() => [...document.querySelectorAll('[data-testid=stMain] [data-testid=stTable]"
                                   " tr')].map(r => [...r.cells].map(c => c.innerText.trim()).join('\\t'))"
                                   ".join('\\n')")
        now = time.monotonic()
        for line in text.splitlines():
            cells = line.split("\t")
            if len(cells) >= 4 and cells[-1].strip() == "✓" and cells[1] in names and cells[1] not in seen:
                seen.add(cells[1])
                if cells[1] in stats.submitted:
                    stats.to_board.append(now - stats.submitted[cells[1]])
        await asyncio.sleep(0.05)


async def run(url: str, n: int, rounds: int, server_pid: int | None) -> None:
    from playwright.async_api import async_playwright

    stats, rng = Stats(), random.Random(0)
    names = [f"student{i:02d}" for i in range(n)]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        teacher = await (await browser.new_context(viewport={"width": 1280, "height": 720})).new_page()
        teacher.set_default_timeout(TIMEOUT_MS)
        await teacher.goto(f"{url}/classroom", wait_until="domcontentloaded")
        await idle(teacher)
        await click(teacher, "Start the class")
        code_box = teacher.locator("[data-testid='stMain'] [data-testid='stCode']").first
        await code_box.wait_for()
        join_url = (await code_box.inner_text()).strip()
        round_open = [asyncio.Event() for _ in range(rounds)]
        arrivals, joined = asyncio.Semaphore(3), []
        tasks = [asyncio.create_task(student(browser, join_url, nm, rounds, stats, round_open, rng, arrivals, joined))
                 for nm in names]
        cpu = wall = None
        guesses = 0
        try:
            t_join = time.monotonic()
            while len(joined) + len(stats.errors) < n:
                await asyncio.sleep(0.2)
            await teacher.get_by_text(re.compile(rf"^Joined\s*{len(joined)}$")).wait_for()
            print(f"{len(joined)} joined in {time.monotonic() - t_join:.0f} s")
            names = joined
            cpu0, t0 = cpu_seconds(server_pid) if server_pid else None, time.monotonic()
            for r in range(rounds):
                stats.submitted.clear()
                await click(teacher, "Show the first sentence" if r == 0 else "Next sentence")
                await teacher.get_by_text("guessing", exact=True).wait_for()
                round_open[r].set()
                seen: set[str] = set()
                try:
                    await asyncio.wait_for(watch_board(teacher, names, stats, seen), timeout=180)
                except asyncio.TimeoutError:
                    stats.errors.append(f"round {r + 1}: the leaderboard showed {len(seen)} of {len(names)} guesses "
                                        "after 180 s")
                guesses += len(seen)
                await click(teacher, "Close guessing")
                await teacher.get_by_text("closed", exact=True).wait_for()
                await click(teacher, "Reveal")
                await teacher.locator(".js-plotly-plot").first.wait_for()
            wall = time.monotonic() - t0
            cpu = cpu_seconds(server_pid) - cpu0 if server_pid else None
        except Exception as e:  # noqa: BLE001 - report what was measured so far
            stats.errors.append(f"teacher: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
            for t in tasks:
                t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await browser.close()
    print(f"\n{n} students x {rounds} rounds, {guesses} guesses, {wall or 0:.0f} s of play")
    for label, xs in (("guess -> teacher's leaderboard", stats.to_board), ("guess -> student's 'is in'", stats.to_ack)):
        if xs:
            print(f"{label:32s} p50 {pct(xs, 50):.2f} s  p95 {pct(xs, 95):.2f} s  max {max(xs):.2f} s  (n={len(xs)})")
    if cpu is not None and wall:
        print(f"server CPU during play: {cpu:.1f} s ({cpu / wall:.0%} of one core), "
              f"{cpu / max(guesses, 1) * 1000:.0f} ms per guess (polling of {n + 1} open pages included)")
    print(f"errors: {len(stats.errors)}")
    for e in stats.errors[:20]:
        print("  ", e)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--nice", type=int, default=10, help="niceness of the browsers (the server keeps its own)")
    ap.add_argument("--url", help="an already running server (default: start one on a temp database)")
    ap.add_argument("--server-pid", type=int, help="with --url: the server's pid, for its CPU time")
    a = ap.parse_args()
    if not CHROMIUM.exists():
        sys.exit("needs Debian's chromium at /usr/bin/chromium")
    if a.url:
        os.nice(a.nice)
        asyncio.run(run(a.url.rstrip("/"), a.students, a.rounds, a.server_pid))
        return
    import signal
    import subprocess

    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))  # still stop the server (finally below)
    from browser_fixtures import _healthy, free_port

    port, db = free_port(), Path(tempfile.mkdtemp()) / "class.db"
    env = {**os.environ, "BERT_LAB_DB": f"sqlite:///{db}", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                               "--server.port", str(port), "--server.address", "127.0.0.1",
                               "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while not _healthy(url):
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit("the server did not start")
            time.sleep(0.3)
        os.nice(a.nice)  # from here on this process and the browsers it starts yield to the server
        print(f"server pid {server.pid} at {url}; clients at nice {os.nice(0)}; database {db}")
        asyncio.run(run(url, a.students, a.rounds, server.pid))
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
