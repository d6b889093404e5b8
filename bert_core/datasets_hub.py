"""Labelled text from a Hugging Face dataset (``--dataset glue/sst2``, ``imdb``) through ``datasets`` and its cache.

Offline (no cache and no network, the normal case in a classroom) it fails within seconds with one clear sentence
(``DataError``); the built-in tweets need neither.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence

from .finetune import DataError, LabelledData, guess_columns, keep_labels, labelled

HUB_HOST = ("huggingface.co", 443)
CONNECT_TIMEOUT_S = 3.0


def online(timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """Whether the Hub answers a TCP connection within ``timeout`` (and offline mode is not set)."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "0").strip().lower() in ("1", "true", "yes", "on"):
            return False
    try:
        socket.create_connection(HUB_HOST, timeout=timeout).close()
        return True
    except OSError:
        return False


def offline_message(name: str) -> str:
    return (f"The dataset '{name}' is not in the local Hugging Face cache and the Hub cannot be reached (offline). "
            f"On a connected machine run `python -c \"import datasets; datasets.load_dataset('{name.split('/')[0]}'"
            + (f", '{name.split('/', 1)[1]}'" if "/" in name else "") + ")\"` to fill the cache, or leave out "
            "--dataset to use the built-in tweets.")


def hub_dataset(name: str, text_column: str | None = None, label_column: str | None = None,
                labels: Sequence[str] = (), split: str = "train", max_rows: int = 200_000) -> LabelledData:
    """``name`` ('imdb', or 'glue/sst2' for a configuration) as labelled text; raises DataError with one sentence."""
    path, _, config = name.partition("/")
    if not path or "/" in config:
        raise DataError(f"'{name}' is not a dataset name like 'imdb' or 'glue/sst2'.")
    if not online():  # before importing datasets: it reads the offline switch once, at import
        os.environ["HF_DATASETS_OFFLINE"] = "1"
        os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "5")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")
    try:
        import datasets

        ds = datasets.load_dataset(path, config or None, split=split)
    except Exception as e:  # datasets raises many kinds (ConnectionError, FileNotFoundError, ValueError...)
        if os.environ.get("HF_DATASETS_OFFLINE") == "1" or "offline" in str(e).lower() or \
                "connect" in str(e).lower():
            raise DataError(offline_message(name)) from None
        raise DataError(f"Could not load the dataset '{name}': {str(e).splitlines()[0][:200]}") from None
    df = ds.select(range(min(len(ds), max_rows))).to_pandas()
    label_col = label_column or ("label" if "label" in df.columns else None)
    names = getattr(ds.features.get(label_col), "names", None) if label_col else None
    if names:  # ClassLabel ints -> their names; -1 (unlabelled, e.g. GLUE's test split) dropped
        df = df[df[label_col] >= 0]
        df[label_col] = df[label_col].map(lambda i: names[i])
    text_col = text_column or guess_columns(df.astype(str))[0]
    return keep_labels(labelled(df, text_col, label_col or guess_columns(df.astype(str))[1], f"{name} ({split})"),
                       labels)
