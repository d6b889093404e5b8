"""Kept fine-tuning runs: the last few runs on disk (model folder + ``run.json``), listed, compared and deleted.

    store = RunStore(root, max_runs=5, max_mb=2000)
    kept, evicted = store.keep(record, checkpoint_folder)   # copies the model in; evicts the oldest over the cap
    store.runs()                 # newest first; a new RunStore on the same folder sees the same runs
    store.delete(run_id)
    compare_rows(a, b)           # (what, run a, run b) rows of a side-by-side table

Each run is a folder ``root/<id>/`` with ``run.json`` (a ``RunRecord``: settings, curves, metrics, confusion
matrix) and ``model/`` (a Hugging Face folder that ``load_model`` and ``transformers`` read). No Streamlit here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

RECORD, MODEL = "run.json", "model"
MAX_RUNS = 5
MAX_MB = 2000.0
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,80}")


@dataclass(frozen=True)
class Curves:
    """What the live view drew: the training loss per step and the held-out metrics per evaluation."""

    steps: tuple[int, ...] = ()
    loss: tuple[float, ...] = ()
    eval_steps: tuple[int, ...] = ()
    accuracy: tuple[float, ...] = ()
    macro_f1: tuple[float, ...] = ()


@dataclass(frozen=True)
class RunRecord:
    """One finished (or stopped) fine-tuning run, as kept on disk."""

    id: str  # the run's folder name
    title: str
    created: float  # unix time
    base: str  # the model it started from
    data: str  # where the labelled data came from
    names: tuple[str, ...]  # class names
    settings: dict  # FinetuneSettings as a dict
    status: str  # done | cancelled | stopped
    steps: int
    seconds: float  # training time (the steps and their evaluations)
    seq_per_s: float  # training throughput
    accuracy: float
    macro_f1: float
    majority_baseline: float
    confusion: tuple[tuple[int, ...], ...]  # row = true class, column = predicted
    n_train: int
    n_test: int
    curves: Curves = field(default_factory=Curves)
    dropped: str = ""  # what the data cleaning left out, as the lab said it
    folder: Path | None = None  # where it is kept (set by the store, not saved)

    @property
    def model_dir(self) -> Path | None:
        return self.folder / MODEL if self.folder is not None else None

    def label(self) -> str:
        """How a picker names the run: 'run 3 · 91.2% · every weight, LR 8e-05'."""
        s = self.settings
        what = "head only" if s.get("mode") == "head" else "every weight"
        return (f"{self.title} · {self.accuracy:.1%} · {len(self.names)} classes, {what}, "
                f"LR {lr_text(s.get('lr', 0))}, {time.strftime('%H:%M', time.localtime(self.created))}")

    def to_json(self) -> str:
        d = asdict(self)
        d.pop("folder")
        return json.dumps(d, indent=1)

    @classmethod
    def from_json(cls, text: str, folder: Path | None = None) -> RunRecord:
        d = json.loads(text)
        d = {k: v for k, v in d.items() if k in {f.name for f in fields(cls)}}
        d["curves"] = Curves(**{k: tuple(v) for k, v in d.get("curves", {}).items()})
        d["names"] = tuple(d["names"])
        d["confusion"] = tuple(tuple(int(x) for x in row) for row in d["confusion"])
        return cls(**d, folder=folder)


class RunStore:
    """The kept runs under ``root``: at most ``max_runs`` and ``max_mb`` megabytes, the oldest evicted first."""

    def __init__(self, root: str | Path, max_runs: int = MAX_RUNS, max_mb: float = MAX_MB):
        self.root, self.max_runs, self.max_bytes = Path(root), max(1, max_runs), max_mb * 1e6

    def runs(self) -> list[RunRecord]:
        """Every readable kept run, newest first (a folder still being written, without run.json, is skipped)."""
        if not self.root.is_dir():
            return []
        found = []
        for d in self.root.iterdir():
            try:
                found.append(RunRecord.from_json((d / RECORD).read_text(encoding="utf-8"), d))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return sorted(found, key=lambda r: (-r.created, r.id))

    def get(self, run_id: str) -> RunRecord | None:
        return next((r for r in self.runs() if r.id == run_id), None)

    def _dir(self, run_id: str) -> Path:
        if not _ID.fullmatch(run_id):
            raise ValueError(f"not a run id: {run_id!r}")
        return self.root / run_id

    def keep(self, record: RunRecord, checkpoint: str | Path | None) -> tuple[RunRecord, list[RunRecord]]:
        """Copy the run's model folder in and write its record; then evict the oldest runs over the caps.

        Returns (the kept record, the runs evicted to make room). Keeping the same id twice changes nothing."""
        final = self._dir(record.id)
        if (final / RECORD).is_file():
            return RunRecord.from_json((final / RECORD).read_text(encoding="utf-8"), final), []
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{record.id}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        if checkpoint is not None and Path(checkpoint).is_dir():
            shutil.copytree(checkpoint, tmp / MODEL)
        (tmp / RECORD).write_text(record.to_json(), encoding="utf-8")
        os.replace(tmp, final)  # the run appears whole or not at all
        kept = replace(record, folder=final)
        return kept, self._evict(keep=record.id)

    def _evict(self, keep: str) -> list[RunRecord]:
        runs, evicted = self.runs(), []
        while len(runs) > self.max_runs or (len(runs) > 1 and sum(map(folder_bytes, runs)) > self.max_bytes):
            oldest = next((r for r in reversed(runs) if r.id != keep), None)
            if oldest is None:
                break
            self.delete(oldest.id)
            runs.remove(oldest)
            evicted.append(oldest)
        return evicted

    def delete(self, run_id: str) -> bool:
        """Delete one kept run (its model and record); False when there was none."""
        d = self._dir(run_id)
        if not d.is_dir():
            return False
        shutil.rmtree(d, ignore_errors=True)
        return True

    def total_mb(self) -> float:
        return sum(map(folder_bytes, self.runs())) / 1e6


def folder_bytes(r: RunRecord) -> int:
    return sum(f.stat().st_size for f in r.folder.rglob("*") if f.is_file()) if r.folder is not None else 0


def record_of(run_id: str, view, settings, split, base: str, dropped: str = "") -> RunRecord:
    """A RunRecord from a finished job's ``JobView`` (its report a ``FinetuneReport``), its settings and data."""
    r = view.report
    ev = [(s, m) for s, m in view.evals if "accuracy" in m]
    curves = Curves(steps=tuple(e.step for e in view.history if not e.cancelled),
                    loss=tuple(float(e.loss) for e in view.history if not e.cancelled),
                    eval_steps=tuple(s for s, _ in ev), accuracy=tuple(m["accuracy"] for _, m in ev),
                    macro_f1=tuple(m["macro_f1"] for _, m in ev))
    last = ev[-1][1] if ev else {"accuracy": float("nan"), "macro_f1": float("nan")}
    return RunRecord(
        id=run_id, title=f"run {view.id}", created=view.created, base=base, data=split.source,
        names=tuple(split.names), settings=asdict(settings), status=view.status, steps=view.step,
        seconds=view.history[-1].elapsed_s if view.history else 0.0, seq_per_s=view.seq_per_s,
        accuracy=r.accuracy if r is not None else last["accuracy"],
        macro_f1=r.macro_f1 if r is not None else last["macro_f1"], majority_baseline=split.majority_baseline,
        confusion=tuple(tuple(int(x) for x in row) for row in r.confusion) if r is not None else (),
        n_train=len(split.train), n_test=len(split.test), curves=curves, dropped=dropped)


def lr_text(lr: float) -> str:
    """A learning rate as the lab writes it: 8e-05, 1.5e-04 (one form in both labs, exact to two digits)."""
    return f"{lr:.1e}".replace(".0e", "e")


SETTING_ROWS = (("what learns", "mode", lambda v: "head only" if v == "head" else "every weight"),
                ("peak learning rate", "lr", lr_text),
                ("warm-up", "warmup_ratio", lambda v: f"{v:.0%} of the steps"),
                ("after warm-up", "schedule", str), ("batch size", "batch_size", str),
                ("longest input", "max_len", lambda v: f"{v} tokens"), ("pooling", "pooling", str),
                ("dropout", "dropout", lambda v: f"{v:g}"),
                ("time budget", "time_budget_s", lambda v: f"{v:.0f} s" if v else "off (steps)"))


def compare_rows(a: RunRecord, b: RunRecord) -> list[tuple[str, str, str]]:
    """(what, run a, run b): the results first, then the settings; a setting both runs lack is left out."""
    pct = lambda v: f"{v:.1%}"  # noqa: E731
    rows = [("accuracy", pct(a.accuracy), pct(b.accuracy)), ("macro F1", pct(a.macro_f1), pct(b.macro_f1)),
            ("always the biggest class", pct(a.majority_baseline), pct(b.majority_baseline)),
            ("classes", ", ".join(a.names), ", ".join(b.names)),
            ("training / held-out examples", f"{a.n_train:,} / {a.n_test:,}", f"{b.n_train:,} / {b.n_test:,}"),
            ("steps", f"{a.steps:,} ({a.status})", f"{b.steps:,} ({b.status})"),
            ("time", f"{a.seconds:.0f} s", f"{b.seconds:.0f} s"),
            ("examples per second", *(f"{r.seq_per_s:.1f}" if r.seq_per_s else "–" for r in (a, b))),
            ("started from", a.base, b.base)]
    for what, key, fmt in SETTING_ROWS:
        if key in a.settings or key in b.settings:
            rows.append((what, *(fmt(r.settings[key]) if key in r.settings else "–" for r in (a, b))))
    return rows
