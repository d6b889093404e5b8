"""Pretraining lab: train BERT with masked-language modelling live and watch loss, guesses and attention change.

Training runs in ``bert_core.jobs``' worker thread on a private copy of the model (``bert_core.pretraining``); this
page reads the knobs and renders; ``ui.run_view`` starts, polls, cancels and frames the run.
"""

from __future__ import annotations

import math
import uuid

import numpy as np
import pandas as pd
import streamlit as st
import torch

from bert_core import jobs, pretraining, stats
from bert_core.model import Bert, BertConfig
from bert_core.pretraining import CONTINUE, DEFAULT_LR, SCRATCH
from bert_core.runs import lr_text
from ui import figures_training as figs
from ui import pretraining_notes as notes, run_view as rv
from ui.state import current_model
from ui.text import head_name, layer_name, md_escape

STEPS = [10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
BATCHES = [2, 4, 8, 16, 32, 64]
LRS = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3]
CORPUS_SIZES = {1000: "1,000 texts", 5000: "5,000 texts", 20000: "20,000 texts", 200000: "all (about 158,000)"}
SIZES = {"tiny": (2, 128, 2), "small": (4, 256, 4)}  # layers, hidden, heads of a from-scratch BERT
MODE_LABELS = {CONTINUE: "Continue MLM training of the sidebar's model", SCRATCH: "Pretrain a tiny BERT from scratch"}
FIELDS = {"mode": "mode", "steps": "steps", "batch": "batch_size", "seq": "seq_len", "warmup": "warmup_ratio",
          "schedule": "schedule", "prob": "mlm_prob", "wwm": "whole_word", "nsp": "nsp", "corpus": "n_texts"}
CARDS = [rv.Card(name, key, lambda x: f"{x:.0%}" if x >= 0.1 else f"{x:.1%}",
                 f"Held-out masked tokens guessed right ({name.lower()}); the change is since step 0.")
         for key, name in (("top1", "Top-1"), ("top5", "Top-5"))]


def has_bf16_cpu() -> bool:
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@st.cache_data(show_spinner=False)
def scratch_parameters(vocab: int, layers: int, hidden: int, heads: int, nsp: bool) -> int:
    with torch.device("meta"):
        m = Bert(BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                            intermediate_size=4 * hidden), mlm_head=True, nsp_head=nsp, pooler=nsp)
    return m.num_parameters()


def settings_from_state(lm) -> pretraining.LabSettings:
    """The lab settings on the widgets now (also read by the Start callback, at click time)."""
    c = lm.config
    layers, hidden, heads = (SIZES[st.session_state.get("pt_size") or "tiny"]
                             if st.session_state["pt_mode"] == SCRATCH
                             else (c.num_hidden_layers, c.hidden_size, c.num_attention_heads))
    return rv.read_settings(pretraining.LabSettings, "pt", FIELDS, scratch_layers=layers, scratch_hidden=hidden,
                            scratch_heads=heads)


# --- setup ------------------------------------------------------------------------------------------------------
def what_to_train(lm, locked: bool) -> None:
    """The mode and, from scratch, the size, with what will train in numbers."""
    name = "the bundled model" if lm.name == "bundled" else f"'{lm.name}'"
    mode = st.radio("What to train", [CONTINUE, SCRATCH], key="pt_mode", on_change=rv.mode_changed,
                    args=("pt", DEFAULT_LR), disabled=locked, horizontal=True, format_func=MODE_LABELS.get)
    c = lm.config
    if mode == CONTINUE:
        params = lm.model.num_parameters()
        head = ("its own MLM head" if lm.has_mlm_head else
                "a **new, randomly initialised MLM head** (this checkpoint has none, so its first guesses are noise)")
        st.caption(rv.lab_text("pretraining_continue", name=md_escape(name), layers=c.num_hidden_layers,
                               heads=c.num_attention_heads, hidden=c.hidden_size, params=params / 1e6, head=head))
        return
    st.segmented_control("Size", list(SIZES), key="pt_size", disabled=locked,
                         format_func=lambda k: "{} layers × {} heads, hidden {}".format(
                             SIZES[k][0], SIZES[k][2], SIZES[k][1]))
    layers, hidden, heads = SIZES[st.session_state.get("pt_size") or "tiny"]
    params = scratch_parameters(c.vocab_size, layers, hidden, heads, bool(st.session_state.get("pt_nsp")))
    st.caption(rv.lab_text("pretraining_scratch", params=params / 1e6, name=md_escape(name), vocab=c.vocab_size,
                           embedding=c.vocab_size * hidden / 1e6))


def settings_form(lm, locked: bool) -> pretraining.LabSettings:
    """The knobs; returns the settings they make."""
    rv.init_settings("pt", pretraining.LabSettings(), FIELDS, DEFAULT_LR)
    st.session_state.setdefault("pt_size", "tiny")
    what_to_train(lm, locked)
    c1, c2, c3 = st.columns(3)
    with c1:
        st.select_slider("Steps", STEPS, key="pt_steps", disabled=locked,
                         help="Optimizer updates. Capped at 5,000 (and 30 minutes) per run.")
        st.select_slider("Batch size (sequences per step)", BATCHES, key="pt_batch", disabled=locked)
        st.select_slider("Sequence length (tokens)", [32, 64, 128], key="pt_seq", disabled=locked,
                         help="Short texts are packed together, separated by [SEP], up to this length.")
    with c2:
        st.select_slider("Peak learning rate", LRS, key="pt_lr", disabled=locked, format_func=lr_text)
        st.slider("Warm-up (share of the steps)", 0.0, 0.5, step=0.02, key="pt_warmup", disabled=locked)
        st.radio("After warm-up", ["linear", "cosine", "constant"], key="pt_schedule", horizontal=True, disabled=locked)
    with c3:
        st.slider("Mask probability", 0.05, 0.5, step=0.01, key="pt_prob", disabled=locked)
        st.toggle("Whole-word masking", key="pt_wwm", disabled=locked,
                  help="Hide all pieces of a word together (play ##ing), not single pieces.")
        one_segment = lm.config.type_vocab_size < 2
        if one_segment:
            st.session_state["pt_nsp"] = False
        st.toggle("Next-sentence prediction (NSP)", key="pt_nsp", disabled=locked or one_segment,
                  help="This checkpoint has a single segment embedding, so it cannot mark sentence B."
                  if one_segment else "Train on sentence pairs and also predict whether B followed A.")
        st.toggle("Mixed precision (bf16)", key="pt_bf16", disabled=locked)
        st.selectbox("Corpus", list(CORPUS_SIZES), format_func=CORPUS_SIZES.get, key="pt_corpus", disabled=locked,
                     help="A fixed sample of WordNet definitions/examples and fortunes.")
    return settings_from_state(lm)


def explanations(s: pretraining.LabSettings, vocab: int) -> None:
    right, warmup = rv.schedule_preview(s, "pt", "Learning-rate schedule of this run")
    after = "stays there" if s.schedule == "constant" else f"decays to 0 ({s.schedule})"
    right.markdown(rv.lab_text("pretraining_warmup", lr=lr_text(s.lr), warmup=warmup, steps="step" if warmup == 1 else "steps",
                               after=after))
    tokens = s.batch_size * s.seq_len
    with st.expander("What these knobs do (with this model's numbers)", expanded=False):
        st.markdown(rv.lab_text("pretraining_knobs", batch=s.batch_size, seq_len=s.seq_len, tokens=tokens,
                                prob=s.mlm_prob, masked=s.mlm_prob * tokens * 0.9,  # [CLS]/[SEP]/padding: never
                                vocab=vocab, chance=math.log(vocab),
                                bf16="has" if has_bf16_cpu() else "does not seem to have"))


def setup_section(lm, view: jobs.JobView | None, owner: str) -> None:
    settings = settings_form(lm, locked=view is not None and view.active)
    explanations(settings, lm.config.vocab_size)
    rv.start_button("pt", view, "Start training", "and its checkpoint",
                    lambda: pretraining.lab_job(lm, settings_from_state(lm), owner=owner))


# --- live view --------------------------------------------------------------------------------------------------
def curves_view(v: jobs.JobView, ev: list) -> None:
    st.markdown(rv.lab_text("pretraining_curves"))
    c1, c2 = st.columns(2)
    c1.plotly_chart(figs.loss_curve([e.step for e in v.history], [e.loss for e in v.history], [s for s, _ in ev],
                                    [m["eval_loss"] for _, m in ev], "Loss"), key="pt_loss_chart")
    c2.plotly_chart(figs.accuracy_curve([s for s, _ in ev], [m["top1"] for _, m in ev], [m["top5"] for _, m in ev],
                                        "Held-out masked-token accuracy"), key="pt_acc_chart")
    nsp = [(s, m["nsp_accuracy"]) for s, m in v.evals if "nsp_accuracy" in m]
    if nsp:
        st.caption("Held-out NSP accuracy (50% = coin flip): " +
                   " → ".join(f"step {s}: {a:.0%}" for s, a in nsp[:: max(1, len(nsp) // 6)] + nsp[-1:]))


def _fmt(p: pretraining.ProbePrediction, k: int = 3) -> str:
    return ", ".join(f"{t} ({q:.0%})" if q >= 0.005 else f"{t} (<1%)" for t, q in zip(p.tokens[:k], p.probs[:k]))


def probes_view(v: jobs.JobView) -> None:
    st.markdown(rv.lab_text("pretraining_probes"))
    snaps = [s for s in v.snapshots if s.probes]
    if not snaps:
        st.caption("The first predictions appear when training starts.")
        return
    first, last = snaps[0], snaps[-1]
    pick = last
    if len(snaps) > 2:  # scrub back in time; "latest" follows the run
        options = [s.step for s in snaps[1:-1]] + ["latest"]
        step = st.select_slider("Compare step 0 with", options, value="latest", key=f"pt_probe_step_{v.id}",
                                format_func=lambda o: f"latest (step {last.step})" if o == "latest" else f"step {o}")
        pick = last if step == "latest" else next(s for s in snaps if s.step == step)
    rows = [{"sentence": a.sentence, f"step {first.step}": _fmt(a), f"step {pick.step}": _fmt(b),
             "new top-1": "✓" if a.tokens[0] != b.tokens[0] else ""}
            for a, b in zip(first.probes, pick.probes)]
    if pick.step == first.step:
        rows = [{k: r[k] for k in ("sentence", f"step {first.step}")} for r in rows]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="pt_probe_table",
                 column_config={"sentence": st.column_config.TextColumn(width="large")})


def attention_view(v: jobs.JobView) -> None:
    st.markdown(rv.lab_text("pretraining_attention", sentence=md_escape(pretraining.ATTENTION_PROBE)))
    snaps = v.snapshots
    if not snaps:
        st.caption("The first attention snapshot appears when training starts.")
        return
    L, H = snaps[0].attentions.shape[:2]
    c1, c2 = st.columns(2)
    layer = c1.selectbox("Layer", range(L), format_func=layer_name, key="pt_att_layer")
    head = c2.selectbox("Head", range(H), format_func=head_name, key="pt_att_head")
    chosen = [snaps[i] for i in sorted({0, len(snaps) // 3, 2 * len(snaps) // 3, len(snaps) - 1})]
    tokens = snaps[0].tokens
    st.plotly_chart(figs.attention_snapshots([s.attentions[layer, head] for s in chosen], tokens,
                                             [s.step for s in chosen],
                                             f"{layer_name(layer).capitalize()}, {head_name(head)} over training"),
                    key="pt_att_chart")
    ent = np.stack([stats.head_entropy(s.attentions) for s in snaps])
    st.plotly_chart(figs.entropy_heatmap([s.step for s in snaps], ent, "Attention entropy of every head",
                                         max_bits=float(np.log2(len(tokens)))), key="pt_entropy_chart")


def results_view(v: jobs.JobView) -> None:
    if v.checkpoint is None or not v.checkpoint.is_dir():
        return
    st.success(rv.lab_text("pretraining_saved", step=v.step, keep=jobs.KEEP_RUNS))
    c1, c2 = st.columns(2)
    folder = v.checkpoint
    c1.download_button("Download the checkpoint (.zip)", data=lambda: jobs.zip_folder(folder),
                       file_name=f"bert-lab-run{v.id}.zip", mime="application/zip", key="pt_download",
                       icon=":material/download:", on_click="ignore")
    rv.use_it(v, "pt", c2, "Loads this checkpoint as the sidebar model (e.g. try it in the masked-word playground).")
    st.caption(f"Folder on the server: `{folder}`")


def render_run(job: jobs.Job, v: jobs.JobView) -> None:
    ev = pretraining.scored_evals(v)
    rv.metrics_row(v, ev, CARDS, ".2f", "Training loss, smoothed (nats).", "Seq/s",
                   "Training sequences per second, not counting the probes and evaluations.")
    if len(ev) > 1:  # a dip of a point or two is a handful of tokens: say so beside the numbers
        st.caption(notes.accuracy_note(ev, job.cfg.lr, notes.card_of_run((job.extra_config or {})["bert_lab_run"])))
    t1, t2, t3 = st.tabs([":material/show_chart: Loss & accuracy", ":material/quiz: Probe sentences",
                         ":material/visibility: Attention heads"])
    with t1:
        curves_view(v, ev)
    with t2:
        probes_view(v)
    with t3:
        attention_view(v)
    results_view(v)


# --- page -------------------------------------------------------------------------------------------------------
st.title("Pretraining lab")
st.markdown(rv.lab_text("pretraining_intro"))

lm = current_model()
owner = st.session_state.setdefault("pt_owner", uuid.uuid4().hex)
job: jobs.Job | None = st.session_state.get("pt_job")
view = job.view() if job else None

if job is None:
    st.subheader("Set up a run")
    setup_section(lm, view, owner)
    st.caption("Start a run; its loss curve, the probe sentences and the attention heads appear here.")
else:  # the run first, its settings below
    rv.live("pt", view, render_run)
    st.divider()
    st.subheader("Settings of this run (locked while it trains)" if view.active else "Set up the next run")
    setup_section(lm, view, owner)
