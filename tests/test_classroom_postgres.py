"""The class game on Postgres: a throwaway cluster started by the test (Debian's postgresql, a free localhost
port), the same scenarios as on SQLite, and two stores (two replicas) racing on one class.

Skipped only where neither root (to run initdb as the postgres user) nor a runnable initdb is available.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

import test_classroom as core
from browser_fixtures import free_port
from classroom import ClassError, ClassStore


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="module")
def pg_server():
    """A fresh Postgres cluster in a temp dir on a free port; yields a URL prefix (append a database name)."""
    bindir = _pg_bin()
    root = os.geteuid() == 0
    if bindir is None:
        pytest.skip("Postgres binaries not found (apt-get install postgresql)")
    tmp = Path(tempfile.mkdtemp(prefix="bert-lab-pg-"))
    as_user = ["runuser", "-u", "postgres", "--"] if root else []
    if root:
        shutil.chown(tmp, "postgres", "postgres")
    port, data = free_port(), tmp / "data"

    def run(*cmd):
        return subprocess.run([*as_user, *map(str, cmd)], check=True, capture_output=True, text=True)

    run(bindir / "initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
    run(bindir / "pg_ctl", "-D", data, "-l", tmp / "log", "-w", "-t", "60", "start", "-o",
        f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        run(bindir / "pg_ctl", "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(tmp, ignore_errors=True)


_n = iter(range(10**6))


@pytest.fixture
def pg_url(pg_server) -> str:
    """A new empty database in the cluster for each test."""
    import psycopg

    name = f"class_{next(_n)}"
    with psycopg.connect(pg_server.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    return f"{pg_server}/{name}"


@pytest.fixture
def store(pg_url) -> ClassStore:
    s = ClassStore.from_url(pg_url)
    assert s.engine.dialect.name == "postgresql"
    yield s
    s.engine.dispose()


@pytest.fixture(scope="module")
def lm(tiny_mlm_dir):
    from bert_core import load_model

    return load_model(str(tiny_mlm_dir), device="cpu")


def test_a_round_scores_equal_the_games_points(store, lm):
    core.test_a_round_join_guess_close_reveal_and_scores_equal_the_games_points(store, lm)


def test_one_guess_per_round_skip_end_and_state_machine(store, lm):
    core.test_one_guess_per_player_per_round_and_points_add_up_over_rounds(store, lm)
    core.test_skip_and_end(store, lm)
    core.test_transitions_follow_the_state_machine(store, lm)


def test_keys_tokens_names_and_csv(store, lm):
    core.test_a_student_token_or_a_wrong_key_cannot_run_the_class(store, lm)
    core.test_nicknames_are_unique_per_class_ignoring_case(store)
    for name, shown in (("<b>bold</b>", "<b>bold</b>"), ("🦄 unicorn", "🦄 unicorn")):
        core.test_hostile_names_are_stored_as_typed(store, name, shown)
    core.test_csv_holds_every_guess_and_is_formula_safe(store, lm)
    core.test_saved_sets_have_short_ids(store)


def test_a_restart_keeps_everything(pg_url, lm):
    core.test_a_restart_keeps_everything(pg_url, lm)


def test_two_replicas_race_on_one_class(pg_url, lm):
    """Two stores (two app servers) on one database: guesses from both count once each, a close from one
    refuses every later guess through the other, and two 'next' clicks at once open one round."""
    a, b = ClassStore.from_url(pg_url), ClassStore.from_url(pg_url)
    t = a.create_class(core.SENTENCES, "tiny")
    b.open_next(t.code, t.key, lm)
    players = [(a if i % 2 else b).join(t.code, f"p{i}") for i in range(16)]
    errors: list[str] = []

    def go(i, p):
        for store in (a, b):  # the second try, through the other replica, is refused
            try:
                store.submit_guess(t.code, p.token, "cat", lm)
            except ClassError as e:
                errors.append(str(e))
    threads = [threading.Thread(target=go, args=ip) for ip in enumerate(players)]
    [th.start() for th in threads]
    [th.join() for th in threads]
    assert a.pulse(t.code).n_guessed == b.pulse(t.code).n_guessed == 16
    assert errors == ["You already guessed in this round."] * 16
    late = a.join(t.code, "late")
    b.close(t.code, t.key)
    with pytest.raises(ClassError, match="closed"):
        a.submit_guess(t.code, late.token, "cat", lm)
    b.reveal(t.code, t.key)
    outcomes: list[str] = []

    def next_round(store):
        try:
            outcomes.append(f"round {store.open_next(t.code, t.key, lm).current}")
        except ClassError as e:
            outcomes.append(str(e))
    threads = [threading.Thread(target=next_round, args=(s,)) for s in (a, b, a, b)]
    [th.start() for th in threads]
    [th.join() for th in threads]
    assert a.teacher_view(t.code, t.key).current == 2
    assert outcomes.count("round 2") == 1
    assert all(o == "round 2" or "changed meanwhile" in o or "not possible" in o for o in outcomes), outcomes
    view = a.teacher_view(t.code, t.key)
    assert view.standings[0].score > 0 and view == b.teacher_view(t.code, t.key)
