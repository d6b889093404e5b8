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
         "She drank a cup of tea with milk in the morning.", "The children built a snowman in the yard."]


@pytest.fixture(scope="module")
def tok():
    return loading.load_tokenizer(loading.bundled_dir())


def words(tok, text: list[int]) -> set[int]:
    """The tokens of ``text`` that are a word on their own, not a piece of a longer one (snow in snow ##man)."""
    pieces = [t.startswith("##") for t in tok.convert_ids_to_tokens(text)] + [False]
    return {t for i, t in enumerate(text) if not pieces[i] and not pieces[i + 1]}


def a_batch(tok, masks: list[list[int]]):
    enc = tok(TEXTS, return_tensors="pt", padding="max_length", max_length=16, truncation=True)
    ids, labels = enc["input_ids"].clone(), torch.full_like(enc["input_ids"], IGNORE)
    for row, cols in enumerate(masks):
        labels[row, cols] = ids[row, cols]
        ids[row, cols] = tok.mask_token_id
    return {"input_ids": ids, "token_type_ids": enc["token_type_ids"], "attention_mask": torch.ones_like(ids),
            "labels": labels}


def loss_and_masks(objective, model, batch):
    """The objective's loss, and for each masked position its logits, right answer and the text before masking."""
    with torch.no_grad():
        got = float(objective.loss(model, batch))
        logits = model.mlm_logits(model.encode(batch["input_ids"], batch["token_type_ids"],
                                               batch["attention_mask"]).last_hidden_state)
    masks = []
    for row, col in (batch["labels"] != IGNORE).nonzero().tolist():
        text = torch.where(batch["labels"][row] != IGNORE, batch["labels"][row], batch["input_ids"][row]).tolist()
        masks.append((logits[row, col].float(), int(batch["labels"][row, col]), text))
    return got, masks


@pytest.mark.parametrize("penalty", ["unlikelihood", "margin"])
def test_copy_penalty_equals_a_direct_computation(tok, penalty):
    model = loading.tiny_bert(len(tok), layers=1, hidden=32, heads=2).eval()
    objective = script.NoCopyMLM(tok, TEXTS * 4, TEXTS[:1], seq_len=16, eval_size=1, weight=0.7, penalty=penalty,
                                 common=3)
    batch = a_batch(tok, [[2, 8], [1], [4]])  # "cat" (again at 9), "the", "paris" (again later), "cup"
    got, masks = loss_and_masks(objective, model, batch)
    exempt = set(objective.exempt.tolist())
    ce, penalties = [], []
    for z, gold, text in masks:
        others = sorted(words(tok, text) - exempt - {gold})
        assert others, "every masked position has other words to penalise"
        if penalty == "margin":
            penalties.append(sum(max(0.0, float(z[w] - z[gold] + 1)) for w in others))
        else:
            p = z.softmax(-1).clamp(max=1 - 1e-4)
            penalties.append(sum(-float(torch.log1p(-p[w])) for w in others))
        ce.append(float(F.cross_entropy(z[None], torch.tensor([gold]))))
    expected = sum(ce) / len(ce) + 0.7 * sum(penalties) / len(penalties)
    assert abs(got - expected) < 1e-4 * max(1.0, expected), (got, expected)
    assert sum(penalties) > 0
    objective.weight = 0.0
    with torch.no_grad():
        assert abs(float(objective.loss(model, batch)) - sum(ce) / len(ce)) < 1e-4



def test_copy_weight_scales_the_masks_whose_answer_is_elsewhere_in_the_text(tok):
    model = loading.tiny_bert(len(tok), layers=1, hidden=32, heads=2).eval()
    objective = script.NoCopyMLM(tok, TEXTS * 4, TEXTS[:1], seq_len=16, eval_size=1, common=3, copy_weight=0.25)
    batch = a_batch(tok, [[2, 8], [1], [4]])  # "cat" (again at 9), "the", "paris" (again later), "cup"
    got, masks = loss_and_masks(objective, model, batch)
    exempt = set(objective.exempt.tolist())
    ce, weights, repeated = [], [], []
    for z, gold, text in masks:
        again = text.count(gold) > 1 and gold not in exempt
        repeated.append(tok.convert_ids_to_tokens(gold) if again else None)
        weights.append(0.25 if again else 1.0)
        ce.append(float(F.cross_entropy(z[None], torch.tensor([gold]))))
    assert [w for w in repeated if w] == ["cat", "paris"]  # "the" repeats too, but is one of the 3 commonest
    expected = sum(c * w for c, w in zip(ce, weights)) / sum(weights)
    assert abs(got - expected) < 1e-5, (got, expected)
    assert abs(got - sum(ce) / len(ce)) > 1e-3  # the weighting changed the loss
    objective.copy_weight = 0.0  # only the masks whose answer is not a repeat teach
    with torch.no_grad():
        zero = float(objective.loss(model, batch))
    kept = [c for c, w in zip(ce, weights) if w == 1.0]
    assert abs(zero - sum(kept) / len(kept)) < 1e-5


def test_the_teacher_without_copies_is_the_starting_model_with_the_texts_words_taken_out(tok):
    torch.manual_seed(0)
    model = loading.tiny_bert(len(tok), layers=2, hidden=32, heads=2).eval()
    with torch.no_grad():  # the guesses lean on "snow" and "france", so whether they are taken out shows
        model.cls.predictions.bias[tok.convert_tokens_to_ids(["snow", "france"])] += 8.0
    objective = script.NoCopyMLM(tok, TEXTS * 4, TEXTS[:1], seq_len=16, eval_size=1, common=3)
    objective.set_teacher(model, first_trained=1, share=0.75)
    batch = a_batch(tok, [[2, 8], [1], [4], [2]])  # ..., "children" beside a snowman
    got, masks = loss_and_masks(objective, model, batch)
    exempt = set(objective.exempt.tolist())
    losses, taken_out = [], []
    for z, gold, text in masks:
        out = sorted(words(tok, text) - exempt - {gold})
        taken_out.append(tok.convert_ids_to_tokens(out))
        target = z.clone()
        target[out] = float("-inf")
        target = target.softmax(-1)
        assert float(target[out].sum()) == 0 and abs(float(target.sum()) - 1) < 1e-5
        soft = -float((target * z.log_softmax(-1)).sum())
        losses.append(0.75 * soft + 0.25 * float(F.cross_entropy(z[None], torch.tensor([gold]))))
    assert "france" in taken_out[2] and "paris" not in taken_out[2]  # "paris" is the answer there: it stays
    assert "built" in taken_out[4] and "snow" not in taken_out[4]  # a piece of "snowman" is not a word of the text
    assert abs(got - sum(losses) / len(losses)) < 1e-4, (got, sum(losses) / len(losses))
    with torch.no_grad():  # the teacher stays as it was while the model trains
        model.bert.encoder.layer[1].output.dense.weight.mul_(2)
        moved = float(objective.loss(model, batch))
    assert abs(moved - got) > 1e-4
    assert all(not p.requires_grad for p in objective.teacher[0].parameters())

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


@pytest.fixture(scope="module")
def trigram(tok):
    return script.TrigramCloze(tok, beta=0.75, top_k=6)


def test_the_trigram_model_knows_everyday_phrases_the_corpus_lacks(trigram):
    around = (["very", "you"], ["for", "the"])  # thank you very [MASK] for the ...
    assert trigram.score("much", *around) > trigram.score("good", *around) + 2  # nats
    tv = (["on", "game"], ["last", "night"])  # we watched the game on [MASK] last night
    assert trigram.score("television", *tv) > max(trigram.score(w, *tv) for w in ("chicago", "washington")) + 4


def test_the_words_around_a_mask_join_pieces_and_stop_at_a_sentence(tok, trigram):
    text = tok.convert_ids_to_tokens(tok("A snowman melted. The children built a snowman in the yard!")["input_ids"])
    yard, snow, built = text.index("yard"), text.index("snow", 6), text.index("built")
    assert trigram.words_around(text, yard) == (["the", "in"], ["</s>"])
    assert trigram.words_around(text, built) == (["children", "the"], ["a", "snowman"])
    assert trigram.words_around(text, text.index("the")) == (["<s>"], ["children", "built"])
    assert trigram.words_around(text, snow) is None  # a piece of a longer word: the trigram model has no say
    isnt = tok.convert_ids_to_tokens(tok("isn't this my stop?")["input_ids"])
    assert trigram.words_around(isnt, isnt.index("t")) is None


def test_the_trigram_reweighting_equals_a_direct_computation(tok, trigram):
    torch.manual_seed(0)
    texts = ["Thank you very much for the gift.", "The children built a snowman in the yard."]
    enc = [tok(t)["input_ids"] for t in texts]
    width = max(map(len, enc))
    original = torch.tensor([e + [tok.pad_token_id] * (width - len(e)) for e in enc])
    cols = torch.tensor([4, 6])  # "much", and "##man" (no whole word: left as the teacher had it)
    logits = torch.randn(2, len(tok))
    logits[0, tok.convert_tokens_to_ids(["good", "much", "nice", "well", "so", "happy"])] += 9.0
    answers = original[torch.arange(2), cols]  # the words there before masking
    got = trigram.reweigh(logits, original, cols, answers)
    logp = logits.log_softmax(-1)
    assert torch.equal(got[1], logp[1])
    kept = (got[0] > float("-inf")).nonzero()[:, 0].tolist()
    top = logp[0].masked_fill(~trigram.known, float("-inf")).topk(6).indices.tolist()
    assert sorted(kept) == sorted(top)  # "much" is among them, so nothing is added
    text = tok.convert_ids_to_tokens(original[0].tolist())
    around = (["very", "you"], ["for", "the"])
    assert trigram.words_around(text, 4) == around
    for i in top:
        want = float(logp[0, i]) + 0.75 * trigram.score(tok.convert_ids_to_tokens(i), *around)
        assert abs(float(got[0, i]) - want) < 1e-4
    assert tok.convert_ids_to_tokens(int(got[0].argmax())) == "much"
    far = logits.clone()
    far[0, tok.convert_tokens_to_ids("much")] -= 30  # the answer out of the teacher's top guesses: added back
    assert float(trigram.reweigh(far, original, cols, answers)[0, tok.convert_tokens_to_ids("much")]) > float("-inf")


def test_the_trigram_teachers_loss_is_the_reweighted_target_without_the_texts_words(tok, trigram):
    torch.manual_seed(0)
    model = loading.tiny_bert(len(tok), layers=2, hidden=32, heads=2).eval()
    objective = script.NoCopyMLM(tok, TEXTS * 4, TEXTS[:1], seq_len=16, eval_size=1, common=3)
    objective.set_teacher(model, first_trained=1, share=1.0, trigram=trigram)
    batch = a_batch(tok, [[2, 8], [1], [4], [2]])
    got, masks = loss_and_masks(objective, model, batch)  # the student is still the teacher
    cols = (batch["labels"] != IGNORE).nonzero()[:, 1]
    exempt, losses = set(objective.exempt.tolist()), []
    for (z, gold, text), col in zip(masks, cols):
        target = trigram.reweigh(z[None], torch.tensor([text]), col[None], torch.tensor([gold]))[0]
        target[sorted(words(tok, text) - exempt - {gold})] = float("-inf")
        losses.append(-float((target.softmax(-1) * z.log_softmax(-1)).sum()))
    assert abs(got - sum(losses) / len(losses)) < 1e-4, (got, sum(losses) / len(losses))


def test_the_report_measures_the_teachers_target_through_the_same_code(tok, trigram):
    from bert_core import mlm_report
    from bert_core.corpus import ClozeProbe

    torch.manual_seed(0)
    model = loading.tiny_bert(len(tok), layers=1, hidden=32, heads=2).eval()
    probe = ClozeProbe("Thank you very [MASK] for the gift.", ("much",))
    got = mlm_report.probe_results(model, tok, (probe,), rescore=trigram.rescore)[0]
    own = mlm_report.probe_results(model, tok, (probe,))[0]
    ids = tok(probe.sentence, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model.mlm_logits(model.encode(ids, torch.zeros_like(ids), torch.ones_like(ids)).last_hidden_state)
    logp = logits[0, 4].float().log_softmax(-1)
    want = trigram.reweigh_at(logp, (["very", "you"], ["for", "the"]), trigram.top_known(logp).tolist())
    assert got.top5 == tok.convert_ids_to_tokens(want.topk(5).indices.tolist())
    assert int((want > float("-inf")).sum()) == trigram.top_k and got.top5 != own.top5


@pytest.mark.parametrize("args,message", [
    (["--teacher-without-copies", "2"], "a share from 0 to 1"),
    (["--copy-weight", "-1"], "--copy-weight is 0 or more"),
    (["--teacher-without-copies", "0.5"], "learns from the --init-from artifact"),
    (["--trigram-teacher", "0.75"], "give --teacher-without-copies a share too"),
])
def test_copy_options_out_of_range_get_a_one_line_message(args, message):
    import subprocess

    script_path = Path(script.__file__)
    run = subprocess.run([sys.executable, str(script_path), *args], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and message in run.stderr.strip().splitlines()[-1], run.stderr[-500:]
    assert "Traceback" not in run.stderr
