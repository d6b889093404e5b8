"""The job runner: trains a private copy in a thread, one job at a time, cancellable, stops when nobody watches.

Timeouts run on a ``ManualClock`` that the test moves on: no test waits for the wall clock to pass.
"""

from __future__ import annotations

import functools
import threading

import numpy as np
import pytest
import torch

import apptest_support
from bert_core import jobs, load_model, pretraining, stats
from bert_core.loading import with_heads
from bert_core.training import TrainConfig

TEXTS = ["the cat sat on the mat. the dog ate the bread.", "paris is the capital of france.",
         "a king and a queen sat in the house.", "the sun is big and the moon is small."] * 10
CORPUS = pretraining.LabCorpus(TEXTS, TEXTS[:4], "test corpus")
PROBES = ["the cat sat on the [MASK] .", "paris is the capital of [MASK] ."]


@pytest.fixture(scope="module")
def lm(tiny_dir):
    return load_model(str(tiny_dir), device="cpu")


@pytest.fixture(autouse=True)
def no_job_left_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "RUNS_DIR", tmp_path / "runs")  # checkpoints go to the test's own folder
    yield
    for j in jobs.RUNNER.active():
        j.cancel()
        assert j.join(30), "a job thread did not end"


class ManualClock:
    """A job clock that only moves when the test says so."""

    def __init__(self):
        self.now, self._lock = 1000.0, threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def settings(**kw) -> pretraining.LabSettings:
    return pretraining.LabSettings(**({"steps": 12, "batch_size": 4, "lr": 3e-3, "seq_len": 32} | kw))


def submit(lm, s: pretraining.LabSettings, **kw) -> jobs.Job:
    return jobs.RUNNER.submit(pretraining.lab_job(lm, s, corpus=CORPUS, probe_sentences=PROBES, **kw))


wait_for = functools.partial(apptest_support.wait_for, timeout=30.0)


def test_a_job_trains_a_copy_records_progress_and_saves(lm):
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    job = submit(lm, settings())
    assert job.join(60)
    v = job.view()
    assert v.status == jobs.DONE and v.step == 12 and not v.active
    assert [e.step for e in v.history] == list(range(1, 13))
    assert v.evals[0][0] == 0 and v.evals[-1][0] == 12 and "top5" in v.evals[-1][1]
    assert v.snapshots[0].step == 0 and v.snapshots[-1].step == 12
    assert len(v.snapshots[-1].probes) == 2 and len(v.snapshots[-1].probes[0].tokens) == 5
    L, H = lm.config.num_hidden_layers, lm.config.num_attention_heads
    T = len(v.snapshots[-1].tokens)
    assert v.snapshots[-1].attentions.shape == (L, H, T, T)
    np.testing.assert_allclose(v.snapshots[-1].attentions.sum(-1), 1.0, atol=1e-5)
    assert v.snapshots[0].probes != v.snapshots[-1].probes  # the guesses moved while it trained
    for k, t in lm.model.state_dict().items():  # the shared model is untouched
        assert torch.equal(t, before[k]), k
    again = load_model(str(v.checkpoint), device="cpu")
    assert again.has_mlm_head and again.config.hidden_size == lm.config.hidden_size
    job.discard()
    assert not v.checkpoint.exists() and job.view().checkpoint is None


def test_scratch_mode_builds_a_fresh_tiny_bert_with_the_models_tokenizer(lm):
    job = submit(lm, settings(mode="scratch", steps=3, scratch_hidden=32, scratch_heads=2, nsp=True))
    assert job.join(60)
    v = job.view()
    assert v.status == jobs.DONE, v.message
    again = load_model(str(v.checkpoint), device="cpu")
    assert again.config.hidden_size == 32 and again.config.vocab_size == lm.config.vocab_size and again.has_nsp_head
    assert "nsp_accuracy" in v.evals[-1][1]
    job.discard()


def test_only_one_job_trains_at_a_time_the_second_waits(lm):
    first = submit(lm, settings(steps=5000))
    wait_for(lambda: first.view().status == jobs.RUNNING)
    second = submit(lm, settings(steps=3))
    wait_for(lambda: "another training is running" in second.view().message)
    v2 = second.view()
    assert v2.status == jobs.WAITING and v2.step == 0 and first.view().status == jobs.RUNNING
    assert jobs.RUNNER.running() is first
    first.cancel()
    assert first.join(30)
    assert second.join(60)
    assert second.view().status == jobs.DONE and second.view().step == 3
    assert first.view().status == jobs.CANCELLED and first.view().step < 5000
    second.discard()
    first.discard()


def test_cancel_stops_the_thread_within_a_step(lm):
    job = submit(lm, settings(steps=5000))
    wait_for(lambda: job.view().step >= 2)
    job.cancel()
    at_cancel = job.view().step
    assert job.join(30)
    v = job.view()
    assert v.status == jobs.CANCELLED and "Cancelled" in v.message
    assert at_cancel <= v.step <= at_cancel + 1  # the step in progress finishes, no more
    assert v.checkpoint is not None and v.checkpoint.is_dir()  # what it learned is kept
    job.discard()


def test_a_job_nobody_watches_stops_itself(lm):
    clock = ManualClock()
    job = submit(lm, settings(steps=5000), clock=clock)
    wait_for(lambda: job.view().step >= 1)
    assert job.view().status == jobs.RUNNING
    clock.advance(jobs.HEARTBEAT_TIMEOUT_S + 1)  # no heartbeat for longer than the timeout
    assert job.join(30)
    v = job.view()
    assert v.status == jobs.STOPPED and "nobody is watching" in v.message
    assert v.step < 5000
    job.discard()


def test_heartbeats_keep_a_job_alive(lm):
    clock = ManualClock()
    job = submit(lm, settings(steps=5000), clock=clock)
    wait_for(lambda: job.view().step >= 1)
    for _ in range(3):  # 3 × 0.7 timeouts since the start, but never a whole timeout without a heartbeat
        clock.advance(0.7 * jobs.HEARTBEAT_TIMEOUT_S)
        job.heartbeat()
        seen = job.view().step
        wait_for(lambda: job.view().step >= seen + 2)  # the worker has checked the clock since
    assert job.alive and job.view().status == jobs.RUNNING
    clock.advance(jobs.HEARTBEAT_TIMEOUT_S + 1)
    assert job.join(30) and "nobody is watching" in job.view().message
    job.discard()


def test_a_job_stops_at_the_time_limit_and_keeps_what_it_learned(lm):
    clock = ManualClock()
    job = submit(lm, settings(steps=5000), clock=clock, heartbeat_timeout=2 * jobs.MAX_SECONDS)
    wait_for(lambda: job.view().step >= 2)
    clock.advance(jobs.MAX_SECONDS - 1)
    seen = job.view().step
    wait_for(lambda: job.view().step >= seen + 2)
    assert job.view().status == jobs.RUNNING  # just under the limit
    clock.advance(2)
    assert job.join(30)
    v = job.view()
    assert v.status == jobs.STOPPED and "the time limit of 30 minutes was reached" in v.message
    assert v.checkpoint is not None and v.checkpoint.is_dir() and v.snapshots[-1].step == v.step
    job.discard()


def test_a_waiting_job_nobody_watches_leaves_the_queue(lm):
    first = submit(lm, settings(steps=5000), clock=ManualClock())  # its clock stands still: it never times out
    wait_for(lambda: first.view().status == jobs.RUNNING)
    clock = ManualClock()
    second = submit(lm, settings(steps=3), clock=clock)
    wait_for(lambda: "another training is running" in second.view().message)
    clock.advance(jobs.HEARTBEAT_TIMEOUT_S + 1)
    assert second.join(30)
    assert not second.alive and second.view().status == jobs.STOPPED and second.view().step == 0
    assert first.view().status == jobs.RUNNING
    first.cancel()
    assert first.join(30)
    first.discard()


def test_steps_are_capped():
    job = jobs.Job("x", TrainConfig(max_steps=10**7), build=lambda: None)
    assert job.cfg.max_steps == jobs.MAX_STEPS


def test_a_failing_build_reports_the_error():
    def boom():
        raise ValueError("No training text.")

    job = jobs.RUNNER.submit(jobs.Job("broken", TrainConfig(max_steps=3), build=boom))
    assert job.join(30)
    v = job.view()
    assert v.status == jobs.FAILED and "No training text" in v.message
    assert jobs.RUNNER.running() is None  # the slot is free again


def test_with_heads_adds_a_fresh_mlm_head_and_keeps_the_encoder(tiny_dir, tmp_path):
    from conftest import make_checkpoint

    make_checkpoint(tmp_path, "BertModel")
    bare = load_model(str(tmp_path), device="cpu")
    assert not bare.has_mlm_head
    model = with_heads(bare.copy_for_training("cpu"), mlm=True, nsp=True)
    assert model.has_mlm_head and model.has_nsp_head
    ours = model.state_dict()
    for k, t in bare.model.state_dict().items():
        assert torch.equal(ours[k], t), k
    assert float(model.cls.predictions.transform.dense.weight.detach().std()) == pytest.approx(0.02, rel=0.2)


def test_head_entropy():
    T = 8
    uniform = np.full((1, 1, T, T), 1 / T)
    onehot = np.zeros((1, 1, T, T))
    onehot[..., 0] = 1
    assert stats.head_entropy(uniform)[0, 0] == pytest.approx(3.0)
    assert stats.head_entropy(onehot)[0, 0] == pytest.approx(0.0, abs=1e-6)
