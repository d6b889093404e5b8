"""The attention explorer's "One head" tab: one head's map with its numbers, and the same head of a second model
side by side (e.g. the base model and a fine-tuned copy the user kept with the labs' "use it").

The second model comes from the app's own model list: the bundled model and every checkpoint this session has
loaded (``ui.state.models_used``). It is loaded through the shared read-only cache, like the sidebar's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from bert_core import BUNDLED, InputError, LoadedModel, ModelLoadError
from bert_core.stats import STATISTICS, head_statistics
from ui import figures_attention as figures
from ui.state import BUNDLED_LABEL, DEVICE_KEY, DTYPE_KEY, cached_model, inspect_text, models_used
from ui.text import head_label, md_escape

NONE = ""  # the "compare with" choice that shows one model


@dataclass(frozen=True)
class View:
    """What the tab draws: the page's sentence, head and token mask."""

    lm: LoadedModel
    ins: object  # bert_core Inspection of the sentence on lm
    text_a: str
    text_b: str | None
    layer: int
    head: int
    title: str
    keep: np.ndarray | None


def model_label(name: str) -> str:
    """A model's name as the picker shows it (a run folder by its last two parts)."""
    if name == BUNDLED:
        return BUNDLED_LABEL
    parts = name.replace("\\", "/").rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) > 2 else name


def candidates(current: str) -> list[str]:
    """Models to compare with: the bundled one and every model this session loaded, except the current one."""
    return [n for n in dict.fromkeys([BUNDLED, *models_used()]) if n != current]


def heatmap(container, v: View, a: np.ndarray, tokens, title: str, key: str, zmax: float | None = None) -> None:
    container.plotly_chart(figures.attention_heatmap(a, tokens, title, keep=v.keep, zmax=zmax), key=key,
                           config=heatmap_config(v))


def heatmap_config(v: View) -> dict:
    """Three toolbar buttons (PNG, zoom, reset), not plotly's row of ten: on a phone that row covered the title."""
    return {"modeBarButtons": [["toImage", "zoom2d", "resetScale2d"]], "displaylogo": False,
            "toImageButtonOptions": {"filename": f"attention_L{v.layer + 1}_H{v.head + 1}"}}


def stats_table(values: dict[str, float], key: str) -> None:
    """One head's statistics as a two-column table with no index column (it stays narrow on a phone)."""
    st.dataframe(pd.DataFrame({"statistic": [STATISTICS[s][0] for s in values],
                               "value": [round(float(x), 3) for x in values.values()]}),
                 hide_index=True, width="stretch", key=key,
                 column_config={"value": st.column_config.NumberColumn(width="small", format="%.3f")})


def head_panel(v: View) -> None:
    """The selected head's strongest link, statistics and CSV (over the tokens the map shows)."""
    tokens, a = v.ins.tokens, v.ins.attentions[v.layer, v.head]
    st.markdown(f"**{v.title}**")
    st.markdown("Read a **row**: the token on the left is the query; the darker a cell, the more of the "
                "column's token it takes in. Hover or tap a cell for *query → key : weight*.")
    q, k, w = figures.strongest_link(a, v.keep)
    among = " among the tokens shown" if v.keep is not None else ""
    st.markdown(f"Strongest single link{among}: **{md_escape(tokens[q])}** (#{q}) → **{md_escape(tokens[k])}** "
                f"(#{k}), weight {w:.2f}.")
    stats = head_statistics(v.ins.attentions[v.layer:v.layer + 1, v.head:v.head + 1], tokens)
    stats_table({s: stats[s][0, 0] for s in STATISTICS}, "att_head_stats")
    st.download_button("Attention matrix (CSV)", figures.attention_table(a, tokens).to_csv(),
                       file_name=f"attention_layer{v.layer + 1}_head{v.head + 1}.csv", mime="text/csv",
                       key="att_csv", width="stretch", icon=":material/download:")
    st.caption("PNG: use the camera icon in the chart's toolbar.")


def other_model(name: str) -> LoadedModel | None:
    """The model to compare with, from the shared cache (the sidebar's device and precision); None with a message."""
    try:
        with st.spinner(f"Loading {model_label(name)} …"):
            return cached_model(name, st.session_state.get(DEVICE_KEY, "auto"), st.session_state.get(DTYPE_KEY, "fp32"))
    except ModelLoadError as e:
        st.info(f"Could not load {md_escape(model_label(name))}: {md_escape(e)}", icon=":material/warning:")
        return None


def compare(v: View, name: str) -> None:
    """The same head of the current model and of ``name`` on the same sentence, on one colour scale."""
    other = other_model(name)
    if other is None:
        return
    L, H = other.config.num_hidden_layers, other.config.num_attention_heads
    if v.layer >= L or v.head >= H:
        st.info(f"{md_escape(model_label(name))} has {L} layers × {H} heads: it has no {head_label(v.layer, v.head)}.",
                icon=":material/info:")
        return
    try:
        ins2 = inspect_text(other, v.text_a, v.text_b)
    except InputError as e:
        st.info(str(e), icon=":material/edit:")
        return
    if list(ins2.tokens) != list(v.ins.tokens):
        st.info(f"{md_escape(model_label(name))} splits this sentence into different wordpieces, so its map "
                "cannot be laid over this one cell by cell. Pick a model with the same tokenizer (a fine-tuned "
                "copy of this model has it).", icon=":material/info:")
        return
    a1, a2 = v.ins.attentions[v.layer, v.head], ins2.attentions[v.layer, v.head]
    shown = np.ones(len(a1), bool) if v.keep is None else v.keep
    m = np.ix_(shown, shown)
    zmax = float(max(a1[m].max(), a2[m].max(), 1e-6))
    label = head_label(v.layer, v.head)
    st.markdown(f"**{label} of two models on the same sentence** (one colour scale). Where the maps differ, "
                "training changed what this head looks at; heads that stay the same kept their pretrained job.")
    c1, c2 = st.columns(2)
    heatmap(c1, v, a1, v.ins.tokens, f"{model_label(v.lm.name)}: {label}", "att_heatmap", zmax)
    heatmap(c2, v, a2, ins2.tokens, f"{model_label(name)}: {label}", "att_compare_heatmap", zmax)
    diff = np.abs(a1 - a2)[m]
    qi, ki = np.unravel_index(int(np.argmax(diff)), diff.shape)
    q, k = np.flatnonzero(shown)[qi], np.flatnonzero(shown)[ki]
    st.caption(f"Largest difference: {float(diff.max()):.3f} at {md_escape(v.ins.tokens[q])} (#{q}) → "
               f"{md_escape(v.ins.tokens[k])} (#{k}); mean difference per cell {float(diff.mean()):.3f}.")


def head_tab(v: View) -> None:
    """The "One head" tab: a "compare with" picker, then one map with its panel, or two maps side by side."""
    options = [NONE, *candidates(v.lm.name)]
    if st.session_state.get("att_compare", NONE) not in options:
        st.session_state["att_compare"] = NONE
    name = st.columns([2, 3])[0].selectbox("Compare with", options, key="att_compare",
                        format_func=lambda n: "nothing (one model)" if n == NONE else model_label(n),
                        help="The same head of another model on this sentence: the bundled model and the models "
                             "you loaded in this session (a fine-tuned run you kept with “Use it” is one).")
    if name == NONE:
        left, right = st.columns([3, 1.2])
        heatmap(left, v, v.ins.attentions[v.layer, v.head], v.ins.tokens, v.title, "att_heatmap")
        with right:
            head_panel(v)
        return
    compare(v, name)
    with st.expander(f"{v.title} of {model_label(v.lm.name)}: strongest link, statistics, CSV"):
        head_panel(v)

