"""A training run's time budget: ``training.train`` asks it the share of the schedule done and whether one more step
still fits, so that everything, the final evaluation included, ends within the budget (the lab's job and the CLI
alike)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .training import TrainConfig


SHORT_RUN, LONG_RUN = 60, 150  # steps: where a short run's higher peak learning rate starts to fall, and is gone


def lr_boost(boost: float, steps: float) -> float:
    """The factor on the peak learning rate of a run of ``steps`` steps: ``boost`` up to SHORT_RUN steps, 1 from
    LONG_RUN, geometric in between. Few steps must each go further (BENCHMARKS.md, "short runs")."""
    if boost == 1.0 or steps >= LONG_RUN:
        return 1.0
    return boost ** min(1.0, math.log(LONG_RUN / steps) / math.log(LONG_RUN / SHORT_RUN))


class Budget:
    """The clock of a run with a time budget (``cfg.time_budget_s`` > 0): the share of it done, for the schedule, and
    whether one more step still fits before the final evaluation must start. That evaluation (``final_eval_items``
    examples, plus the in-run sample unless ``eval_at_end`` is off) is timed from the evaluations seen so far, or,
    before any, at a third of a training step's cost per example. ``clock`` is injectable: tests need no wall time."""

    def __init__(self, cfg: TrainConfig, clock: Callable[[], float], started: float, eval_items: int = 0):
        self.cfg, self.clock, self.started, self.eval_items = cfg, clock, started, eval_items
        self.step_s = 0.0  # the slowest recent step
        self.per_item_s: float | None = None  # forward-only seconds per example, measured

    @property
    def on(self) -> bool:
        return self.cfg.time_budget_s > 0

    def reserve_s(self) -> float:
        """Seconds kept for what comes after the last step: the evaluations, plus a margin."""
        per_item = self.per_item_s if self.per_item_s is not None else \
            self.step_s / max(1, self.cfg.batch_size * self.cfg.grad_accum) / 3
        items = self.cfg.final_eval_items + (self.eval_items if self.cfg.eval_at_end else 0)
        return 1.2 * per_item * items + 0.02 * self.cfg.time_budget_s

    def done(self) -> float:
        """Share of the training time used (0..1)."""
        usable = max(1e-9, self.cfg.time_budget_s - self.reserve_s())
        return min(1.0, (self.clock() - self.started) / usable)

    def expected_steps(self, steps: int, train_s: float) -> float:
        """Steps the run will have taken when the budget ends, at the pace of its first ``steps`` (``train_s``
        seconds); the cap before any."""
        if steps == 0 or train_s <= 0:
            return float(self.cfg.max_steps)
        left = self.started + self.cfg.time_budget_s - self.reserve_s() - self.clock()
        return min(float(self.cfg.max_steps), steps + max(0.0, left) * steps / train_s)

    def guessing_eval(self) -> bool:
        """The evaluation's cost is still a guess from the step time (a slow first step inflates it): before that
        guess ends a run, ``train`` times a real evaluation of the in-run sample."""
        return self.on and self.per_item_s is None and self.eval_items > 0

    def room_for_step(self) -> bool:
        return self.clock() - self.started + self.step_s + self.reserve_s() <= self.cfg.time_budget_s

    def timed_step(self, seconds: float) -> None:
        self.step_s = max(seconds, 0.8 * self.step_s)  # the slowest recent step, forgotten slowly

    def timed_eval(self, seconds: float, items: int) -> None:
        if items:
            self.per_item_s = seconds / items
