"""The training engine on tiny models: it learns, is reproducible, cancels, accumulates, masks like BERT, saves."""

from __future__ import annotations

import copy
import random
import threading

import numpy as np
import pytest
import torch

from bert_core import load_model
from bert_core.loading import load_tokenizer
from bert_core.model import Bert, BertConfig
from bert_core.classify import ClassificationObjective
from bert_core.training import (IGNORE, MLMObjective, TrainConfig, evaluate, lr_at, lr_schedule, mask_tokens,
                                save_checkpoint, train)

TEXTS = [
    "the cat sat on the mat.", "the dog sat on the mat.", "the cat ate the bread.", "the dog ate the food.",
    "paris is the capital of france.", "the king and the queen sat in the house.", "the sun is big and red.",
    "the moon is small at night.", "a boy and a girl played in the school.", "the teacher loved the book.",
    "she played with the dog in the tree house.", "he ate bread and milk at night.",
]
HELD = ["the cat sat in the house.", "the dog ate the bread at night.", "the queen is very happy."]


@pytest.fixture(scope="module")
def tok(tiny_dir):
    return load_tokenizer(tiny_dir)


def tiny_bert(vocab: int, seed: int = 0, dropout: float = 0.1, **heads) -> Bert:
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=37, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    return Bert(cfg, **({"mlm_head": True, "nsp_head": False, "pooler": False} | heads))


def mlm_objective(tok, **kw) -> MLMObjective:
    return MLMObjective(tok, TEXTS * 4, HELD * 8, seq_len=32, **kw)


def test_mlm_loss_falls_and_heldout_improves(tok):
    model = tiny_bert(len(tok))
    obj = mlm_objective(tok)
    before = evaluate(model, obj)
    res = train(model, obj, TrainConfig(max_steps=60, batch_size=8, lr=3e-3, warmup_ratio=0.1, seed=0))
    losses = [e.loss for e in res.history]
    assert res.steps == 60 and not res.cancelled
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 1.0, (losses[:10], losses[-10:])
    assert res.final_metrics["eval_loss"] < before["eval_loss"] - 1.0
    assert res.final_metrics["top5"] > before["top5"]
    assert not model.training  # handed back in eval mode


def test_same_seed_same_losses_other_seed_other_losses(tok):
    def run(seed):
        model = tiny_bert(len(tok), seed=0)
        return [e.loss for e in train(model, mlm_objective(tok), TrainConfig(max_steps=8, batch_size=4, lr=1e-3,
                                                                             seed=seed)).history]

    a, b, c = run(0), run(0), run(1)
    assert a == b  # bit-identical: masking, data order and dropout are all seeded
    assert a != c


def test_cancel_stops_within_one_step(tok):
    cancel = threading.Event()
    events = []

    def on_step(ev):
        events.append(ev)
        if ev.step == 3:
            cancel.set()

    res = train(tiny_bert(len(tok)), mlm_objective(tok), TrainConfig(max_steps=500, batch_size=4), on_step, cancel)
    assert res.cancelled and res.steps == 3
    assert [e.step for e in events if not e.cancelled] == [1, 2, 3]
    assert events[-1].cancelled and events[-1].done


def test_gradient_accumulation_matches_the_full_batch(tok):
    rows = [(t, i % 2) for i, t in enumerate(TEXTS + HELD + ["the cat."])]  # 16 labelled texts
    obj = ClassificationObjective(tok, rows, [])

    def run(batch, accum):
        model = tiny_bert(len(tok), dropout=0.0, mlm_head=False, classifier=True, pooler=True)
        train(model, obj, TrainConfig(max_steps=4, batch_size=batch, grad_accum=accum, lr=1e-3, seed=3))
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    full, accumulated = run(8, 1), run(4, 2)
    moved = (full - torch.cat([p.detach().flatten() for p in tiny_bert(
        len(tok), dropout=0.0, mlm_head=False, classifier=True, pooler=True).parameters()])).abs().max()
    assert moved > 1e-3  # the runs really trained
    torch.testing.assert_close(accumulated, full, atol=2e-5, rtol=1e-4)


def test_whole_word_masking_masks_whole_words_only(tok):
    texts = ["the cats played playing sentences words", "the boy played with dogs and cats"] * 8
    obj = MLMObjective(tok, texts, [], seq_len=32, whole_word=True, mlm_prob=0.3)
    batches = obj.batches(8, random.Random(0))
    checked_multi = 0
    for _ in range(20):
        b = next(batches)
        masked = b["labels"] != IGNORE
        ids = torch.where(masked, b["labels"], b["input_ids"])  # the original tokens
        cont = obj.continuation[ids]
        for row in range(ids.size(0)):
            words, cur = [], []
            for i in range(ids.size(1)):
                if not cont[row, i] and cur:
                    words.append(cur)
                    cur = []
                cur.append(i)
            words.append(cur)
            for w in words:
                flags = masked[row, w].tolist()
                assert all(flags) or not any(flags), (tok.convert_ids_to_tokens(ids[row, w].tolist()), flags)
                checked_multi += len(w) > 1 and all(flags)
    assert checked_multi > 10  # multi-piece words were really masked together


def test_80_10_10_proportions(tok):
    gen = torch.Generator().manual_seed(0)
    n_special = 5
    ids = torch.randint(n_special, len(tok), (400, 128), generator=gen)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True
    masked, labels = mask_tokens(ids, special, torch.ones_like(special), tok, gen, prob=0.15)
    chosen = labels != IGNORE
    assert not chosen[special].any()
    assert abs(chosen[~special].float().mean().item() - 0.15) < 0.005
    n = chosen.sum().item()
    to_mask = (masked[chosen] == tok.mask_token_id).sum().item() / n
    kept = (masked[chosen] == ids[chosen]).sum().item() / n
    assert abs(to_mask - 0.8) < 0.02 and abs(kept - 0.1) < 0.015 and abs(1 - to_mask - kept - 0.1) < 0.015
    assert torch.equal(masked[~chosen], ids[~chosen])  # unpicked tokens untouched


def test_a_batch_without_masked_tokens_has_zero_loss_not_nan(tok):
    obj = MLMObjective(tok, ["the cat ."] * 4, [], seq_len=8, mlm_prob=0.0)
    res = train(tiny_bert(len(tok)), obj, TrainConfig(max_steps=3, batch_size=1))
    assert [e.loss for e in res.history] == [0.0, 0.0, 0.0]


def test_ids_beyond_len_tokenizer_are_handled(tmp_path):
    """A vocab.txt that repeats a token has ids past len(tokenizer) (the repeat's line number is still an id)."""
    from transformers import BertTokenizerFast

    from bert_core.loading import vocab_size
    from conftest import VOCAB

    (tmp_path / "vocab.txt").write_text("\n".join([*VOCAB[:40], "a", "i", *VOCAB[40:]]) + "\n")
    tok = BertTokenizerFast.from_pretrained(str(tmp_path))
    ids = tok("jazz fizz buzz quiz", add_special_tokens=False)["input_ids"]
    assert max(ids) >= len(tok)
    obj = MLMObjective(tok, ["jazz fizz buzz quiz the cat"] * 8, [], seq_len=16)
    assert obj.continuation[max(ids)]  # '##z' is a continuation piece
    res = train(tiny_bert(vocab_size(tok)), obj, TrainConfig(max_steps=2, batch_size=4))
    assert res.steps == 2 and np.isfinite([e.loss for e in res.history]).all()


def test_nsp_objective_trains_and_reports_nsp_accuracy(tok):
    docs = ["the cat sat on the mat. the dog ate the bread. the sun is big.",
            "paris is the capital of france. the king is happy. the queen is sad.",
            "a boy played in the school. the teacher loved the book. the girl ran."] * 4
    obj = MLMObjective(tok, docs, docs[:3], seq_len=32, nsp=True, eval_size=16)
    b = next(obj.batches(16, random.Random(0)))
    assert set(b["nsp_labels"].tolist()) == {0, 1}
    assert (b["token_type_ids"] == 1).any()  # sentence B is segment 1
    model = tiny_bert(len(tok), nsp_head=True, pooler=True)
    res = train(model, obj, TrainConfig(max_steps=5, batch_size=8, lr=1e-3))
    assert np.isfinite([e.loss for e in res.history]).all()
    assert 0.0 <= res.final_metrics["nsp_accuracy"] <= 1.0


def test_classification_loss_falls(tok):
    pos = ["i love this movie", "a very good film", "happy and good", "i love the book", "good good very good"]
    neg = ["i hate this movie", "a very bad film", "sad and bad", "i hate the book", "bad bad very bad"]
    rows = [(t, 1) for t in pos] + [(t, 0) for t in neg]
    obj = ClassificationObjective(tok, rows, rows)
    model = tiny_bert(len(tok), mlm_head=False, classifier=True, pooler=True)
    res = train(model, obj, TrainConfig(max_steps=40, batch_size=10, lr=3e-3, seed=0))
    losses = [e.loss for e in res.history]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert res.final_metrics["accuracy"] == 1.0


def test_lr_schedule_warms_up_then_decays():
    cfg = TrainConfig(max_steps=100, lr=1e-3, warmup_ratio=0.1)
    lrs = [lr_at(s, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[-1] < 2e-5
    cos = [lr_at(s, TrainConfig(max_steps=100, lr=1e-3, warmup_ratio=0.1, schedule="cosine")) for s in range(100)]
    assert cos[54] == pytest.approx(0.5e-3, rel=0.05)
    assert lr_at(99, TrainConfig(max_steps=100, lr=1e-3, schedule="constant")) == 1e-3


@pytest.mark.parametrize("steps, ratio, warmup", [(100, 0.2, 20), (200, 0.1, 20), (10, 0.02, 1), (10, 0.3, 3),
                                                  (50, 0.06, 3), (20, 0.0, 0), (10, 0.5, 5)])
def test_the_lr_preview_is_the_engines_schedule_and_counts_the_warmup_steps(steps, ratio, warmup):
    cfg = TrainConfig(max_steps=steps, lr=1e-3, warmup_ratio=ratio)
    lrs, n_warm = lr_schedule(cfg)
    assert lrs == [lr_at(s, cfg) for s in range(steps)] and n_warm == warmup
    if warmup:  # the rate climbs during exactly those steps and peaks at the last of them
        assert all(a < b for a, b in zip(lrs[:warmup], lrs[1:warmup])) and lrs[warmup - 1] == pytest.approx(1e-3)
        assert int(np.argmax(lrs)) == warmup - 1


def test_checkpoint_reloads_with_identical_predictions(tok, tiny_dir, tmp_path):
    from transformers import BertForPreTraining

    lm = load_model(str(tiny_dir), device="cpu")
    model = lm.copy_for_training("cpu")
    train(model, mlm_objective(tok, nsp=False), TrainConfig(max_steps=5, batch_size=4, lr=1e-3))
    folder = save_checkpoint(model, tok, tmp_path / "ckpt")
    again = load_model(str(folder), device="cpu")
    text = "the cat sat on the [MASK] ."
    ins = again.inspect(text)
    enc = tok(text, return_tensors="pt")
    with torch.no_grad():
        ours = model(enc["input_ids"], enc["token_type_ids"]).mlm_logits[0].numpy()
        hf = BertForPreTraining.from_pretrained(str(folder)).eval()(**enc).prediction_logits[0].numpy()
    np.testing.assert_allclose(ins.mlm_logits, ours, atol=1e-5)
    np.testing.assert_allclose(hf, ours, atol=1e-4)
    assert not np.allclose(ours, lm.inspect(text).mlm_logits, atol=1e-3)  # training changed the copy …
    assert again.fill_mask(text, 3) != [] and lm.model.training is False  # … and never the shared model


def test_evaluating_between_fused_adamw_steps_sees_the_new_weights(tiny_dir):
    """Fused AdamW does not bump tensors' version counters; the model's fused-QKV inference cache must not serve
    stale weights to an evaluation that runs between training steps."""
    import torch

    from bert_core import load_model

    model = load_model(str(tiny_dir)).copy_for_training("cpu")
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    model.eval()
    with torch.no_grad():
        model.encode(ids)  # an evaluation before training (would fill a cache)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, fused=True)
    model.train()
    model.encode(ids).last_hidden_state.sum().backward()
    opt.step()
    model.eval()
    with torch.no_grad():
        got = model.encode(ids).last_hidden_state
        fresh = copy.deepcopy(model)
        for p in fresh.parameters():
            p.requires_grad_(False)
        want = fresh.encode(ids).last_hidden_state
    assert torch.equal(got, want)
