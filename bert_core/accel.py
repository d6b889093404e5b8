"""Past one CPU: several processes with PyTorch DDP (``torchrun``), and a GPU that runs out of memory.

    torchrun --nproc_per_node=2 -m bert_core.finetune --steps 100     # gloo on CPU, nccl on GPU

``training.train`` uses these: under ``torchrun`` it wraps the loss in ``DistributedDataParallel`` (PyTorch averages
the gradients), each rank reads its own share of the batches, rank 0 decides when to stop and alone evaluates and
reports. ``backward_in_pieces`` runs one batch's forward and backward, split into smaller pieces after a CUDA
out-of-memory error. Nothing here is home-made collective maths: DDP and ``torch.distributed`` do it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn

DIGEST_ENV = "BERT_LAB_WEIGHTS_DIGEST_DIR"  # each rank writes rank<r>.json (weights' sha256, losses) there (tests)


def launched() -> bool:
    """Started by ``torchrun`` (or another launcher that sets WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: str = "auto") -> str:
    """Join the process group when launched by torchrun (nccl on GPU, gloo on CPU); returns the device to train on
    (each rank its own GPU). Without torchrun: ``device`` unchanged."""
    if not launched() or dist.is_initialized():
        return device
    cuda = torch.cuda.is_available() and device in ("auto", "cuda")
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    return f"cuda:{torch.cuda.current_device()}" if cuda else "cpu"


def teardown() -> None:
    """Leave together: each rank waits for the others (rank 0 may still be evaluating or saving) before its process
    group goes, so no rank tears down a group another still uses."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world() -> int:
    return dist.get_world_size() if active() else 1


class LossModule(nn.Module):
    """The objective's loss as a module, so DDP sees the whole computation (the objectives call ``model.encode``
    and heads directly, which a DDP wrapper around ``Bert`` alone would not sync)."""

    def __init__(self, model: nn.Module, objective):
        super().__init__()
        self.model, self.objective = model, objective

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.objective.loss(self.model, batch)


def wrap(model: nn.Module, objective) -> nn.Module:
    """``LossModule(model, objective)``, in DDP when several processes train."""
    net = LossModule(model, objective)
    if not active():
        return net
    dev = next(model.parameters()).device
    return nn.parallel.DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None,
                                               find_unused_parameters=True)  # e.g. the pooler in MLM training


def agree(*values: float) -> list[float]:
    """Rank 0's values on every rank (when to stop, the share of the schedule done), so all ranks take the same
    steps with the same learning rate."""
    if not active():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.broadcast(t, src=0)
    return t.cpu().tolist()


def backward_in_pieces(net: nn.Module, batch: dict[str, Tensor], pieces: int, autocast, scaler=None) -> float:
    """Forward and backward of ``batch`` in ``pieces`` equal parts (gradients add up to the whole batch's, each
    part's loss weighted by its share); returns the loss. DDP syncs gradients on the last part only."""
    n = next(iter(batch.values())).size(0)
    size = -(-n // pieces)
    total = 0.0
    for i, start in enumerate(range(0, n, size)):
        part = {k: v[start:start + size] for k, v in batch.items()}
        share = part["input_ids"].size(0) / n
        last = start + size >= n
        sync = contextlib.nullcontext() if last or not hasattr(net, "no_sync") else net.no_sync()
        with sync:
            with autocast:
                loss = net(part) * share
            (scaler.scale(loss) if scaler else loss).backward()
        total += float(loss.detach())
    return total


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` (no | bf16 | fp16 | auto). auto: bf16 on CUDA and on CPUs with bf16
    instructions (avx512_bf16 or AMX: there it trains 1.7x faster, BENCHMARKS.md), else none."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
        fast = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)() or \
            getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
        return torch.bfloat16 if device.type == "cpu" and fast else None
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in str(e).lower() and "CUDA" in str(e)


def free_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def peak_memory_mb(device: torch.device) -> float | None:
    """The most GPU memory this process has held (MiB), or None off CUDA."""
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def write_digest(model: nn.Module, losses: list[float]) -> None:
    """When ``$BERT_LAB_WEIGHTS_DIGEST_DIR`` is set: this rank's weights as a sha256 and its losses, for the test
    that every rank ends with the same model."""
    folder = os.environ.get(DIGEST_ENV)
    if not folder:
        return
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().float().cpu().contiguous().numpy().tobytes())
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / f"rank{rank()}.json").write_text(json.dumps({"rank": rank(), "world": world(),
                                                                 "sha256": h.hexdigest(), "losses": losses}))
