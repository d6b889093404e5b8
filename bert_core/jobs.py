"""The job runner: ``training.train`` in a daemon thread, one job at a time per process, watched by a page.

    job = jobs.RUNNER.submit(jobs.Job("MLM", cfg, build=lambda: (model, objective, tokenizer), watcher=w))
    view = job.view()        # a consistent copy of the progress: status, StepEvents, snapshots, report, checkpoint
    job.heartbeat()          # the page calls this on every poll; without it the job stops itself after 30 s
    job.cancel()             # stops before the next optimizer step

The worker trains a PRIVATE model (built inside ``build``), never the shared cached one. Only one job trains at a
time: later ones wait, with status ``waiting``. A job whose page has gone (no heartbeat) stops; steps and wall time
are capped (measured on the job's ``clock``, which tests replace). A lab's ``Watcher`` measures the model while it
trains (``snapshot``) and once after (``report``). At the end the model is saved as a Hugging Face folder under
``RUNS_DIR`` for the page to offer. The labs' own jobs are ``pretraining.lab_job`` and ``finetune.finetune_job``.
No Streamlit here.
"""

from __future__ import annotations

import io
import itertools
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import torch

from . import training
from .model import Bert, evaluating
from .training import StepEvent, TrainConfig

HEARTBEAT_TIMEOUT_S = 30.0  # a job nobody has polled for this long cancels itself
MAX_STEPS = 5000  # hard cap on any job's optimizer steps
MAX_SECONDS = 30 * 60  # hard cap on any job's training time
RUNS_DIR = Path(tempfile.gettempdir()) / "bert-lab-runs"
KEEP_RUNS = 24  # checkpoints kept on disk per process (oldest deleted first)

WAITING, PREPARING, RUNNING, SAVING = "waiting", "preparing", "running", "saving"
DONE, CANCELLED, STOPPED, FAILED = "done", "cancelled", "stopped", "failed"
ACTIVE = (WAITING, PREPARING, RUNNING, SAVING)

_ids = itertools.count(1)


def monotonic() -> float:
    """The clock of a job's heartbeat and time limit unless the job is given another (tests pass a manual one)."""
    return time.monotonic()


@dataclass(frozen=True)
class RunSettings:
    """The optimisation knobs every lab run has; the labs' settings (``pretraining.LabSettings``,
    ``finetune.FinetuneSettings``) add their own. The labs' pages and the CLI take their defaults from here."""

    steps: int = 200
    batch_size: int = 16
    lr: float = 5e-5  # peak learning rate
    warmup_ratio: float = 0.1
    schedule: str = "linear"  # linear | cosine | constant
    mixed_precision: str = "no"  # no | bf16
    seed: int = 0
    evaluations: ClassVar[int] = 8  # held-out evaluations per run (plus one at step 0)

    def train_config(self, device: str = "auto") -> TrainConfig:
        return TrainConfig(max_steps=self.steps, batch_size=self.batch_size, lr=self.lr,
                           warmup_ratio=self.warmup_ratio, schedule=self.schedule,
                           mixed_precision=self.mixed_precision, seed=self.seed,
                           eval_every=max(1, self.steps // self.evaluations), device=device)


class Watcher:
    """What a lab measures on the model it trains, run by the worker in eval mode without gradients.

    ``prepare`` runs once before step 0; ``snapshot`` at step 0, every ``every`` steps and at the last step (it
    returns an object with a ``step``; they are ``JobView.snapshots``); ``report`` once after training
    (``JobView.report``).
    """

    every = 0  # steps between snapshots (0 = none)

    def prepare(self, model: Bert, objective, tokenizer) -> None:
        pass

    def snapshot(self, model: Bert, step: int) -> object:
        raise NotImplementedError

    def report(self, model: Bert, objective) -> object | None:
        return None


@dataclass(frozen=True)
class JobView:
    """A consistent copy of a job's progress, safe to read from any thread."""

    id: int
    title: str
    owner: str
    status: str
    message: str
    max_steps: int
    history: tuple[StepEvent, ...]
    evals: tuple[tuple[int, dict[str, float]], ...]  # (step, held-out metrics)
    snapshots: tuple  # what the job's Watcher.snapshot measured, in step order
    report: object | None  # what the job's Watcher.report returned after training
    checkpoint: Path | None
    error: str | None
    created: float
    seq_per_s: float = 0.0  # training throughput, not counting the snapshots and evaluations

    @property
    def step(self) -> int:
        return self.history[-1].step if self.history else 0

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / max(1, self.max_steps))


class Job:
    """One training run. ``build()`` runs in the worker and returns (private model, objective, tokenizer)."""

    def __init__(self, title: str, cfg: TrainConfig, build: Callable[[], tuple[Bert, object, object]],
                 watcher: Watcher | None = None, owner: str = "", heartbeat_timeout: float = HEARTBEAT_TIMEOUT_S,
                 max_seconds: float = MAX_SECONDS, save: bool = True, extra_config: dict | None = None,
                 clock: Callable[[], float] | None = None):
        self.id = next(_ids)
        self.title, self.owner = title, owner
        self.cfg = replace(cfg, max_steps=max(1, min(cfg.max_steps, MAX_STEPS)))
        self.build, self.watcher, self.save, self.extra_config = build, watcher, save, extra_config
        self.heartbeat_timeout, self.max_seconds = heartbeat_timeout, max_seconds
        self.clock = clock or monotonic  # heartbeat and time limit only; the speed is timed on the real clock
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._last_beat = self.clock()
        self._status, self._message = WAITING, "Waiting to start."
        self._history: list[StepEvent] = []
        self._evals: list[tuple[int, dict[str, float]]] = []
        self._snapshots: list = []
        self._report: object | None = None
        self._checkpoint: Path | None = None
        self._error: str | None = None
        self._stop_reason: str | None = None
        self._seq_per_s = 0.0
        self.created = time.time()
        self.thread: threading.Thread | None = None

    # --- the page's side ------------------------------------------------------------------------------------------
    def heartbeat(self) -> None:
        """The page is still watching."""
        self._last_beat = self.clock()

    def cancel(self) -> None:
        self._stop_reason = self._stop_reason or "cancelled"
        self._cancel.set()

    def view(self) -> JobView:
        with self._lock:
            return JobView(id=self.id, title=self.title, owner=self.owner, status=self._status,
                           message=self._message, max_steps=self.cfg.max_steps, history=tuple(self._history),
                           evals=tuple(self._evals), snapshots=tuple(self._snapshots), report=self._report,
                           checkpoint=self._checkpoint, error=self._error, created=self.created,
                           seq_per_s=self._seq_per_s)

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker to end; True when it has."""
        if self.thread is not None:
            self.thread.join(timeout)
        return not self.alive

    def discard(self) -> None:
        """Stop the job and delete its checkpoint (the page warns the user first)."""
        self.cancel()
        with self._lock:
            ckpt, self._checkpoint = self._checkpoint, None
        if ckpt is not None:
            shutil.rmtree(ckpt.parent if ckpt.parent.parent == RUNS_DIR else ckpt, ignore_errors=True)

    # --- the worker's side ----------------------------------------------------------------------------------------
    def _set(self, status: str | None = None, message: str | None = None) -> None:
        with self._lock:
            if status is not None:
                self._status = status
            if message is not None:
                self._message = message

    def _should_stop(self, t_train0: float | None) -> bool:
        if self._cancel.is_set():
            return True
        now = self.clock()
        if now - self._last_beat > self.heartbeat_timeout:
            self._stop_reason = "nobody is watching (the page was left or the tab closed)"
            self._cancel.set()
            return True
        if t_train0 is not None and now - t_train0 > self.max_seconds:
            self._stop_reason = f"the time limit of {self.max_seconds / 60:.0f} minutes was reached"
            self._cancel.set()
            return True
        return False

    def _run(self, slot: threading.Lock, runner: "JobRunner") -> None:
        try:
            while not slot.acquire(timeout=0.2):  # one training per process: wait for the slot
                other = runner.running()
                self._set(WAITING, "Waiting: another training is running" +
                          (f" ({other.title}, step {other.view().step}/{other.cfg.max_steps})" if other else "") +
                          ". Yours starts as soon as it ends.")
                if self._should_stop(None):
                    self._finish_stopped(0)
                    return
        except Exception as e:  # pragma: no cover - a lock wait does not fail
            self._fail(e)
            return
        try:
            runner._set_running(self)
            if self._should_stop(None):
                self._finish_stopped(0)
                return
            self._train()
        except Exception as e:
            self._fail(e)
        finally:
            runner._set_running(None)
            slot.release()

    def _fail(self, e: Exception) -> None:
        with self._lock:
            self._status, self._error = FAILED, f"{type(e).__name__}: {e}"
            self._message = "Training failed: " + self._error

    def _finish_stopped(self, steps: int) -> None:
        reason = self._stop_reason or "cancelled"
        status = CANCELLED if reason == "cancelled" else STOPPED
        self._set(status, f"{'Cancelled' if status == CANCELLED else 'Stopped: ' + reason} after {steps} "
                          f"step{'s' if steps != 1 else ''}.")

    def _train(self) -> None:
        self._set(PREPARING, "Preparing: copying the model and tokenising the corpus…")
        began = self.clock()  # a time budget (cfg.time_budget_s) counts from here: preparing included
        model, objective, tok = self.build()
        self.build = None  # the closure may hold large inputs; the job keeps only its progress
        w = self.watcher
        if w is not None:
            with evaluating(model), torch.no_grad():
                w.prepare(model, objective, tok)
            if w.every:
                self._snapshot(model, 0)
        if self.cfg.eval_every or self.cfg.eval_every_s:  # the curve starts at the fresh head, budget or not
            m0 = training.evaluate(model, objective)
            with self._lock:
                self._evals.append((0, m0))
        self._set(RUNNING, f"Training {self.title}…")
        t0 = self.clock()
        timing = {"start": time.perf_counter(), "last": time.perf_counter(), "train": 0.0, "n": 0}

        def on_step(ev: StepEvent) -> None:
            if ev.cancelled:
                return
            if not ev.metrics:  # a step with an evaluation is not a fair sample of the speed
                timing["train"] += time.perf_counter() - timing["last"]
                timing["n"] += 1
            with self._lock:
                self._history.append(ev)
                if ev.metrics:
                    self._evals.append((ev.step, dict(ev.metrics)))
                if timing["n"] and timing["train"] > 0:
                    self._seq_per_s = timing["n"] * self.cfg.batch_size * self.cfg.grad_accum / timing["train"]
                self._message = f"Training {self.title}: step {ev.step} of {ev.max_steps}."
            if w is not None and w.every and (ev.step % w.every == 0 or ev.done):
                self._snapshot(model, ev.step)
            self._should_stop(t0)  # sets the cancel event; train() stops before its next step
            timing["last"] = time.perf_counter()

        result = training.train(model, objective, self.cfg, callback=on_step, cancel=self._cancel, clock=self.clock,
                                started=began)
        if result.cancelled and w is not None and w.every and result.steps and \
                (not self._snapshots or self._snapshots[-1].step != result.steps):
            self._snapshot(model, result.steps)
        if result.steps and w is not None:
            self._set(SAVING, "Measuring the trained model on the held-out examples…")
            with evaluating(model), torch.no_grad():
                found = w.report(model, objective)
            with self._lock:
                self._report = found
        if self.save and result.steps:
            self._set(SAVING, "Saving the checkpoint…")
            folder = new_run_dir(self.id) / "checkpoint"
            training.save_checkpoint(model.cpu(), tok, folder, self.extra_config)
            with self._lock:
                self._checkpoint = folder
        if result.cancelled:
            self._finish_stopped(result.steps)
        else:
            self._set(DONE, f"Done: {result.steps} steps in {time.perf_counter() - timing['start']:.0f} s.")

    def _snapshot(self, model: Bert, step: int) -> None:
        with evaluating(model), torch.no_grad():
            snap = self.watcher.snapshot(model, step)
        with self._lock:
            self._snapshots.append(snap)


class JobRunner:
    """Process-wide: at most one job trains at a time; the others wait in their own threads."""

    def __init__(self):
        self._slot = threading.Lock()
        self._state_lock = threading.Lock()
        self._running: Job | None = None
        self._jobs: list[Job] = []

    def submit(self, job: Job) -> Job:
        """Start the job's worker thread (it waits while another job trains)."""
        job.heartbeat()
        with self._state_lock:
            self._jobs = [j for j in self._jobs if j.alive] + [job]
        job.thread = threading.Thread(target=job._run, args=(self._slot, self), name=f"bert-lab-job-{job.id}",
                                      daemon=True)
        job.thread.start()
        return job

    def _set_running(self, job: Job | None) -> None:
        with self._state_lock:
            self._running = job

    def running(self) -> Job | None:
        """The job that holds the training slot now, if any."""
        with self._state_lock:
            return self._running

    def active(self) -> list[Job]:
        with self._state_lock:
            return [j for j in self._jobs if j.alive]


RUNNER = JobRunner()


def new_run_dir(job_id: int) -> Path:
    """A fresh folder under RUNS_DIR; the oldest beyond KEEP_RUNS are deleted."""
    RUNS_DIR.mkdir(parents=True, exist_ok=True)
    runs = sorted((p for p in RUNS_DIR.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in runs[:max(0, len(runs) - KEEP_RUNS + 1)]:
        shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"run{job_id}-", dir=RUNS_DIR))


def zip_folder(folder: Path) -> bytes:
    """A checkpoint folder as zip bytes (for a download button)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                z.write(f, f"{folder.parent.name}/{f.relative_to(folder)}")
    return buf.getvalue()
