"""What the pretraining lab's accuracy numbers can and cannot say, in words built from the run's own numbers."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from bert_core.loading import BUNDLED, BUNDLED_MLM_DIR
from bert_core.pretraining import CONTINUE
from bert_core.runs import lr_text


def trained_steps(card: dict | None) -> int | None:
    """All the steps a model card says the checkpoint was trained (its phases added up), or None."""
    if not card or not isinstance(card.get("steps"), int):
        return None
    prev = (card.get("previous_phase") or {}).get("steps")
    return card["steps"] + (prev if isinstance(prev, int) else 0)


def card_of_run(run: dict) -> dict | None:
    """The bundled model's card when a run (a job's ``extra_config["bert_lab_run"]``) continued the bundled model."""
    if run.get("base") != BUNDLED or run.get("settings", {}).get("mode") != CONTINUE:
        return None
    try:
        return json.loads((BUNDLED_MLM_DIR / "model_card.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def accuracy_note(evals: Sequence[tuple[int, dict[str, float]]], lr: float, card: dict | None = None) -> str:
    """Why top-1 can go down: how many held-out tokens it counts (one token = so many points, and the noise), and,
    for a checkpoint already trained on this corpus (``card``: the bundled model's card), why more of it barely
    helps. ``evals``: the run's scored evaluations, step 0 first; ``lr``: the run's peak learning rate."""
    n = int(evals[-1][1]["masked_tokens"])
    p = evals[0][1]["top1"]
    noise = 200 * math.sqrt(max(p * (1 - p), 1e-9) / max(n, 1))  # two standard errors, in points
    note = (f"Top-1 and top-5 are counted on {n:,} hidden held-out tokens: one token is {100 / max(n, 1):.1f} points, "
            f"so a change within about ±{noise:.0f} points can be chance.")
    steps = trained_steps(card)
    if steps:
        note += (f" This model was already trained on this same corpus for {steps:,} steps, until it stopped "
                 f"improving: a few hundred more steps at a peak learning rate of {lr_text(lr)} cannot teach it much and "
                 "mostly shake its weights, so top-1 can dip and the held-out loss rise a little"
                 + (" (a peak of 1e-05 keeps it where it is)." if lr > 1e-5 else ".") +
                 " Continued pretraining pays off on *new* text (another domain); to watch a model learn, pretrain a "
                 "tiny BERT from scratch.")
    return note
