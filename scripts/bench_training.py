"""Our training engine vs ``transformers.Trainer``: same model, same weights, same batch, same data, one run.

    python scripts/bench_training.py                  # MLM, bundled shape: 6 layers × 12 heads, hidden 384
    python scripts/bench_training.py --shape tiny     # 2 layers × 2 heads, hidden 128, same vocab
    python scripts/bench_training.py --precision bf16
    python scripts/bench_training.py --task classify --seq-len 64   # fine-tuning the bundled model on tweets

Both train a randomly initialised BertForMaskedLM-shaped model (same initial weights) with AdamW, linear warm-up and
decay, grad clipping 1.0, 15% dynamic masking 80/10/10 on packed WordNet + fortunes text. Trainer gets HF's
BertForMaskedLM and DataCollatorForLanguageModeling; the engine gets our ``Bert`` and ``MLMObjective``. Steps/s are
timed per optimizer step after a few warm-up steps; the runs alternate (ours, HF, ours, HF, …) so a change in machine
load hits both. Prints the ratio engine ÷ Trainer (goal ≥ 1.0) as a JSON line at the end.

``--task classify`` times what the fine-tuning lab does instead: the bundled model's real weights with a fresh
3-class head (Trainer: HF's BertForSequenceClassification and DataCollatorWithPadding; engine: our ``Bert`` and
``ClassificationObjective``), on the same labelled tweets cut to ``--seq-len`` tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bert_core import loading  # noqa: E402
from bert_core.corpus import load_corpus  # noqa: E402
from bert_core.model import BertConfig  # noqa: E402
from bert_core.training import MLMObjective, TrainConfig, train  # noqa: E402

SHAPES = {"bundled": dict(num_hidden_layers=6, hidden_size=384, num_attention_heads=12, intermediate_size=1536),
          "tiny": dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512)}


def hf_model(shape: str, vocab: int, seed: int):
    from transformers import BertConfig as HFConfig, BertForMaskedLM

    torch.manual_seed(seed)
    cfg = HFConfig(vocab_size=vocab, max_position_embeddings=512, **SHAPES[shape])
    return BertForMaskedLM(cfg)


def our_model(hf):
    cfg = BertConfig.from_dict(hf.config.to_dict())
    return loading.build_from_state_dict(cfg, hf.state_dict(), "benchmark")


def steps_per_s(stamps: list[float], skip: int) -> float:
    """Optimizer steps per second between the end of step ``skip`` and the end of the last step."""
    t = stamps[skip - 1:]
    return (len(t) - 1) / (t[-1] - t[0])


def run_ours(hf, objective, args) -> float:
    model = our_model(hf)
    stamps: list[float] = []
    cfg = TrainConfig(max_steps=args.steps, batch_size=args.batch_size, lr=1e-4, warmup_ratio=0.06, grad_clip=1.0,
                      weight_decay=0.01, mixed_precision=args.precision, device="cpu", seed=0)
    train(model, objective, cfg, callback=lambda ev: stamps.append(time.perf_counter()) if not ev.done else None)
    return steps_per_s(stamps, args.skip)


def trainer_steps_per_s(hf, data, collator, lr: float, args) -> float:
    """Train a copy of ``hf`` with transformers.Trainer on ``data``; optimizer steps per second."""
    import copy

    from transformers import Trainer, TrainerCallback, TrainingArguments

    stamps: list[float] = []

    class Stamp(TrainerCallback):
        def on_step_end(self, a, state, control, **kw):
            stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as out:
        targs = TrainingArguments(output_dir=out, max_steps=args.steps, per_device_train_batch_size=args.batch_size,
                                  learning_rate=lr, warmup_steps=max(1, int(0.06 * args.steps)), weight_decay=0.01,
                                  max_grad_norm=1.0, lr_scheduler_type="linear", logging_strategy="no",
                                  save_strategy="no", eval_strategy="no", report_to=[], use_cpu=True,
                                  dataloader_num_workers=0, disable_tqdm=True, seed=0, bf16=args.precision == "bf16")
        Trainer(model=copy.deepcopy(hf).train(), args=targs, train_dataset=data, data_collator=collator,
                callbacks=[Stamp()]).train()
    return steps_per_s(stamps, args.skip)


def run_trainer(hf, blocks, tok, args) -> float:
    from transformers import DataCollatorForLanguageModeling

    return trainer_steps_per_s(hf, [{"input_ids": b} for b in blocks],
                               DataCollatorForLanguageModeling(tok, mlm=True, mlm_probability=0.15), 1e-4, args)


def classify_models(seed: int):
    """The bundled encoder with the same fresh 3-class head, as HF's model and as ours."""
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    hf = BertForSequenceClassification.from_pretrained(str(loading.bundled_dir()), num_labels=3)
    cfg = BertConfig.from_dict({**hf.config.to_dict(), "architectures": ["BertForSequenceClassification"]})
    return hf, cfg


def run_ours_classify(hf, cfg, objective, args) -> float:
    model = loading.build_from_state_dict(cfg, hf.state_dict(), "benchmark")
    stamps: list[float] = []
    tc = TrainConfig(max_steps=args.steps, batch_size=args.batch_size, lr=5e-5, warmup_ratio=0.06, grad_clip=1.0,
                     weight_decay=0.01, mixed_precision=args.precision, device="cpu", seed=0)
    train(model, objective, tc, callback=lambda ev: stamps.append(time.perf_counter()) if not ev.done else None)
    return steps_per_s(stamps, args.skip)


def run_trainer_classify(hf, rows, tok, args) -> float:
    from transformers import DataCollatorWithPadding

    data = [{**tok(t, truncation=True, max_length=args.seq_len), "labels": y} for t, y in rows]
    return trainer_steps_per_s(hf, data, DataCollatorWithPadding(tok), 5e-5, args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=["mlm", "classify"], default="mlm")
    ap.add_argument("--shape", choices=list(SHAPES), default="bundled", help="model shape for --task mlm")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--skip", type=int, default=5, help="steps not timed at the start of each run")
    ap.add_argument("--rounds", type=int, default=2, help="alternating runs of each")
    ap.add_argument("--texts", type=int, default=4000, help="corpus texts to pack")
    ap.add_argument("--precision", choices=["no", "bf16"], default="no")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    args = ap.parse_args()
    try:
        import accelerate  # noqa: F401  (transformers.Trainer needs it)
    except ImportError:
        sys.exit("transformers.Trainer needs the package accelerate>=1.1: pip install accelerate")
    if args.threads:
        torch.set_num_threads(args.threads)

    tok = loading.load_tokenizer(loading.bundled_dir())  # the bundled model's real 30,522-piece vocabulary
    if args.task == "classify":
        return bench_classify(tok, args)
    train_texts, _ = load_corpus()
    objective = MLMObjective(tok, train_texts[:: max(1, len(train_texts) // args.texts)], [], seq_len=args.seq_len)
    blocks = objective.train_blocks  # the same packed sequences for both
    hf = hf_model(args.shape, len(tok), seed=0)
    n_params = sum(p.numel() for p in hf.parameters())
    print(f"model: {args.shape} ({n_params / 1e6:.1f}M parameters), batch {args.batch_size} × {args.seq_len} tokens, "
          f"{len(blocks)} packed sequences, {args.steps} steps per run (first {args.skip} not timed), "
          f"precision {args.precision}, torch threads {torch.get_num_threads()}, "
          f"load average before {os.getloadavg()[0]:.2f}", flush=True)
    alternate(lambda: run_ours(hf, objective, args), lambda: run_trainer(hf, blocks, tok, args), args,
              {"shape": args.shape})


def alternate(engine, trainer, args, label: dict) -> None:
    """Time engine and Trainer in turn for ``args.rounds`` rounds; print each and the JSON summary with the ratio."""
    ours, theirs = [], []
    for r in range(args.rounds):
        ours.append(engine())
        print(f"round {r + 1}: engine  {ours[-1]:.3f} steps/s  (load {os.getloadavg()[0]:.2f})", flush=True)
        theirs.append(trainer())
        print(f"round {r + 1}: Trainer {theirs[-1]:.3f} steps/s  (load {os.getloadavg()[0]:.2f})", flush=True)
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(json.dumps({**label, "batch_size": args.batch_size, "seq_len": args.seq_len,
                      "precision": args.precision, "engine_steps_per_s": round(statistics.median(ours), 3),
                      "trainer_steps_per_s": round(statistics.median(theirs), 3), "ratio": round(ratio, 2),
                      "load_average_after": round(os.getloadavg()[0], 2)}))


def bench_classify(tok, args) -> None:
    from bert_core import finetune as ft
    from bert_core.classify import ClassificationObjective

    sp = ft.split(ft.sentiment_data(), args.texts, 300)
    rows = list(sp.train)
    objective = ClassificationObjective(tok, rows, [], max_len=args.seq_len)
    hf, cfg = classify_models(seed=0)
    print(f"task: classify (bundled weights, fresh 3-class head), batch {args.batch_size}, up to {args.seq_len} "
          f"tokens, {len(rows)} tweets, {args.steps} steps per run (first {args.skip} not timed), precision "
          f"{args.precision}, torch threads {torch.get_num_threads()}, load average before "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    alternate(lambda: run_ours_classify(hf, cfg, objective, args),
              lambda: run_trainer_classify(hf, rows, tok, args), args, {"task": "classify"})

if __name__ == "__main__":
    main()
