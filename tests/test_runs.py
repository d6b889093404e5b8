"""Kept fine-tuning runs: saved with their model, compared, evicted over the cap (and said), deleted, reloaded."""

from __future__ import annotations

import json

import pytest

from bert_core import runs
from bert_core.runs import Curves, RunRecord, RunStore


def record(run_id: str, created: float, accuracy: float = 0.9, **settings) -> RunRecord:
    s = {"mode": "full", "lr": 5e-5, "warmup_ratio": 0.1, "schedule": "linear", "batch_size": 32, "max_len": 64,
         "pooling": "cls", "time_budget_s": 120.0} | settings
    return RunRecord(id=run_id, title=f"run {run_id}", created=created, base="bundled", data="tweets",
                     names=("negative", "positive"), settings=s, status="done", steps=150, seconds=118.5,
                     seq_per_s=41.0, accuracy=accuracy, macro_f1=accuracy - 0.05, majority_baseline=0.7,
                     confusion=((60, 10), (5, 25)), n_train=2000, n_test=100,
                     curves=Curves((1, 2, 3), (0.7, 0.6, 0.5), (0, 3), (0.7, accuracy), (0.41, accuracy - 0.05)),
                     dropped="Left out: 12 tweets with swear words.")


def checkpoint(tmp_path, name: str, size: int = 1000):
    d = tmp_path / "ckpt" / name
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"name": name}))
    (d / "model.safetensors").write_bytes(b"x" * size)
    return d


def test_a_kept_run_survives_a_new_store_on_the_same_folder(tmp_path):
    store = RunStore(tmp_path / "runs")
    kept, evicted = store.keep(record("a", 100.0), checkpoint(tmp_path, "a"))
    assert evicted == [] and kept.folder == tmp_path / "runs" / "a"
    assert json.loads((kept.model_dir / "config.json").read_text()) == {"name": "a"}
    again = RunStore(tmp_path / "runs").runs()
    assert [r.id for r in again] == ["a"]
    assert again[0] == kept  # every field, curves and confusion included, round-trips through run.json
    assert again[0].curves.accuracy == (0.7, 0.9) and again[0].confusion == ((60, 10), (5, 25))
    assert store.keep(record("a", 100.0), None) == (kept, [])  # keeping it again changes nothing


def test_the_oldest_runs_are_evicted_over_the_count_cap(tmp_path):
    store = RunStore(tmp_path / "runs", max_runs=3)
    for i in range(3):
        assert store.keep(record(f"r{i}", 100.0 + i), checkpoint(tmp_path, f"r{i}"))[1] == []
    _, evicted = store.keep(record("r3", 200.0), checkpoint(tmp_path, "r3"))
    assert [r.id for r in evicted] == ["r0"]
    assert [r.id for r in store.runs()] == ["r3", "r2", "r1"]
    assert not (tmp_path / "runs" / "r0").exists()


def test_the_size_cap_evicts_the_oldest_but_never_the_new_run(tmp_path):
    store = RunStore(tmp_path / "runs", max_runs=10, max_mb=0.025)  # 25,000 bytes
    store.keep(record("old", 1.0), checkpoint(tmp_path, "old", 10_000))
    assert store.keep(record("mid", 2.0), checkpoint(tmp_path, "mid", 10_000))[1] == []  # 2 × 10 kB + records fit
    _, evicted = store.keep(record("big", 3.0), checkpoint(tmp_path, "big", 30_000))
    assert [r.id for r in evicted] == ["old", "mid"]
    assert [r.id for r in store.runs()] == ["big"]  # alone over the cap, but kept: it is the run just made


def test_delete_and_bad_ids(tmp_path):
    store = RunStore(tmp_path / "runs")
    store.keep(record("a", 1.0), checkpoint(tmp_path, "a"))
    store.keep(record("b", 2.0), None)
    assert store.delete("a") and not store.delete("a")
    assert [r.id for r in store.runs()] == ["b"]
    with pytest.raises(ValueError):
        store.delete("../etc")
    (tmp_path / "runs" / ".c.partial").mkdir()  # a run being written is not listed
    assert [r.id for r in store.runs()] == ["b"]


def test_two_runs_compare_row_by_row():
    a = record("a", 1.0, accuracy=0.912, warmup_ratio=0.1)
    b = record("b", 2.0, accuracy=0.874, warmup_ratio=0.0, mode="head", lr=1e-3)
    rows = {what: (x, y) for what, x, y in runs.compare_rows(a, b)}
    assert rows["accuracy"] == ("91.2%", "87.4%")
    assert rows["macro F1"] == ("86.2%", "82.4%")
    assert rows["always the biggest class"] == ("70.0%", "70.0%")
    assert rows["warm-up"] == ("10% of the steps", "0% of the steps")
    assert rows["what learns"] == ("every weight", "head only")
    assert rows["peak learning rate"] == ("5e-05", "1e-03")
    assert runs.lr_text(1.5e-4) == "1.5e-04" and runs.lr_text(8e-5) == "8e-05"  # the recipe's LR is not rounded
    assert rows["time budget"] == ("120 s", "120 s")
    assert rows["training / held-out examples"] == ("2,000 / 100", "2,000 / 100")
