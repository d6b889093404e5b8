"""The time estimate: measured on a throwaway copy (the loaded model is never trained), cached, budget honoured."""

from __future__ import annotations

import pytest
import torch

from bert_core import estimate as est
from bert_core import finetune as ft
from bert_core import load_model
from test_finetune import toy_data


def settings(**kw) -> ft.FinetuneSettings:
    return ft.FinetuneSettings(**({"steps": 100, "batch_size": 8, "max_len": 32} | kw))


def test_measuring_trains_a_copy_and_never_the_loaded_model(tiny_dir):
    lm = load_model(str(tiny_dir))
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    sp = ft.split(toy_data(), 60, 20)
    est.SPEEDS.clear()
    speed = est.measure_speed(lm, settings(), sp)
    assert speed.train_per_s > 0 and speed.eval_per_s > 0
    assert all(torch.equal(before[k], v) for k, v in lm.model.state_dict().items())
    assert est.measure_speed(lm, settings(lr=1e-3, steps=500), sp) is speed  # same shape of work: cached
    assert est.SPEEDS.get(est.speed_key(lm, settings(batch_size=16))) is None


def test_the_estimate_adds_steps_and_evaluations_or_is_the_budget():
    speed = est.Speed(train_per_s=40.0, eval_per_s=200.0)
    s = settings(steps=100, batch_size=8)  # 800 examples at 40/s = 20 s
    e = est.estimate(s, speed, n_test=100, evaluations=8, report_points=100)
    # 9 evaluations of min(100, eval_sample 200) + the final report's 100 + 2 × 100 [CLS] vectors = 1,200 at 200/s
    assert e.seconds == pytest.approx(26.0) and e.steps == 100 and not e.budget
    assert est.say(e) == "about 26 s on this machine (measured: 40 examples/s)"
    small = est.estimate(settings(steps=100, batch_size=8, eval_sample=20), speed, n_test=100, evaluations=8,
                         report_points=100)
    assert small.seconds == pytest.approx(20 + (9 * 20 + 300) / 200)  # a small sample during training
    b = est.estimate(settings(steps=1000, batch_size=8, time_budget_s=120.0), speed, n_test=100, evaluations=8,
                     report_points=100)
    assert b.seconds == 120.0 and b.budget and b.steps == int((120 - 6) * 40 / 8)
    assert est.say(b) == "about 2 min on this machine (measured: 40 examples/s)"
