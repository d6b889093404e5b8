"""The "Why?" panel: three attribution methods side by side over the sentence, with their rank agreement.

    from ui.why_panel import why_panel
    why_panel(lm, "Paris is the capital of [MASK].", "france")          # a [MASK] guess
    why_panel(lm, "what a lovely day", "positive")                       # a fine-tuned classifier's class
    why_panel(lm, "The [MASK] sat on the [MASK].", None, which_mask=1)   # BERT's top guess at the second mask

Any page can call it; it renders into the current container and returns the attributions (None on bad input).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from bert_core import InputError, LoadedModel, MissingHeadError
from bert_core.explain import BASELINE, IG_STEPS, METHODS, TokenAttribution, compared_tokens, explain_all, rank_agreement
from ui import figures_explain
from ui.state import model_key
from ui.text import md_escape

EXPLANATION = (
    "**Integrated gradients** walks in small steps from a *baseline* (" + BASELINE + ") to your sentence and adds "
    "up how much each word's embedding moved the target on the way; its scores add up exactly to the change in "
    "the target (the check below). **Gradient × input** looks only at the sentence itself: how steeply the target "
    "would change if a word's embedding were scaled a little. It is quick but local, so saturated words can score "
    "near zero. **Attention rollout** multiplies the attention maps of all layers (with the residual path mixed "
    "in) and says where the target token's vector could have drawn information from; it never looks at the "
    "target word at all. They disagree because they answer different questions: *what changed the answer* "
    "(integrated gradients), *what it is sensitive to right here* (gradient × input) and *where information "
    "flowed* (rollout). A high attention weight is not the same as importance: attention is not explanation.")


MAX_TOKENS = 128  # wordpieces explained: integrated gradients costs IG_STEPS forward and backward passes


@st.cache_resource(show_spinner=False, max_entries=32, ttl=1800)
def _explain(_lm: LoadedModel, key: str, text: str, target, text_pair: str | None,
             which_mask: int) -> dict[str, TokenAttribution]:
    return explain_all(_lm, text, target, text_pair, max_tokens=MAX_TOKENS, which_mask=which_mask)


def _lm_cut(lm: LoadedModel, text: str, text_pair: str | None) -> bool:
    return lm.tokenize(text, text_pair).n_original > MAX_TOKENS


def agreement_table(attrs: dict[str, TokenAttribution]) -> pd.DataFrame:
    """Spearman ρ of |score| between the methods, as a labelled table."""
    names = [METHODS[m] for m in attrs]
    return pd.DataFrame(rank_agreement(attrs).round(2), index=names, columns=names)


def why_panel(lm: LoadedModel, text: str, target=None, text_pair: str | None = None, key: str = "why",
              which_mask: int = 0) -> dict[str, TokenAttribution] | None:
    """Explain ``target`` (a word at a [MASK], or a class; None: the top guess / predicted class) for ``text``
    with all three methods. which_mask: 0 = the first [MASK], 1 = the second, …"""
    try:
        with st.spinner(f"Explaining: integrated gradients runs the model {IG_STEPS} times…"):
            attrs = _explain(lm, model_key(lm), text, target, text_pair, which_mask)
    except (InputError, MissingHeadError) as e:
        st.info(str(e), icon=":material/help:")
        return None
    ig = attrs["ig"]
    if len(ig.tokens) == MAX_TOKENS and _lm_cut(lm, text, text_pair):
        st.caption(f"Only the first {MAX_TOKENS} wordpieces are explained: integrated gradients runs the model "
                   f"{ig.n_steps} times, forwards and backwards.")
    st.markdown(f"Why **{md_escape(ig.target.label)}**? Each bar is one token's share in "
                f"{md_escape(ig.target.describe())} = {ig.target_value:.3f}. Blue pushed the answer up, red "
                "pushed it down" + (", grey is the [MASK] itself." if ig.target.kind == "mask" else "."))
    st.plotly_chart(figures_explain.attribution_figure(attrs), key=f"{key}_bars")
    left, right = st.columns([1.3, 1])
    with left:
        st.markdown("**Do they agree?** Spearman rank correlation of the scores' sizes over the "
                    f"{len(compared_tokens(ig))} word pieces (1 = same order, 0 = unrelated).")
        st.dataframe(agreement_table(attrs), width="stretch")
    with right:
        st.markdown("**Integrated gradients adds up** (completeness)")
        total, diff = float(np.sum(ig.scores)), ig.target_value - ig.baseline_value
        st.dataframe(pd.DataFrame({"value": [ig.target_value, ig.baseline_value, diff, total, ig.delta]},
                                  index=["f(your sentence)", "f(baseline)", "difference", "sum of IG scores",
                                         "captum's convergence delta"]).round(4), width="stretch")
    st.markdown(EXPLANATION)
    return attrs
