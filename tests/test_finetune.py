"""The fine-tuning core: CSV checks, the stratified split, the classifier model, a real run, the saved checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bert_core import finetune as ft
from bert_core import jobs, load_model
from bert_core.classify import ClassificationObjective
from bert_core.training import TrainConfig, evaluate, train

GOOD = ["this movie was very good", "i love this film", "a happy good day", "she was happy and good",
        "very good food", "i love the book", "the teacher was good", "a very happy boy"]
BAD = ["this movie was very bad", "i hate this film", "a sad bad day", "she was sad and bad", "very bad food",
       "i hate the book", "the teacher was bad", "a very sad boy"]


def toy_data(n: int = 6) -> ft.LabelledData:
    texts = (GOOD + BAD) * n
    labels = ([1] * len(GOOD) + [0] * len(BAD)) * n
    return ft.LabelledData(tuple(texts), tuple(labels), ("negative", "positive"), "toy")


def test_the_bundled_tweet_data_has_three_labelled_classes():
    d = ft.sentiment_data()
    assert d.names == ("negative", "neutral", "positive")
    assert 34_000 < len(d.texts) < 38_158  # 38,158 rows, minus duplicates and tweets with swear words
    counts = np.bincount(d.labels)
    assert counts.argmax() == 0 and counts.min() > 5000
    assert all(t.strip() for t in d.texts) and all("\ufffd" not in t for t in d.texts[:2000])
    strict = ft.sentiment_data(1.0)
    assert len(strict.texts) < len(d.texts) / 1.5


def test_csv_columns_are_guessed_and_html_stays_text():
    csv = ("id,review,stars\n" + "\n".join(f"{i},\"<script>alert({i})</script> a long review, number {i}\","
                                            f"{i % 3 + 1}" for i in range(30))).encode()
    df = ft.read_csv(csv)
    assert ft.guess_columns(df) == ("review", "stars")
    d = ft.labelled(df, "review", "stars", "upload")
    assert d.names == ("1", "2", "3") and len(d.texts) == 30
    assert d.texts[0] == "<script>alert(0)</script> a long review, number 0"  # kept verbatim, never interpreted


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"   \n\n", "empty"),
    (b"just one column\nhello\nworld\n", "at least two columns"),
    (b"text,label\n", "no rows"),
    (b"\x00\x01\x02binary\x00" * 50, "does not look like a text"),
])
def test_unreadable_files_give_a_reason(data, message):
    with pytest.raises(ft.DataError, match=message):
        ft.read_csv(data)


def test_bad_label_columns_give_a_reason():
    df = ft.read_csv(("text,label,id\n" + "\n".join(f"text number {i},same,{i}" for i in range(40))).encode())
    with pytest.raises(ft.DataError, match="at least two classes"):
        ft.labelled(df, "text", "label", "x")
    with pytest.raises(ft.DataError, match="40 different values"):
        ft.labelled(df, "text", "id", "x")
    with pytest.raises(ft.DataError, match="two different columns"):
        ft.labelled(df, "text", "text", "x")
    small = ft.read_csv(b"text,label\na,x\nb,y\nc,x\nd,y\n")
    with pytest.raises(ft.DataError, match="at least 10"):
        ft.labelled(small, "text", "label", "x")


def test_rows_without_text_or_label_and_single_example_classes_are_left_out_with_a_note():
    rows = [f"row {i},{'a' if i % 2 else 'b'}" for i in range(20)] + [",a", "lonely,c", "no label,"]
    d = ft.labelled(ft.read_csv(("text,label\n" + "\n".join(rows)).encode()), "text", "label", "x")
    assert len(d.texts) == 20 and d.names == ("a", "b")
    assert "2 rows without text or label" in d.dropped and "1 label(s) with a single example" in d.dropped


def test_split_is_stratified_disjoint_and_fixed():
    d = ft.sentiment_data()
    sp = ft.split(d, 1000, 300)
    assert len(sp.train) == 1000 and len(sp.test) == 300
    assert not {t for t, _ in sp.train} & {t for t, _ in sp.test}
    full = np.bincount(d.labels) / len(d.labels)
    for part in (sp.train, sp.test):
        share = np.bincount([y for _, y in part], minlength=3) / len(part)
        np.testing.assert_allclose(share, full, atol=0.01)
    assert ft.split(d, 1000, 300) == sp


def test_head_mode_freezes_the_encoder_and_keeps_its_weights(tiny_dir):
    lm = load_model(str(tiny_dir))
    full = ft.classifier_model(lm.model, ["a", "b", "c"], ft.FULL)
    head = ft.classifier_model(lm.model, ["a", "b", "c"], ft.HEAD)
    assert full.classifier.weight.shape == (3, 32)
    assert ft.trainable_parameters(full) == sum(p.numel() for p in full.parameters())
    assert {n for n, p in head.named_parameters() if p.requires_grad} == {
        "bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight", "classifier.bias"}
    base = lm.model.state_dict()
    for k, v in head.state_dict().items():
        if k.startswith("bert."):
            assert torch.equal(v, base[k]), k
    assert head.config.extra["id2label"] == {"0": "a", "1": "b", "2": "c"}
    assert not any(p.requires_grad for p in lm.model.parameters())  # the shared model is untouched


def test_dropout_is_a_setting_of_the_copy_and_off_means_off(tiny_dir):
    lm = load_model(str(tiny_dir))
    assert lm.config.hidden_dropout_prob == 0.1
    ids = torch.tensor([[2, 5, 6, 7, 3]])

    def two_training_passes(model):
        model.train()
        with torch.no_grad():
            return [model(ids).cls_logits for _ in range(2)]

    off = ft.classifier_model(lm.model, ["a", "b"], dropout=0.0)
    assert off.config.hidden_dropout_prob == off.config.attention_probs_dropout_prob == 0.0
    a, b = two_training_passes(off)
    assert torch.equal(a, b)  # nothing random left in a training forward pass
    on = ft.classifier_model(lm.model, ["a", "b"], dropout=0.3)
    assert on.config.attention_probs_dropout_prob == 0.3
    assert {m.p for m in on.modules() if isinstance(m, torch.nn.Dropout)} == {0.3}
    a, b = two_training_passes(on)
    assert not torch.equal(a, b)
    assert ft.classifier_model(lm.model, ["a", "b"]).config.hidden_dropout_prob == 0.1  # None: the base model's
    assert lm.config.hidden_dropout_prob == 0.1  # the shared model's config is untouched
    with pytest.raises(ValueError, match="dropout"):
        ft.classifier_model(lm.model, ["a", "b"], dropout=1.0)


def test_report_matches_scikit_learn_by_hand():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.4, 0.6]])
    gold = [0, 1, 1, 1, 0]
    data = ft.Split(train=(("x", 0),) * 7, test=tuple((f"text {i}", y) for i, y in enumerate(gold)),
                    names=("neg", "pos"), source="by hand")
    r = ft.report(data, probs)
    assert r.accuracy == pytest.approx(3 / 5)
    np.testing.assert_array_equal(r.confusion, [[1, 1], [1, 2]])
    assert r.per_class["recall"].tolist() == pytest.approx([0.5, 2 / 3])
    assert r.majority_baseline == pytest.approx(3 / 5) == data.majority_baseline
    assert (r.n_train, r.n_test, r.n_wrong) == (7, 5, 2)
    # the wrong answers, most confident first: text 2 (said neg at 0.6), text 4 (said pos at 0.6), ...
    assert [(m.text, m.true, m.predicted) for m in r.mistakes] == [("text 2", "pos", "neg"), ("text 4", "neg", "pos")]
    assert [m.confidence for m in r.mistakes] == pytest.approx([0.6, 0.6])
    assert r.summary() == {"accuracy": r.accuracy, "macro_f1": r.macro_f1, "majority_baseline": r.majority_baseline}


def test_confident_mistakes_are_sorted_and_capped():
    probs = np.array([[0.55, 0.45], [0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.95, 0.05]])
    data = ft.Split(train=(), test=tuple((f"t{i}", 1) for i in range(5)), names=("a", "b"), source="x")
    r = ft.report(data, probs, n_mistakes=2)
    assert r.n_wrong == 3 and [m.text for m in r.mistakes] == ["t4", "t2"]  # 0.95, then 0.8 (t0 at 0.55 is cut)
    assert r.majority_baseline == 1.0 and r.cls_before is None and r.cls_points == ()


def test_length_buckets_keep_the_data_and_cut_the_padding(tiny_dir):
    """Each window of 8 batches holds every training text once per pass, as plain random batches do, but padded
    to texts of similar length: fewer pad tokens."""
    import random

    lm = load_model(str(tiny_dir))
    rows = [(" ".join(["good"] * (1 + i % 23)), i % 2) for i in range(256)]  # 1-23 words
    obj = ClassificationObjective(lm.tokenizer, rows, rows[:4], max_len=32)

    def pads(bucket: int) -> tuple[int, list[int]]:
        obj.bucket = bucket
        batches = [b for b, _ in zip(obj.batches(8, random.Random(0)), range(32))]  # one pass: 32 batches of 8
        lengths = [int(n) for b in batches for n in b["attention_mask"].sum(1)]
        return sum(int((b["attention_mask"] == 0).sum()) for b in batches), sorted(lengths)

    (padded, seen), (plain, plain_seen) = pads(8), pads(1)
    assert seen == plain_seen == sorted(len(lm.tokenizer(t)["input_ids"]) for t, _ in rows)  # the same texts
    assert padded < plain / 4


def test_fine_tuning_a_tiny_model_learns_a_separable_task(tiny_dir):
    lm = load_model(str(tiny_dir))
    sp = ft.split(toy_data(), 80, 16)
    model = ft.classifier_model(lm.model, sp.names, ft.FULL)
    obj = ClassificationObjective(lm.tokenizer, list(sp.train), list(sp.test), max_len=16)
    before = evaluate(model, obj)
    res = train(model, obj, TrainConfig(max_steps=60, batch_size=16, lr=3e-3, warmup_ratio=0.1, device="cpu"))
    after = evaluate(model, obj)
    assert res.history[-1].loss < res.history[0].loss / 3
    assert after["eval_loss"] < before["eval_loss"] and after["accuracy"] >= 0.9, (before, after)


def test_the_word_embedding_table_can_stay_as_it_is_while_every_other_weight_trains(tiny_dir):
    lm = load_model(str(tiny_dir))
    sp = ft.split(toy_data(), 80, 16)
    model = ft.classifier_model(lm.model, sp.names, ft.FULL, word_embeddings=False)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"bert.embeddings.word_embeddings.weight"}
    table = lm.model.bert.embeddings.word_embeddings.weight.detach().clone()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    obj = ClassificationObjective(lm.tokenizer, list(sp.train), list(sp.test), max_len=16)
    train(model, obj, TrainConfig(max_steps=30, batch_size=16, lr=3e-3, warmup_ratio=0.1, device="cpu"))
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, table)
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    # every other weight learnt; a key bias may not (softmax ignores it: it adds q·b to a whole row of scores, so
    # its gradient is zero up to rounding)
    key_bias = {n for n, _ in model.named_parameters() if n.endswith("attention.self.key.bias")}
    assert key_bias and moved - key_bias == {n for n, _ in model.named_parameters()} - frozen - key_bias
    assert ft.trainable_parameters(model) == sum(p.numel() for p in model.parameters()) - table.numel()


def test_the_lab_job_reports_and_saves_a_checkpoint_transformers_reads(tiny_dir, tmp_path, monkeypatch):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    monkeypatch.setattr(jobs, "RUNS_DIR", tmp_path / "runs")
    lm = load_model(str(tiny_dir))
    sp = ft.split(toy_data(), 80, 16)
    s = ft.FinetuneSettings(steps=30, batch_size=16, lr=3e-3, max_len=16)
    job = jobs.RUNNER.submit(ft.finetune_job(lm, s, sp))
    assert job.join(120)
    v = job.view()
    assert v.status == jobs.DONE, v.message
    assert [st for st, _ in v.evals] == [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30]
    r = v.report
    assert isinstance(r, ft.FinetuneReport)
    probs = r.test_probs
    assert probs.shape == (16, 2)
    gold = [y for _, y in sp.test]
    from sklearn.metrics import confusion_matrix

    np.testing.assert_array_equal(r.confusion, confusion_matrix(gold, probs.argmax(-1)))
    assert r.accuracy == pytest.approx(v.evals[-1][1]["accuracy"])
    assert r.cls_before.shape == r.cls_after.shape == (16, 2)
    assert r.cls_points == sp.test and (r.n_train, r.n_test) == (len(sp.train), 16)
    assert r.names == sp.names and r.majority_baseline == sp.majority_baseline

    ours = load_model(str(v.checkpoint))
    assert ours.label_names == ["negative", "positive"]
    hf = AutoModelForSequenceClassification.from_pretrained(str(v.checkpoint)).eval()
    assert hf.config.id2label == {0: "negative", 1: "positive"}
    tok = AutoTokenizer.from_pretrained(str(v.checkpoint))
    for text in ["this movie was very good", "i hate the sad book"]:
        with torch.no_grad():
            p_hf = hf(**tok(text, return_tensors="pt")).logits.softmax(-1)[0].tolist()
        ranked = dict(ours.classify(text))
        np.testing.assert_allclose([ranked["negative"], ranked["positive"]], p_hf, atol=1e-6)
    np.testing.assert_allclose([dict(ours.classify(t))["positive"] for t, _ in sp.test], probs[:, 1], atol=1e-5)


def test_classify_equals_transformers_on_a_sequence_classification_checkpoint(tmp_path):
    from conftest import make_checkpoint

    hf = make_checkpoint(tmp_path, "BertForSequenceClassification", seed=3, num_labels=3,
                         id2label={0: "x", 1: "y", 2: "z"}, label2id={"x": 0, "y": 1, "z": 2})
    lm = load_model(str(tmp_path))
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tmp_path))
    for a, b in [("the cat sat on the mat", None), ("paris is big", "the river is blue")]:
        with torch.no_grad():
            want = hf(**tok(a, b, return_tensors="pt")).logits.softmax(-1)[0].numpy()
        got = dict(lm.classify(a, b))
        np.testing.assert_allclose([got["x"], got["y"], got["z"]], want, atol=1e-6)


def test_classify_without_a_head_says_so(tiny_dir):
    from bert_core import InputError, MissingHeadError

    lm = load_model(str(tiny_dir))
    with pytest.raises(MissingHeadError, match="no sequence-classification head"):
        lm.classify("hello")
    with pytest.raises(MissingHeadError):
        lm.classify("")
    assert issubclass(MissingHeadError, Exception) and InputError


def test_cli_fine_tunes_a_csv(tiny_dir, tmp_path, capsys):
    from bert_core import finetune_cli

    csv = tmp_path / "toy.csv"
    d = toy_data()
    csv.write_text("sentence,sentiment\n" + "\n".join(f"{t},{d.names[y]}" for t, y in zip(d.texts, d.labels)))
    assert finetune_cli.main(["--model", str(tiny_dir), "--csv", str(csv), "--train", "80", "--test", "16",
                              "--steps", "30", "--lr", "3e-3", "--max-len", "16", "--precision", "no",
                              "--out", str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    assert "80 train / 16 held-out rows of " in err and "classes ['negative', 'positive']" in err
    final = json.loads(out.strip().splitlines()[-1])
    assert {"accuracy", "macro_f1", "majority_baseline", "seconds", "steps"} <= set(final)
    assert final["accuracy"] >= 0.9 and final["steps"] == 30
    assert final["word_embeddings"] is True  # BERT's recipe: the table learns too
    assert load_model(str(tmp_path / "out")).has_classifier
    base = load_model(str(tiny_dir)).model.bert.embeddings.word_embeddings.weight
    # --no-word-embeddings: the saved table is the base model's, and the JSON and the log say so
    assert finetune_cli.main(["--model", str(tiny_dir), "--csv", str(csv), "--train", "80", "--test", "16",
                              "--steps", "3", "--max-len", "16", "--precision", "no", "--no-word-embeddings",
                              "--out", str(tmp_path / "frozen")]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out.strip().splitlines()[-1])["word_embeddings"] is False
    frozen = load_model(str(tmp_path / "frozen")).model
    assert torch.equal(frozen.bert.embeddings.word_embeddings.weight, base)
    n_all = sum(p.numel() for p in frozen.parameters())
    assert f"{n_all - base.numel():,} trainable weights" in err
