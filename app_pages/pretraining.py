"""Pretraining lab: train BERT with masked-language modelling live and watch loss, guesses and attention change.

Training runs in ``bert_core.jobs``' worker thread on a private copy of the model; this page only starts, polls
(``st.fragment(run_every=…)``), cancels and renders it.
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
from bert_core.training import lr_at
from ui import figures_training as figs
from ui.run_view import confirm_replace, run_header
from ui.state import current_model
from ui.text import md_escape

POLL_S = 1.5  # seconds between progress polls while a job is active
STEPS = [10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
BATCHES = [2, 4, 8, 16, 32, 64]
LRS = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3]
CORPUS_SIZES = {1000: "1,000 texts", 5000: "5,000 texts", 20000: "20,000 texts", 200000: "all (about 158,000)"}
SIZES = {"tiny": (2, 128, 2), "small": (4, 256, 4)}  # layers, hidden, heads of a from-scratch BERT
CONTINUE, SCRATCH = "continue", "scratch"
DEFAULT_LR = {CONTINUE: 1e-4, SCRATCH: 1e-3}
MODE_LABELS = {CONTINUE: "Continue MLM training of the sidebar's model", SCRATCH: "Pretrain a tiny BERT from scratch"}


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


def _on_mode() -> None:
    st.session_state["pt_lr"] = DEFAULT_LR.get(st.session_state.get("pt_mode"), DEFAULT_LR[CONTINUE])


def pct(x: float) -> str:
    return f"{x:.0%}" if x >= 0.1 else f"{x:.1%}"


# --- setup ------------------------------------------------------------------------------------------------------
DEFAULTS = {"pt_mode": CONTINUE, "pt_size": "tiny", "pt_steps": 200, "pt_batch": 16, "pt_seq": 64, "pt_warmup": 0.1,
            "pt_schedule": "linear", "pt_prob": 0.15, "pt_wwm": False, "pt_nsp": False, "pt_bf16": False,
            "pt_corpus": 5000}


def settings_from_state(lm) -> pretraining.LabSettings:
    """The lab settings from the widgets' session state (also read by the Start callback, at click time)."""
    g = lambda k: st.session_state.get(k, DEFAULTS.get(k))  # noqa: E731
    mode = g("pt_mode")
    c = lm.config
    layers, hidden, heads = (SIZES[g("pt_size") or "tiny"] if mode == SCRATCH
                             else (c.num_hidden_layers, c.hidden_size, c.num_attention_heads))
    return pretraining.LabSettings(mode=mode, steps=g("pt_steps"), batch_size=g("pt_batch"),
                            lr=st.session_state.get("pt_lr", DEFAULT_LR[mode]), warmup_ratio=g("pt_warmup"),
                            schedule=g("pt_schedule"), mlm_prob=g("pt_prob"), whole_word=g("pt_wwm"), nsp=g("pt_nsp"),
                            mixed_precision="bf16" if g("pt_bf16") else "no", seq_len=g("pt_seq"),
                            n_texts=g("pt_corpus"), scratch_layers=layers, scratch_hidden=hidden, scratch_heads=heads)


def settings_form(lm, locked: bool) -> tuple[pretraining.LabSettings, dict]:
    """The knobs; returns the settings and facts (parameter count, vocab) for the explanations."""
    for k, v in DEFAULTS.items():
        st.session_state.setdefault(k, v)
    st.session_state.setdefault("pt_lr", DEFAULT_LR[st.session_state["pt_mode"]])
    name = "the bundled model" if lm.name == "bundled" else f"'{lm.name}'"
    mode = st.radio("What to train", [CONTINUE, SCRATCH], key="pt_mode", on_change=_on_mode, disabled=locked,
                    horizontal=True,
                    format_func=MODE_LABELS.get)
    vocab = lm.config.vocab_size
    c = lm.config
    if mode == CONTINUE:
        params = lm.model.num_parameters()
        head = ("its own MLM head" if lm.has_mlm_head else
                "a **new, randomly initialised MLM head** (this checkpoint has none, so its first guesses are noise)")
        st.caption(f"A private copy of {md_escape(name)} — {c.num_hidden_layers} layers × {c.num_attention_heads} "
                   f"heads, hidden {c.hidden_size}, {params / 1e6:.1f}M parameters — trained further with {head}. "
                   "The model the other pages use is never changed. Pick another checkpoint in the sidebar.")
    else:
        st.segmented_control("Size", list(SIZES), key="pt_size", disabled=locked,
                             format_func=lambda k: "{} layers × {} heads, hidden {}".format(
                                 SIZES[k][0], SIZES[k][2], SIZES[k][1]))
        layers, hidden, heads = SIZES[st.session_state.get("pt_size") or "tiny"]
        params = scratch_parameters(vocab, layers, hidden, heads, bool(st.session_state.get("pt_nsp")))
        st.caption(f"A fresh BERT with random weights, {params / 1e6:.1f}M parameters, using the tokenizer of "
                   f"{md_escape(name)} ({vocab:,} wordpieces; the word-embedding table alone is "
                   f"{vocab * hidden / 1e6:.1f}M of the parameters). It knows nothing yet: watch it learn that "
                   "'the' and '.' are frequent, then grammar, then a little meaning.")

    c1, c2, c3 = st.columns(3)
    with c1:
        st.select_slider("Steps", STEPS, key="pt_steps", disabled=locked,
                         help="Optimizer updates. Capped at 5,000 (and 30 minutes) per run.")
        st.select_slider("Batch size (sequences per step)", BATCHES, key="pt_batch", disabled=locked)
        st.select_slider("Sequence length (tokens)", [32, 64, 128], key="pt_seq", disabled=locked,
                         help="Short texts are packed together, separated by [SEP], up to this length.")
    with c2:
        st.select_slider("Peak learning rate", LRS, key="pt_lr", disabled=locked, format_func=lambda v: f"{v:.0e}")
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
    s = settings_from_state(lm)
    params = params if mode == SCRATCH else lm.model.num_parameters()
    return s, {"params": params, "vocab": vocab}


def schedule_view(s: pretraining.LabSettings) -> None:
    cfg = s.train_config()
    steps = np.arange(cfg.max_steps)
    lrs = [lr_at(int(i), cfg) for i in steps]
    warm = max(1, int(cfg.warmup_ratio * cfg.max_steps)) if cfg.warmup_ratio > 0 else 0
    left, right = st.columns([3, 2])
    left.plotly_chart(figs.lr_schedule((steps + 1).tolist(), lrs, warm, "Learning-rate schedule of this run"),
                      key="pt_lr_chart")
    right.markdown(
        f"**Why warm up?** The run starts at a learning rate near 0 and climbs to {s.lr:.0e} over the first "
        f"{warm} steps, then {'stays there' if s.schedule == 'constant' else 'decays to 0 (' + s.schedule + ')'}. "
        "At the start Adam's running estimates of each weight's gradient size are still based on a handful of "
        "batches, and a fresh MLM head sends large, random gradients into the encoder: full-size steps then can "
        "undo what pretraining built. Warm-up waits until the estimates have settled; the final decay lets the "
        "weights settle into a minimum instead of bouncing around it.")


def explanations(s: pretraining.LabSettings, facts: dict) -> None:
    tokens = s.batch_size * s.seq_len
    masked = s.mlm_prob * tokens * 0.9  # [CLS]/[SEP]/padding are never masked
    chance = math.log(facts["vocab"])
    with st.expander("What these knobs do (with this model's numbers)", expanded=False):
        st.markdown(
            f"**Masked-language modelling (MLM).** Each step takes {s.batch_size} sequences of up to {s.seq_len} "
            f"tokens (≈{tokens:,} tokens) and picks {s.mlm_prob:.0%} of them — about {masked:.0f} tokens. Of "
            "those, 80% are replaced by [MASK], 10% by a random token and 10% are left as they are; the model must "
            "give the original token at every picked position. The random and unchanged 10% matter: at use time "
            "there is no [MASK] in normal text, so the model must build a good vector for *every* token, not only "
            f"for [MASK]. The loss is the cross-entropy of the right token among all {facts['vocab']:,} wordpieces: "
            f"guessing uniformly scores ln {facts['vocab']:,} ≈ {chance:.1f} nats, so a from-scratch model starts "
            "near there.")
        st.markdown(
            "**Whole-word masking** hides every piece of a word together. Without it BERT can often guess "
            "`##ing` from `play` next to it — an easy, useless task; hiding the whole word makes it use the context.")
        st.markdown(
            "**Next-sentence prediction (NSP).** The input becomes two sentences, A [SEP] B. Half the time B really "
            "followed A in the text, half the time it is a random sentence, and the [CLS] vector must tell which. "
            "The original BERT used it; RoBERTa later found that dropping it (and packing full sequences instead) "
            "works as well or better. Here pairs are made from texts with at least two sentences.")
        st.markdown(
            f"**Batch size.** One step averages the gradient over about {masked:.0f} masked tokens. A bigger batch "
            "gives a less noisy gradient (the loss curve gets smoother) but costs proportionally more time per step; "
            "with a bigger batch you can usually afford a larger learning rate. Gradient accumulation gets a big "
            "effective batch out of several small ones when memory is short.")
        bf = "has" if has_bf16_cpu() else "does not seem to have"
        st.markdown(
            "**Mixed precision (bf16).** Matrix products run in bfloat16 — 8 exponent bits like fp32 but only 8 "
            "mantissa bits — while the weights and the optimizer stay in fp32. That halves memory traffic and uses "
            "fast 16-bit units: a clear win on GPUs and on CPUs with AVX512-BF16 or AMX instructions "
            f"(this machine's CPU {bf} them), and little gain or even a slow-down on older CPUs. The loss is "
            "nearly the same as in fp32.")


# --- live view --------------------------------------------------------------------------------------------------
def metrics_row(v: jobs.JobView) -> None:
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric("Step", f"{v.step} / {v.max_steps}")
    losses = [e.loss for e in v.history]
    c2.metric("Loss", f"{figs.ema(losses)[-1]:.2f}" if losses else "–", help="Training loss, smoothed (nats).")
    ev = [(s, m) for s, m in v.evals if m.get("masked_tokens")]
    for col, k, name in ((c3, "top1", "Top-1"), (c4, "top5", "Top-5")):
        if ev:
            delta = f"{(ev[-1][1][k] - ev[0][1][k]) * 100:+.1f} pts" if len(ev) > 1 else None
            col.metric(name, pct(ev[-1][1][k]), delta=delta,
                       help=f"Held-out masked tokens guessed right ({name.lower()}); the change is since step 0.")
        else:
            col.metric(name, "–")
    c5.metric("Seq/s", f"{v.seq_per_s:.1f}" if v.seq_per_s else "–",
              help="Training sequences per second, not counting the probes and evaluations.")


def curves_view(v: jobs.JobView) -> None:
    st.markdown("The **loss** is how surprised the model is by the hidden tokens (cross-entropy, in nats; lower is "
                "better). The thin line is each step's batch: it jumps because every batch has different texts and "
                "different masked tokens; the thick line smooths it. The dotted line is the loss on held-out texts "
                "the model never trains on — if it stops falling while the training loss keeps going down, the model "
                "is memorising. **Accuracy** is the share of hidden held-out tokens whose right answer is the "
                "model's first guess (top-1) or among its five best (top-5).")
    steps = [e.step for e in v.history]
    losses = [e.loss for e in v.history]
    ev = [(s, m) for s, m in v.evals if m.get("masked_tokens")]
    c1, c2 = st.columns(2)
    c1.plotly_chart(figs.loss_curve(steps, losses, [s for s, _ in ev], [m["eval_loss"] for _, m in ev], "Loss"),
                    key="pt_loss_chart")
    c2.plotly_chart(figs.accuracy_curve([s for s, _ in ev], [m["top1"] for _, m in ev], [m["top5"] for _, m in ev],
                                        "Held-out masked-token accuracy"), key="pt_acc_chart")
    nsp = [(s, m["nsp_accuracy"]) for s, m in v.evals if "nsp_accuracy" in m]
    if nsp:
        st.caption("Held-out NSP accuracy (50% = coin flip): " +
                   " → ".join(f"step {s}: {a:.0%}" for s, a in nsp[:: max(1, len(nsp) // 6)] + nsp[-1:]))


def _fmt(p: jobs.ProbePrediction, k: int = 3) -> str:
    return ", ".join(f"{t} ({q:.0%})" if q >= 0.005 else f"{t} (<1%)" for t, q in zip(p.tokens[:k], p.probs[:k]))


def probes_view(v: jobs.JobView) -> None:
    st.markdown("Everyday sentences the model never trains on, with one word hidden. Every few steps the worker "
                "asks the model being trained for its three favourite words. A from-scratch model first answers "
                "with the most frequent tokens ('the', '.', ',') everywhere; context-specific answers come later.")
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
    snaps = [s for s in v.snapshots if s.attentions is not None]
    st.markdown("How the attention of one head on the fixed sentence "
                f"*“{md_escape(jobs.ATTENTION_PROBE)}”* changes "
                "while training (row = the token that looks, column = the token it looks at). A fresh head spreads "
                "its attention almost evenly; training makes heads specialise — on the next or previous token, "
                "on [SEP], on related words. The heat map below follows every head's **entropy**: how spread out its "
                "attention is (log₂ T bits = perfectly even, 0 = on a single token); falling entropy means the head "
                "is becoming focused.")
    if not snaps:
        st.caption("The first attention snapshot appears when training starts.")
        return
    L, H = snaps[0].attentions.shape[:2]
    c1, c2 = st.columns(2)
    layer = c1.selectbox("Layer", range(L), format_func=lambda i: f"layer {i + 1}", key="pt_att_layer")
    head = c2.selectbox("Head", range(H), format_func=lambda i: f"head {i + 1}", key="pt_att_head")
    idx = sorted({0, len(snaps) // 3, 2 * len(snaps) // 3, len(snaps) - 1})
    chosen = [snaps[i] for i in idx]
    st.plotly_chart(figs.attention_snapshots([s.attentions[layer, head] for s in chosen], v.probe_tokens,
                                             [s.step for s in chosen],
                                             f"Layer {layer + 1}, head {head + 1} over training"), key="pt_att_chart")
    ent = np.stack([stats.head_entropy(s.attentions) for s in snaps])
    st.plotly_chart(figs.entropy_heatmap([s.step for s in snaps], ent, "Attention entropy of every head",
                                         max_bits=float(np.log2(len(v.probe_tokens)))),
                    key="pt_entropy_chart")


def results_view(v: jobs.JobView) -> None:
    if v.checkpoint is None or not v.checkpoint.is_dir():
        return
    st.success(f"Checkpoint saved (step {v.step}): a normal Hugging Face folder that `load_model(folder)` and "
               "`transformers` both read. It is kept on this server until you start a new run "
               f"(the server keeps the {jobs.KEEP_RUNS} newest runs of all users).")
    c1, c2 = st.columns(2)
    folder = v.checkpoint
    c1.download_button("Download the checkpoint (.zip)", data=lambda: jobs.zip_folder(folder),
                       file_name=f"bert-lab-run{v.id}.zip", mime="application/zip", key="pt_download",
                       icon=":material/download:", on_click="ignore")
    if c2.button("Use it in the other pages", key="pt_use", icon=":material/open_in_new:",
                 help="Loads this checkpoint as the sidebar model (e.g. try it in the masked-word playground)."):
        st.session_state["model_name"] = str(folder)
        st.rerun()
    st.caption(f"Folder on the server: `{folder}`")


def live_view() -> None:
    found = run_header("pt")
    if found is None:
        return
    job, v = found
    metrics_row(v)
    t1, t2, t3 = st.tabs([":material/show_chart: Loss & accuracy", ":material/quiz: Probe sentences",
                         ":material/visibility: Attention heads"])
    with t1:
        curves_view(v)
    with t2:
        probes_view(v)
    with t3:
        attention_view(v)
    results_view(v)


def start_run(lm, owner: str) -> None:
    """Button callback: runs before the page script (so the page already draws the run as started) and reads the
    settings from the widgets' state at click time."""
    try:
        new = pretraining.lab_job(lm, settings_from_state(lm), owner=owner)
    except FileNotFoundError as e:  # the Debian corpus packages are missing
        st.session_state["pt_error"] = str(e)
        return
    old = st.session_state.get("pt_job")
    if old is not None:
        old.discard()
    st.session_state["pt_job"] = jobs.RUNNER.submit(new)


def setup_section(lm, job: jobs.Job | None, view: jobs.JobView | None, owner: str) -> None:
    locked = view is not None and view.active
    settings, facts = settings_form(lm, locked)
    schedule_view(settings)
    explanations(settings, facts)
    other = jobs.RUNNER.running()
    if other is not None and other is not job:
        st.caption(f"Another training is running on this server now ({md_escape(other.title)}, step "
                   f"{other.view().step} of {other.cfg.max_steps}); a new run waits until it ends.")
    confirmed = confirm_replace(view, "pt", "and its checkpoint")
    st.button("Start training", type="primary", icon=":material/play_arrow:", disabled=locked or not confirmed,
              key="pt_start", on_click=start_run, args=(lm, owner))
    if "pt_error" in st.session_state:
        st.error(st.session_state.pop("pt_error"))


# --- page -------------------------------------------------------------------------------------------------------
st.title("Pretraining lab")
st.markdown("BERT learned language by a fill-in-the-blanks game: hide some words, guess them, nudge every weight "
            "to make the right word a little more likely, repeat millions of times. Here you run that game yourself "
            "on a small corpus — WordNet definitions and fortune-cookie texts, which ship with Debian — and "
            "watch the loss fall, the guesses on probe sentences improve and the attention heads change. One "
            "training runs on this server at a time; it stops by itself if you leave this page.")

lm = current_model()
owner = st.session_state.setdefault("pt_owner", uuid.uuid4().hex)
job: jobs.Job | None = st.session_state.get("pt_job")
view = job.view() if job else None
locked = view is not None and view.active

if job is None:
    st.subheader("Set up a run")
    setup_section(lm, job, view, owner)
    st.caption("Start a run; its loss curve, the probe sentences and the attention heads appear here.")
else:  # the run first, its settings below
    polling = view is not None and view.active
    if polling:
        st.session_state["pt_polling"] = job.id

    @st.fragment(run_every=POLL_S if polling else None)
    def _live() -> None:
        live_view()

    _live()
    st.divider()
    st.subheader("Settings of this run (locked while it trains)" if locked else "Set up the next run")
    setup_section(lm, job, view, owner)
