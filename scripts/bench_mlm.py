"""How live does the masked-word playground feel? Median times of the core calls and of a full page rerun.

    python scripts/bench_mlm.py                  # bundled-size random MLM checkpoint, CPU
    python scripts/bench_mlm.py --threads 1 --model bundled     # the bundled model, once it has its MLM head
    python scripts/bench_mlm.py --repeats 50 --threads 2 --model /path/to/a/BertForMaskedLM

Without --model it builds a random-initialised ``BertForMaskedLM`` of the bundled model's shape (6 layers, hidden
384, 12 heads, intermediate 1536, vocab 30522) with the bundled model's real ``vocab.txt``, because the bundled
checkpoint has no MLM head of its own yet. Timing does not depend on the weights' values.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SENTENCE = "The children built a snowman in the [MASK] after school."


def build_checkpoint(folder: Path) -> Path:
    """A random BertForMaskedLM of the bundled model's shape, with the bundled (bert-base-uncased) vocabulary."""
    from transformers import BertTokenizerFast

    from bert_core.loading import bundled_dir
    from conftest import make_checkpoint

    make_checkpoint(folder, "BertForMaskedLM", seed=0, vocab_size=30522, hidden_size=384, num_hidden_layers=6,
                    num_attention_heads=12, intermediate_size=1536)
    for f in folder.iterdir():  # replace the tiny test tokenizer with the real vocabulary
        if f.name.startswith(("tokenizer", "special_tokens", "vocab")):
            f.unlink()
    shutil.copy(bundled_dir() / "vocab.txt", folder / "vocab.txt")
    BertTokenizerFast.from_pretrained(str(folder), do_lower_case=True).save_pretrained(str(folder))
    return folder


def median_ms(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def core_times(folder: Path, repeats: int) -> dict[str, float]:
    from bert_core import game, lens, load_model, mlm

    lm = load_model(str(folder), device="cpu")
    mi = mlm.prepare(lm, SENTENCE)
    item = game.parse_game_sentence("The children built a snowman in the {snow} after school.")
    three = mlm.prepare(lm, "The [MASK] built a [MASK] in the [MASK] after school.")

    def interaction():  # what one playground interaction computes: fill-mask and the logit lens
        m = mlm.prepare(lm, SENTENCE)
        mlm.predict(lm, m, 10)
        lens.logit_lens(lm, m, track=["snow"])

    return {
        "fill_mask + logit lens (one interaction)": median_ms(interaction, repeats),
        "fill_mask (predict, top 10)": median_ms(lambda: mlm.predict(lm, mi, 10), repeats),
        "logit lens (7 read-outs)": median_ms(lambda: lens.logit_lens(lm, mi, track=["snow"]), repeats),
        "joint fill, 3 masks": median_ms(lambda: mlm.joint_fill(lm, three), repeats),
        "5 candidates (one batched pass)": median_ms(
            lambda: mlm.score_candidates(lm, mi, ["snow", "garden", "park", "snowfield", "yard"]), repeats),
        "head ranking (72 one-head ablations)": median_ms(lambda: lens.head_importance(lm, mi), repeats),
        "game: score a guess": median_ms(lambda: game.score_guess(lm, item, "garden"), repeats),
    }


def page_times(folder: Path, repeats: int) -> dict[str, float]:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["model_name"] = str(folder)
    at.session_state["pg_text"] = SENTENCE
    at.run()
    at.switch_page("app_pages/playground.py").run()
    assert not at.exception, [e.value for e in at.exception]
    out = {"page rerun: predictions view": median_ms(at.run, repeats, warmup=1)}
    at.session_state["pg_view"] = "Logit lens: layer by layer"
    out["page rerun: logit lens view"] = median_ms(at.run, repeats, warmup=1)
    at.session_state["pg_view"] = "Knock out heads"
    out["page rerun: head ablation view (ranking cached)"] = median_ms(at.run, repeats, warmup=1)
    at.session_state["pg_tab"] = "Guessing game"
    out["page rerun: guessing game"] = median_ms(at.run, repeats, warmup=1)
    assert not at.exception, [e.value for e in at.exception]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="'bundled' or a local folder with an MLM head (default: build a random "
                                    "bundled-size BertForMaskedLM)")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--page-repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.model) if args.model else build_checkpoint(Path(tmp) / "bundled_size_mlm")
        print(f"model: {folder if args.model else 'random BertForMaskedLM, 6 × 12 heads, hidden 384, vocab 30522'}"
              f" · CPU threads {torch.get_num_threads()} · torch {torch.__version__}")
        print(f"sentence: {SENTENCE!r}\n")
        rows = {**core_times(folder, args.repeats), **page_times(folder, args.page_repeats)}
        width = max(map(len, rows))
        for name, ms in rows.items():
            print(f"{name:<{width}}  {ms:8.1f} ms (median)")


if __name__ == "__main__":
    main()
