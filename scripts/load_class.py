"""Load test of the class game: one teacher (a headless chromium page, as on the projector) and N students (light
clients that speak Streamlit's websocket protocol, as a browser tab does) play R rounds against one
`streamlit run app.py` server; the clients run at lower priority (`nice`) than the server.

Reports the time from a student's guess to the teacher's live leaderboard showing it (p50/p95), the time to the
student's own "your guess is in", errors, and the server's CPU time per guess.

    python scripts/load_class.py                         # 30 students, 3 rounds, own server on a temp database
    python scripts/load_class.py --students 10 --rounds 1
    python scripts/load_class.py --url http://host:8501 --server-pid PID   # a server started by hand

A student client is what a phone's tab does, minus the drawing: it opens ``/_stcore/stream``, asks for a run of
the join page (a ``BackMsg`` with ``rerun_script``), reads the ``ForwardMsg`` replies (the widgets and texts of
the page, query-string changes, the fragment's ``auto_rerun`` beat, which it then keeps like the browser does),
fills the join form and the guess form by sending the widgets' values with the submit button's trigger.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
TIMEOUT_S = 120


@dataclass
class Stats:
    to_board: list[float] = field(default_factory=list)  # guess -> teacher's leaderboard shows the student's ✓
    to_ack: list[float] = field(default_factory=list)  # guess -> the student's own "your guess is in"
    errors: list[str] = field(default_factory=list)
    submitted: dict[str, float] = field(default_factory=dict)  # nickname -> when the guess was sent (this round)
    joined: list[str] = field(default_factory=list)
    guessed: int = 0  # guesses acknowledged to their students
    shown: int = 0  # guesses seen on the teacher's leaderboard
    wall: float = 0.0  # seconds of play (first round opened -> last reveal)
    cpu: float | None = None  # the server's CPU seconds during play
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)  # the machine's load average at the end


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its reaped children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def pct(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[int(q) - 1] if len(xs) > 1 else (xs or [float("nan")])[0]


class StreamlitClient:
    """One browser session of a Streamlit app, without the browser: the websocket protocol only.

    Keeps what the page's latest full run drew: ``widgets`` (label -> widget id) and ``texts`` (markdown and alert
    bodies by position); fragments' texts overwrite theirs. Exceptions the page shows land in ``errors``."""

    def __init__(self, base_url: str, page: str, query: str):
        self.url = base_url.replace("http", "ws", 1) + "/_stcore/stream"
        self.page, self.query = page, query
        self.widgets: dict[str, str] = {}
        self.texts: dict[tuple, str] = {}
        self.errors: list[str] = []
        self._ws = None
        self._tasks: list[asyncio.Task] = []
        self._beats: dict[str, asyncio.Task] = {}
        self._changed = asyncio.Event()

    async def open(self) -> None:
        import websockets

        self._ws = await websockets.connect(self.url, subprotocols=["streamlit"], max_size=None, open_timeout=60)
        self._tasks.append(asyncio.create_task(self._read()))
        await self.rerun()

    async def close(self) -> None:
        for t in [*self._tasks, *self._beats.values()]:
            t.cancel()
        if self._ws is not None:
            await self._ws.close()

    async def rerun(self, values: dict[str, str] | None = None, submit: str | None = None,
                    fragment_id: str = "", auto: bool = False) -> None:
        """Ask for a run, like a browser: text-input values by label, and a (form submit) button by label."""
        from streamlit.proto.BackMsg_pb2 import BackMsg

        msg = BackMsg()
        rs = msg.rerun_script
        rs.query_string, rs.page_name = self.query, self.page  # by url path, as when the address is opened
        rs.fragment_id, rs.is_auto_rerun = fragment_id, auto
        for label, value in (values or {}).items():
            w = rs.widget_states.widgets.add()
            w.id, w.string_value = self.widgets[label], value
        if submit:
            w = rs.widget_states.widgets.add()
            w.id, w.trigger_value = self.widgets[submit], True
        await self._ws.send(msg.SerializeToString())

    async def wait(self, check, timeout: float = TIMEOUT_S):
        """Wait until ``check()`` is true (checked after every message), or raise TimeoutError."""
        async with asyncio.timeout(timeout):
            while not (got := check()):
                self._changed.clear()
                await self._changed.wait()
            return got

    def has_text(self, needle: str) -> bool:
        return any(needle in t for t in self.texts.values())

    async def _beat(self, fragment_id: str, every: float) -> None:
        while True:  # the browser's setInterval for a fragment's run_every
            await asyncio.sleep(every)
            await self.rerun(fragment_id=fragment_id, auto=True)

    async def _read(self) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        async for data in self._ws:
            f = ForwardMsg.FromString(data)
            kind = f.WhichOneof("type")
            if kind == "new_session":
                if not f.metadata.run.fragment_ids:  # a full run draws the page afresh
                    self.widgets, self.texts = {}, {}
            elif kind == "page_info_changed":
                self.query = f.page_info_changed.query_string
            elif kind == "auto_rerun":
                a = f.auto_rerun
                if a.fragment_id not in self._beats:
                    self._beats[a.fragment_id] = asyncio.create_task(self._beat(a.fragment_id, a.interval))
            elif kind == "stop_auto_rerun":
                for fid in f.stop_auto_rerun.fragment_ids:
                    if (t := self._beats.pop(fid, None)) is not None:
                        t.cancel()
            elif kind == "delta" and f.delta.WhichOneof("type") == "new_element":
                e = f.delta.new_element
                k = e.WhichOneof("type")
                path = tuple(f.metadata.delta_path)
                if k in ("text_input", "button"):
                    self.widgets[getattr(e, k).label] = getattr(e, k).id
                elif k in ("markdown", "alert"):
                    self.texts[path] = getattr(e, k).body
                elif k == "exception":
                    self.errors.append(f"exception on the page: {e.exception.type}: {e.exception.message[:120]}")
            self._changed.set()


async def student(base: str, code: str, nick: str, rounds: int, stats: Stats, round_open: list[asyncio.Event],
                  rng: random.Random) -> None:
    c = StreamlitClient(base, "join", f"class={code}")
    try:
        await asyncio.sleep(rng.uniform(0, 5))  # students walk in over a few seconds
        await c.open()
        await c.wait(lambda: "Nickname" in c.widgets and "Join" in c.widgets)
        await c.rerun({"Class code": code, "Nickname": nick}, submit="Join")
        await c.wait(lambda: c.has_text(f"You are **{nick}**"))
        stats.joined.append(nick)
        for r in range(rounds):
            await round_open[r].wait()
            await c.wait(lambda: "Your guess (one word)" in c.widgets and "Guess" in c.widgets)
            await asyncio.sleep(rng.uniform(0, 8))  # students type at different speeds
            word = rng.choice(WORDS)
            stats.submitted[nick] = time.monotonic()
            await c.rerun({"Your guess (one word)": word}, submit="Guess")
            # "is in" while the round is open or closed; after a fast reveal the page says "You guessed" instead
            await c.wait(lambda: c.has_text(f"Your guess **{word}** is in") or c.has_text(f"You guessed **{word}**"))
            stats.to_ack.append(time.monotonic() - stats.submitted[nick])
            stats.guessed += 1
    except Exception as e:  # noqa: BLE001 - every failure is counted and reported
        stats.errors.append(f"{nick}: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}")
    finally:
        stats.errors.extend(f"{nick}: {x}" for x in c.errors)
        await c.close()


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


async def run(url: str, n: int, rounds: int, server_pid: int | None) -> Stats:
    """Play one class: the teacher in chromium, ``n`` protocol students; returns what was measured."""
    from playwright.async_api import async_playwright

    stats, rng = Stats(), random.Random(0)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        teacher = await (await browser.new_context(viewport={"width": 1280, "height": 720})).new_page()
        teacher.set_default_timeout(TIMEOUT_S * 1000)
        teacher.on("dialog", lambda d: stats.errors.append(f"teacher: dialog {d.message!r}"))
        main = teacher.locator("[data-testid='stMain']")

        async def click(name: str) -> None:  # one click; the control goes away once its action is done
            button = main.get_by_role("button", name=name)
            await button.click()
            await button.wait_for(state="detached")

        await teacher.goto(f"{url}/classroom", wait_until="domcontentloaded")
        await teacher.wait_for_selector(IDLE)
        await click("Start the class")
        join_url = (await main.locator("[data-testid='stCode']", has_text="/join?class=").first.inner_text()).strip()
        code = re.search(r"class=([A-Z0-9]+)$", join_url).group(1)
        round_open = [asyncio.Event() for _ in range(rounds)]
        names = [f"student{i:02d}" for i in range(n)]
        tasks = [asyncio.create_task(student(url, code, nm, rounds, stats, round_open, rng)) for nm in names]
        try:
            t_join = time.monotonic()
            while len(stats.joined) + len(stats.errors) < n:
                await asyncio.sleep(0.2)
            await main.get_by_text(re.compile(rf"^Joined\s*{len(stats.joined)}$")).wait_for()
            print(f"{len(stats.joined)} joined in {time.monotonic() - t_join:.1f} s", flush=True)
            cpu0, t0 = cpu_seconds(server_pid) if server_pid else None, time.monotonic()
            for r in range(rounds):
                stats.submitted.clear()
                await click("Show the first sentence" if r == 0 else "Next sentence")
                round_open[r].set()
                seen: set[str] = set()
                try:
                    await asyncio.wait_for(watch_board(teacher, list(stats.joined), stats, seen), timeout=180)
                except asyncio.TimeoutError:
                    stats.errors.append(f"round {r + 1}: the leaderboard showed {len(seen)} of {len(stats.joined)} "
                                        "guesses after 180 s")
                stats.shown += len(seen)
                await click("Close guessing")
                await click("Reveal")
                await main.locator(".js-plotly-plot").first.wait_for()
                print(f"round {r + 1}: {len(seen)} guesses on the board", flush=True)
            stats.wall = time.monotonic() - t0
            stats.cpu = cpu_seconds(server_pid) - cpu0 if server_pid else None
        except Exception as e:  # noqa: BLE001 - report what was measured so far
            stats.errors.append(f"teacher: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
        # after a full game every student is done, or waits for a page that never came (an error)
        _, pending = await asyncio.wait(tasks, timeout=TIMEOUT_S if stats.wall else 0)
        if pending and stats.wall:
            stats.errors.append(f"{len(pending)} students still waiting for their page {TIMEOUT_S} s after the end")
        for t in pending:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if await teacher.locator("[data-testid='stException']").count():
            stats.errors.append("teacher: exception on the page")
        await browser.close()
    stats.load = os.getloadavg()
    return stats


def report(stats: Stats, n: int, rounds: int) -> None:
    print(f"\n{n} students x {rounds} rounds: {len(stats.joined)} joined, {stats.guessed} guesses in, "
          f"{stats.shown} on the teacher's board, {stats.wall:.0f} s of play")
    for label, xs in (("guess -> teacher's leaderboard", stats.to_board), ("guess -> student's 'is in'", stats.to_ack)):
        if xs:
            print(f"{label:32s} p50 {pct(xs, 50):.2f} s  p95 {pct(xs, 95):.2f} s  max {max(xs):.2f} s  (n={len(xs)})")
    if stats.cpu is not None and stats.wall:
        print(f"server CPU during play: {stats.cpu:.1f} s ({stats.cpu / stats.wall:.0%} of one core), "
              f"{stats.cpu / max(stats.guessed, 1) * 1000:.0f} ms per guess (the polling of {n + 1} open pages "
              "included)")
    print("load average at the end: " + " ".join(f"{x:.2f}" for x in stats.load))
    print(f"errors: {len(stats.errors)}")
    for e in stats.errors[:20]:
        print("  ", e)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--nice", type=int, default=10, help="niceness of the clients (the server keeps its own)")
    ap.add_argument("--url", help="an already running server (default: start one on a temp database)")
    ap.add_argument("--server-pid", type=int, help="with --url: the server's pid, for its CPU time")
    a = ap.parse_args()
    if not CHROMIUM.exists():
        sys.exit("needs Debian's chromium at /usr/bin/chromium (for the teacher's page)")
    if a.url:
        os.nice(a.nice)
        stats = asyncio.run(run(a.url.rstrip("/"), a.students, a.rounds, a.server_pid))
    else:
        with own_server() as (url, pid):
            os.nice(a.nice)  # from here on this process and the browser it starts yield to the server
            print(f"server pid {pid} at {url}; clients at nice {os.nice(0)}", flush=True)
            stats = asyncio.run(run(url, a.students, a.rounds, pid))
    report(stats, a.students, a.rounds)
    sys.exit(1 if stats.errors else 0)


@contextlib.contextmanager
def own_server():
    """A `streamlit run app.py` on a free port and a temp SQLite database; yields (url, pid)."""
    import signal
    import subprocess

    from browser_fixtures import _healthy, free_port

    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))  # still stop the server (finally below)
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
        yield url, server.pid
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
