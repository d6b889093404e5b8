"""Real-browser fixtures: a live ``streamlit run app.py`` and a Playwright page in Debian's chromium.

    def test_something(browser_page, app_server):
        open_page(browser_page, app_server, "attention")   # goes there and waits until the app is idle
        assert_no_exception(browser_page)

``app_server`` and ``browser_page`` are session-scoped: one server and one browser tab for the whole run. Tests
share the tab, so start each test with ``open_page`` (a fresh session state per page load).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-dev-shm-usage"]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
SERVER_START_TIMEOUT = 90  # s (first import of torch + transformers on a cold, 2-core machine)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def streamlit_server():
    """Start ``streamlit run app.py`` headless on a free localhost port (offline); yield its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    log = tempfile.NamedTemporaryFile("w+", prefix="streamlit-", suffix=".log", delete=False)
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
           "--browser.gatherUsageStats", "false"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def tail() -> str:
        log.flush()
        return Path(log.name).read_text()[-3000:]

    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not _healthy(url):
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited with code {proc.returncode}:\n{tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not answer /_stcore/health within {SERVER_START_TIMEOUT} s:\n{tail()}")
            time.sleep(0.3)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and only what it started (its own process group)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()
        os.unlink(log.name)


@pytest.fixture(scope="session")
def app_server():
    """One live app for the whole test session; yields its base URL."""
    with streamlit_server() as url:
        yield url


@pytest.fixture(scope="session")
def browser_page(request):
    """A Playwright page in Debian's chromium (1400 × 1000), shared by the session's browser tests."""
    if not CHROMIUM.exists():
        pytest.skip("Browser tests need Debian's chromium at /usr/bin/chromium (apt-get install chromium); "
                    "Playwright's own browser download is not used.")
    app_server = request.getfixturevalue("app_server")  # only started when the browser exists
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
    try:
        with new_page(browser, viewport={"width": 1400, "height": 1000}) as page:
            yield page
    finally:
        browser.close()
        pw.stop()


def wait_for_app(page, timeout: float = 60.0, settle: float = 0.6) -> None:
    """Wait until the app has finished its run: the idle marker present and staying so for ``settle`` seconds."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    idle_since = None
    while time.monotonic() < deadline:
        idle = page.locator(IDLE).count() > 0 and page.locator("[data-testid='stSpinner']").count() == 0
        if idle:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= settle:
                return
        else:
            idle_since = None
        time.sleep(0.1)
    raise AssertionError(f"the app was still running after {timeout} s")


_WATCH_RUNS = """() => {
    const app = document.querySelector("[data-testid='stApp']");
    window.__bertlabRuns?.disconnect();
    window.__bertlabRan = false;
    // each record keeps the state it replaced: a run that starts and ends within one batch is still seen
    window.__bertlabRuns = new MutationObserver(records => {
        const states = [...records.map(r => r.oldValue), app.getAttribute("data-test-script-state")];
        if (states.some(s => s !== "notRunning")) window.__bertlabRan = true;
    });
    window.__bertlabRuns.observe(app, {attributes: true, attributeOldValue: true,
                                       attributeFilter: ["data-test-script-state"]});
}"""


@contextlib.contextmanager
def app_rerun(page, timeout: float = 60.0):
    """Around an action that reruns the app (a click, Enter): afterwards wait until that rerun has started and
    finished. The script state is watched from before the action, so a fast run is not missed.

        with app_rerun(page):
            page.get_by_role("tab", name="All layers").click()
    """
    wait_for_app(page, timeout)
    page.evaluate(_WATCH_RUNS)
    yield
    page.wait_for_function("() => window.__bertlabRan", timeout=timeout * 1000)
    wait_for_app(page, timeout)


def open_page(page, base_url: str, path: str = "", timeout: float = 60.0) -> None:
    """Load ``base_url/path`` (a page's url_path, '' for home) and wait until the app is idle."""
    page.goto(f"{base_url}/{path}", wait_until="domcontentloaded")
    page.wait_for_selector("[data-testid='stMain']", timeout=timeout * 1000)
    wait_for_app(page, timeout)


def assert_no_exception(page) -> None:
    boxes = page.locator("[data-testid='stException']")
    assert boxes.count() == 0, "exception shown on the page: " + " | ".join(boxes.all_inner_texts())[:2000]


def pick_model(page, folder, timeout: float = 60.0) -> None:
    """Point this browser session at a local checkpoint through the sidebar's 'Other…' option; return once the
    sidebar's caption names it (waits on what a user sees, not on a rerun being noticed)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.locator("[data-testid='stSelectbox']").first.click()
    page.get_by_role("option", name="Other hub id or local folder…").click()
    box = sidebar.locator("input[aria-label='Hub id or folder path']")
    box.wait_for(timeout=timeout * 1000)
    wait_for_app(page, timeout)
    box.fill(str(folder))
    box.press("Enter")
    loaded = sidebar.locator("[data-testid='stCaptionContainer']").filter(has_text=str(folder))
    try:
        loaded.first.wait_for(timeout=timeout * 1000)
    except PlaywrightTimeout:
        errors = " | ".join(page.locator("[data-testid='stAlert']").all_inner_texts())
        raise AssertionError(f"the sidebar never named {folder}; alerts: {errors[:1000]}") from None
    wait_for_app(page, timeout)


@contextlib.contextmanager
def new_page(browser, **context_options):
    """A page in a fresh browser context (60 s default timeout); the context is closed afterwards."""
    context = browser.new_context(**context_options)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        yield page
    finally:
        context.close()


def phone_page(browser_page, width: int = 390, height: int = 844):
    """``with phone_page(browser_page) as page``: a touch-screen page of a phone's size beside ``browser_page``."""
    return new_page(browser_page.context.browser, viewport={"width": width, "height": height}, has_touch=True,
                    is_mobile=True)


def local_page(browser, width: int, height: int, timeout_ms: float):
    """A page in a fresh context of ``width`` × ``height`` that reaches only the app's own server (anything else is
    aborted, as an offline classroom sees it)."""
    from urllib.parse import urlparse

    ctx = browser.new_context(viewport={"width": width, "height": height})
    ctx.route("**/*", lambda r: r.continue_() if urlparse(r.request.url).hostname in ("127.0.0.1", "localhost")
              else r.abort())
    page = ctx.new_page()
    page.set_default_timeout(timeout_ms)
    return page
