"""AppTest for the pretraining lab on a tiny checkpoint and a tiny corpus: live curve, probes, cancel, waiting."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import apptest_support
from apptest_support import chart, open_page
from apptest_support import plotly_array as arr
from bert_core import jobs, pretraining
from bert_core.training import TrainConfig, lr_at
from test_jobs import ManualClock

TEXTS = ["the cat sat on the mat. the dog ate the bread.", "paris is the capital of france.",
         "a king and a queen sat in the house.", "the sun is big and the moon is small."] * 10


@pytest.fixture(autouse=True)
def tiny_corpus(monkeypatch, tmp_path):
    monkeypatch.setattr(pretraining, "lab_corpus", lambda n, n_heldout=128: pretraining.LabCorpus(TEXTS, TEXTS[:4], "tiny"))
    monkeypatch.setattr(jobs, "RUNS_DIR", tmp_path / "runs")
    monkeypatch.setattr(jobs, "monotonic", ManualClock())  # the pages' jobs never time out, however slow the machine
    yield
    for j in jobs.RUNNER.active():
        j.cancel()
        assert j.join(30)


def open_lab(folder) -> AppTest:
    at = open_page("app_pages/pretraining.py", folder)
    assert not at.exception, [e.value for e in at.exception]
    return at


def configure(at, steps: int, lr: float = 3e-3) -> None:
    at.select_slider(key="pt_steps").set_value(steps)
    at.select_slider(key="pt_batch").set_value(4)
    at.select_slider(key="pt_seq").set_value(32)
    at.select_slider(key="pt_lr").set_value(lr)
    at.run()


wait_for = functools.partial(apptest_support.wait_for, timeout=60.0)


def test_lr_schedule_is_plotted_before_starting(tiny_dir):
    at = open_lab(tiny_dir)
    configure(at, 100, 1e-3)
    at.slider(key="pt_warmup").set_value(0.2).run()
    line = chart(at, "Learning-rate schedule of this run")["data"][0]
    expect = [lr_at(s, TrainConfig(max_steps=100, lr=1e-3, warmup_ratio=0.2)) for s in range(100)]
    np.testing.assert_allclose(arr(line["y"]), expect)
    assert arr(line["y"]).argmax() == 19  # the peak right after 20 warm-up steps
    assert any("Why warm up?" in m.value and "first 20 steps" in m.value for m in at.markdown)


def test_the_page_starts_from_the_settings_defaults(tiny_dir):
    at = open_lab(tiny_dir)
    d = pretraining.LabSettings()
    keys = {"mode": "mode", "steps": "steps", "batch": "batch_size", "seq": "seq_len", "lr": "lr",
            "warmup": "warmup_ratio", "schedule": "schedule", "prob": "mlm_prob", "wwm": "whole_word", "nsp": "nsp",
            "corpus": "n_texts"}
    assert {k: at.session_state[f"pt_{k}"] for k in keys} == {k: getattr(d, f) for k, f in keys.items()}
    assert at.session_state["pt_steps"] == 200 and at.session_state["pt_lr"] == 1e-4
    assert at.session_state["pt_bf16"] is False and at.session_state["pt_size"] == "tiny"
    assert (d.scratch_layers, d.scratch_hidden, d.scratch_heads) == (2, 128, 2)  # the "tiny" size


def test_switching_the_sidebar_model_keeps_the_lab_working(tiny_dir, tiny_mlm_dir):
    at = open_lab(tiny_dir)
    at.radio(key="pt_mode").set_value("scratch").run()
    assert at.select_slider(key="pt_lr").value == 1e-3  # from-scratch default
    at.session_state["model_name"] = str(tiny_mlm_dir)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.radio(key="pt_mode").set_value("continue").run()
    assert not at.exception and at.select_slider(key="pt_lr").value == 1e-4
    assert any("its own MLM head" in c.value for c in at.caption)


def test_a_run_updates_the_curve_and_the_probes_live_then_cancels(tiny_dir):
    at = open_lab(tiny_dir)
    configure(at, 200)
    at.button(key="pt_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    job = at.session_state["pt_job"]
    assert at.button(key="pt_start").disabled  # one run per session at a time

    wait_for(lambda: job.view().step >= 3)
    at.run()
    y = arr(chart(at, "Loss")["data"][0]["y"])
    seen = len(y)
    assert seen >= 3
    v = job.view()
    np.testing.assert_allclose(y, [e.loss for e in v.history[:seen]], rtol=1e-6)

    wait_for(lambda: job.view().step >= max(seen + 3, 21))  # past two probe snapshots (every 10 steps)
    at.run()
    y = arr(chart(at, "Loss")["data"][0]["y"])
    assert len(y) > seen  # the curve grew between two polls
    probe_steps = [s.step for s in job.view().snapshots]
    assert probe_steps[:3] == [0, 10, 20]

    at.button(key="pt_cancel").click().run()
    assert job.join(30)
    at.run()
    v = job.view()
    assert v.status == jobs.CANCELLED and 21 <= v.step < 200
    assert any(f"Cancelled after {v.step} steps" in w.value for w in at.warning)
    np.testing.assert_allclose(arr(chart(at, "Loss")["data"][0]["y"]), [e.loss for e in v.history], rtol=1e-6)
    acc = chart(at, "Held-out masked-token accuracy")["data"]
    assert list(arr(acc[0]["x"])) == [s for s, _ in v.evals]
    n = int(pretraining.scored_evals(v)[-1][1]["masked_tokens"])
    assert any(f"counted on {n:,} hidden held-out tokens: one token is {100 / n:.1f} points" in c.value
               for c in at.caption)

    table = at.dataframe[0].value
    first, last = v.snapshots[0], v.snapshots[-1]
    assert list(table.columns) == ["sentence", "step 0", f"step {last.step}", "new top-1"]
    assert table["step 0"].tolist() == [", ".join(f"{t} ({p:.0%})" for t, p in zip(p.tokens[:3], p.probs[:3]))
                                        for p in first.probes]
    assert table[f"step {last.step}"].tolist() != table["step 0"].tolist()  # the guesses moved while it trained
    assert any("Checkpoint saved" in s.value for s in at.success)
    assert at.get("download_button")


def test_a_second_start_while_one_runs_shows_waiting(tiny_dir):
    a = open_lab(tiny_dir)
    configure(a, 5000)
    a.button(key="pt_start").click().run()
    job_a = a.session_state["pt_job"]
    wait_for(lambda: job_a.view().status == jobs.RUNNING)

    b = open_lab(tiny_dir)
    assert any("Another training is running" in c.value for c in b.caption)
    configure(b, 10)
    b.button(key="pt_start").click().run()
    job_b = b.session_state["pt_job"]
    wait_for(lambda: "another training is running" in job_b.view().message)
    b.run()
    assert any("another training is running" in i.value for i in b.info)
    assert job_b.view().step == 0 and job_a.view().status == jobs.RUNNING

    b.button(key="pt_cancel").click().run()  # leave the queue
    assert job_b.join(30) and job_b.view().status == jobs.CANCELLED
    a.button(key="pt_cancel").click().run()
    assert job_a.join(30)
    job_a.discard()


def test_starting_again_asks_before_replacing_the_last_run(tiny_dir):
    at = open_lab(tiny_dir)
    configure(at, 10)
    at.button(key="pt_start").click().run()
    job = at.session_state["pt_job"]
    assert job.join(60)
    at.run()
    ckpt = job.view().checkpoint
    assert ckpt.is_dir()
    assert any("deletes run" in w.value for w in at.warning)
    assert at.button(key="pt_start").disabled
    at.checkbox(key=f"pt_confirm_{job.id}").check().run()
    at.button(key="pt_start").click().run()
    new = at.session_state["pt_job"]
    assert new is not job and not ckpt.exists()
    assert new.cfg.max_steps == 10 and new.cfg.lr == 3e-3  # the run got the settings on the page
    new.cancel()
    assert new.join(30)
    new.discard()


def test_the_accuracy_note_counts_the_tokens_and_explains_continuing_the_bundled_model():
    from ui.pretraining_notes import accuracy_note, card_of_run

    ev = [(0, {"top1": 0.375, "masked_tokens": 232.0}), (200, {"top1": 0.358, "masked_tokens": 232.0})]
    plain = accuracy_note(ev, 1e-4)
    assert "232 hidden held-out tokens: one token is 0.4 points" in plain and "±6 points" in plain
    card = card_of_run({"base": "bundled", "settings": {"mode": "continue"}})
    assert card_of_run({"base": "bundled", "settings": {"mode": "scratch"}}) is None
    assert card_of_run({"base": "/tmp/x", "settings": {"mode": "continue"}}) is None
    note = accuracy_note(ev, 1e-4, card)
    assert f"for {card['steps'] + card['previous_phase']['steps']:,} steps" in note and "1e-04" in note
    assert "a peak of 1e-05 keeps it" in note and "keeps it" not in accuracy_note(ev, 1e-5, card)
