"""AppTest for the fine-tuning lab's quick demo, kept runs and attention change, on a tiny checkpoint.

The quick demo runs exactly as the lab's default, with its time budget shortened (a test waits for the run to end,
never on the clock)."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

from apptest_support import chart, errors, open_page, wait_for
from apptest_support import plotly_array as arr
from bert_core import estimate as est
from bert_core import finetune as ft
from bert_core import jobs, load_model, runs
from bert_core.attention_change import attention_change
from test_finetune import toy_data
from test_app_finetune import toy_tweets  # noqa: F401 (the shared autouse fixture)
from test_runs import record
from ui import finetune_change, finetune_runs

BUDGET_S = 6.0


@pytest.fixture(autouse=True)
def quick_toy(toy_tweets, monkeypatch):
    """The lab's toy tweets (``toy_tweets``), saying some were left out, and the quick demo on a short clock."""
    monkeypatch.setattr(ft, "sentiment_data", lambda min_conf=0.0, labels=(), safe=True: replace(
        toy_data(), dropped="3 tweets with swear words left out (better-profanity's word list)."))
    monkeypatch.setattr(ft, "QUICK_DEMO", replace(ft.QUICK_DEMO, time_budget_s=BUDGET_S))


def open_lab(folder):
    at = open_page("app_pages/finetune.py", folder)
    assert not at.exception, errors(at)
    return at


def run_to_end(at, **widgets) -> jobs.Job:
    for key, value in widgets.items():
        at.session_state[key] = value
    at.run()
    at.button(key="ft_start").click().run()
    assert not at.exception, errors(at)
    job = at.session_state["ft_job"]
    assert job.join(300)
    at.run()
    assert not at.exception, errors(at)
    assert job.view().status == jobs.DONE, job.view().message
    return job


def table(at, first_column: str):
    """The dataframe whose first column is named so ('run': the kept runs, '': the comparison)."""
    for d in at.dataframe:
        if list(d.value.columns)[:1] == [first_column]:
            return d.value
    raise AssertionError(f"no table starting with column {first_column!r}")


def test_the_quick_demo_shows_the_estimate_then_the_live_run_then_the_report(tiny_dir):
    at = open_lab(tiny_dir)
    assert any("About 6 s: the time budget; the speed is timing two training steps" in m.value for m in at.markdown)
    est.SPEEDS.wait(120)  # the page measures in the background, on a copy of the model
    at.run()
    lm = load_model(str(tiny_dir))
    speed = est.SPEEDS.get(est.speed_key(lm, ft.QUICK_DEMO))
    assert speed is not None and speed.train_per_s > 0
    line = next(m.value for m in at.markdown if "on this machine" in m.value)
    e = est.estimate(ft.QUICK_DEMO, speed, 19)
    assert line.endswith(f"{est.say(e)[1:]}: the time budget. About {e.steps:,} step{'s' * (e.steps != 1)} of 32 "
                         f"fit ({e.steps * 32:,} examples seen), besides the evaluations.")
    assert "About 6 s on this machine (measured: " in line
    assert any("3 tweets with swear words left out" in c.value for c in at.caption)

    at.button(key="ft_start").click().run()
    assert not at.exception, errors(at)
    job = at.session_state["ft_job"]
    assert job.cfg.time_budget_s == BUDGET_S
    clock = jobs.monotonic  # the job's clock stands still unless the test moves it: it trains on meanwhile
    wait_for(lambda: job.view().step >= 2, 120)
    clock.advance(BUDGET_S / 4)  # past the first of the evaluations spread over the budget
    wait_for(lambda: any("accuracy" in m for _, m in job.view().evals), 120)
    at.run()
    bars = at.get("progress")  # the live view: the progress bar with Cancel beside it, above the settings
    assert len(bars) == 1 and "left" in bars[0].proto.text and at.button(key="ft_cancel").label == "Cancel"
    assert any(e.label == "Data and settings for the next run" for e in at.expander)
    assert any(m.label == "Accuracy" and m.value != "–" for m in at.metric)
    clock.advance(BUDGET_S)  # the budget is spent: the last step, the final evaluation, the report
    assert job.join(300)
    at.run()
    assert not at.exception, errors(at)
    v = job.view()
    assert v.status == jobs.DONE, v.message
    r = v.report
    assert any(f"Accuracy **{r.accuracy:.1%}**" in m.value for m in at.markdown)
    np.testing.assert_array_equal(arr(chart(at, "Confusion matrix (held-out)")["data"][0]["text"]), r.confusion)
    assert at.get("progress")[0].proto.value == 100  # the clock ran out: the bar is full
    assert [m.value for m in at.metric if m.label == "Step"] == [str(v.step)]  # the clock decided the steps
    kept = finetune_runs.store().runs()
    assert len(kept) == 1 and kept[0].accuracy == pytest.approx(r.accuracy)
    assert kept[0].settings["time_budget_s"] == BUDGET_S and kept[0].settings["labels"] == ["negative", "positive"]


def test_two_kept_runs_compare_side_by_side_and_survive_a_new_session(tiny_dir):
    at = open_lab(tiny_dir)
    common = {"ft_budget": 0.0, "ft_train": 100, "ft_test": 100, "ft_len": 32, "ft_batch": 16, "ft_lr": 3e-3}
    a = run_to_end(at, **common, ft_steps=20, ft_warmup=0.2)
    b = run_to_end(at, **common, ft_steps=10, ft_warmup=0.0, ft_dropout=0.0)
    at = open_lab(tiny_dir)  # a new session (as after a reload): the runs are on disk
    rs = finetune_runs.store().runs()
    assert [r.title for r in rs] == [f"run {b.id}", f"run {a.id}"]
    shown = table(at, "run")
    assert shown["run"].tolist() == [r.title for r in rs]
    np.testing.assert_allclose(shown["accuracy"], [100 * r.accuracy for r in rs])
    assert at.selectbox(key="ft_cmp_a").value == rs[1].id and at.selectbox(key="ft_cmp_b").value == rs[0].id
    cmp = at.table[0].value
    rows = {what: (row[f"A: run {a.id}"], row[f"B: run {b.id}"]) for what, row in cmp.iterrows()}
    assert rows["warm-up"] == ("20% of the steps", "0% of the steps")
    assert rows["dropout"] == ("0.1", "0")
    assert rows["steps"] == ("20 (done)", "10 (done)")
    assert rows["accuracy"] == (f"{rs[1].accuracy:.1%}", f"{rs[0].accuracy:.1%}")
    acc = chart(at, "Held-out accuracy of both runs")["data"]
    assert [t["name"] for t in acc] == [f"A: run {a.id}", f"B: run {b.id}"]
    np.testing.assert_allclose(arr(acc[0]["y"]), [m["accuracy"] for _, m in a.view().evals])
    np.testing.assert_allclose(arr(acc[1]["x"]), [s for s, _ in b.view().evals])
    for n, job in (("A", a), ("B", b)):
        cm = chart(at, f"{n}: run {job.id}: confusion matrix")["data"][0]
        np.testing.assert_array_equal(arr(cm["text"]), job.view().report.confusion)

    at.selectbox(key="ft_delete_pick").set_value(rs[1].id).run()
    at.button(key="ft_delete").click().run()
    assert not at.exception, errors(at)
    assert [r.id for r in finetune_runs.store().runs()] == [rs[0].id]
    assert table(at, "run")["run"].tolist() == [rs[0].title]


def test_a_full_store_evicts_the_oldest_and_says_so(tiny_dir):
    store = finetune_runs.store()
    for i in range(runs.MAX_RUNS):
        store.keep(record(f"old{i}", 1000.0 + i), None)
    at = open_lab(tiny_dir)
    job = run_to_end(at, ft_budget=0.0, ft_steps=10, ft_train=100, ft_test=100, ft_len=32, ft_batch=16)
    rs = store.runs()
    assert len(rs) == runs.MAX_RUNS and rs[0].title == f"run {job.id}" and "old0" not in [r.id for r in rs]
    said = [i.value for i in at.info if "deleted the oldest" in i.value]
    assert len(said) == 1 and f"At most {runs.MAX_RUNS} runs" in said[0] and "run old0" in said[0]


def test_attention_before_and_after_is_the_models_own_change(tiny_dir):
    at = open_lab(tiny_dir)
    job = run_to_end(at, ft_budget=0.0, ft_steps=20, ft_train=100, ft_test=100, ft_len=32, ft_batch=16, ft_lr=3e-3)
    rec = finetune_runs.store().runs()[0]
    at.text_input(key="ft_probe").input("the film was very bad").run()
    assert not at.exception, errors(at)
    want = attention_change(load_model(str(tiny_dir)), load_model(str(rec.model_dir)), "the film was very bad")
    grid = [c for c in at.get("plotly_chart") if "ft_change_grid" in c.proto.id]
    import json

    z = arr(json.loads(grid[0].proto.spec)["data"][0]["z"])
    np.testing.assert_allclose(z, want.change, rtol=1e-4, atol=1e-7)
    assert want.change.max() > 0
    top_l, top_h, _ = want.most_changed(1)[0]
    assert chart(at, f"Before: L{top_l + 1}·H{top_h + 1}") and chart(at, f"After: L{top_l + 1}·H{top_h + 1}")
    at.session_state["ft_change_head"] = (1, 2)  # what a click on layer 2, head 3 sets
    at.run()
    before = chart(at, "Before: L2·H3")["data"][0]
    np.testing.assert_allclose(arr(before["z"]), want.before[1, 2], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(arr(chart(at, "After: L2·H3")["data"][0]["z"]), want.after[1, 2], rtol=1e-5, atol=1e-7)
    assert any(re.search(r"layer 2, head 3.*changed by", m.value) for m in at.markdown)
    assert job.view().status == jobs.DONE and finetune_change.PROBE
