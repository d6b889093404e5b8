"""How many training and held-out examples an uploaded file allows: bounds and defaults for the fine-tuning lab's
sliders, following ``bert_core.finetune.split``'s rule (at most a fifth of the rows, but one per class, held out).

    s = split_sizes(60)                      # SplitSizes(max_train=48, max_test=12, default_train=48, default_test=12)
    options = slider_steps(N_TRAIN, s.max_train)   # [48]: the steps below the bound, then the bound itself
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_TRAIN, DEFAULT_TEST = 2000, 300  # the lab's defaults for a big file (the built-in tweets)
MOST_TEST = 1000  # the held-out slider's top step


@dataclass(frozen=True)
class SplitSizes:
    max_train: int
    max_test: int
    default_train: int
    default_test: int


def split_sizes(n_rows: int, n_classes: int = 2, n_test: int | None = None) -> SplitSizes:
    """Slider bounds for a file of ``n_rows`` labelled rows; ``n_test``: the held-out size picked now (if any).

    Held out: at most a fifth of the rows (at least one per class), as ``finetune.split`` takes; training: the
    rest, so the training slider never offers rows the file does not have.
    """
    n_rows = max(0, int(n_rows))
    max_test = min(MOST_TEST, max(n_classes, n_rows // 5), n_rows)
    default_test = min(DEFAULT_TEST, max_test)
    test = default_test if n_test is None else max(0, min(int(n_test), max_test))
    max_train = max(0, n_rows - test)
    return SplitSizes(max_train, max_test, min(DEFAULT_TRAIN, max_train), default_test)


def slider_steps(steps: Sequence[int], most: int) -> list[int]:
    """The slider's steps below ``most``, then ``most`` itself (so the top of the slider is the file's size)."""
    return [s for s in steps if s < most] + [most] if most > 0 else [0]


def clamp(value: int, options: Sequence[int]) -> int:
    """The largest option not above ``value`` (the smallest one if all are above): a kept choice stays valid."""
    below = [o for o in options if o <= value]
    return max(below) if below else min(options)
