"""Two app replicas (two `streamlit run` servers) on one database: a guess made through server A shows on
server B's leaderboard; and deploy/nginx.conf, run as it is in front of both, serves the app with its websocket."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from bert_core import load_model
from apptest_support import wait_for
from browser_fixtures import (CHROMIUM, ROOT, _healthy, assert_no_exception, free_port,
                              streamlit_server, wait_for_app)
from classroom import ClassStore

pytestmark = pytest.mark.browser
SENTENCES = ["The {cat} sat on the mat.", "Paris is the capital of {france}."]


@contextlib.contextmanager
def server_on(db_url: str):
    old = os.environ.get("BERT_LAB_DB")
    os.environ["BERT_LAB_DB"] = db_url
    try:
        with streamlit_server() as url:
            os.environ.pop("BERT_LAB_DB") if old is None else os.environ.__setitem__("BERT_LAB_DB", old)
            yield url
    finally:
        os.environ.pop("BERT_LAB_DB", None) if old is None else os.environ.__setitem__("BERT_LAB_DB", old)


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("Browser tests need Debian's chromium at /usr/bin/chromium.")
    db = f"sqlite:///{tmp_path_factory.mktemp('replicas') / 'class.db'}"
    with server_on(db) as a, server_on(db) as b:
        yield db, a, b


@pytest.fixture(scope="module")
def browser(browser_page):
    """The session's chromium (one Playwright per test run); each player gets a context of their own."""
    return browser_page.context.browser


def new_page(browser, dialogs: list):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(60_000)
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    return page


def board(page) -> str:
    return page.locator("[data-testid='stMain'] [data-testid='stTable']").last.inner_text()


def board_shows(page, pattern: str) -> None:
    """Wait until the leaderboard's text matches ``pattern`` (a fragment redraws its elements one by one, so the
    "1 of 1" line can land a moment before the table beside it)."""
    try:
        wait_for(lambda: re.search(pattern, board(page)), timeout=60)
    except AssertionError:
        raise AssertionError(f"leaderboard never matched {pattern!r}: {board(page)!r}") from None


def test_a_guess_through_server_a_shows_on_server_b(replicas, browser, tiny_mlm_dir):
    db, a, b = replicas
    store = ClassStore.from_url(db)
    lm = load_model(str(tiny_mlm_dir), device="cpu")
    t = store.create_class(SENTENCES, str(tiny_mlm_dir))
    store.open_next(t.code, t.key, lm)  # BERT's top-k is computed once, here, and stored for every replica
    dialogs: list[str] = []
    teacher = new_page(browser, dialogs)
    teacher.goto(f"{b}/classroom?class={t.code}&key={t.key}", wait_until="domcontentloaded")
    wait_for(lambda: re.search(r"Joined\s*0", teacher.locator("[data-testid='stMain']").inner_text()), 60)
    student = new_page(browser, dialogs)
    student.goto(f"{a}/join?class={t.code}", wait_until="domcontentloaded")
    wait_for_app(student)
    student.locator("input[aria-label='Nickname']").fill("Ann")
    student.get_by_role("button", name="Join").click()
    box = student.locator("input[aria-label='Your guess (one word)']")
    box.fill("dog")
    box.press("Enter")
    student.get_by_text("Your guess dog is in").wait_for()
    # server B's live leaderboard picks up Ann's guess by itself (its fragment polls the shared database)
    teacher.get_by_text("1 of 1").first.wait_for()
    board_shows(teacher, r"Ann\s+0\s+✓")
    teacher.get_by_role("button", name="Close guessing").click()
    wait_for_app(teacher)
    teacher.get_by_role("button", name="Reveal").click()
    wait_for_app(teacher)
    points = store.teacher_view(t.code, t.key).standings[0].score
    teacher.wait_for_function("p => document.querySelector('[data-testid=stMain]').innerText.includes(p)",
                              arg=f"+{points}")
    board_shows(teacher, rf"Ann\s+{points}\b")
    student.get_by_text(re.compile(rf"\+{points} points")).first.wait_for()  # server A shows the same reveal
    for p in (teacher, student):
        assert_no_exception(p)
    assert dialogs == []


def nginx_conf(tmp: Path, listen: int, upstreams: list[int]) -> Path:
    """deploy/nginx.conf with the test's ports, wrapped in a minimal main config that runs without root."""
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    site = re.sub(r"listen 80;", f"listen 127.0.0.1:{listen};", site)
    servers = "".join(f"    server 127.0.0.1:{p};\n" for p in upstreams)
    site, n = re.subn(r"(    server 127\.0\.0\.1:\d+;\n)+", servers, site)
    assert n == 1, "deploy/nginx.conf: the upstream block changed shape"
    (tmp / "site.conf").write_text(site)
    main = tmp / "nginx.conf"
    main.write_text(f"""pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
worker_processes 1;
events {{ worker_connections 256; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fcgi;
    uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
    include {tmp}/site.conf;
}}
""")
    return main


def test_the_nginx_config_serves_both_replicas_with_websockets(replicas, browser):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.skip("nginx is not installed (apt-get install nginx)")
    db, a, b = replicas
    tmp = Path(tempfile.mkdtemp(prefix="nginx-"))
    port = free_port()
    conf = nginx_conf(tmp, port, [int(a.rsplit(":", 1)[1]), int(b.rsplit(":", 1)[1])])
    subprocess.run([nginx, "-t", "-c", str(conf), "-p", str(tmp)], check=True, capture_output=True)
    proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp), "-g", "daemon off;"], start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: proc.poll() is not None or _healthy(url), 30)
        assert proc.poll() is None, (tmp / "error.log").read_text()
        dialogs: list[str] = []
        page = new_page(browser, dialogs)
        t = ClassStore.from_url(db).create_class(SENTENCES, "bundled")
        page.goto(f"{url}/join?class={t.code}", wait_until="domcontentloaded")
        wait_for_app(page)  # the page runs: its websocket came through the proxy
        page.locator("input[aria-label='Nickname']").fill("Through nginx")
        page.get_by_role("button", name="Join").click()
        page.get_by_text("You are Through nginx").wait_for()
        assert_no_exception(page)
        assert ClassStore.from_url(db).pulse(t.code).n_players == 1
        assert "Upgrade" not in (tmp / "error.log").read_text()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
