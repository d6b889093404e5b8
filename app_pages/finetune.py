"""Fine-tuning lab: put a classifier on BERT's [CLS] vector and train it on labelled text, live.

Data, model, job and report (``FinetuneReport``) come from ``bert_core.finetune``; ``ui.run_view`` starts, polls
and frames the run. This page picks the data and knobs and renders.
"""

from __future__ import annotations

import json
import uuid

import numpy as np
import pandas as pd
import streamlit as st

from bert_core import InputError, jobs
from bert_core import finetune as ft
from ui import figures_finetune as ffigs, figures_training as figs, run_view as rv
from ui.state import cached_model, current_model
from ui.text import md_escape
from ui.why_panel import why_panel

TWEETS, UPLOAD = "tweets", "upload"
STEPS = [10, 20, 50, 100, 200, 300, 500, 1000, 2000]
BATCHES = [4, 8, 16, 32, 64]
LRS = [1e-5, 2e-5, 3e-5, 5e-5, 1e-4, 3e-4, 1e-3, 3e-3]
N_TRAIN = [100, 200, 500, 1000, 2000, 5000, 10000, 30000]
N_TEST = [100, 200, 300, 500, 1000]
CONFIDENCE = {0.0: "all tweets", 0.6: "annotators ≥ 60% sure", 0.8: "≥ 80% sure", 1.0: "only unanimous"}
MODE_LABELS = {ft.FULL: "Fine-tune every weight (BERT's recipe)", ft.HEAD: "Train only the head (frozen BERT)"}
FIELDS = {"mode": "mode", "steps": "steps", "batch": "batch_size", "warmup": "warmup_ratio", "schedule": "schedule",
          "len": "max_len", "train": "n_train", "test": "n_test"}
CARDS = [rv.Card(name, key, "{:.1%}".format, "On the held-out examples; change since step 0.")
         for key, name in (("accuracy", "Accuracy"), ("macro_f1", "Macro F1"))]


# --- data -------------------------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=8)
def tweet_split(min_conf: float, n_train: int, n_test: int) -> ft.Split:
    return ft.split(ft.sentiment_data(min_conf), n_train, n_test)


@st.cache_data(show_spinner=False, max_entries=8)
def read_upload(data: bytes) -> pd.DataFrame:
    return ft.read_csv(data)


@st.cache_data(show_spinner=False, max_entries=8)
def upload_split(data: bytes, text_col: str, label_col: str, name: str, n_train: int, n_test: int) -> tuple:
    d = ft.labelled(read_upload(data), text_col, label_col, f"your file {name}")
    return ft.split(d, n_train, n_test), d.dropped


def data_section(locked: bool) -> ft.Split | None:
    """The data picker; returns the split to train on, or None (with a message) when there is none yet."""
    src = st.radio("Labelled data", [TWEETS, UPLOAD], key="ft_source", horizontal=True, disabled=locked,
                   format_func={TWEETS: "Tweet sentiment (built in, offline)", UPLOAD: "Upload a CSV"}.get)
    c1, c2 = st.columns(2)
    c1.select_slider("Training examples", N_TRAIN, key="ft_train", disabled=locked,
                     help="Drawn at random, keeping the classes' proportions (stratified).")
    c2.select_slider("Held-out examples", N_TEST, key="ft_test", disabled=locked,
                     help="Never trained on: accuracy is measured on these.")
    n_train, n_test = st.session_state["ft_train"], st.session_state["ft_test"]
    if src == TWEETS:
        st.select_slider("Which tweets", list(CONFIDENCE), key="ft_conf", format_func=CONFIDENCE.get,
                         disabled=locked, help="Each tweet was labelled by several people; the CSV records how "
                                               "many agreed. Unanimous labels are cleaner but fewer.")
        try:
            with st.spinner("Reading the tweets…"):
                sp = tweet_split(st.session_state["ft_conf"], n_train, n_test)
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
        sp, dropped = upload_split(data, text_col, label_col, up.name, n_train, n_test)
    except ft.DataError as e:
        st.error(md_escape(str(e)), icon=":material/error:")
        return None
    st.caption(md_escape(f"{len(df):,} rows read from {up.name}. {dropped}"))
    return sp


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
def settings_from_state() -> ft.FinetuneSettings:
    return rv.read_settings(ft.FinetuneSettings, "ft", FIELDS)


def settings_section(lm, sp: ft.Split, locked: bool) -> ft.FinetuneSettings:
    st.radio("What learns", [ft.FULL, ft.HEAD], key="ft_mode", horizontal=True, disabled=locked,
             on_change=rv.mode_changed, args=("ft", ft.DEFAULT_LR), format_func=MODE_LABELS.get)
    c, n_cls = lm.config, len(sp.names)
    counts = ft.parameter_counts(lm.model, n_cls)
    st.caption(rv.lab_text("finetune_full" if st.session_state["ft_mode"] == ft.FULL else "finetune_head",
                           encoder=counts["encoder"] / 1e6, pooler=counts["pooler"], head=counts["head"]))
    c1, c2, c3 = st.columns(3)
    c1.select_slider("Steps", STEPS, key="ft_steps", disabled=locked)
    c1.select_slider("Batch size", BATCHES, key="ft_batch", disabled=locked)
    c2.select_slider("Peak learning rate", LRS, key="ft_lr", disabled=locked, format_func=lambda v: f"{v:.0e}")
    c2.slider("Warm-up (share of the steps)", 0.0, 0.5, step=0.05, key="ft_warmup", disabled=locked)
    c3.radio("After warm-up", ["linear", "cosine", "constant"], key="ft_schedule", horizontal=True, disabled=locked)
    c3.select_slider("Longest input (tokens)", [32, 64, 128, 256], key="ft_len", disabled=locked,
                     help="Longer texts are cut; tweets fit in 64.")
    c3.toggle("Mixed precision (bf16)", key="ft_bf16", disabled=locked)
    s = settings_from_state()
    right, _ = rv.schedule_preview(s, "ft", "Learning rate of this run")
    epochs = s.epochs(len(sp.train))
    right.markdown(rv.lab_text("finetune_epochs", steps=s.steps, batch=s.batch_size, epochs=epochs,
                               plural="es" if epochs >= 1.05 else "", n_train=len(sp.train)))
    with st.expander("The task head, with this model's numbers"):
        st.markdown(rv.lab_text("finetune_task_head", layers=c.num_hidden_layers, hidden=c.hidden_size, n_cls=n_cls,
                                names=", ".join(md_escape(n) for n in sp.names)))
    return s


# --- live view and results --------------------------------------------------------------------------------------
def curves_view(v: jobs.JobView, ev: list, sp: ft.Split) -> None:
    c1, c2 = st.columns(2)
    c1.plotly_chart(figs.loss_curve([e.step for e in v.history], [e.loss for e in v.history], [s for s, _ in ev],
                                    [m["eval_loss"] for _, m in ev], "Loss"), key="ft_loss_chart")
    c2.plotly_chart(ffigs.metric_curves([s for s, _ in ev], [m["accuracy"] for _, m in ev],
                                        [m["macro_f1"] for _, m in ev], sp.majority_baseline, "Held-out accuracy"),
                    key="ft_metric_chart")
    st.caption(rv.lab_text("finetune_curves"))


def results_view(r: ft.FinetuneReport) -> None:
    st.subheader("What the trained model gets right and wrong")
    c1, c2 = st.columns([3, 2])
    c1.plotly_chart(ffigs.confusion_matrix(r.confusion, r.names, "Confusion matrix (held-out)"), key="ft_confusion")
    c2.markdown(rv.lab_text("finetune_report", accuracy=r.accuracy, macro_f1=r.macro_f1, n_test=r.n_test,
                            baseline=r.majority_baseline))
    c2.dataframe(r.per_class, hide_index=True, key="ft_per_class",
                 column_config={k: st.column_config.NumberColumn(format="%.2f") for k in ("precision", "recall", "F1")})
    if r.cls_before is not None and r.cls_after is not None:
        st.plotly_chart(ffigs.cls_scatter(r.cls_before, r.cls_after, [y for _, y in r.cls_points], r.names,
                                          [t for t, _ in r.cls_points],
                                          "The [CLS] vectors of held-out examples, squeezed to 2-D"),
                        key="ft_cls_scatter")
        st.caption(rv.lab_text("finetune_cls"))
    if r.mistakes:
        st.markdown(rv.lab_text("finetune_mistakes", wrong=r.n_wrong, n_test=r.n_test))
        st.dataframe(pd.DataFrame({"text": [m.text for m in r.mistakes], "true": [m.true for m in r.mistakes],
                                   "predicted": [m.predicted for m in r.mistakes],
                                   "confidence": [m.confidence for m in r.mistakes]}),
                     hide_index=True, key="ft_wrong",
                     column_config={"text": st.column_config.TextColumn(width="large"),
                                    "confidence": st.column_config.ProgressColumn(min_value=0, max_value=1,
                                                                                  format="percent")})


def try_it(v: jobs.JobView) -> None:
    st.subheader("Try it")
    text = st.text_input("Type a sentence for your classifier", "I love this, best flight ever!", key="ft_try",
                         max_chars=2000)
    lm = cached_model(str(v.checkpoint), "cpu", "fp32")
    try:
        ranked = lm.classify(text)
    except InputError as e:
        return st.info(str(e))
    st.plotly_chart(ffigs.class_probabilities([n for n, _ in ranked], [p for _, p in ranked], None), key="ft_try_chart")
    if st.toggle("Why this class? (which words pushed it)", key="ft_why"):
        why_panel(lm, text, ranked[0][0], key="ft_why_panel")


def downloads(v: jobs.JobView, r: ft.FinetuneReport | None) -> None:
    st.success(rv.lab_text("finetune_saved", step=v.step))
    metrics = {"evals": [{"step": s, **m} for s, m in v.evals], "final": r.summary() if r else None,
               "confusion": r.confusion.tolist() if r else None}
    c1, c2, c3 = st.columns(3)
    c1.download_button("Download the model (.zip)", data=lambda: jobs.zip_folder(v.checkpoint),
                       file_name=f"bert-lab-finetune{v.id}.zip", mime="application/zip", key="ft_download",
                       icon=":material/download:", on_click="ignore")
    c2.download_button("Download the metrics (.json)", data=json.dumps(metrics, indent=1),
                       file_name=f"bert-lab-finetune{v.id}-metrics.json", mime="application/json",
                       key="ft_download_metrics", icon=":material/analytics:", on_click="ignore")
    rv.use_it(v, "ft", c3, "Makes this checkpoint the sidebar model, e.g. to see what its attention looks like now.")


def render_run(job: jobs.Job, v: jobs.JobView) -> None:
    ev = [(s, m) for s, m in v.evals if "accuracy" in m]
    rv.metrics_row(v, ev, CARDS, ".3f", "Training loss, smoothed.", "Examples/s")
    curves_view(v, ev, st.session_state["ft_job_split"])
    if v.active:
        return
    if v.report is not None:
        results_view(v.report)
    if v.checkpoint is not None and v.checkpoint.is_dir():
        downloads(v, v.report)
        try_it(v)


# --- page -------------------------------------------------------------------------------------------------------
st.title("Fine-tuning lab")
st.markdown(rv.lab_text("finetune_intro"))

rv.init_settings("ft", ft.FinetuneSettings(), FIELDS, ft.DEFAULT_LR)
st.session_state.setdefault("ft_source", TWEETS)
st.session_state.setdefault("ft_conf", 0.0)
lm = current_model()
owner = st.session_state.setdefault("ft_owner", uuid.uuid4().hex)
job: jobs.Job | None = st.session_state.get("ft_job")
view = job.view() if job else None
locked = view is not None and view.active

st.subheader("1 · Data")
split = data_section(locked)
if split is not None:
    data_view(split)
    st.subheader("2 · Model and training")
    settings_section(lm, split, locked)
    rv.start_button("ft", view, "Start fine-tuning", "with its model and metrics",
                    lambda: ft.finetune_job(lm, settings_from_state(), split, owner=owner),
                    remember={"ft_job_split": split})

if job is not None:  # the run under its settings, where the Start button was clicked
    st.divider()
    rv.live("ft", view, render_run)
