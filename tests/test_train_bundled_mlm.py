"""scripts/train_bundled_mlm.py: the copy penalties equal a direct computation, and a later phase that trains fewer
layers still saves every tensor of the artifact it started from."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import train_bundled_mlm as script  # noqa: E402
from bert_core import loading  # noqa: E402
from bert_core.training import IGNORE  # noqa: E402

TEXTS = ["The cat sat on the mat and the cat slept.", "Paris is the capital of France, and Paris is big.",
         "She drank a cup of tea with milk in the morning."]


@pytest.fixture(scope="module")
def tok():
    return loading.load_tokenizer(loading.bundled_dir())


def a_batch(tok, masks: list[list[int]]):
    enc = tok(TEXTS, return_tensors="pt", padding="max_length", max_length=16, truncation=True)
    ids, labels = enc["input_ids"].clone(), torch.full_like(enc["input_ids"], IGNORE)
    for row, cols in enumerate(masks):
        labels[row, cols] = ids[row, cols]
        ids[row, cols] = tok.mask_token_id
    return {"input_ids": ids, "token_type_ids": enc["token_type_ids"], "attention_mask": torch.ones_like(ids),
            "labels": labels}


@pytest.mark.parametrize("penalty", ["unlikelihood", "margin"])
def test_copy_penalty_equals_a_direct_computation(tok, penalty):
    model = loading.tiny_bert(len(tok), layers=1, hidden=32, heads=2).eval()
    objective = script.NoCopyMLM(tok, TEXTS * 4, TEXTS[:1], seq_len=16, eval_size=1, weight=0.7, penalty=penalty,
                                 common=3)
    batch = a_batch(tok, [[2, 8], [1], [4]])  # "cat" (again at 9), "the", "paris" (again later), "cup"
    with torch.no_grad():
        got = objective.loss(model, batch)
        logits = model.mlm_logits(model.encode(batch["input_ids"], batch["token_type_ids"],
                                               batch["attention_mask"]).last_hidden_state)
    exempt = set(objective.exempt.tolist())
    ce, penalties = [], []
    for row, col in (batch["labels"] != IGNORE).nonzero().tolist():
        z, gold = logits[row, col].float(), int(batch["labels"][row, col])
        text = torch.where(batch["labels"][row] != IGNORE, batch["labels"][row], batch["input_ids"][row]).tolist()
        others = sorted(set(text) - exempt - {gold})
        assert others, "every masked position has other words to penalise"
        if penalty == "margin":
            penalties.append(sum(max(0.0, float(z[w] - z[gold] + 1)) for w in others))
        else:
            p = z.softmax(-1).clamp(max=1 - 1e-4)
            penalties.append(sum(-float(torch.log1p(-p[w])) for w in others))
        ce.append(float(F.cross_entropy(z[None], torch.tensor([gold]))))
    expected = sum(ce) / len(ce) + 0.7 * sum(penalties) / len(penalties)
    assert abs(float(got) - expected) < 1e-4 * max(1.0, expected), (float(got), expected)
    assert sum(penalties) > 0
    objective.weight = 0.0
    with torch.no_grad():
        assert abs(float(objective.loss(model, batch)) - sum(ce) / len(ce)) < 1e-4


@pytest.mark.slow
def test_a_phase_training_fewer_layers_keeps_the_earlier_phases_tensors(tmp_path):
    model, _ = script.base_model(1)  # phase 1 trains layers 1-5 and the head
    with torch.no_grad():
        model.bert.encoder.layer[1].output.dense.bias.add_(0.25)  # a "trained" value the wheel does not have
    script.save_artifact(model, tmp_path / "phase1", {"name": "test"})
    first = load_file(str(tmp_path / "phase1" / loading.BUNDLED_MLM_WEIGHTS.name))

    model, _ = script.base_model(4)  # phase 2 trains only layers 4-5 and the head
    keep = frozenset(script.overlay(model, tmp_path / "phase1"))
    assert keep == set(first)
    with torch.no_grad():
        model.bert.encoder.layer[5].output.dense.bias.add_(1.0)
    script.save_artifact(model, tmp_path / "phase2", {"name": "test"}, keep)
    second = load_file(str(tmp_path / "phase2" / loading.BUNDLED_MLM_WEIGHTS.name))

    assert set(second) == set(first)  # layer 1-3 tensors are still there, though phase 2 froze them
    name1, name5 = "bert.encoder.layer.1.output.dense.bias", "bert.encoder.layer.5.output.dense.bias"
    assert torch.equal(second[name1], first[name1])
    assert torch.allclose(second[name5].float(), first[name5].float() + 1.0, atol=2e-3)
