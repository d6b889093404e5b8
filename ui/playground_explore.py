"""The playground's "Explore a sentence" tab: hide words, then BERT's guesses, the logit lens and head knock-outs.

Each view reads its widgets, calls ``bert_core.mlm`` / ``bert_core.lens`` and renders; nothing is computed here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from bert_core import InputError, lens, mlm
from ui import figures_mlm as figs
from ui.state import model_key
from ui.text import md_line as md
from ui.text import pct, signed_pct

MAX_WORD_PILLS = 60  # words offered for whole-word masking
MAX_JOINT_MASKS = 40  # joint fill runs one forward pass per mask
VIEWS = ("Predictions", "Logit lens: layer by layer", "Knock out heads")


def filled_markdown(mi: mlm.MaskedInput, tokens: list[str], color: str) -> str:
    """The sentence with the filled-in words highlighted."""
    return "".join(f":{color}-background[**{md(t)}**]" if filled else md(t)
                   for t, filled in mlm.render_segments(mi, tokens))


def read_sentence(lm) -> mlm.MaskedInput | None:
    """The sentence box and the word picker -> a MaskedInput, or None after showing a hint."""
    text = st.text_area("Sentence (write [MASK] where BERT should guess a word)", key="pg_text", height=80,
                        max_chars=20000)
    try:
        ws = mlm.words(lm, text)
    except InputError as e:
        st.info(str(e), icon=":material/edit:")
        return None
    hidden = []
    if ws:
        shown = ws[:MAX_WORD_PILLS]
        key = f"pg_hide_{abs(hash(text)) % 10**9}"  # a new sentence starts with a fresh selection
        hidden = st.pills("…or click words to hide them (all of a word's pieces are masked together)",
                          [w.index for w in shown], format_func=lambda i: next(w.text for w in shown if w.index == i),
                          selection_mode="multi", key=key) or []
        if len(ws) > MAX_WORD_PILLS:
            st.caption(f"Showing the first {MAX_WORD_PILLS} of {len(ws)} words.")
    try:
        mi = mlm.mask_words(lm, text, hidden)
    except InputError as e:  # NoMaskError is a hint, the rest something to fix in the text
        st.info(str(e), icon=":material/lightbulb:" if isinstance(e, mlm.NoMaskError) else ":material/edit:")
        return None
    if mi.truncated:
        cut = (f" {mi.n_cut} [MASK]{'s' if mi.n_cut > 1 else ''} after the cut {'are' if mi.n_cut > 1 else 'is'} "
               "ignored.") if mi.n_cut else ""
        st.warning(f"Your text is {mi.encoded.n_original} tokens long; BERT reads only the first "
                   f"{len(mi.encoded.tokens)}, so the rest was cut.{cut}", icon=":material/content_cut:")
    if mi.hidden_words:
        orig = dict(mi.original_tokens)
        groups = [g for g in mi.groups if g[0] in orig]  # the hidden words' groups, left to right like hidden_words
        st.caption("Hidden: " + ", ".join(
            f"**{md(w)}**" + (f" ({len(g)} pieces: {md(' '.join(orig[p] for p in g))})" if len(g) > 1 else "")
            for w, g in zip(mi.hidden_words, groups)))
    return mi


def mask_label(mi: mlm.MaskedInput, i: int) -> str:
    """'mask 2 (the ___ and)': the mask's number and its neighbours, to tell masks apart."""
    toks, special = mi.encoded.tokens, mi.encoded.special
    p = int(mi.positions[i])
    before = next((toks[j] for j in range(p - 1, -1, -1) if not special[j] and toks[j] != "[MASK]"), "")
    after = next((toks[j] for j in range(p + 1, len(toks)) if not special[j] and toks[j] != "[MASK]"), "")
    return f"mask {i + 1} ({before} ___ {after})".replace("( ", "(").replace(" )", ")")


def pick_mask(mi: mlm.MaskedInput, key: str, label: str = "Mask", where=st) -> int:
    """A selectbox of the masks when there are several; 0 for one mask."""
    n = len(mi.positions)
    return where.selectbox(label, range(n), format_func=lambda k: mask_label(mi, k), key=key) if n > 1 else 0


# --- predictions ----------------------------------------------------------------------------------------------------
def top_k_view(lm, mi: mlm.MaskedInput) -> tuple[mlm.Prediction, int]:
    """BERT's top words at one mask as a bar chart; returns the prediction and the charted mask."""
    chart, side = st.columns([3, 2], gap="large")
    with side:
        st.markdown("BERT reads the whole sentence at once and gives every word in its vocabulary a probability for "
                    "each [MASK]. The bars are its favourite words. BERT never sees what was there: a word it ranks "
                    "highly *fits the context*, even if it is not the word you had in mind.")
        top_k = st.slider("How many of BERT's guesses to show", 3, 30, 10, key="pg_topk")
        i = pick_mask(mi, "pg_pred_mask", "Chart for")
    pred = mlm.predict(lm, mi, top_k)
    original = dict(mi.original_tokens).get(int(mi.positions[i]))  # the hidden word's piece: green
    with chart:
        st.plotly_chart(figs.topk_bar(pred.top_tokens[i], pred.top_probs[i], f"Top {top_k} for {mask_label(mi, i)}",
                                      {original: figs.ANSWER} if original else {}), key="pg_topk_chart")
        if original in pred.top_tokens[i]:
            st.caption(f"Green: the word that was there ('{md(original)}'), if it is among the bars.")
    return pred, i


def fills_view(lm, mi: mlm.MaskedInput, pred: mlm.Prediction) -> None:
    """Several masks: the independent fill, the joint fill and each mask's top 3."""
    M = len(mi.positions)
    st.subheader("Several masks: two ways to fill them")
    if M >= 8:
        st.info(f"{M} masks: with so many words hidden, BERT has little context left and its guesses get vague.",
                icon=":material/info:")
    ind = mlm.independent_fill(lm, mi, pred)
    st.markdown("**Independent** — each [MASK] takes its own top word from one pass; the masks never see each "
                "other's choices, so the result can be ungrammatical:")
    st.markdown("> " + filled_markdown(mi, ind.tokens, "blue"))
    if M <= MAX_JOINT_MASKS:
        joint = mlm.joint_fill(lm, mi)
        st.markdown("**Joint (the sentence BERT would write)** — fill the mask BERT is surest about, run BERT "
                    "again with that word written in, and repeat, most confident first:")
        st.markdown("> " + filled_markdown(mi, joint.tokens, "green"))
        st.caption("Fill order: " + " → ".join(f"{md(joint.tokens[k])} ({pct(joint.probs[k])})" for k in joint.order))
    else:
        st.caption(f"The joint fill runs BERT once per mask; it is skipped above {MAX_JOINT_MASKS} masks.")
    rows = [{"mask": mask_label(mi, k), **{f"#{j + 1}": f"{t} ({pct(p)})" for j, (t, p) in enumerate(pred.top(k)[:3])}}
            for k in range(M)]
    st.dataframe(pd.DataFrame(rows), hide_index=True)


def candidates_view(lm, mi: mlm.MaskedInput) -> None:
    """Words the student types, scored by BERT in one slot."""
    st.subheader("Your candidates")
    st.caption("Type words you think fit; BERT scores each one in the chosen slot. A word BERT splits into several "
               "pieces is scored piece by piece, left to right: the slot gets one [MASK] per piece and "
               "P(word) = P(piece 1) × P(piece 2 | piece 1) × … Its rank is how many single vocabulary tokens BERT "
               "likes more (approximate for multi-piece words).")
    c1, c2 = st.columns([3, 1])
    typed = c1.text_input("Candidate words, separated by commas", key="pg_cands", placeholder="e.g. mat, sofa, moon")
    g = 0
    if len(mi.groups) > 1:
        g = c2.selectbox("Slot", range(len(mi.groups)), key="pg_cand_slot",
                         format_func=lambda k: mask_label(mi, sum(len(x) for x in mi.groups[:k])))
    cands = list(dict.fromkeys(w.strip() for w in typed.split(",") if w.strip()))[:20]
    if not cands:
        return
    scores = mlm.score_candidates(lm, mi, cands, g)
    for s in scores:
        if s.error:
            st.warning(md(s.error))
    good = [s for s in scores if not s.error]
    if good:
        st.plotly_chart(figs.candidates_bar([s.word for s in good], [s.prob for s in good], [s.rank for s in good],
                                            [s.pieces for s in good]), key="pg_cand_chart")


def predictions_view(lm, mi: mlm.MaskedInput) -> None:
    pred, _charted = top_k_view(lm, mi)
    # (a "Why?" panel explaining the charted mask's prediction belongs here, under its chart)
    if len(mi.positions) > 1:
        fills_view(lm, mi, pred)
    candidates_view(lm, mi)


# --- layers and heads -----------------------------------------------------------------------------------------------
def logit_lens_view(lm, mi: mlm.MaskedInput) -> None:
    st.markdown("BERT builds its answer layer by layer. The **logit lens** applies the final prediction head to the "
                "vector at the [MASK] after *every* layer, as if BERT had to answer early. Watch when its final "
                "answer climbs to rank 1: early layers mostly know about the word's position and neighbours, the "
                "meaning usually arrives in the upper layers.")
    c1, c2 = st.columns([1, 2])
    i = pick_mask(mi, "pg_lens_mask", where=c1)
    guess = c2.text_input("Also follow this word", key="pg_lens_word", placeholder="e.g. dog").strip()
    if guess:
        try:
            mlm.word_pieces(lm, guess)
        except InputError as e:
            st.warning(md(e))
    ll = lens.logit_lens(lm, mi, i, [guess] if guess else [])
    st.plotly_chart(figs.logit_lens_figure(ll.layers, ll.tracked, ll.top_tokens, ll.top_probs), key="pg_lens_chart")


def read_head_mask(L: int, H: int) -> np.ndarray:
    """The knock-out pickers -> head_mask (L, H): 1 = keep, 0 = knocked out. Layers and heads count from 1."""
    c1, c2 = st.columns(2)
    layers = c1.multiselect("Knock out whole layers (all their heads)", list(range(1, L + 1)), key="pg_abl_layers",
                            format_func=lambda n: f"layer {n}")
    heads = c2.multiselect("Knock out single heads", [(l, h) for l in range(1, L + 1) for h in range(1, H + 1)],
                           key="pg_abl_heads", format_func=lambda t: f"L{t[0]}·H{t[1]}")
    hm = np.ones((L, H), dtype=np.float32)
    for n in layers:
        hm[n - 1] = 0
    for l, h in heads:
        hm[l - 1, h - 1] = 0
    return hm


def ablation_view(lm, mi: mlm.MaskedInput) -> None:
    st.markdown("Each layer has several attention heads. Knock some out (their output is set to zero) and see "
                "whether BERT still finds its word. **KL** measures how far the whole probability distribution "
                "moved (0 = not at all). Below, every head is knocked out on its own to find the heads this "
                "prediction leans on most.")
    i = pick_mask(mi, "pg_abl_mask")
    hm = read_head_mask(lm.config.num_hidden_layers, lm.config.num_attention_heads)
    ab = lens.ablate(lm, mi, hm, i)
    if hm.all():
        st.caption("Nothing knocked out yet: pick layers or heads above.")
    else:
        m1, m2, m3 = st.columns(3)
        m1.metric(f"P('{md(ab.target)}') with all heads", pct(ab.p_before))
        m2.metric(f"P('{md(ab.target)}') knocked out", pct(ab.p_after), delta=signed_pct(ab.p_after - ab.p_before))
        m3.metric("KL(before ‖ after)", f"{ab.kl:.3f} nats")
        top = np.argsort(-ab.before)[:8].tolist()
        top += [j for j in np.argsort(-ab.after)[:3].tolist() if j not in top]
        st.plotly_chart(figs.ablation_bars(mlm.token_strings(lm, top), ab.before[top], ab.after[top],
                                           "BERT's top words before and after"), key="pg_abl_chart")
    imp = head_ranking(lm, mi, i)
    st.subheader(f"Most important heads for '{md(imp.target)}'")
    st.plotly_chart(figs.head_importance_heatmap(imp.drop, imp.target), key="pg_abl_heatmap")
    st.caption(f"Red: BERT needs the head ('{md(imp.target)}' loses probability without it); blue: the word gets "
               f"*more* likely without it. With all heads P('{md(imp.target)}') = {pct(imp.p_base)}.")
    rows = [{"head": f"L{l + 1}·H{h + 1}", f"P('{imp.target}') without it": pct(imp.p_target[l, h]),
             "change": signed_pct(-d), "relative change": f"{-d / imp.p_base:+.0%}" if imp.p_base else "",
             "KL (nats)": f"{k:.3g}"} for l, h, d, k in imp.ranking(10)]
    st.dataframe(pd.DataFrame(rows), hide_index=True)


@st.cache_data(max_entries=64, show_spinner=False)
def _head_ranking(_lm, _mi: mlm.MaskedInput, model: str, ids: tuple, groups: tuple, mask: int) -> lens.HeadImportance:
    return lens.head_importance(_lm, _mi, mask)


def head_ranking(lm, mi: mlm.MaskedInput, mask: int) -> lens.HeadImportance:
    """One batched pass per layer; cached per model and input so other widgets don't recompute it."""
    return _head_ranking(lm, mi, model_key(lm), tuple(mi.encoded.input_ids.tolist()), mi.groups, mask)


def explore_tab(lm) -> None:
    st.session_state.setdefault("pg_text", "The cat sat on the [MASK].")
    mi = read_sentence(lm)
    if mi is None:
        return
    pred_t, lens_t, abl_t = st.tabs(list(VIEWS), key="pg_view", on_change="rerun")
    if pred_t.open is not False:  # the first tab: open before any click
        with pred_t:
            predictions_view(lm, mi)
    if lens_t.open:
        with lens_t:
            logit_lens_view(lm, mi)
    if abl_t.open:
        with abl_t:
            ablation_view(lm, mi)
