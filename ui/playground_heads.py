"""The playground's layer and head views: the logit lens and head knock-outs (with a most-important-heads ranking
that links each head to the Attention explorer). Layers and heads count from 1 on screen (``ui.text``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from bert_core import InputError, lens, mlm
from ui import figures_mlm as figs
from ui.playground_explore import pick_mask
from ui.state import model_key
from ui.text import explorer_link, head_label, layer_name, md_line as md, pct, signed_pct


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
                            format_func=lambda n: layer_name(n - 1))
    heads = c2.multiselect("Knock out single heads", [(l, h) for l in range(1, L + 1) for h in range(1, H + 1)],
                           key="pg_abl_heads", format_func=lambda t: head_label(t[0] - 1, t[1] - 1))
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
    rows = [{"head": head_label(l, h), f"P('{imp.target}') without it": pct(imp.p_target[l, h]),
             "change": signed_pct(-d), "relative change": f"{-d / imp.p_base:+.0%}" if imp.p_base else "",
             "KL (nats)": f"{k:.3f}" if k >= 0.001 else "<0.001", "see it": explorer_link(mi.text, l, h, lm.name)}
            for l, h, d, k in imp.ranking(10)]
    link = st.column_config.LinkColumn(display_text="attention ↗", help="Open this head in the Attention explorer")
    st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={"see it": link})


@st.cache_data(max_entries=64, show_spinner=False)
def _head_ranking(_lm, _mi: mlm.MaskedInput, model: str, ids: tuple, groups: tuple, mask: int) -> lens.HeadImportance:
    return lens.head_importance(_lm, _mi, mask)


def head_ranking(lm, mi: mlm.MaskedInput, mask: int) -> lens.HeadImportance:
    """One batched pass per layer; cached per model and input so other widgets don't recompute it."""
    return _head_ranking(lm, mi, model_key(lm), tuple(mi.encoded.input_ids.tolist()), mi.groups, mask)
