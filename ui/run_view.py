"""The run view both training labs share, so that each lab page only reads its widgets and renders its own charts.

    init_settings("ft", FinetuneSettings(), FIELDS, DEFAULT_LR)     # widget defaults from the settings dataclass
    schedule_preview(settings, "ft", "Learning rate of this run")   # the LR chart, computed by training.lr_schedule
    start_button("ft", view, "Start fine-tuning", "with its model and metrics", make_job)
    live("ft", view, render)            # polls while the job runs: header, progress, Cancel, then ``render``

Session keys carry the lab's prefix: ``{prefix}_job`` (the session's job), ``{prefix}_polling``, ``{prefix}_error``
and one key per widget. Long explanations live in ``app_pages/text/*.md`` (``lab_text``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import streamlit as st

from bert_core import jobs, training
from ui import figures_training as figs
from ui.text import md_escape

POLL_S = 1.5  # seconds between progress polls while a job is active
TEXT_DIR = Path(__file__).resolve().parent.parent / "app_pages" / "text"


def lab_text(text_name: str, /, **values) -> str:
    """``app_pages/text/{text_name}.md`` with ``values`` filled in; a paragraph's lines are joined into one line."""
    raw = (TEXT_DIR / f"{text_name}.md").read_text(encoding="utf-8").strip()
    return "\n\n".join(" ".join(p.split()) for p in raw.split("\n\n")).format(**values)


# --- settings ---------------------------------------------------------------------------------------------------
def init_settings(prefix: str, defaults: jobs.RunSettings, fields: Mapping[str, str],
                  default_lr: Mapping[str, float]) -> None:
    """Give each widget ``{prefix}_{key}`` its default from ``defaults.{field}`` (once); bf16 is a toggle; the
    learning rate's default follows the mode (``default_lr``)."""
    values = asdict(defaults)
    for key, name in fields.items():
        st.session_state.setdefault(f"{prefix}_{key}", values[name])
    st.session_state.setdefault(f"{prefix}_bf16", defaults.mixed_precision == "bf16")
    st.session_state.setdefault(f"{prefix}_lr", default_lr[st.session_state[f"{prefix}_mode"]])


def read_settings(cls: type, prefix: str, fields: Mapping[str, str], **more) -> jobs.RunSettings:
    """The settings on the widgets now (the Start callbacks call this at click time)."""
    s = st.session_state
    if "mixed_precision" not in fields.values():  # the bf16 toggle (a lab may have its own precision picker)
        more = {"mixed_precision": "bf16" if s[f"{prefix}_bf16"] else "no", **more}
    return cls(**{name: s[f"{prefix}_{key}"] for key, name in fields.items()}, lr=s[f"{prefix}_lr"], **more)


def mode_changed(prefix: str, default_lr: Mapping[str, float]) -> None:
    """on_change of the mode radio: the learning rate jumps to the new mode's default."""
    st.session_state[f"{prefix}_lr"] = default_lr[st.session_state[f"{prefix}_mode"]]


def schedule_preview(s: jobs.RunSettings, prefix: str, title: str) -> tuple[object, int]:
    """The learning rate of every step of a run with these settings, warm-up shaded, in a left column; returns the
    right column (for the page's explanation) and the number of warm-up steps."""
    cfg = s.train_config()
    lrs, warmup = training.lr_schedule(cfg)
    left, right = st.columns([3, 2])
    left.plotly_chart(figs.lr_schedule(list(range(1, cfg.max_steps + 1)), lrs, warmup, title),
                      key=f"{prefix}_lr_chart")
    return right, warmup


# --- start / replace --------------------------------------------------------------------------------------------
def confirm_replace(view: jobs.JobView | None, prefix: str, what: str) -> bool:
    """True when a new run may start; after a finished run with a saved model, only once the user ticks the box."""
    if view is None or view.active or view.checkpoint is None:
        return True
    st.warning(f"Starting a new run deletes run {view.id} ({md_escape(view.title)}, {view.step} steps) {what}. "
               "Download what you want to keep first.", icon=":material/warning:")
    return st.checkbox("Yes, replace my last run", key=f"{prefix}_confirm_{view.id}")


def _start(prefix: str, make_job: Callable[[], jobs.Job], remember: Mapping[str, object],
           keep: Callable[[jobs.Job], None] | None = None) -> None:
    """Button callback: runs before the page script (so the page already draws the run as started)."""
    try:
        new = make_job()
    except FileNotFoundError as e:  # data that ships in Debian / PyPI packages is missing
        st.session_state[f"{prefix}_error"] = str(e)
        return
    old = st.session_state.get(f"{prefix}_job")
    if old is not None:
        if keep is not None:
            keep(old)
        old.discard()
    st.session_state[f"{prefix}_job"] = jobs.RUNNER.submit(new)
    st.session_state.update(remember)


def start_button(prefix: str, view: jobs.JobView | None, label: str, replaces: str,
                 make_job: Callable[[], jobs.Job], remember: Mapping[str, object] | None = None,
                 keep: Callable[[jobs.Job], None] | None = None, help: str | None = None) -> None:
    """Who else is training, the confirm-before-replace box and the Start button. ``make_job`` runs at click time
    (it reads the settings then); ``remember`` goes into the session state with the new job. With ``keep`` (a lab
    that keeps its runs) nothing is replaced: ``keep(last job)`` runs before a new one starts, without asking."""
    job = st.session_state.get(f"{prefix}_job")
    other = jobs.RUNNER.running()
    if other is not None and other is not job:
        st.caption(f"Another training is running on this server now ({md_escape(other.title)}, step "
                   f"{other.view().step}); a new run waits until it ends.")
    locked = view is not None and view.active
    confirmed = keep is not None or confirm_replace(view, prefix, replaces)
    st.button(label, type="primary", icon=":material/play_arrow:", disabled=locked or not confirmed,
              key=f"{prefix}_start", on_click=_start, args=(prefix, make_job, dict(remember or {}), keep), help=help)
    if f"{prefix}_error" in st.session_state:
        st.error(st.session_state.pop(f"{prefix}_error"))


# --- the live run -----------------------------------------------------------------------------------------------
def run_header(prefix: str) -> tuple[jobs.Job, jobs.JobView] | None:
    """The session's job (``st.session_state[prefix + '_job']``): keep it alive while it runs, redraw the whole page
    once when it ends, and show its title, status, progress bar and Cancel button."""
    job: jobs.Job | None = st.session_state.get(f"{prefix}_job")
    if job is None:
        return None
    v = job.view()
    if v.active:
        job.heartbeat()
    elif st.session_state.get(f"{prefix}_polling") == v.id:  # it ended while we polled: redraw the page once
        st.session_state[f"{prefix}_polling"] = None
        st.rerun()
    st.markdown(f"##### Run {v.id} · {md_escape(v.title)}")  # small: the progress bar below stays in sight
    message = md_escape(v.message)  # holds the model's name, which may be a path
    if v.status == jobs.WAITING:
        st.info(message, icon=":material/hourglass_top:")
    elif v.status == jobs.FAILED:
        st.error(message)
    elif v.status in (jobs.CANCELLED, jobs.STOPPED):
        st.warning(message)
    c1, c2 = st.columns([5, 1], vertical_alignment="center")
    if v.status != jobs.FAILED:
        budget = job.cfg.time_budget_s
        done, left = progress(v, budget)
        text = message if v.active or v.status == jobs.DONE else f"{v.step} steps"
        if v.status == jobs.RUNNING and budget > 0 and v.history:  # the clock, not the step cap, sets the pace
            text = f"Training: {duration(v.history[-1].elapsed_s)} of {duration(budget)}, step {v.step}"
        c1.progress(done, text=f"{text} {left}" if v.active and left else text)
    if v.active:
        c2.button("Cancel", key=f"{prefix}_cancel", on_click=job.cancel, icon=":material/stop_circle:",
                  width="stretch")
    return job, v


def progress(v: jobs.JobView, budget_s: float = 0.0) -> tuple[float, str]:
    """(share done, 'about 1 min 10 s left'): by the clock with a time budget, else by the steps at the speed so
    far ('' before the first step)."""
    if not v.history:
        return 0.0, ""
    elapsed = v.history[-1].elapsed_s
    if v.status == jobs.DONE:
        return 1.0, ""
    if budget_s > 0:
        done, left = min(1.0, elapsed / budget_s), max(0.0, budget_s - elapsed)
    else:
        done, left = v.fraction, (v.max_steps - v.step) * elapsed / max(1, v.step)
    return done, f"· about {duration(left)} left" if v.active else ""


def duration(seconds: float) -> str:
    """'45 s', '2 min 05 s', '1 h 02 min'."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def live(prefix: str, view: jobs.JobView | None, render: Callable[[jobs.Job, jobs.JobView], None]) -> None:
    """The session's run, redrawn every ``POLL_S`` seconds while it is active (``st.fragment``): the header, then
    ``render(job, view)``. Nothing when the session has no run."""
    polling = view is not None and view.active
    if polling:
        st.session_state[f"{prefix}_polling"] = view.id

    @st.fragment(run_every=POLL_S if polling else None)
    def _live() -> None:
        found = run_header(prefix)
        if found is not None:
            render(*found)

    _live()


@dataclass(frozen=True)
class Card:
    """One held-out metric in the metrics row."""

    label: str
    key: str  # in the evaluations' metrics
    fmt: Callable[[float], str]
    help: str


def metrics_row(v: jobs.JobView, evals: Sequence[tuple[int, dict[str, float]]], cards: Sequence[Card],
                loss_format: str, loss_help: str, rate_label: str, rate_help: str | None = None,
                steps_capped: bool = False, more: Sequence[tuple[str, str, str]] = ()) -> None:
    """Step, smoothed training loss, the ``cards`` (latest value, change since step 0), the training speed and
    ``more`` (label, value, help). ``steps_capped``: the clock decides the steps, so no 'of max_steps'."""
    c1, c2, *held, c5 = st.columns(2 + len(cards) + 1 + len(more))
    held, extra = held[:len(cards)], held[len(cards):] + [c5]
    c5 = extra.pop(0)
    c1.metric("Step", str(v.step) if steps_capped else f"{v.step} / {v.max_steps}",
              help="The time budget decides how many steps run." if steps_capped else None)
    losses = [e.loss for e in v.history]
    c2.metric("Loss", format(figs.ema(losses)[-1], loss_format) if losses else "–", help=loss_help)
    for col, card in zip(held, cards):
        if evals:
            first, last = evals[0][1][card.key], evals[-1][1][card.key]
            delta = f"{(last - first) * 100:+.1f} pts" if len(evals) > 1 else None
            col.metric(card.label, card.fmt(last), delta=delta, help=card.help)
        else:
            col.metric(card.label, "–")
    c5.metric(rate_label, f"{v.seq_per_s:.1f}" if v.seq_per_s else "–", help=rate_help)
    for col, (name, value, help_text) in zip(extra, more):
        col.metric(name, value, help=help_text)


def use_it(v: jobs.JobView, prefix: str, column, help: str) -> None:
    """A button that makes the run's checkpoint the sidebar model of every page."""
    if column.button("Use it in the other pages", key=f"{prefix}_use", icon=":material/open_in_new:", help=help):
        st.session_state["model_name"] = str(v.checkpoint)
        st.rerun()
