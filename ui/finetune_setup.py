"""The fine-tuning lab's set-up: the task (quick demo or three classes), the data, the knobs and the measured time
estimate beside the Start button. Widgets keep their values under ``ft_*`` session keys (``run_view``'s scheme)."""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np
import pandas as pd
import streamlit as st

from bert_core import estimate as est
from bert_core import finetune as ft
from bert_core import jobs
from bert_core.budget import LONG_RUN, SHORT_RUN, lr_boost
from bert_core.runs import lr_text
from ui import figures_finetune as ffigs, run_view as rv
from ui.text import md_escape
from ui.upload_sizes import clamp, slider_steps, split_sizes

TWEETS, UPLOAD = "tweets", "upload"
QUICK, THREE = "quick", "three"
TASKS = {QUICK: "Quick demo: negative vs positive (about 2 min)", THREE: "Three classes: negative, neutral, positive"}
THREE_BUDGET_S = 300.0  # three classes need longer for a clear result
STEPS = [10, 20, 50, 100, 200, 300, 500, 1000, 2000, 5000]
BATCHES = [4, 8, 16, 32, 64]
LRS = [1e-5, 2e-5, 3e-5, 5e-5, 8e-5, 1e-4, 1.5e-4, 3e-4, 1e-3, 3e-3]
N_TRAIN = [100, 200, 500, 1000, 2000, 5000, 10000, 30000, 100000]
N_TEST = [100, 200, 300, 500, 1000, 2000]
BUDGETS = [0.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 900.0]
CONFIDENCE = {0.0: "all tweets", 0.6: "annotators ≥ 60% sure", 0.8: "≥ 80% sure", 1.0: "only unanimous"}
MODE_LABELS = {ft.FULL: "Fine-tune every weight (BERT's recipe)", ft.HEAD: "Train only the head (frozen BERT)"}
POOL_LABELS = {ft.CLS: "[CLS] vector (BERT)", ft.MEAN: "mean of the tokens (how MiniLM was trained)"}
FIELDS = {"mode": "mode", "steps": "steps", "batch": "batch_size", "warmup": "warmup_ratio", "schedule": "schedule",
          "len": "max_len", "train": "n_train", "test": "n_test", "budget": "time_budget_s", "pool": "pooling",
          "precision": "mixed_precision", "dropout": "dropout"}
DROPOUTS = [0.0, 0.1, 0.2, 0.3]
PRECISIONS = {"auto": "auto: bf16 where it is faster", "bf16": "bf16", "no": "off (fp32)"}


def preset(task: str) -> ft.FinetuneSettings:
    """The settings a task starts from: the quick demo, or the same recipe on all three classes for longer."""
    if task == THREE:
        return replace(ft.QUICK_DEMO, labels=(), time_budget_s=THREE_BUDGET_S)
    return ft.QUICK_DEMO


def _apply(s: ft.FinetuneSettings) -> None:
    values = asdict(s)
    for key, name in FIELDS.items():
        st.session_state[f"ft_{key}"] = values[name]
    st.session_state["ft_lr"] = s.lr


def task_changed() -> None:
    _apply(preset(st.session_state["ft_task"]))


def init_state() -> None:
    """Widget defaults: the quick demo (``ft.QUICK_DEMO``) until the user picks otherwise."""
    st.session_state.setdefault("ft_task", QUICK)
    rv.init_settings("ft", preset(st.session_state["ft_task"]), FIELDS, ft.DEFAULT_LR)
    st.session_state.setdefault("ft_source", TWEETS)
    st.session_state.setdefault("ft_conf", 0.0)


def labels() -> tuple[str, ...]:
    return preset(st.session_state["ft_task"]).labels if st.session_state["ft_source"] == TWEETS else ()


def settings_from_state() -> ft.FinetuneSettings:
    return rv.read_settings(ft.FinetuneSettings, "ft", FIELDS, labels=labels())


def _options(values: list, current) -> list:
    return sorted(set(values) | {current})  # a preset's value is always on the slider


def task_picker(locked: bool) -> None:
    st.radio("Task", list(TASKS), key="ft_task", horizontal=True, disabled=locked, format_func=TASKS.get,
             on_change=task_changed, help="Both start from the same recipe; the three-class task gets 5 minutes.")


# --- data -------------------------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=8)
def tweet_split(min_conf: float, keep: tuple[str, ...], n_train: int, n_test: int) -> ft.Split:
    return ft.split(ft.sentiment_data(min_conf, keep), n_train, n_test)


@st.cache_data(show_spinner=False, max_entries=8)
def read_upload(data: bytes) -> pd.DataFrame:
    return ft.read_csv(data)


@st.cache_data(show_spinner=False, max_entries=8)
def upload_data(data: bytes, text_col: str, label_col: str, name: str) -> ft.LabelledData:
    return ft.labelled(read_upload(data), text_col, label_col, f"your file {name}")


def size_sliders(locked: bool, train_opts: list[int], test_opts: list[int]) -> tuple[int, int]:
    """The two size sliders on these steps (a kept choice outside them moves to the nearest one below)."""
    s = st.session_state
    for key, opts in (("ft_train", train_opts), ("ft_test", test_opts)):
        if s.get(key) not in opts:
            s[key] = clamp(s.get(key, opts[-1]), opts)
    c1, c2 = st.columns(2)
    c1.select_slider("Training examples", train_opts, key="ft_train", disabled=locked,
                     help="Drawn at random, keeping the classes' proportions (stratified). With a time budget, "
                          "the clock decides how many are seen.")
    c2.select_slider("Held-out examples", test_opts, key="ft_test", disabled=locked,
                     help="Never trained on: accuracy is measured on these.")
    return s["ft_train"], s["ft_test"]


def data_section(locked: bool) -> ft.Split | None:
    """The data picker; returns the split to train on, or None (with a message) when there is none yet."""
    src = st.radio("Labelled data", [TWEETS, UPLOAD], key="ft_source", horizontal=True, disabled=locked,
                   format_func={TWEETS: "Tweet sentiment (built in, offline)", UPLOAD: "Upload a CSV"}.get)
    s = st.session_state
    if src == TWEETS:
        n_train, n_test = size_sliders(locked, _options(N_TRAIN, s["ft_train"]), _options(N_TEST, s["ft_test"]))
        st.select_slider("Which tweets", list(CONFIDENCE), key="ft_conf", format_func=CONFIDENCE.get,
                         disabled=locked, help="Each tweet was labelled by several people; the CSV records how "
                                               "many agreed. Unanimous labels are cleaner but fewer.")
        try:
            with st.spinner("Reading the tweets…"):
                sp = tweet_split(s["ft_conf"], labels(), n_train, n_test)
        except FileNotFoundError as e:
            st.error(str(e))
            return None
        st.caption(rv.lab_text("finetune_tweets"))
        return sp
    up = st.file_uploader("CSV file with a text column and a label column", type=["csv", "tsv", "txt"],
                          key="ft_file", disabled=locked,
                          help=f"Up to {ft.MAX_CSV_BYTES // 10**6} MB. Comma, semicolon or tab separated, with a "
                               "header row.")
    if up is None:
        st.info("Upload a CSV to train on your own labels, e.g. reviews with a star rating, or questions with a "
                "topic.", icon=":material/upload_file:")
        return None
    data = up.getvalue()
    try:
        df = read_upload(data)
        guess_text, guess_label = ft.guess_columns(df)
        cols = list(df.columns)
        c1, c2 = st.columns(2)
        text_col = c1.selectbox("Text column", cols, index=cols.index(guess_text), key=f"ft_tc_{up.file_id}",
                                disabled=locked)
        label_col = c2.selectbox("Label column", cols, index=cols.index(guess_label), key=f"ft_lc_{up.file_id}",
                                 disabled=locked)
        d = upload_data(data, text_col, label_col, up.name)
        sizes = split_sizes(len(d.texts), len(d.names), s.get("ft_test"))
        n_train, n_test = size_sliders(locked, slider_steps(N_TRAIN, sizes.max_train),
                                       slider_steps(N_TEST, sizes.max_test))
        sp = ft.split(d, n_train, n_test)
    except ft.DataError as e:
        st.error(md_escape(str(e)), icon=":material/error:")
        return None
    st.caption(md_escape(f"{len(df):,} rows read from {up.name}. {sp.dropped}"))
    return sp


def left_out(sp: ft.Split) -> str:
    """What the cleaning left out, for a caption ('' when nothing was)."""
    return f"Classroom-safe data. {md_escape(sp.dropped)}" if sp.dropped else ""


def data_view(sp: ft.Split) -> None:
    tr = np.bincount([y for _, y in sp.train], minlength=len(sp.names))
    te = np.bincount([y for _, y in sp.test], minlength=len(sp.names))
    left, right = st.columns([2, 3])
    left.plotly_chart(ffigs.class_balance(sp.names, tr.tolist(), te.tolist(), "Examples per class"),
                      key="ft_balance")
    pick = np.random.default_rng(0).choice(len(sp.train), size=min(6, len(sp.train)), replace=False)
    right.markdown(rv.lab_text("finetune_examples"))
    right.dataframe(pd.DataFrame({"text": [sp.train[i][0] for i in pick],
                                  "label": [sp.names[sp.train[i][1]] for i in pick]}),
                    hide_index=True, key="ft_examples", column_config={"text": st.column_config.TextColumn(
                        width="large")})


# --- settings ---------------------------------------------------------------------------------------------------
def _budget_label(v: float) -> str:
    return "off: run the steps" if not v else f"{v:.0f} s" if v < 60 else f"{v / 60:g} min"


def settings_section(lm, sp: ft.Split, locked: bool) -> ft.FinetuneSettings:
    s = st.session_state
    st.radio("What learns", [ft.FULL, ft.HEAD], key="ft_mode", horizontal=True, disabled=locked,
             on_change=rv.mode_changed, args=("ft", ft.DEFAULT_LR), format_func=MODE_LABELS.get)
    c, n_cls = lm.config, len(sp.names)
    counts = ft.parameter_counts(lm.model, n_cls)
    st.caption(rv.lab_text("finetune_full" if s["ft_mode"] == ft.FULL else "finetune_head",
                           encoder=counts["encoder"] / 1e6, pooler=counts["pooler"], head=counts["head"]))
    c1, c2, c3 = st.columns(3)
    c1.select_slider("Time budget", _options(BUDGETS, s["ft_budget"]), key="ft_budget", disabled=locked,
                     format_func=_budget_label, help="With a budget the learning-rate schedule follows the clock "
                     "and everything, the last evaluation included, ends in time; the steps are then a cap.")
    c1.select_slider("Steps", _options(STEPS, s["ft_steps"]), key="ft_steps", disabled=locked,
                     help="With a time budget, the most steps: the clock decides when to stop.")
    c1.select_slider("Batch size", BATCHES, key="ft_batch", disabled=locked)
    c2.select_slider("Peak learning rate", _options(LRS, s["ft_lr"]), key="ft_lr", disabled=locked,
                     format_func=lr_text, help="How far each step moves the weights. Training every weight, a run "
                     f"of under {LONG_RUN} steps peaks higher, up to twice this at {SHORT_RUN} steps or fewer: on "
                     "the tweets that gained about a point of accuracy at 60 steps.")
    c2.slider("Warm-up (share of the run)", 0.0, 0.5, step=0.02, key="ft_warmup", disabled=locked)
    c2.radio("Sentence vector", list(POOL_LABELS), key="ft_pool", disabled=locked, format_func=POOL_LABELS.get,
             help="What the classifier reads: BERT's [CLS] vector (through the pooler), or the average of every "
                  "token's last hidden state.")
    c3.radio("After warm-up", ["linear", "cosine", "constant"], key="ft_schedule", horizontal=True, disabled=locked)
    c3.select_slider("Longest input (tokens)", [32, 64, 128, 256], key="ft_len", disabled=locked,
                     help="Longer texts are cut; tweets fit in 64.")
    c3.select_slider("Dropout", _options(DROPOUTS, s["ft_dropout"]), key="ft_dropout", disabled=locked,
                     format_func=lambda v: "off" if not v else f"{v:g}",
                     help="While training, each dropout layer zeroes this share of its numbers at random, so the "
                          "model cannot lean on any one of them: a guard against learning the training set by heart. "
                          "BERT uses 0.1. Off, each step is a little faster; in our 450-step runs on the tweets it "
                          "cost 0.8 points of accuracy. Compare two runs to see it here.")
    c3.selectbox("Mixed precision", list(PRECISIONS), key="ft_precision", disabled=locked, format_func=PRECISIONS.get,
                 help="bf16 autocast: the matrix products in 16-bit brain floats, the weights in fp32. Faster on GPUs "
                      "and on CPUs with bf16 instructions, slower elsewhere; auto picks.")
    settings = settings_from_state()
    right, _ = rv.schedule_preview(settings, "ft", "Learning rate of this run")
    if settings.time_budget_s:
        right.markdown(rv.lab_text("finetune_budget", budget=_budget_label(settings.time_budget_s),
                                   long=LONG_RUN, short=SHORT_RUN))
    else:
        epochs = settings.epochs(len(sp.train))
        right.markdown(rv.lab_text("finetune_epochs", steps=settings.steps, batch=settings.batch_size, epochs=epochs,
                                   plural="es" if epochs >= 1.05 else "", n_train=len(sp.train)))
        cfg = settings.train_config()
        if (boost := lr_boost(cfg.short_run_boost, cfg.max_steps)) > 1:
            right.markdown(rv.lab_text("finetune_short_run", peak=lr_text(cfg.lr * boost), lr=lr_text(cfg.lr),
                                       boost=boost, long=LONG_RUN, short=SHORT_RUN))
    with st.expander("The task head, with this model's numbers"):
        st.markdown(rv.lab_text("finetune_task_head", layers=c.num_hidden_layers, hidden=c.hidden_size, n_cls=n_cls,
                                names=", ".join(md_escape(n) for n in sp.names)))
    return settings


# --- the estimate -----------------------------------------------------------------------------------------------
def estimate_text(lm, sp: ft.Split, s: ft.FinetuneSettings) -> str:
    """'About 2 min on this machine (measured: 41 examples/s) …' for settings ``s``: measured on a throwaway copy,
    in the background, once for each (model, device, batch, length, mode, pooling, precision)."""
    key = est.speed_key(lm, s)
    busy = jobs.RUNNER.running() is not None
    speed = est.SPEEDS.get(key) or (None if busy else est.speed_soon(lm, s, sp))
    if speed is None:
        why = (f"could not time this machine ({est.SPEEDS.error(key)})." if est.SPEEDS.error(key) else
               "timed when the training running on this server now has ended." if busy else
               "timing two training steps on a copy of the model…")
        return (f"About {_budget_label(s.time_budget_s)}: the time budget; the speed is {why}" if s.time_budget_s
                else f"The time estimate is {why}")
    e = est.estimate(s, speed, len(sp.test))
    what = est.say(e)
    what = what[0].upper() + what[1:]
    if e.budget:
        return (f"{what}: the time budget. About {e.steps:,} step{'s' * (e.steps != 1)} of {s.batch_size} fit "
                f"({e.steps * s.batch_size:,} examples seen), besides the evaluations.")
    return f"{what}: {s.steps:,} steps of {s.batch_size}, the evaluations and the final report."


def estimate_view(lm, sp: ft.Split, column) -> None:
    """The estimate line; while the speed is being measured it redraws every second, then the page once."""
    s = settings_from_state()
    key = est.speed_key(lm, s)
    pending = est.SPEEDS.get(key) is None and est.SPEEDS.error(key) is None and jobs.RUNNER.running() is None

    @st.fragment(run_every=1.0 if pending else None)
    def _line() -> None:
        st.markdown(f":material/timer: {estimate_text(lm, sp, s)}")
        if pending and (est.SPEEDS.get(key) is not None or est.SPEEDS.error(key)):
            st.rerun()  # measured: stop polling

    with column:
        _line()
