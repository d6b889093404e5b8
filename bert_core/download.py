"""Pre-download hub checkpoints into the normal Hugging Face cache, for classroom machines without internet.

    python -m bert_core.download bert-base-uncased [more ids …]

Fetches exactly the files ``load_model`` reads (config, weights, tokenizer) with ``huggingface_hub``, into the
cache that ``load_model("<id>")`` looks in first. Copy that cache folder (printed at the end) to the offline
machines, or set ``HF_HOME`` there to point at it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import loading


def download(repo_id: str) -> Path:
    """Snapshot of ``repo_id`` in the HF cache (downloading what is missing); raises ModelLoadError."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import RepositoryNotFoundError

    if not loading._HUB_ID.match(repo_id):
        raise loading.ModelLoadError(f"'{repo_id}' is not a valid hub id (like 'bert-base-uncased' or "
                                     "'google-bert/bert-base-uncased').")
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
    try:
        # offline, a complete earlier download still counts as ready
        folder = Path(snapshot_download(repo_id, allow_patterns=loading.HUB_FILES, local_files_only=offline))
        if not offline and not any((folder / f).exists() for f in loading.WEIGHT_FILES):  # weights only as .bin
            folder = Path(snapshot_download(repo_id, allow_patterns=loading.HUB_FILES + ["pytorch_model.bin"]))
    except RepositoryNotFoundError as e:
        raise loading.ModelLoadError(f"No model '{repo_id}' on the Hugging Face hub (or it is private). "
                                     "Check the spelling, e.g. 'bert-base-uncased'.") from e
    except Exception as e:
        why = "offline mode is on (HF_HUB_OFFLINE=1)" if offline else f"the hub is unreachable ({type(e).__name__})"
        raise loading.ModelLoadError(
            f"Could not download '{repo_id}': {why}. Run this command on a machine with internet access, then copy "
            "its Hugging Face cache folder (~/.cache/huggingface) to this machine; or use a local folder holding "
            "config.json, model.safetensors and vocab.txt; or use the bundled offline model ('bundled').") from e
    if not any((folder / f).exists() for f in loading.WEIGHT_FILES):
        raise loading.ModelLoadError(f"'{repo_id}' has no model.safetensors or pytorch_model.bin "
                                     "(on the hub or in the cache).")
    loading.read_config(folder)  # a non-BERT checkpoint is reported now, not in the classroom
    return folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bert_core.download",
                                 description="Pre-download BERT checkpoints into the Hugging Face cache.")
    ap.add_argument("repo_ids", nargs="+", metavar="HUB_ID", help="e.g. bert-base-uncased")
    args = ap.parse_args(argv)
    from huggingface_hub import constants

    failed = 0
    for repo_id in args.repo_ids:
        try:
            folder = download(repo_id.strip())
        except loading.ModelLoadError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        print(f"{repo_id}: ready in {folder}")
    if failed < len(args.repo_ids):
        print(f"Hugging Face cache: {constants.HF_HUB_CACHE} (copy it to offline machines, or set HF_HOME there)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
