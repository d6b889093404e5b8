"""``python -m bert_core.finetune`` and ``python -m bert_core.pretraining``: the JSON line, --labels, the offline
--dataset message, and DDP with torchrun (2 CPU processes, gloo) ending with identical weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bert_core import finetune as ft
from bert_core import finetune_cli

ROOT = Path(__file__).resolve().parents[1]
GOOD = ["this movie was very good", "i love this film", "a happy good day", "she was happy and good",
        "very good food", "i love the book", "the teacher was good", "a very happy boy"]
BAD = ["this movie was very bad", "i hate this film", "a sad bad day", "she was sad and bad", "very bad food",
       "i hate the book", "the teacher was bad", "a very sad boy"]
NEUTRAL = ["the cat sat on the mat", "the dog ran in the house", "a car and a tree", "the sun and the moon"]


@pytest.fixture(scope="module")
def toy_csv(tmp_path_factory) -> Path:
    f = tmp_path_factory.mktemp("toy") / "toy.csv"
    rows = [(t, "positive") for t in GOOD] * 4 + [(t, "negative") for t in BAD] * 4 + \
           [(t, "neutral") for t in NEUTRAL] * 4
    f.write_text("text,label\n" + "\n".join(f"{t},{y}" for t, y in rows) + "\n")
    return f


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_the_cli_prints_a_json_line_last_with_the_headline_figures(tiny_dir, toy_csv, capsys):
    rc = finetune_cli.main(["--model", str(tiny_dir), "--csv", str(toy_csv), "--labels", "negative,positive",
                            "--test", "8", "--steps", "3", "--batch-size", "8", "--lr", "1e-3", "--evaluations", "1"])
    out, err = capsys.readouterr()
    assert rc == 0
    r = last_json(out)
    assert r["steps"] == 3 and r["classes"] == ["negative", "positive"] and r["n_test"] == 8
    assert r["majority_baseline"] == 0.5 and 0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["macro_f1"] <= 1.0
    assert r["seconds"] > 0 and r["processes"] == 1 and r["gpu_memory_mb"] is None
    assert "confusion" in err and "fine-tuning" in err  # the human lines and the bar are on stderr


def test_labels_keep_only_those_classes():
    both = ft.sentiment_data(labels=ft.BINARY)
    assert both.names == ft.BINARY and set(both.labels) == {0, 1}
    every = ft.sentiment_data()
    assert len(both.texts) == sum(1 for y in every.labels if every.names[y] != "neutral")
    with pytest.raises(ft.DataError, match="Unknown label"):
        ft.sentiment_data(labels=("negative", "angry"))
    with pytest.raises(ft.DataError, match="two classes"):
        ft.sentiment_data(labels=("negative",))


def test_the_cli_rejects_an_unknown_label_in_one_line(tiny_dir, toy_csv, capsys):
    assert finetune_cli.main(["--model", str(tiny_dir), "--csv", str(toy_csv), "--labels", "happy,sad"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Unknown label(s) happy, sad") and "Traceback" not in err


def test_an_offline_dataset_fails_fast_with_one_clear_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    p = subprocess.run([sys.executable, "-m", "bert_core.finetune", "--dataset", "glue/sst2"], cwd=ROOT,
                       capture_output=True, text=True, env={**os.environ, "HF_DATASETS_CACHE": "/nonexistent-cache"})
    assert p.returncode == 2 and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr
    assert "'glue/sst2' is not in the local Hugging Face cache" in lines[0] and "built-in tweets" in lines[0]


def test_the_cli_takes_its_defaults_from_the_recipe():
    a = finetune_cli.parse([])
    s = finetune_cli.settings(a)
    r = ft.FULL_RECIPE
    assert (s.pooling, s.batch_size, s.lr, s.max_len, s.warmup_ratio, s.n_test, s.mixed_precision, s.dropout) == \
           (r.pooling, r.batch_size, r.lr, r.max_len, r.warmup_ratio, r.n_test, r.mixed_precision, r.dropout)
    assert a.model == ft.RECIPE_MODEL and s.steps == 400 and s.time_budget_s == 0
    b = finetune_cli.settings(finetune_cli.parse(["--time-budget", "120", "--labels", "negative,positive"]))
    assert b.time_budget_s == 120 and b.labels == ft.BINARY and b.steps == r.steps  # the clock decides
    assert finetune_cli.settings(finetune_cli.parse(["--dropout", "0"])).dropout == 0.0


@pytest.mark.parametrize("argv, n", [([], 4), (["--time-budget", "120"], 2), (["--time-budget", "600"], 4),
                                     (["--time-budget", "20"], 1), (["--time-budget", "120", "--evaluations", "0"], 0)])
def test_a_short_budget_spends_less_of_itself_on_sample_evaluations(argv, n):
    a = finetune_cli.parse(argv)
    assert finetune_cli.evaluations(a, finetune_cli.settings(a)) == n


def test_a_dropout_outside_zero_to_one_is_refused_with_a_message(capsys):
    for bad in ("1", "-0.1", "lots"):
        with pytest.raises(SystemExit) as e:
            finetune_cli.parse(["--dropout", bad])
        assert e.value.code == 2
        assert "argument --dropout" in capsys.readouterr().err


def test_a_short_run_boost_below_one_or_absurd_is_refused_with_a_message(capsys):
    assert finetune_cli.settings(finetune_cli.parse(["--short-run-boost", "1"])).short_run_boost == 1.0
    for bad in ("0.5", "-2", "0", "50", "lots"):
        with pytest.raises(SystemExit) as e:
            finetune_cli.parse(["--short-run-boost", bad])
        assert e.value.code == 2
        assert "argument --short-run-boost" in capsys.readouterr().err


def torchrun(module: str, args: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess, list[dict]]:
    digests = tmp_path / "digests"
    env = {**os.environ, "BERT_LAB_WEIGHTS_DIGEST_DIR": str(digests), "OMP_NUM_THREADS": "1",
           "CUDA_VISIBLE_DEVICES": ""}
    p = subprocess.run(["nice", "-n", "10", sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc_per_node=2", "-m", module, *args], cwd=ROOT, capture_output=True, text=True, env=env,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return p, [json.loads((digests / f"rank{r}.json").read_text()) for r in (0, 1)]


def test_torchrun_two_cpu_processes_train_one_model(tiny_dir, toy_csv, tmp_path):
    p, (r0, r1) = torchrun("bert_core.finetune", [
        "--model", str(tiny_dir), "--csv", str(toy_csv), "--labels", "negative,positive", "--test", "8",
        "--steps", "30", "--batch-size", "8", "--lr", "3e-3", "--max-len", "16", "--precision", "no",
        "--evaluations", "0", "--no-progress"], tmp_path)
    assert r0["world"] == r1["world"] == 2
    assert r0["sha256"] == r1["sha256"]  # DDP kept both ranks' weights identical
    assert r0["losses"] != r1["losses"]  # ... while each read its own share of the batches
    for r in (r0, r1):
        assert sum(r["losses"][-5:]) < 0.9 * sum(r["losses"][:5])  # the loss falls
    result = last_json(p.stdout)  # rank 0 alone reports
    assert result["processes"] == 2 and result["steps"] == 30 and len(p.stdout.strip().splitlines()) == 1


def test_torchrun_pretraining_cli(tiny_dir, tmp_path):
    p, (r0, r1) = torchrun("bert_core.pretraining", ["--model", str(tiny_dir), "--steps", "6", "--batch-size", "4",
                                                    "--seq-len", "32", "--texts", "64"], tmp_path)
    assert r0["sha256"] == r1["sha256"] and r0["losses"] != r1["losses"]
    assert last_json(p.stdout)["processes"] == 2 and last_json(p.stdout)["steps"] == 6
