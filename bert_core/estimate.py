"""How long a fine-tuning run will take on this machine, measured rather than guessed.

    speed = measure_speed(lm, settings, split)       # a few real steps of a THROWAWAY copy; lm is never touched
    speed = speed_soon(lm, settings, split)          # the same in a background thread: None until it is done
    est = estimate(settings, speed, n_test)          # seconds for the steps, the evaluations and the report

``SPEEDS`` keeps each (model, device, batch size, length, mode, pooling, precision, dropout) measurement for the
process, so changing the learning rate or the steps does not measure again. No Streamlit here.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

import torch

from . import accel, training

WARMUP_STEPS, TIMED_STEPS = 1, 2  # the first step pays for allocations; the next ones are timed


@dataclass(frozen=True)
class Speed:
    train_per_s: float  # training examples per second (forward, backward, optimizer step)
    eval_per_s: float  # held-out examples per second (forward only)


@dataclass(frozen=True)
class Estimate:
    seconds: float  # the whole run: steps, evaluations, the final report
    steps: int  # optimizer steps it will make (with a time budget: those that fit)
    speed: Speed
    budget: bool  # True when a time budget sets the length


def speed_key(lm, s) -> tuple:
    return (lm.name, str(lm.device), s.batch_size, s.max_len, s.mode, getattr(s, "pooling", "cls"),
            s.mixed_precision, getattr(s, "dropout", None))


def measure_model(model, objective, batch_size: int, mixed_precision: str = "no", eval_texts=()) -> Speed:
    """Time ``TIMED_STEPS`` real optimizer steps (after ``WARMUP_STEPS``) and one forward pass over
    ``eval_texts``. ``model`` is trained: pass a throwaway copy."""
    device = next(model.parameters()).device
    cfg = training.TrainConfig(max_steps=WARMUP_STEPS + TIMED_STEPS, batch_size=batch_size)
    opt = training.make_optimizer(model, cfg)
    amp = accel.autocast_dtype(mixed_precision, device)  # as training.train picks it (auto: bf16 where faster)
    batches = objective.batches(batch_size, random.Random(0))
    model.train()
    elapsed = 0.0
    for step in range(WARMUP_STEPS + TIMED_STEPS):
        batch = {k: v.to(device) for k, v in next(batches).items()}
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = objective.loss(model, batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= WARMUP_STEPS:
            elapsed += time.perf_counter() - t0
    texts = list(eval_texts) or [t for t, _ in objective.train_set[:64]]
    t0 = time.perf_counter()
    objective.predict(model, texts)
    eval_s = time.perf_counter() - t0
    return Speed(TIMED_STEPS * batch_size / max(elapsed, 1e-9), len(texts) / max(eval_s, 1e-9))


class SpeedCache:
    """Measured speeds by ``speed_key``, shared by every session of the process; ``background`` measures off the
    caller's thread (a page must not freeze for the seconds a measurement takes on a busy machine)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._speeds: dict[tuple, Speed] = {}
        self._pending: dict[tuple, threading.Thread] = {}
        self._errors: dict[tuple, str] = {}

    def get(self, key: tuple) -> Speed | None:
        with self._lock:
            return self._speeds.get(key)

    def put(self, key: tuple, speed: Speed) -> None:
        with self._lock:
            self._speeds[key] = speed

    def error(self, key: tuple) -> str | None:
        with self._lock:
            return self._errors.get(key)

    def background(self, key: tuple, measure) -> Speed | None:
        """The speed for ``key``, or None while ``measure()`` runs in a thread (started by the first call)."""
        with self._lock:
            if key in self._speeds or key in self._errors:
                return self._speeds.get(key)
            if key not in self._pending:
                t = threading.Thread(target=self._measure, args=(key, measure), name="bert-lab-estimate",
                                     daemon=True)
                self._pending[key] = t
                t.start()
        return None

    def _measure(self, key: tuple, measure) -> None:
        try:
            speed = measure()
            with self._lock:
                self._speeds[key] = speed
        except Exception as e:  # shown to the user instead of an estimate
            with self._lock:
                self._errors[key] = f"{type(e).__name__}: {e}"
        finally:
            with self._lock:
                self._pending.pop(key, None)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the measurements under way (tests)."""
        with self._lock:
            threads = list(self._pending.values())
        for t in threads:
            t.join(timeout)

    def clear(self) -> None:
        with self._lock:
            self._speeds.clear()
            self._errors.clear()


SPEEDS = SpeedCache()


def measure_now(lm, s, split) -> Speed:
    """Measure on a throwaway copy of ``lm``: a private model with a fresh head, ours to train (no cache)."""
    from .finetune import prepare

    model, objective, _ = prepare(lm, s, split)
    return measure_model(model, objective, s.batch_size, s.mixed_precision, [t for t, _ in split.test[:32]])


def measure_speed(lm, s, split) -> Speed:
    """The speed of a run with settings ``s`` on ``split``, measured once per ``speed_key`` (cached)."""
    key = speed_key(lm, s)
    found = SPEEDS.get(key)
    if found is None:
        found = measure_now(lm, s, split)
        SPEEDS.put(key, found)
    return found


def speed_soon(lm, s, split) -> Speed | None:
    """The cached speed, or None while a background thread measures it."""
    return SPEEDS.background(speed_key(lm, s), lambda: measure_now(lm, s, split))


def estimate(s, speed: Speed, n_test: int, evaluations: int | None = None, report_points: int = 300) -> Estimate:
    """The run's length: with ``s.time_budget_s`` > 0 that budget (everything ends within it) and the steps that
    fit in it; else the steps at the training speed, plus ``evaluations`` + 1 evaluations during training (of
    ``s.eval_sample`` held-out examples each), the final pass over the held-out set and the [CLS] vectors of
    ``report_points`` examples before and after."""
    budget = float(getattr(s, "time_budget_s", 0.0) or 0.0)
    evals = (s.evaluations if evaluations is None else evaluations) + 1
    sample = min(n_test, getattr(s, "eval_sample", n_test) or n_test)
    during_s = evals * sample / speed.eval_per_s
    after_s = (n_test + 2 * min(report_points, n_test)) / speed.eval_per_s
    if budget > 0:
        fit = int(max(0.0, budget - during_s - after_s) * speed.train_per_s / s.batch_size)
        return Estimate(budget, max(1, min(s.steps, fit)), speed, True)
    return Estimate(s.steps * s.batch_size / speed.train_per_s + during_s + after_s, s.steps, speed, False)


def say(est: Estimate) -> str:
    """'about 2 min on this machine (measured: 45 examples/s)'."""
    sec = est.seconds
    when = f"{sec:.0f} s" if sec < 90 else f"{sec / 60:.0f} min" if sec < 5400 else f"{sec / 3600:.1f} h"
    rate = est.speed.train_per_s
    return f"about {when} on this machine (measured: {rate:.0f} examples/s)" if rate >= 10 else \
        f"about {when} on this machine (measured: {rate:.1f} examples/s)"
