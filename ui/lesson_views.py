"""The guided lesson's live views: one function per step renders ``bert_core.lesson``'s numbers with the app's figure
builders, and says in words what they show (every claim built from the numbers). ``reveal`` states the real
answer to each step's question."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from bert_core import lesson
from ui import figures_attention as fa
from ui import figures_family as ff
from ui import figures_mlm as fm
from ui import figures_training as ft
from ui.text import PIECES_NOTE, explorer_link, has_pieces, head_label, md_line as md, pct

CHART = {"displayModeBar": False}  # no toolbar over the legends on a projector or phone
# On a phone the step's title takes less of the first screen (constant CSS, no user text).
PHONE_CSS = "<style>@media (max-width: 640px) { h2 { font-size: 1.45rem !important; } }</style>"


def chart(fig, key: str) -> None:
    st.plotly_chart(fig, key=key, config=CHART)


def pieces_note(tokens) -> None:
    """Explain '##' where BERT's top-k shows word pieces."""
    if has_pieces(tokens):
        st.caption(PIECES_NOTE)


def with_layers_from_1(fig):
    """A per-layer bar chart drawn at 0 … L-1, relabelled 1 … L (one numbering: layer 1 is the first)."""
    for tr in fig.data:
        tr.x = np.asarray(tr.x) + 1
    n = len(fig.data[0].x)
    fig.update_xaxes(tickvals=list(range(1, n + 1)))
    return fig


# --- one view per step ------------------------------------------------------------------------------------------
def attention(r: lesson.PronounHead, model: str | None = None) -> None:
    it, noun, top = md(r.tokens[r.query]), md(r.tokens[r.target]), md(r.tokens[r.top])
    head = head_label(r.layer, r.head)
    how = (f"more than to any other word of the sentence" if r.noun_is_top else
           f"but its top word here is **{top}** ({pct(r.row[r.top])}): no head of this model links them cleanly")
    st.markdown(f"Searching all heads of this model for the one where **{it}** looks hardest at **{noun}** finds "
                f"**{head}** (layer {r.layer + 1}, head {r.head + 1}). There **{it}** gives {pct(r.row[r.target])} "
                f"of its attention to **{noun}**, {how}.")
    fig = fa.token_bars(r.row, r.tokens, f"attention from '{r.tokens[r.query]}'", highlight=r.target, fmt=".2f")
    fig.update_layout(title=dict(text=f"{head}: where '{r.tokens[r.query]}' looks", x=0), margin=dict(t=40))
    chart(fig, "lesson_attention")
    url = explorer_link(lesson.PRONOUN_TEXT, r.layer, r.head, model)
    st.markdown(f"[Open {head} in the Attention explorer ↗]({url})")


def tokens(r: lesson.Tokens) -> None:
    seg = ["A" if s == 0 else "B" for s in r.segments]
    chips = " ".join(f":{'blue' if s == 'A' else 'orange'}-background[{md(t)}]" for t, s in zip(r.tokens, seg))
    st.markdown(chips)
    st.caption(f"Blue: segment A, orange: segment B. {len(r.tokens)} tokens; the pieces "
               f"{', '.join(r.continuations) or '(none)'} continue a word.")
    with st.expander("Each token's three lookups: piece id, position, segment"):
        st.dataframe(pd.DataFrame({"token": r.tokens, "piece id": [int(i) for i in r.input_ids],
                                   "position": range(len(r.tokens)), "segment": seg}), hide_index=True)


def bidirectional(r: lesson.NextHead) -> None:
    head = head_label(r.layer, r.head)
    st.markdown(f"**{head}** is this model's strongest 'look at the next token' head (the highest share of all "
                f"heads): on average a token there gives {pct(r.share)} of its attention to the token on its right.")
    chart(fa.attention_heatmap(r.attention, r.tokens, title=f"{head}: row = token, column = where it looks"),
          "lesson_next")
    if r.guesses:
        st.markdown("Same words before the blank, different words after it:")
        for text, g, c in zip(lesson.BIDI_TEXTS, r.guesses, st.columns(len(r.guesses))):
            with c:
                chart(fm.topk_bar([t for t, _ in g], [p for _, p in g], title=text), f"lesson_bidi_{text}")
        same = r.guesses[0][0][0] == r.guesses[1][0][0]
        st.caption("BERT's top guess " + ("stays the same here, but the probabilities move: the right side counts."
                                          if same else "changes with the words on the right: it reads both sides."))


def mlm(r: lesson.Masked | None) -> None:
    if r is None:
        st.info("This checkpoint has no MLM head, so it cannot guess words. Pick the bundled model in the sidebar.")
        return
    toks = [t for t, _ in r.top]
    chart(fm.topk_bar(toks, [p for _, p in r.top], title=f"BERT's top 10 for: {lesson.MLM_TEXT}"), "lesson_mlm")
    pieces_note(toks)


def nsp(r: lesson.Pair) -> None:
    st.markdown(f"A = *{md(lesson.NSP_A)}* B = *{md(lesson.NSP_NEXT)}* Per layer, how much attention crosses "
                f"between them (on average {pct(r.cross_share)} of sentence A's attention lands on B):")
    chart(with_layers_from_1(fa.cross_segment_chart(r.crossing)), "lesson_nsp")
    if r.p_next is not None:
        c1, c2 = st.columns(2)
        c1.metric(f"P(follows) for '{lesson.NSP_NEXT}'", pct(r.p_next[0]))
        c2.metric(f"P(follows) for '{lesson.NSP_RANDOM}'", pct(r.p_next[1]))
    else:
        st.caption("This checkpoint has no NSP head (only models pretrained with NSP, like bert-base-uncased, keep "
                   "one), so the chart shows the pair's attention instead.")


def finetune(r: lesson.TaskHead) -> None:
    c1, c2 = st.columns(2)
    c1.metric("new parameters in the task head", f"{r.head_params:,}")
    c2.metric("parameters in this BERT", f"{r.model_params:,}")
    st.markdown("An untrained 2-class head on each text's final [CLS] vector (random weights): the answers are "
                "close to 50/50 until fine-tuning trains it.")
    st.dataframe(pd.DataFrame({"text": lesson.FINETUNE_TEXTS, "class 1": [pct(p) for p in r.probs[:, 0]],
                               "class 2": [pct(p) for p in r.probs[:, 1]]}), hide_index=True)
    st.page_link("app_pages/finetune.py", label="Train such a head in the Fine-tuning lab", icon=":material/tune:")


def training(r: lesson.Schedule) -> None:
    fig = ft.lr_schedule(r.steps, r.lrs, r.warmup_steps, title="Warm-up, then linear decay (1,000 steps)")
    chart(fig, "lesson_lr")
    mb32, mb16 = r.params * 4 / 2**20, r.params * 2 / 2**20
    st.markdown(f"**Batch:** 32 sequences × 8 accumulation steps = an effective batch of 256.  \n"
                f"**Precision:** this model's {r.params / 1e6:.1f}M weights take {mb32:,.0f} MB in float32 and "
                f"{mb16:,.0f} MB in bf16.")


LEGEND_BELOW = dict(legend=dict(orientation="h", y=-0.28, yanchor="top", x=0, xanchor="left"),
                    margin=dict(t=10, b=10))  # a legend that cannot run into a title in a narrow column


def family(r: lesson.Distillation) -> None:
    if len(r.tokens):
        st.markdown(f"**This model as a teacher** for *{md(lesson.MLM_TEXT)}*: its top words at temperature 1 and "
                    f"{lesson.TEMPERATURE:g} (the soft targets a student copies)")
        chart(ff.soft_targets(r.tokens, r.hard, r.soft, lesson.TEMPERATURE).update_layout(**LEGEND_BELOW),
              "lesson_soft")
        pieces_note(r.tokens)
    st.markdown("**Parameters by part** (millions)")
    fig = ff.parameter_bars(r.names, r.breakdowns).update_layout(**LEGEND_BELOW)
    chart(fig.update_xaxes(title=None), "lesson_family")
    st.caption("Encoder sizes (embeddings, layers, pooler), as papers quote them; a checkpoint's task heads come on "
               "top (the bundled one's MLM head makes 22.7M into the 22.9M of Home: see BERT's family).")


def recap(_r=None) -> None:
    for page, title, icon in (("app_pages/attention.py", "Attention explorer: hunt for heads", ":material/grid_on:"),
                              ("app_pages/inside_bert.py", "Inside BERT: one layer with real numbers",
                               ":material/calculate:"),
                              ("app_pages/playground.py", "Masked-word playground and class game",
                               ":material/target:"),
                              ("app_pages/pretraining.py", "Pretraining lab", ":material/fitness_center:"),
                              ("app_pages/finetune.py", "Fine-tuning lab", ":material/tune:"),
                              ("app_pages/family.py", "BERT's family", ":material/account_tree:")):
        st.page_link(page, label=title, icon=icon)


def show(key: str, r, model: str) -> None:
    """Render step ``key``'s live view (``model`` names the checkpoint for links that open a fresh tab)."""
    if key == "attention":
        attention(r, model)
    else:
        VIEWS[key](r)


VIEWS = {"attention": attention, "tokens": tokens, "bidirectional": bidirectional, "mlm": mlm, "nsp": nsp,
         "finetune": finetune, "training": training, "family": family, "recap": recap}


def reveal(key: str, r) -> str:
    """The real answer, with its number, after the class committed."""
    if key == "attention":
        return (f"'{r.tokens[r.query]}' looks most at **{md(r.tokens[r.top])}** ({pct(r.row[r.top])}) in "
                f"{head_label(r.layer, r.head)}.")
    if key == "tokens":
        return f"**{r.n_a} tokens**: " + " ".join(f"`{t}`" for t in r.tokens[:r.n_a]) + "."
    if key == "bidirectional":
        return f"**{pct(r.share)}** of a token's attention goes to the next token in {head_label(r.layer, r.head)}."
    if key == "mlm":
        return f"BERT's top guess is **{md(r.top[0][0])}** with {pct(r.top[0][1])}."
    if key == "nsp":
        if r.p_next is not None:
            return f"P(follows): {pct(r.p_next[0])} for the true next sentence, {pct(r.p_next[1])} for the random one."
        return f"On average **{pct(r.cross_share)}** of sentence A's attention lands on sentence B."
    if key == "finetune":
        return f"**{r.head_params:,}** new numbers (2 × {r.cls_vectors.shape[1]} weights + 2 biases)."
    if key == "training":
        return f"At step {lesson.SCHEDULE_STEP} the learning rate is **{r.lr_at_question:.2g}** " \
               f"({r.lr_at_question / lesson.SCHEDULE.lr:.0%} of the peak): still warming up."
    if key == "family":
        size = {n: sum(b.values()) for n, b in zip(r.names, r.breakdowns)}
        ratio = size["distilbert-base-uncased"] / size["bert-base-uncased"]
        return (f"DistilBERT keeps **{r.question.options[r.question.answer]}** of the 12 layers: "
                f"{size['distilbert-base-uncased'] / 1e6:.0f}M parameters, {1 - ratio:.0%} fewer than BERT-base.")
    return "BERT never predicts the next word left to right: it sees both sides (that is GPT's task)."
