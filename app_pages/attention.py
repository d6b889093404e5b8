"""Attention explorer: every head of every layer, for a sentence or a sentence pair."""

import numpy as np
import pandas as pd
import streamlit as st

from bert_core import InputError, LoadedModel
from bert_core.explain import neuron_view
from bert_core.stats import STATISTICS, head_statistics, segment_crossing
from ui import attention_head as head_tab, figures_attention as figures, figures_explain, figures_lines
from ui.text import head_label, head_name, layer_name, md_escape
from ui.bertviz_embed import bertviz_html, bertviz_size
from ui.share import UrlField, flag, parse_flag, sync_url
from ui.state import current_model, inspect_text, model_key

DEFAULT_A = "The cat sat on the mat because it was tired."
DEFAULT_B = "Then it fell asleep in the sun."
TABS = {"head": ":material/zoom_in: One head", "grid": ":material/apps: All layers × heads",
        "lines": ":material/share: Lines", "neuron": ":material/calculate: Neuron view",
        "stats": ":material/insights: Head statistics", "pair": ":material/compare_arrows: Between sentences"}
TAB_IDS = {v: k for k, v in TABS.items()}
URL = [UrlField("text", "att_text"), UrlField("pair", "att_pair", parse_flag, flag), UrlField("b", "att_text_b"),
       UrlField("layer", "att_layer", int), UrlField("head", "att_head", int),
       UrlField("tab", "att_tab", TABS.__getitem__, TAB_IDS.get)]

sync_url(URL, "attention")  # the view lives in the address bar: share the link to share the view
for k, v in (("att_text", DEFAULT_A), ("att_text_b", DEFAULT_B), ("att_pair", False)):
    st.session_state.setdefault(k, v)


@st.cache_resource(show_spinner=False, max_entries=8, ttl=1800)
def _with_qkv(_lm: LoadedModel, key: str, text: str, text_pair: str | None):
    return _lm.inspect(text, text_pair, with_qkv=True, with_mlm=False)


def pick_head(chart_key: str) -> None:
    """A click on the grid, the model view or the statistics map opens that (layer, head)."""
    cd = figures.clicked(st.session_state.get(chart_key), H)
    if cd is not None and len(cd) >= 2:
        st.session_state["att_layer"], st.session_state["att_head"] = min(cd[0], L - 1), min(cd[1], H - 1)


def pick_focus(chart_key: str) -> None:
    """A click on a token of the head view focuses it (a second click on it shows every token again)."""
    cd = figures.clicked(st.session_state.get(chart_key))
    if cd is not None:
        st.session_state["att_focus"] = -1 if st.session_state.get("att_focus") == cd[0] else cd[0]


lm = current_model()
L, H = lm.config.num_hidden_layers, lm.config.num_attention_heads

st.title("Attention explorer")
st.markdown("In every layer, each of BERT's attention heads lets every token (the **query**) look at all tokens "
            "(the **keys**) and decide how much of each to mix into its new vector. Each row of a map below is one "
            "token's attention and adds up to 1. Heads specialise: some look at the next word, some at `[SEP]`, "
            "some link a pronoun to its noun. Type your own sentence and go hunting.")

c_a, c_b = st.columns(2)
text_a = c_a.text_area("Sentence A", key="att_text", height=90, max_chars=20000)
pair = c_b.toggle("Add a second sentence (B) — a sentence pair", key="att_pair",
                  help="BERT reads two sentences as [CLS] A [SEP] B [SEP], with segment ids 0 and 1.")
text_b = c_b.text_area("Sentence B", key="att_text_b", height=68, max_chars=20000) if pair else None
if pair and not (text_b or "").strip():
    c_b.caption("Sentence B is empty, so only sentence A is read.")

try:
    ins = inspect_text(lm, text_a, text_b)
except InputError as e:
    st.info(str(e), icon=":material/edit:")
    st.stop()

enc = ins.encoded
tokens, T = enc.tokens, len(enc.tokens)
is_pair = bool((enc.token_type_ids == 1).any())
if enc.truncated:
    st.warning(f"The input has {enc.n_original} wordpieces, but BERT reads at most {lm.max_tokens}: only the first "
               f"{T} are shown (the rest was cut off).", icon=":material/content_cut:")
if "[UNK]" in tokens:
    st.caption("`[UNK]` marks characters that are not in this model's vocabulary (emoji, rare symbols…).")

with st.expander(f"Wordpieces: {T} tokens, ids and segments", expanded=T <= 40):
    table = pd.DataFrame({"token": tokens, "id": enc.input_ids.astype(int), "segment": np.where(
        enc.token_type_ids == 1, "B", "A"), "special": np.where(enc.special, "yes", "")})
    table.index.name = "position"
    st.dataframe(table.astype(str).T, width="stretch")
    st.caption("BERT splits words into **wordpieces** from a fixed vocabulary (`##` marks a piece that continues a "
               "word). `[CLS]` opens the input, `[SEP]` closes each sentence. The **segment** id says which "
               "sentence a token belongs to; it selects the segment embedding that is added to the token.")

# --- head selection, shared by the tabs --------------------------------------------------------------
st.session_state["att_layer"] = min(int(st.session_state.get("att_layer", 0)), L - 1)
st.session_state["att_head"] = min(int(st.session_state.get("att_head", 0)), H - 1)
s1, s2, s3 = st.columns([2, 2, 1.3])
# the sliders show 1…L and 1…H; the state (and the URL) keep the 0-based indexes
layer = s1.select_slider("Layer", list(range(L)), key="att_layer", format_func=lambda i: str(i + 1),
                         help="1 = first layer, right after the embeddings.")
head = s2.select_slider("Head", list(range(H)), key="att_head", format_func=lambda i: str(i + 1))
hide = s3.toggle("Hide [CLS] / [SEP]", key="att_hide_special",
                 help="Many heads park most of their attention on [CLS] or [SEP]; hiding them shows the rest. "
                      "Rows then no longer add up to 1.")
head_title = f"{layer_name(layer).capitalize()}, {head_name(head)} ({head_label(layer, head)})"
keep = ~enc.special if hide and (~enc.special).any() else None

tabs = dict(zip(TABS, st.tabs(list(TABS.values()), key="att_tab", on_change="rerun")))


view = head_tab.View(lm, ins, text_a, text_b, layer, head, head_title, keep)
with tabs["head"]:
    if tabs["head"].open:
        head_tab.head_tab(view)

with tabs["grid"]:
    if tabs["grid"].open:
        st.markdown(f"All {L * H} heads at once: one row of tiles per layer, one column per head. Each tile is that "
                    "head's map, shrunk and scaled to its own maximum, so you can spot families at a glance: "
                    "diagonal stripes (look at the next or previous word), a dark first or last column "
                    "(everything on [CLS] or [SEP]), or broad blur (averaging over the sentence). "
                    "**Click a tile** (or use the sliders) to open it large below.")
        st.plotly_chart(figures.head_grid(ins.attentions, selected=(layer, head)), key="att_grid",
                        on_select=lambda: pick_head("att_grid"), selection_mode="points",
                        config={"displayModeBar": False})
        big, note = st.columns([3, 1.2])
        head_tab.heatmap(big, view, ins.attentions[layer, head], tokens, head_title, "att_heatmap")
        note.markdown(f"**{head_title}**, large. Rows are queries, columns keys; hover or tap a cell for "
                      "*query → key : weight*. The tile outlined in the grid is the one shown here.")

with tabs["stats"]:
    if tabs["stats"].open:
        stats = head_statistics(ins.attentions, tokens)
        st.markdown("What does each head tend to do? For every head we average over all tokens of your input "
                    "(after Clark et al., 2019, *What does BERT look at?*). Choose a statistic; the map shows it "
                    "for every layer (row) and head (column). **Click a cell** to open that head in the other tabs.")
        st.session_state.setdefault("att_stat", "sep")
        stat = st.segmented_control("Statistic", list(STATISTICS), format_func=lambda k: STATISTICS[k][0],
                                    key="att_stat", required=True)
        name, meaning = STATISTICS[stat]
        m, side = st.columns([2.2, 1])
        fmt = ".1f" if stat in ("entropy", "distance") else ".2f"
        m.plotly_chart(figures.stats_heatmap(stats[stat], name, selected=(layer, head), fmt=fmt),
                       key="att_stats_map", on_select=lambda: pick_head("att_stats_map"), selection_mode="points",
                       config={"displayModeBar": False})
        with side:
            st.markdown(f"**{name}**: {meaning}.")
            flat = np.nan_to_num(stats[stat], nan=-np.inf).ravel()
            best = np.argsort(-flat)[:5]
            st.markdown("Highest: " + ", ".join(f"{head_label(*divmod(int(i), H))} ({flat[i]:{fmt}})" for i in best))
            st.markdown(f"**{head_title}** (selected)")
            head_tab.stats_table({k: stats[k][layer, head] for k in STATISTICS}, "att_stats_table")

with tabs["pair"]:
    if tabs["pair"].open:
        if not is_pair:
            st.info("Switch on **Add a second sentence (B)** above to see how BERT relates two sentences.",
                    icon=":material/link:")
        else:
            st.markdown("With two sentences, BERT was pretrained on **next-sentence prediction** (NSP): does B "
                        "really follow A? The `[CLS]` vector feeds a small classifier that answers. The chart shows, "
                        "for each layer, how much of a token's attention (averaged over heads) goes to the *other* "
                        "sentence: early layers mostly stay inside their own sentence; crossing grows where the model "
                        "starts relating the two.")
            if ins.nsp_probs is not None:
                c1, c2 = st.columns(2)
                c1.metric("P(B follows A)", f"{ins.nsp_probs[0]:.1%}")
                c2.metric("P(B is a random sentence)", f"{ins.nsp_probs[1]:.1%}")
            else:
                st.info("This checkpoint has no NSP head (it was not saved with one), so it cannot say whether B "
                        "follows A. bert-base-uncased has one.", icon=":material/info:")
            st.plotly_chart(figures.cross_segment_chart(segment_crossing(ins.attentions, enc.token_type_ids,
                                                                         enc.special)), key="att_cross")

with tabs["lines"]:
    if tabs["lines"].open:
        view = st.segmented_control("View", ["head", "model", "bertviz"], key="att_lines_view", required=True,
                                    default="head", format_func={"head": "Head view (this layer)", "model":
                                    "Model view (every head)", "bertviz": "bertviz (needs internet)"}.get)
        if view == "head":
            st.markdown("Each token on the left (the **query**) sends a line to every token on the right (the "
                        "**key**) it attends to; thicker, darker lines carry more weight, one colour per head. "
                        "**Click a token on the left** to see only its lines; hover or tap it for its top three "
                        "keys.")
            shown = st.pills("Heads", list(range(H)), selection_mode="multi", default=[head], key="att_lines_heads",
                             format_func=head_name) or [head]
            st.session_state["att_focus"] = min(int(st.session_state.get("att_focus", -1)), T - 1)
            c1, c2 = st.columns([3, 1])
            focus = c2.selectbox("Focus on", [-1, *range(T)], key="att_focus",
                                 format_func=lambda i: "every token" if i < 0 else f"#{i} {tokens[i]}")
            c1.plotly_chart(figures_lines.head_lines(ins.attentions[layer], tokens, shown, focus=None if focus < 0 else focus,
                                                     title=layer_name(layer).capitalize()), key="att_lines",
                            on_select=lambda: pick_focus("att_lines"), selection_mode="points",
                            config={"displayModeBar": False})
            c2.caption(f"Lines below weight {figures_lines.MIN_WEIGHT} are left out; at most "
                       f"{figures_lines.MAX_SEGMENTS:,} lines are drawn, the strongest first.")
        elif view == "model":
            st.markdown(f"Every head of every layer as a small line view ({L} × {H}). Look for families: "
                        "parallel lines (a head looking at the next or previous token), fans into one token "
                        "([CLS], [SEP] or a full stop). **Click one** to open it in the other tabs.")
            st.plotly_chart(figures_lines.model_lines(ins.attentions, selected=(layer, head)), key="att_model",
                            on_select=lambda: pick_head("att_model"), selection_mode="points",
                            config={"displayModeBar": False})
        else:
            st.markdown("[bertviz](https://github.com/jessevig/bertviz) by Jesse Vig draws the same views with "
                        "its own scripts, which it loads from the internet; the two views above work offline.")
            b_start = int(np.argmax(enc.token_type_ids == 1)) if is_pair else None
            ok, reason = bertviz_size("head", L, H, T, is_pair)
            if not ok:
                st.info(reason, icon=":material/content_cut:")
            else:
                st.iframe(bertviz_html(ins.attentions, tokens, "head", sentence_b_start=b_start, layers=[layer]),
                          height="content")

with tabs["neuron"]:
    if tabs["neuron"].open:
        st.markdown("How does one head decide? For a query token, its **query vector q** is multiplied element by "
                    "element with every token's **key vector k** (q ⊙ k, red = positive, blue = negative). Each row "
                    "is summed (the dot product q·k), divided by √d_k and turned into weights by a softmax over the "
                    "keys (columns: k, q ⊙ k, q·k/√d_k, softmax). The softmax is the query's row of the attention map.")
        st.session_state["att_query"] = min(int(st.session_state.get("att_query", 1 if T > 2 else 0)), T - 1)
        query = st.selectbox("Query token", list(range(T)), key="att_query", format_func=lambda i: f"#{i} {tokens[i]}")
        nv = neuron_view(_with_qkv(lm, model_key(lm), text_a, text_b), layer, head, query)
        st.plotly_chart(figures.vector_strip(nv.q, f"q of #{query}"), key="att_q")
        st.plotly_chart(figures_explain.neuron_figure(nv), key="att_neuron")
        err = float(np.abs(nv.probs - ins.attentions[layer, head, query]).max())
        st.success(f"The softmax column equals row {query} of {layer_name(layer)}, {head_name(head)}'s attention map: "
                   f"largest difference {err:.1e}.", icon=":material/check:")
