"""The project's one training engine, and the objectives it trains: MLM (+NSP) and sequence classification.

``train(model, objective, cfg, callback, cancel)`` runs AdamW with warm-up then decay, gradient clipping,
gradient accumulation, optional mixed precision, seeded and reproducible, and reports a ``StepEvent`` per step.
Cancel by setting the ``threading.Event``: it stops between steps. The CLI scripts, the pretraining lab and the
fine-tuning lab all use this one loop; the classification objective is in ``classify``.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor

from .budget import Budget, lr_boost
from .model import Bert

IGNORE = -100  # label of positions that carry no loss


@dataclass
class TrainConfig:
    max_steps: int = 1000  # optimizer steps
    batch_size: int = 32  # sequences per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step (effective batch = batch_size × grad_accum)
    lr: float = 5e-5  # peak learning rate
    weight_decay: float = 0.01  # AdamW decay (not on biases / LayerNorm)
    warmup_ratio: float = 0.06  # share of steps with linear warm-up
    schedule: str = "linear"  # decay after warm-up: linear | cosine | constant
    grad_clip: float = 1.0  # max global grad norm (0 = off)
    mixed_precision: str = "no"  # no | bf16 | fp16 | auto (autocast; fp16 uses a GradScaler on CUDA; ``accel``)
    seed: int = 0  # seeds python, numpy, torch and the data order
    eval_every: int = 0  # evaluate every N steps (0 = only at the end)
    device: str = "auto"  # auto | cpu | cuda | mps
    time_budget_s: float = 0.0  # >0: everything (the final evaluation too) ends within it; the schedule follows it
    eval_every_s: float = 0.0  # with a time budget: evaluate every this many seconds (0 = only at the end)
    final_eval_items: int = 0  # examples the caller scores after training: their time is kept out of the budget
    eval_at_end: bool = True  # evaluate at the last step (False: the caller's own final evaluation replaces it)
    short_run_boost: float = 1.0  # a run of ≤ 60 steps peaks at lr × this, of ≥ 150 at lr (``budget.lr_boost``)


@dataclass
class StepEvent:
    step: int
    max_steps: int
    loss: float
    lr: float
    samples_per_s: float
    elapsed_s: float
    metrics: dict[str, float] | None = None  # held-out metrics when evaluated at this step
    done: bool = False
    cancelled: bool = False
    note: str = ""  # something the user should know, e.g. the batch was split after a GPU ran out of memory
    gpu_memory_mb: float | None = None  # peak GPU memory so far (None off CUDA)

    @property
    def gpu_memory_gb(self) -> float | None:
        return None if self.gpu_memory_mb is None else self.gpu_memory_mb / 1024


@dataclass
class TrainResult:
    steps: int
    cancelled: bool
    history: list[StepEvent] = field(default_factory=list)
    final_metrics: dict[str, float] = field(default_factory=dict)


class Objective(Protocol):
    def batches(self, batch_size: int, rng: random.Random) -> Iterator[dict[str, Tensor]]: ...
    def loss(self, model: Bert, batch: dict[str, Tensor]) -> Tensor: ...
    def evaluate(self, model: Bert) -> dict[str, float]: ...


def lr_at(step: int, cfg: TrainConfig, done: float | None = None) -> float:
    """Learning rate at ``step``: linear warm-up, then linear/cosine decay to 0 (or constant). ``done`` (0..1)
    overrides step / max_steps as the share of training done, e.g. elapsed / time budget."""
    done = step / max(1, cfg.max_steps) if done is None else done
    if cfg.warmup_ratio > 0 and done < cfg.warmup_ratio:
        return cfg.lr * min(1.0, (done + 1 / max(1, cfg.max_steps)) / cfg.warmup_ratio)
    if cfg.schedule == "constant":
        return cfg.lr
    progress = (done - cfg.warmup_ratio) / max(1e-9, 1 - cfg.warmup_ratio)
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))
    return cfg.lr * max(0.0, 1 - progress)


def lr_schedule(cfg: TrainConfig) -> tuple[list[float], int]:
    """The learning rate of every step (``lr_at``, × a short run's boost) and how many of the first steps warm up."""
    warmup = sum(1 for step in range(cfg.max_steps) if step / max(1, cfg.max_steps) < cfg.warmup_ratio)
    boost = lr_boost(cfg.short_run_boost, cfg.max_steps)
    return [lr_at(step, cfg) * boost for step in range(cfg.max_steps)], warmup


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(model: Bert, cfg: TrainConfig) -> torch.optim.AdamW:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    params = decay + no_decay
    # the fused kernel (one pass over all weights) where torch has it for these tensors, as Trainer does
    fused = bool(params) and all(p.device.type in ("cpu", "cuda") and p.dtype == torch.float32 for p in params)
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, betas=(0.9, 0.999), eps=1e-6,
                             fused=fused or None)


def train(model: Bert, objective: Objective, cfg: TrainConfig, callback: Callable[[StepEvent], None] | None = None,
          cancel: threading.Event | None = None, clock: Callable[[], float] | None = None,
          started: float | None = None) -> TrainResult:
    """Train ``model`` in place on ``objective``; only parameters with requires_grad are updated.

    With ``cfg.time_budget_s`` the run ends when the next step and the final evaluation would no longer fit in the
    budget, counted on ``clock`` (default: ``time.perf_counter``) from ``started`` (default: now). A CUDA
    out-of-memory error frees the cache and runs each batch in twice as many pieces from then on (said in the
    step's ``note``). Under ``torchrun`` the ranks train one DDP model, each on its own share of the batches;
    rank 0 alone evaluates and calls ``callback``.
    """
    from . import accel
    from .loading import pick_device

    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    model.to(device).train()
    opt = make_optimizer(model, cfg)
    net = accel.wrap(model, objective)
    amp_dtype = accel.autocast_dtype(cfg.mixed_precision, device)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype is torch.float16 and device.type == "cuda" else None
    rank, world = accel.rank(), accel.world()
    # one batch per step, run as grad_accum micro-batches (more pieces after an out-of-memory error)
    batches = itertools.islice(objective.batches(cfg.batch_size * cfg.grad_accum, random.Random(cfg.seed)), rank,
                               None, world)
    result = TrainResult(steps=0, cancelled=False)
    clock = clock or time.perf_counter
    t0, c0 = time.perf_counter(), clock()
    budget = Budget(cfg, clock, c0 if started is None else started, len(getattr(objective, "eval_set", ()) or ()))
    last_eval, pieces, note = c0, cfg.grad_accum, ""
    params = [p for p in model.parameters() if p.requires_grad]

    def timed_evaluate() -> dict[str, float]:
        e0 = clock()
        m = evaluate(model, objective)
        budget.timed_eval(clock() - e0, budget.eval_items)
        return m

    for step in range(cfg.max_steps):
        stop, done, steps = accel.agree(float(cancel is not None and cancel.is_set()),  # rank 0's, on every rank
                                        budget.done() if budget.on else -1,
                                        budget.expected_steps(step, clock() - c0) if budget.on else cfg.max_steps)
        if stop:
            result.cancelled = True
            break
        boost = lr_boost(cfg.short_run_boost, steps)
        lr = lr_at(step, cfg, max(step / cfg.max_steps, done) if budget.on else None) * boost
        for g in opt.param_groups:
            g["lr"] = lr
        s0 = clock()
        batch = {k: v.to(device) for k, v in next(batches).items()}  # batch_size × grad_accum examples
        while True:
            try:
                total = accel.backward_in_pieces(net, batch, pieces, torch.autocast(
                    device.type, dtype=amp_dtype, enabled=amp_dtype is not None), scaler)
                break
            except RuntimeError as e:  # CUDA out of memory: free it, halve the pieces, retry this batch
                n = int(batch["input_ids"].size(0))
                if not accel.is_oom(e) or pieces >= n:
                    raise
                opt.zero_grad(set_to_none=True)
                accel.free_memory()
                pieces *= 2
                note = (f"The GPU ran out of memory: each batch of {n} now runs in {pieces} pieces of "
                        f"{-(-n // pieces)} (the same gradients, a little slower).")
        if scaler:
            scaler.unscale_(opt)
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)
        budget.timed_step(clock() - s0)
        elapsed = time.perf_counter() - t0
        result.steps = step + 1
        metrics = None
        if rank == 0 and budget.guessing_eval() and not budget.room_for_step():  # time the evaluation, don't guess
            metrics, last_eval = timed_evaluate(), clock()
        (last,) = accel.agree(float(step + 1 == cfg.max_steps or budget.on and not budget.room_for_step()))
        due = cfg.eval_every and (step + 1) % cfg.eval_every == 0 or \
            budget.on and cfg.eval_every_s and clock() - last_eval >= cfg.eval_every_s
        if rank == 0 and (last and cfg.eval_at_end or due) and metrics is None:
            metrics, last_eval = timed_evaluate(), clock()
        ev = StepEvent(step=step + 1, max_steps=cfg.max_steps, loss=total, lr=lr,
                       samples_per_s=result.steps * cfg.batch_size * cfg.grad_accum * world / max(elapsed, 1e-9),
                       elapsed_s=elapsed, metrics=metrics, done=bool(last), note=note,
                       gpu_memory_mb=accel.peak_memory_mb(device))
        result.history.append(ev)
        if metrics:
            result.final_metrics = metrics
        if callback and rank == 0:
            callback(ev)
        if last:
            break
    if result.cancelled and callback and rank == 0:
        callback(StepEvent(step=result.steps, max_steps=cfg.max_steps, loss=float("nan"), lr=0.0, samples_per_s=0.0,
                           elapsed_s=time.perf_counter() - t0, done=True, cancelled=True, note=note))
    model.eval()
    return result


def evaluate(model: Bert, objective: Objective) -> dict[str, float]:
    was_training = model.training
    model.eval()
    with torch.no_grad():
        metrics = objective.evaluate(model)
    model.train(was_training)
    return metrics


def epochs_of_indices(n: int, batch_size: int, rng: random.Random) -> Iterator[list[int]]:
    """Endless batches of indices into n examples: each epoch a fresh shuffle, batches running across epochs."""
    order: list[int] = []
    while True:
        if len(order) < batch_size:
            fresh = list(range(n))
            rng.shuffle(fresh)
            order += fresh
        chosen, order = order[:batch_size], order[batch_size:]
        yield chosen


# --- MLM (+ NSP) ---------------------------------------------------------------------------------------

def pack_texts(tokenizer, texts: list[str], seq_len: int) -> list[list[int]]:
    """Tokenise texts and pack them, separated by [SEP], into [CLS] … [SEP] blocks of at most seq_len tokens."""
    body = seq_len - 2
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    blocks, cur = [], []
    for piece in ids:
        piece = piece[:body]
        if cur and len(cur) + 1 + len(piece) > body:
            blocks.append(cur)
            cur = []
        cur = cur + [tokenizer.sep_token_id] + piece if cur else list(piece)
    if cur:
        blocks.append(cur)
    return [[tokenizer.cls_token_id, *b, tokenizer.sep_token_id] for b in blocks]


def mask_tokens(ids: Tensor, special: Tensor, word_start: Tensor, tokenizer, gen: torch.Generator,
                prob: float = 0.15, whole_word: bool = False) -> tuple[Tensor, Tensor]:
    """BERT's dynamic masking: pick ``prob`` of tokens (or whole words); of those 80% [MASK], 10% random, 10% kept.

    ids/special/word_start: (B, T). Returns (masked input ids, labels with IGNORE where no loss).
    """
    if whole_word:  # choose word starts, then spread the choice over each word's continuation pieces
        start_pick = (torch.rand(ids.shape, generator=gen) < prob) & word_start & ~special
        word_index = torch.cumsum(word_start.long(), dim=1)
        chosen = torch.zeros_like(start_pick)
        for b in range(ids.size(0)):
            picked_words = torch.unique(word_index[b][start_pick[b]])
            chosen[b] = torch.isin(word_index[b], picked_words) & ~special[b]
    else:
        chosen = (torch.rand(ids.shape, generator=gen) < prob) & ~special
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
    r = torch.rand(ids.shape, generator=gen)
    out = ids.clone()
    out[chosen & (r < 0.8)] = tokenizer.mask_token_id
    rand_pos = chosen & (r >= 0.8) & (r < 0.9)
    out[rand_pos] = torch.randint(len(tokenizer), (int(rand_pos.sum()),), generator=gen)
    return out, labels


def mlm_loss_and_logits(model: Bert, ids: Tensor, tt: Tensor, attn: Tensor, labels: Tensor,
                        nsp_labels: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """MLM cross-entropy computed only at labelled positions (the vocabulary projection is the costly part)."""
    out = model.encode(ids, tt, attn)
    sel = labels != IGNORE
    logits = model.mlm_logits(out.last_hidden_state[sel])  # (M, V)
    # a batch of very short texts can draw no masked token at all: then no MLM loss (not NaN)
    loss = F.cross_entropy(logits.float(), labels[sel]) if bool(sel.any()) else logits.float().sum() * 0.0
    if nsp_labels is not None:
        loss = loss + F.cross_entropy(model.cls.seq_relationship(out.pooled).float(), nsp_labels)
    return loss, logits, labels[sel]


class MLMObjective:
    """Masked-language modelling on packed text, with an optional NSP task on sentence pairs.

    With ``nsp=True`` each example is a pair of texts (B really follows A in a document half the time);
    documents are the given texts, split into sentences.
    """

    def __init__(self, tokenizer, train_texts: list[str], eval_texts: list[str], seq_len: int = 128,
                 mlm_prob: float = 0.15, whole_word: bool = False, nsp: bool = False, eval_size: int = 512,
                 eval_seed: int = 1234):
        self.tok, self.seq_len, self.prob, self.whole_word, self.nsp = tokenizer, seq_len, mlm_prob, whole_word, nsp
        self.continuation = self._continuation_table()
        if nsp:
            self.train_docs = [split_sentences(t) for t in train_texts]
            self.train_docs = [d for d in self.train_docs if len(d) >= 2]
            self.eval_docs = [split_sentences(t) for t in eval_texts]
            self.eval_docs = [d for d in self.eval_docs if len(d) >= 2][:eval_size]
            if not self.train_docs:
                raise ValueError("NSP needs texts of at least two sentences.")
        else:
            self.train_blocks = pack_texts(tokenizer, train_texts, seq_len)
            if not self.train_blocks:
                raise ValueError("No training text.")
        self.eval_batches = self._fixed_eval(eval_texts, eval_size, eval_seed)

    def _continuation_table(self) -> Tensor:
        # ids can exceed len(tokenizer) when vocab.txt repeats a token (the repeat's line number is still an id)
        n = max(len(self.tok), max(self.tok.get_vocab().values()) + 1)
        vocab = self.tok.convert_ids_to_tokens(list(range(n)))
        return torch.tensor([t is not None and t.startswith("##") for t in vocab], dtype=torch.bool)

    def _collate(self, seqs: list[list[int]], types: list[list[int]], gen: torch.Generator,
                 nsp_labels: list[int] | None = None) -> dict[str, Tensor]:
        T = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), T), self.tok.pad_token_id, dtype=torch.long)
        tt = torch.zeros_like(ids)
        attn = torch.zeros_like(ids)
        for i, (s, t) in enumerate(zip(seqs, types)):
            ids[i, :len(s)] = torch.tensor(s)
            tt[i, :len(t)] = torch.tensor(t)
            attn[i, :len(s)] = 1
        special = torch.isin(ids, torch.tensor(self.tok.all_special_ids)) | (attn == 0)
        word_start = ~self.continuation[ids]
        masked, labels = mask_tokens(ids, special, word_start, self.tok, gen, self.prob, self.whole_word)
        batch = {"input_ids": masked, "token_type_ids": tt, "attention_mask": attn, "labels": labels}
        if nsp_labels is not None:
            batch["nsp_labels"] = torch.tensor(nsp_labels)
        return batch

    def _pair(self, docs: list[list[str]], rng: random.Random) -> tuple[list[int], list[int], int]:
        doc = rng.choice(docs)
        i = rng.randrange(len(doc) - 1)
        if rng.random() < 0.5:
            b, label = doc[i + 1], 0  # 0 = IsNext (HF convention)
        else:
            b, label = rng.choice(rng.choice(docs)), 1  # 1 = NotNext
        enc = self.tok(doc[i], b, truncation=True, max_length=self.seq_len)
        return enc["input_ids"], enc["token_type_ids"], label

    def batches(self, batch_size: int, rng: random.Random) -> Iterator[dict[str, Tensor]]:
        gen = torch.Generator().manual_seed(rng.randrange(2**31))
        if self.nsp:
            while True:
                pairs = [self._pair(self.train_docs, rng) for _ in range(batch_size)]
                yield self._collate([p[0] for p in pairs], [p[1] for p in pairs], gen, [p[2] for p in pairs])
        for chosen in epochs_of_indices(len(self.train_blocks), batch_size, rng):
            seqs = [self.train_blocks[i] for i in chosen]
            yield self._collate(seqs, [[0] * len(s) for s in seqs], gen)

    def _fixed_eval(self, eval_texts: list[str], size: int, seed: int) -> list[dict[str, Tensor]]:
        """Held-out batches masked once with a fixed seed, so every evaluation scores the same positions."""
        gen, rng = torch.Generator().manual_seed(seed), random.Random(seed)
        if self.nsp:
            if not self.eval_docs:
                return []
            pairs = [self._pair(self.eval_docs, rng) for _ in range(size)]
            return [self._collate([p[0] for p in pairs[i:i + 32]], [p[1] for p in pairs[i:i + 32]], gen,
                                  [p[2] for p in pairs[i:i + 32]]) for i in range(0, len(pairs), 32)]
        seqs = [self.tok(t, truncation=True, max_length=self.seq_len)["input_ids"] for t in eval_texts[:size]]
        return [self._collate(seqs[i:i + 32], [[0] * len(s) for s in seqs[i:i + 32]], gen)
                for i in range(0, len(seqs), 32)]

    def loss(self, model: Bert, batch: dict[str, Tensor]) -> Tensor:
        return mlm_loss_and_logits(model, batch["input_ids"], batch["token_type_ids"], batch["attention_mask"],
                                   batch["labels"], batch.get("nsp_labels"))[0]

    def evaluate(self, model: Bert, copies: bool = False) -> dict[str, float]:
        """Held-out masked-token loss, top-1/top-5 accuracy (and NSP); ``copies``: copy_rate, wrong_copy_rate too."""
        device = next(model.parameters()).device
        special = torch.tensor(self.tok.all_special_ids, device=device)
        n = top1 = top5 = copied = wrong_copied = nsp_right = nsp_n = 0
        loss_sum = 0.0
        for b in self.eval_batches:
            b = {k: v.to(device) for k, v in b.items()}
            out = model.encode(b["input_ids"], b["token_type_ids"], b["attention_mask"])
            sel = b["labels"] != IGNORE
            logits = model.mlm_logits(out.last_hidden_state[sel]).float()
            gold = b["labels"][sel]
            loss_sum += float(F.cross_entropy(logits, gold, reduction="sum"))
            top = logits.topk(5, dim=-1).indices
            top1 += int((top[:, 0] == gold).sum())
            top5 += int((top == gold[:, None]).any(-1).sum())
            n += int(gold.numel())
            if copies:
                from .mlm_report import copy_guesses  # mlm_report imports this module
                is_copy = copy_guesses(b, sel, top[:, 0], special)
                copied += int(is_copy.sum())
                wrong_copied += int((is_copy & (top[:, 0] != gold)).sum())
            if "nsp_labels" in b:
                pred = model.cls.seq_relationship(out.pooled).argmax(-1)
                nsp_right += int((pred == b["nsp_labels"]).sum())
                nsp_n += int(b["nsp_labels"].numel())
        m = {"eval_loss": loss_sum / max(n, 1), "top1": top1 / max(n, 1), "top5": top5 / max(n, 1),
             "masked_tokens": float(n)}
        if copies:
            m.update(copy_rate=copied / max(n, 1), wrong_copy_rate=wrong_copied / max(n, 1))
        if nsp_n:
            m["nsp_accuracy"] = nsp_right / nsp_n
        return m


def split_sentences(text: str) -> list[str]:
    import re

    return [s.strip() for s in re.split(r"(?<=[.!?;])\s+", text) if len(s.strip().split()) >= 2]


# --- checkpoints -------------------------------------------------------------------------------------

def save_checkpoint(model: Bert, tokenizer, folder: str | Path, extra_config: dict | None = None) -> Path:
    """Save as a normal Hugging Face folder (config.json, model.safetensors, tokenizer files)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = model.config.to_dict()
    arch = ("BertForSequenceClassification" if model.classifier is not None else
            "BertForPreTraining" if model.has_mlm_head and model.has_nsp_head else
            "BertForMaskedLM" if model.has_mlm_head else "BertModel")
    cfg.update({"architectures": [arch], **(extra_config or {})})
    (folder / "config.json").write_text(json.dumps(cfg, indent=2))
    sd = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(sd, str(folder / "model.safetensors"))
    tokenizer.save_pretrained(str(folder))
    return folder
