"""AppTest for the fine-tuning lab on a tiny checkpoint: a live run, its report and try-it box, uploads, bad CSVs."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import streamlit as st

import apptest_support

from apptest_support import chart, errors, open_page
from apptest_support import plotly_array as arr
from bert_core import finetune as ft
from bert_core import estimate as est
from bert_core import jobs, load_model
from ui import finetune_runs
from bert_core.explain import explain_all
from test_finetune import toy_data
from test_jobs import ManualClock


@pytest.fixture(autouse=True)
def toy_tweets(monkeypatch, tmp_path):
    monkeypatch.setattr(ft, "sentiment_data", lambda min_conf=0.0, labels=(), safe=True: toy_data())
    monkeypatch.setenv(finetune_runs.RUNS_ENV, str(tmp_path / "kept"))
    est.SPEEDS.wait(120)
    est.SPEEDS.clear()
    monkeypatch.setattr(jobs, "RUNS_DIR", tmp_path / "runs")
    monkeypatch.setattr(jobs, "monotonic", ManualClock())  # the pages' jobs never time out, however slow the machine
    st.cache_data.clear()
    yield
    for j in jobs.RUNNER.active():
        j.cancel()
        assert j.join(30)
    st.cache_data.clear()


def open_lab(folder):
    at = open_page("app_pages/finetune.py", folder)
    assert not at.exception, errors(at)
    return at


def configure(at, steps: int = 30, lr: float = 3e-3, budget: float = 0.0) -> None:
    at.select_slider(key="ft_budget").set_value(budget)
    at.select_slider(key="ft_batch").set_value(16)
    at.select_slider(key="ft_train").set_value(100)
    at.select_slider(key="ft_test").set_value(100)
    at.select_slider(key="ft_steps").set_value(steps)
    at.select_slider(key="ft_lr").set_value(lr)
    at.select_slider(key="ft_len").set_value(32)
    at.run()
    assert not at.exception, errors(at)


def finish(job, timeout: float = 300.0) -> bool:
    """Wait for the job to end (its clock stands still, so no heartbeat is needed)."""
    return job.join(timeout)


wait_for = functools.partial(apptest_support.wait_for, timeout=90.0)


def test_data_view_shows_the_class_balance_and_the_schedule(tiny_dir):
    at = open_lab(tiny_dir)
    configure(at, steps=100, lr=5e-5)
    bal = chart(at, "Examples per class")["data"]
    assert [b["name"] for b in bal] == ["training", "held-out"]
    assert list(bal[0]["y"]) == ["negative", "positive"]
    # 96 toy rows: at most a fifth held out (19), the rest trains
    assert arr(bal[1]["x"]).sum() == 19 and arr(bal[0]["x"]).sum() == 77
    lr = arr(chart(at, "Learning rate of this run")["data"][0]["y"])
    # 100 steps: a short run, whose peak is 1.36x the slider's (budget.lr_boost), said beside the chart
    assert len(lr) == 100 and lr.max() == pytest.approx(5e-5 * 2 ** (np.log(150 / 100) / np.log(150 / 60)))
    assert any("A short run peaks higher: 6.8e-05 instead of 5e-05" in m.value
               and "1.4× the rate you picked" in m.value for m in at.markdown)
    assert any("100 steps × 16 examples = 21 passes over the 77 training examples" in m.value for m in at.markdown)
    assert any("into 2 scores" in m.value for m in at.markdown)


def test_the_page_opens_on_the_quick_demo_and_three_classes_are_one_click_away(tiny_dir, monkeypatch):
    asked = []  # the classes the page asks the tweet data for
    monkeypatch.setattr(ft, "sentiment_data", lambda min_conf=0.0, labels=(), safe=True:
                        asked.append(tuple(labels)) or toy_data())
    at = open_lab(tiny_dir)
    assert asked == [("negative", "positive")]
    d = ft.QUICK_DEMO
    assert at.radio(key="ft_task").value == "quick" and d.labels == ("negative", "positive")
    shown = {k: at.session_state[f"ft_{k}"] for k in ("mode", "steps", "batch", "lr", "warmup", "schedule", "len",
                                                       "train", "test", "precision", "budget", "pool")}
    assert shown == {"mode": d.mode, "steps": d.steps, "batch": d.batch_size, "lr": d.lr, "warmup": d.warmup_ratio,
                     "schedule": d.schedule, "len": d.max_len, "train": d.n_train, "test": d.n_test,
                     "precision": d.mixed_precision,
                     "budget": d.time_budget_s, "pool": d.pooling}
    assert shown["budget"] == 120.0
    assert any("A time budget of 2 min" in m.value for m in at.markdown)
    at.radio(key="ft_task").set_value("three").run()
    assert at.session_state["ft_budget"] == 300.0 and at.session_state["ft_train"] == d.n_train
    assert asked[-1] == ()  # every class
    assert any("A time budget of 5 min" in m.value for m in at.markdown)


def test_head_only_mode_changes_the_default_learning_rate_and_explains_it(tiny_dir):
    at = open_lab(tiny_dir)
    at.radio(key="ft_mode").set_value(ft.HEAD).run()
    assert at.select_slider(key="ft_lr").value == 1e-3
    assert any("stay frozen" in c.value for c in at.caption)


def test_a_run_shows_live_curves_then_the_report_and_a_working_classifier(tiny_dir):
    at = open_lab(tiny_dir)
    configure(at, steps=50)
    at.button(key="ft_start").click().run()
    assert not at.exception, errors(at)
    job = at.session_state["ft_job"]
    assert at.button(key="ft_start").disabled
    assert finish(job)
    at.run()
    assert not at.exception, errors(at)
    v = job.view()
    assert v.status == jobs.DONE, v.message

    loss = chart(at, "Loss")["data"]
    np.testing.assert_allclose(arr(loss[0]["y"]), [e.loss for e in v.history], rtol=1e-6)
    acc = chart(at, "Held-out accuracy")["data"]
    assert list(arr(acc[0]["x"])) == [s for s, _ in v.evals]
    np.testing.assert_allclose(arr(acc[0]["y"]), [m["accuracy"] for _, m in v.evals])
    assert v.evals[-1][1]["accuracy"] >= 0.85, v.evals

    r = v.report
    cm = chart(at, "Confusion matrix (held-out)")["data"][0]
    np.testing.assert_array_equal(arr(cm["text"]), r.confusion)
    assert arr(cm["text"]).sum() == 19
    per_class = frame(at, "class", "precision", "recall", "F1", "examples")
    assert per_class["class"].tolist() == ["negative", "positive"]
    assert per_class["examples"].tolist() == r.confusion.sum(1).tolist()
    scatter = chart(at, "The [CLS] vectors of held-out examples, squeezed to 2-D")["data"]
    assert len(scatter) == 4  # two classes × before/after
    np.testing.assert_allclose(np.concatenate([arr(s["x"]) for s in scatter[2:]]),
                               np.concatenate([r.cls_after[np.asarray([y for _, y in
                                               job_split(at).test]) == c, 0] for c in (0, 1)]))
    assert any(f"Accuracy **{r.accuracy:.1%}**" in m.value for m in at.markdown)
    if r.n_wrong:  # the report's most confident mistakes, as the page shows them
        mistakes = frame(at, "text", "true", "predicted", "confidence")
        assert mistakes["text"].tolist() == [m.text for m in r.mistakes] and len(mistakes) == min(10, r.n_wrong)
        assert any(f"({r.n_wrong} of 19 held-out examples are wrong)" in m.value for m in at.markdown)

    # try it: the page's bars are the checkpoint's own probabilities
    at.text_input(key="ft_try").input("i hate this bad film").run()
    bars = chart_without_title(at, "ft_try_chart")
    ranked = load_model(str(v.checkpoint)).classify("i hate this bad film")
    assert list(bars["y"]) == [n for n, _ in ranked]
    np.testing.assert_allclose(arr(bars["x"]), [p for _, p in ranked], atol=1e-6)
    assert ranked[0][0] == "negative"
    at.toggle(key="ft_why").set_value(True).run()  # why this class: the panel's IG bars are explain_all's scores
    assert not errors(at)
    ig = explain_all(load_model(str(v.checkpoint)), "i hate this bad film", "negative")["ig"]
    ig_bars = [c for c in apptest_support.charts(at) if len(c["data"]) and c["data"][0].get("type") == "bar"
               and len(arr(c["data"][0]["y"])) == len(ig.scores)]
    assert any(np.allclose(arr(c["data"][0]["y"]), ig.scores, rtol=1e-4, atol=1e-6) for c in ig_bars)
    at.toggle(key="ft_why").set_value(False).run()
    at.text_input(key="ft_try").input("   ").run()
    assert not at.exception and any("empty" in i.value for i in at.info)

    names = [d.proto.label for d in at.get("download_button")]
    assert names == ["Download the model (.zip)", "Download the metrics (.json)"]


def frame(at, *columns: str):
    """The dataframe shown with exactly these columns."""
    for d in at.dataframe:
        if list(d.value.columns) == list(columns):
            return d.value
    raise AssertionError(f"no table with columns {columns}: {[list(d.value.columns) for d in at.dataframe]}")


def job_split(at) -> ft.Split:
    return at.session_state["ft_job_split"]


def chart_without_title(at, key: str) -> dict:
    for c in at.get("plotly_chart"):
        if key in c.proto.id:
            return json.loads(c.proto.spec)["data"][0]
    raise AssertionError(f"no chart with key {key}")


def test_starting_again_keeps_the_last_run_without_asking(tiny_dir):
    at = open_lab(tiny_dir)
    configure(at, steps=10)
    at.button(key="ft_start").click().run()
    job = at.session_state["ft_job"]
    assert finish(job)
    at.run()
    assert not at.exception, errors(at)
    kept = finetune_runs.store().runs()
    assert [r.title for r in kept] == [f"run {job.id}"] and kept[0].steps == 10
    assert (kept[0].model_dir / "model.safetensors").is_file()
    assert not at.button(key="ft_start").disabled and not any("deletes run" in w.value for w in at.warning)
    at.button(key="ft_start").click().run()
    new = at.session_state["ft_job"]
    assert new is not job and (kept[0].model_dir / "model.safetensors").is_file()
    new.cancel()
    assert new.join(30)
    new.discard()


def test_a_second_start_while_one_runs_waits(tiny_dir):
    at = open_lab(tiny_dir)
    configure(at, steps=2000)
    at.button(key="ft_start").click().run()
    first = at.session_state["ft_job"]
    wait_for(lambda: first.view().status == jobs.RUNNING)
    other = open_lab(tiny_dir)
    assert any("Another training is running" in c.value for c in other.caption)
    configure(other, steps=10)
    other.button(key="ft_start").click().run()
    second = other.session_state["ft_job"]
    wait_for(lambda: "another training is running" in second.view().message)
    other.run()
    assert any("another training is running" in i.value for i in other.info)
    other.button(key="ft_cancel").click().run()
    at.button(key="ft_cancel").click().run()
    assert second.join(30) and first.join(30)
    assert first.view().status == jobs.CANCELLED and second.view().step == 0


UPLOAD = ("review;stars\n" + "\n".join(
    f"\"{t} <script>alert('x')</script> **bold**\";{'five' if y else 'one'}"
    for t, y in zip(toy_data().texts, toy_data().labels))).encode()


def test_an_uploaded_csv_with_html_trains_and_shows_as_text(tiny_dir):
    at = open_lab(tiny_dir)
    at.radio(key="ft_source").set_value("upload").run()
    assert any("Upload a CSV" in i.value for i in at.info)
    at.file_uploader(key="ft_file").set_value(("reviews.csv", UPLOAD, "text/csv")).run()
    assert not at.exception, errors(at)
    assert any("96 rows read from reviews\\.csv" in c.value for c in at.caption)  # escaped Markdown
    bal = chart(at, "Examples per class")["data"]
    assert list(bal[0]["y"]) == ["five", "one"]
    shown = frame(at, "text", "label")
    assert all("<script>alert('x')</script> **bold**" in t for t in shown["text"])
    assert not any("<script>" in m.value for m in at.markdown)  # never written into Markdown/HTML


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"only,header\n", "no rows"),
    ("text,label\n" + "\n".join(f"t{i},{i}" for i in range(50)), "different values"),
    (b"\x00\xff" * 100, "does not look like a text"),
])
def test_bad_uploads_get_a_clear_message(tiny_dir, content, message):
    at = open_lab(tiny_dir)
    at.radio(key="ft_source").set_value("upload").run()
    data = content.encode() if isinstance(content, str) else content
    at.file_uploader(key="ft_file").set_value(("bad.csv", data, "text/csv")).run()
    assert not at.exception, errors(at)
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert not at.get("button") or all(b.key != "ft_start" for b in at.button)


@pytest.mark.parametrize("page", ["app_pages/home.py", "app_pages/attention.py", "app_pages/inside_bert.py",
                                  "app_pages/playground.py", "app_pages/pretraining.py", "app_pages/finetune.py"])
def test_every_page_works_on_a_fine_tuned_checkpoint(tiny_dir, tmp_path_factory, page):
    folder = tmp_path_factory.getbasetemp() / "finetuned_for_pages"
    if not (folder / "config.json").is_file():
        lm = load_model(str(tiny_dir))
        model = ft.classifier_model(lm.model, ["negative", "positive"])
        from bert_core.training import save_checkpoint

        save_checkpoint(model, lm.tokenizer, folder)
    at = open_page(page, folder)
    assert not at.exception, errors(at)
    assert at.session_state["model_name"] == str(folder)  # it loaded (no fallback to the bundled model)
    if page.endswith("playground.py"):
        assert any("no masked-language-model head" in w.value for w in at.warning)
