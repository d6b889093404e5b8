"""Attention before vs after fine-tuning: which heads changed on a probe sentence (a layer × head grid of the
Jensen–Shannon divergence, ``bert_core.attention_change``), and a clicked head's map before and after."""

from __future__ import annotations

import streamlit as st

from bert_core import InputError, ModelLoadError
from bert_core.attention_change import attention_change
from bert_core.runs import RunRecord
from ui import figures_attention as afigs
from ui.run_view import lab_text
from ui.state import cached_model
from ui.text import head_label, layer_name, head_name, md_escape

PROBE = "The flight was delayed again and nobody told us anything."


def pick_head() -> None:
    """A click on the grid opens that head."""
    cd = afigs.clicked(st.session_state.get("ft_change_grid"))
    if cd is not None and len(cd) >= 2:
        st.session_state["ft_change_head"] = (int(cd[0]), int(cd[1]))


def change_view(rs: list[RunRecord]) -> None:
    st.subheader("4 · Attention before and after fine-tuning")
    if not rs:
        st.caption("Once a run is kept, this shows which of its attention heads fine-tuning changed.")
        return
    by_id = {r.id: r for r in rs}
    if st.session_state.get("ft_change_run") not in by_id:
        st.session_state["ft_change_run"] = rs[0].id
    c1, c2 = st.columns([2, 3])
    r = by_id[c1.selectbox("Fine-tuned run", list(by_id), key="ft_change_run", format_func=lambda i: by_id[i].label())]
    text = c2.text_input("Probe sentence", PROBE, key="ft_probe", max_chars=500)
    try:
        base = cached_model(r.base, "auto", "fp32")
        tuned = cached_model(str(r.model_dir), "cpu", "fp32")
        ch = attention_change(base, tuned, text)
    except ModelLoadError as e:
        return st.info(f"Cannot load the models of this run: {md_escape(e)}")
    except (InputError, ValueError) as e:
        return st.info(md_escape(str(e)))
    L, H = ch.change.shape
    fmt = ".3f" if ch.change.max() >= 0.005 else ".1e"  # a barely changed model still shows its numbers
    top = ch.most_changed(3)
    sel = st.session_state.get("ft_change_head")
    if sel is None or sel[0] >= L or sel[1] >= H:
        sel = top[0][:2]
    st.markdown(lab_text("finetune_change", base=md_escape(r.base),
                         top=", ".join(f"{head_label(lh, hh)} ({v:{fmt}})" for lh, hh, v in top)))
    left, right = st.columns([2, 3])
    left.plotly_chart(afigs.stats_heatmap(ch.change, "change (bits)", sel, fmt=fmt, colorscale="Reds"),
                      key="ft_change_grid", on_select=pick_head, selection_mode="points")
    left.caption("Click a head to open its map before and after.")
    lh, hh = sel
    with right:
        st.markdown(f"**{layer_name(lh)}, {head_name(hh)}** ({head_label(lh, hh)}): changed by "
                    f"{ch.change[lh, hh]:{fmt}} bits on average per token.")
        b1, b2 = st.columns(2)
        b1.plotly_chart(afigs.attention_heatmap(ch.before[lh, hh], ch.tokens, f"Before: {head_label(lh, hh)}"),
                        key="ft_change_before")
        b2.plotly_chart(afigs.attention_heatmap(ch.after[lh, hh], ch.tokens, f"After: {head_label(lh, hh)}"),
                        key="ft_change_after")
