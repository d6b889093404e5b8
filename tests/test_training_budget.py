"""training.train's time budget (on an injected clock, never the wall) and its recovery from a CUDA out-of-memory
error (simulated on CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bert_core import finetune as ft
from bert_core import load_model
from bert_core.classify import ClassificationObjective
from bert_core.budget import lr_boost
from bert_core.training import TrainConfig, lr_schedule, train

from conftest import make_checkpoint

GOOD = ["this movie was very good", "i love this film", "a happy good day", "she was happy and good"]
BAD = ["this movie was very bad", "i hate this film", "a sad bad day", "she was sad and bad"]
ROWS = [(t, 1) for t in GOOD] * 6 + [(t, 0) for t in BAD] * 6


@pytest.fixture(scope="module")
def still_dir(tmp_path_factory):
    """A tiny checkpoint without dropout, so a batch run in pieces gives exactly the whole batch's gradients."""
    d = tmp_path_factory.mktemp("tiny_no_dropout")
    make_checkpoint(d, "BertForPreTraining", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return d


def classifier(folder, pooling=ft.CLS):
    lm = load_model(str(folder), device="cpu")
    model = ft.classifier_model(lm.model, ("negative", "positive"), pooling=pooling)
    return model, ClassificationObjective(lm.tokenizer, ROWS, ROWS[::3], max_len=16)


class StepClock:
    """A fake clock: each training forward costs 0.5 s, each evaluated text 0.05 s; nothing else takes time."""

    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def budget_run(folder, **cfg_kw):
    """A 30 s budget on the fake clock (0.5 s a step, 0.05 s an evaluated text), then the caller's 40-text final
    evaluation: (result, events, seconds used)."""
    model, obj = classifier(folder)
    clock = StepClock()
    loss, predict = obj.loss, obj.predict

    def timed_loss(m, b):
        clock.t += 0.5
        return loss(m, b)

    def timed_predict(m, texts):
        clock.t += 0.05 * len(texts)
        return predict(m, texts)

    obj.loss, obj.predict = timed_loss, timed_predict
    cfg = TrainConfig(max_steps=1000, batch_size=8, lr=1e-3, time_budget_s=30.0, eval_every_s=10.0,
                      final_eval_items=40, device="cpu", **cfg_kw)
    events = []
    result = train(model, obj, cfg, callback=events.append, clock=clock, started=clock())
    timed_predict(model, [t for t, _ in ROWS[:40]])
    return result, events, clock.t - 100.0


def test_a_time_budget_ends_the_run_with_its_final_evaluation_inside_the_budget(still_dir):
    result, events, used = budget_run(still_dir)  # the caller's final evaluation of 40 texts costs 2 s here
    assert 20 <= result.steps < 60 and result.steps < 1000  # the clock, not the step cap, ended it
    assert used <= 30.0  # training, in-run evaluations and the final evaluation all fit
    assert used > 0.8 * 30.0  # and the budget was used, not wasted
    assert events[-1].done and events[-1].metrics and "accuracy" in events[-1].metrics  # the last step evaluated
    assert 2 <= sum(1 for e in events if e.metrics) <= 4  # every 10 s of the clock, and at the end
    lrs = [e.lr for e in events]
    assert max(lrs) == pytest.approx(1e-3, rel=0.05) and lrs[-1] < 0.1e-3  # the schedule followed the clock down


def test_without_the_last_sample_evaluation_the_saved_time_goes_to_training(still_dir):
    """The CLI scores the whole held-out set after training, so it turns off the sample evaluation at the last step
    (``eval_at_end``): the budget no longer keeps time for it, and the run trains longer, still within the budget."""
    with_end, events_a, used_a = budget_run(still_dir)
    without, events_b, used_b = budget_run(still_dir, eval_at_end=False)
    assert events_a[-1].done and events_a[-1].metrics  # the lab's default: the last step evaluates
    assert events_b[-1].done and events_b[-1].metrics is None
    # the 16-text sample costs 0.8 s, kept at 1.2x: about two more 0.5 s steps
    assert without.steps - with_end.steps in (1, 2, 3)
    assert used_a <= 30.0 and used_b <= 30.0


def test_a_short_run_peaks_higher_and_the_clock_says_how_short(still_dir):
    """A run of at most 60 steps peaks at ``short_run_boost`` × lr; from 150 steps the boost is gone. With a time
    budget the pace so far says how many steps the run will take: here about 50 (0.5 s each in 30 s)."""
    assert [lr_boost(2.0, n) for n in (10, 60, 150, 900)] == [2.0, 2.0, 1.0, 1.0]
    assert lr_boost(2.0, (60 * 150) ** 0.5) == pytest.approx(2 ** 0.5)  # geometric in between
    assert lr_boost(1.0, 10) == 1.0  # off
    short, _ = lr_schedule(TrainConfig(max_steps=40, lr=1e-3, warmup_ratio=0.1, short_run_boost=2.0))
    long, _ = lr_schedule(TrainConfig(max_steps=400, lr=1e-3, warmup_ratio=0.1, short_run_boost=2.0))
    assert max(short) == pytest.approx(2e-3) and max(long) == pytest.approx(1e-3)
    result, events, used = budget_run(still_dir, short_run_boost=2.0)
    assert 40 <= result.steps <= 60 and used <= 30.0
    assert max(e.lr for e in events) == pytest.approx(2e-3, rel=0.05)  # its expected steps stayed under 60
    plain, plain_events, _ = budget_run(still_dir)
    assert max(e.lr for e in plain_events) == pytest.approx(1e-3, rel=0.05)
    assert ft.FinetuneSettings().train_config().short_run_boost == 2.0  # the recipe's, in full mode only
    assert ft.FinetuneSettings(mode=ft.HEAD).train_config().short_run_boost == 1.0


def test_a_slow_first_step_does_not_end_the_run_on_a_guessed_evaluation_cost(still_dir):
    """The first step is slow (a cold start); before any evaluation, its time alone would predict a final evaluation
    too long for the budget. The run times a real evaluation instead, finds it cheap, and goes on."""
    model, obj = classifier(still_dir)
    clock = StepClock()
    loss, predict = obj.loss, obj.predict
    calls = []

    def timed_loss(m, b):
        calls.append(1)
        clock.t += 10.0 if len(calls) == 1 else 0.5
        return loss(m, b)

    def timed_predict(m, texts):
        clock.t += 0.01 * len(texts)
        return predict(m, texts)

    obj.loss, obj.predict = timed_loss, timed_predict
    cfg = TrainConfig(max_steps=1000, batch_size=8, lr=1e-3, time_budget_s=30.0, final_eval_items=40, device="cpu")
    # the guess after step 1: 10 s / 8 texts / 3 per text, for 48 texts, x1.2 = 24 s: no room for a second step
    events = []
    result = train(model, obj, cfg, callback=events.append, clock=clock, started=clock())
    timed_predict(model, [t for t, _ in ROWS[:40]])
    assert result.steps > 20  # ~19 s of 0.5 s steps after the first
    assert clock.t - 100.0 <= cfg.time_budget_s
    assert events[0].metrics and "accuracy" in events[0].metrics  # the timed evaluation is a point of the curve
    assert events[-1].done and events[-1].metrics


def test_without_a_budget_the_clock_changes_nothing(still_dir):
    model, obj = classifier(still_dir)
    result = train(model, obj, TrainConfig(max_steps=5, batch_size=8, device="cpu"), clock=lambda: 0.0)
    assert result.steps == 5


def test_a_cuda_out_of_memory_error_halves_the_batch_and_gives_the_same_weights(still_dir):
    ref, obj = classifier(still_dir)
    cfg = TrainConfig(max_steps=4, batch_size=8, lr=1e-3, warmup_ratio=0.0, device="cpu")
    train(ref, obj, cfg)

    model, obj2 = classifier(still_dir)
    loss, sizes = obj2.loss, []

    def fragile_loss(m, b):  # a GPU that holds at most 4 sequences
        sizes.append(int(b["input_ids"].size(0)))
        if sizes[-1] > 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return loss(m, b)

    obj2.loss = fragile_loss
    events = []
    result = train(model, obj2, cfg, callback=events.append)
    assert result.steps == 4 and sizes[:3] == [8, 4, 4] and set(sizes[1:]) == {4}
    assert "ran out of memory" in events[0].note and "2 pieces of 4" in events[0].note
    assert all(e.note == events[0].note for e in events)  # the user keeps being told
    assert events[0].gpu_memory_mb is None  # on CPU there is no GPU memory to show
    for (name, a), b in zip(ref.state_dict().items(), model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), name  # the pieces' gradients add up to the whole batch's


def test_other_errors_are_not_taken_for_out_of_memory(still_dir):
    model, obj = classifier(still_dir)
    obj.loss = lambda m, b: (_ for _ in ()).throw(RuntimeError("shape mismatch"))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        train(model, obj, TrainConfig(max_steps=2, batch_size=8, device="cpu"))


def test_mean_pooling_reads_the_mean_of_the_real_tokens(still_dir):
    model, obj = classifier(still_dir, pooling=ft.MEAN)
    batch = obj._collate([("i love this film", 1), ("a sad bad day and a bad movie", 0)])
    model.eval()
    with torch.no_grad():
        out = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
        short = model.encode(batch["input_ids"][:1, :int(batch["attention_mask"][0].sum())])
    h = out.last_hidden_state[0, :int(batch["attention_mask"][0].sum())]
    assert torch.allclose(out.pooled[0], h.mean(0), atol=1e-5)  # padding left out of the mean
    assert torch.allclose(out.pooled[0], short.last_hidden_state[0].mean(0), atol=1e-5)
    assert torch.allclose(out.cls_logits, model.classifier(out.pooled), atol=1e-5)
    assert not any(p.requires_grad for n, p in model.named_parameters() if "pooler" in n)  # unused: frozen
    assert model.config.extra["pooling"] == ft.MEAN
    assert np.isfinite(out.cls_logits.numpy()).all()


def test_the_lab_job_keeps_to_its_time_budget_report_included(still_dir, monkeypatch, tmp_path):
    from bert_core import jobs
    from bert_core.classify import ClassificationObjective as Objective

    monkeypatch.setattr(jobs, "RUNS_DIR", tmp_path / "runs")
    clock = StepClock()
    loss, predict = Objective.loss, Objective.predict

    def timed_loss(self, m, b):
        clock.t += 0.5
        return loss(self, m, b)

    def timed_predict(self, m, texts):
        clock.t += 0.01 * len(texts)
        return predict(self, m, texts)

    monkeypatch.setattr(Objective, "loss", timed_loss)
    monkeypatch.setattr(Objective, "predict", timed_predict)
    lm = load_model(str(still_dir), device="cpu")
    data = ft.split(ft.LabelledData(tuple(t for t, _ in ROWS), tuple(y for _, y in ROWS), ("negative", "positive"),
                                    "toy"), 32, 16)
    s = ft.FinetuneSettings(steps=1000, batch_size=8, lr=1e-3, max_len=16, time_budget_s=40.0, mixed_precision="no")
    start = clock()
    job = jobs.RUNNER.submit(ft.finetune_job(lm, s, data, heartbeat_timeout=1e9, clock=clock))
    assert job.join(300)
    v = job.view()
    assert v.status == jobs.DONE, v.message
    assert 20 < v.step < 1000 and isinstance(v.report, ft.FinetuneReport)  # the clock ended it, then the report
    assert clock.t - start <= s.time_budget_s  # preparing, training, evaluations and the report all fit
    assert len(v.evals) >= 4  # evaluated on the clock (every 40 / 8 s), not every 1000 / 8 steps
    assert v.evals[0][0] == 0  # the curve starts at the fresh head, as the lab's text says
