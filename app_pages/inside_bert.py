"""Inside BERT: one token through one layer, every step with the real numbers, one stage per screen (Back/Next,
``?stage=N``), the pickers always at the top. Layers and heads count from 1, as everywhere in the app."""

import math

import numpy as np
import pandas as pd
import streamlit as st

from bert_core import InputError
from bert_core.walkthrough import walk_through
from ui import figures_attention as figures
from ui.presenter import presenting, step_buttons, stepper
from ui.state import current_model, inspect_text, model_key
from ui.text import head_name, layer_name, md_escape

DEFAULT_TEXT = "The cat sat on the mat because it was tired."
SHOW_DIMS = 8  # dimensions shown in the tables (the charts show all of them)

st.session_state.setdefault("inside_text", DEFAULT_TEXT)


@st.cache_resource(show_spinner=False, max_entries=32, ttl=1800)
def cached_walk(_lm, key: str, text: str, layer: int, head: int, position: int):
    return walk_through(_lm.model, inspect_text(_lm, text).encoded, layer, head, position)


def first_dims(rows: dict[str, np.ndarray], n: int = SHOW_DIMS) -> pd.DataFrame:
    """Named vectors side by side: their first n dimensions and their length (L2 norm)."""
    df = pd.DataFrame({name: np.asarray(v, dtype=np.float64)[:n] for name, v in rows.items()}).T
    df.columns = [f"dim {i}" for i in range(df.shape[1])]
    df["…"] = "…"
    df["‖v‖"] = [float(np.linalg.norm(v)) for v in rows.values()]
    return df.round(4)


def step(n: int, title: str, text: str) -> None:
    st.subheader(f"{n}. {title}")
    st.markdown(text)


lm = current_model()
cfg = lm.config
L, H, D = cfg.num_hidden_layers, cfg.num_attention_heads, cfg.hidden_size

st.title("Inside BERT: the maths, with real numbers")
if not presenting():  # on the projector the stages speak for themselves: pickers and one stage per screen
    st.markdown("Pick a token, a layer and a head, and follow that token through the layer exactly as the model "
                "computes it: embeddings → LayerNorm → Q, K, V → QKᵀ → ÷√d_k → + mask → softmax → ·V → "
                "concatenate heads · W_O → residual + LayerNorm → feed-forward → residual + LayerNorm. All numbers "
                f"come from the loaded checkpoint ({L} layers, {H} heads, hidden size {D}, d_k = {cfg.head_dim}).")

row = st.columns([3, 2, 1, 1]) if presenting() else [st.container(), *st.columns([2, 1, 1])]
text = row[0].text_input("Sentence", key="inside_text", max_chars=5000)
try:
    enc = inspect_text(lm, text).encoded
except InputError as e:
    st.info(str(e), icon=":material/edit:")
    st.stop()
tokens, T = enc.tokens, len(enc.tokens)
if enc.truncated:
    st.warning(f"The input has {enc.n_original} wordpieces; BERT reads at most {lm.max_tokens}, so only the first "
               f"{T} are used.", icon=":material/content_cut:")

st.session_state["inside_layer"] = min(int(st.session_state.get("inside_layer", 0)), L - 1)
st.session_state["inside_head"] = min(int(st.session_state.get("inside_head", 0)), H - 1)
st.session_state["inside_pos"] = min(int(st.session_state.get("inside_pos", min(2, T - 1))), T - 1)
c1, c2, c3 = row[1:]
pos = c1.selectbox("Token to follow", list(range(T)), key="inside_pos",
                   format_func=lambda i: f"#{i}  {tokens[i]}")
layer = c2.selectbox("Layer", list(range(L)), key="inside_layer", format_func=lambda i: str(i + 1))
head = c3.selectbox("Head", list(range(H)), key="inside_head", format_func=lambda i: str(i + 1))
LAYER, HEAD = layer_name(layer), head_name(head)  # 'layer 1' is the first encoder layer

w = cached_walk(lm, model_key(lm), text, layer, head, pos)
ins = inspect_text(lm, text)
tok = md_escape(tokens[pos])
dk = w.d_k


def stage_embeddings() -> None:
    step(1, "Token + position + segment embeddings",
         f"BERT looks up three learned vectors of length {D} for **{tok}** (id {int(enc.input_ids[pos])}) at position "
         f"{pos} in segment {'AB'[int(enc.token_type_ids[pos])]}: one for the wordpiece, one for the position, one "
         "for the segment. Their **sum** is the token's first representation; order enters the model only through "
         f"the position vector. The table shows the first {SHOW_DIMS} dimensions; the strip below shows all {D}.")
    st.dataframe(first_dims({"word embedding": w.word, "position embedding": w.pos, "segment embedding": w.segment,
                             "sum": w.emb_sum}), width="stretch")
    st.plotly_chart(figures.vector_strip(w.emb_sum, "sum"), key="inside_emb_sum")
    step(2, "LayerNorm",
         f"LayerNorm rescales the sum to mean 0 and standard deviation 1 (here the mean was {w.emb_mean:.4f} and the "
         f"standard deviation {w.emb_std:.4f}), then multiplies by a learned gain γ and adds a learned bias β: "
         "(x − mean) / std · γ + β. This keeps the numbers in a stable range layer after layer.")
    rows = {"embedding after LayerNorm": w.emb_out}
    if layer > 0:
        rows[f"input of {LAYER} (= output of {layer_name(layer - 1)})"] = w.x[pos]
    st.dataframe(first_dims(rows), width="stretch")
    if layer > 0:
        st.caption(f"Layers 1 … {layer} run the same steps as the next stages; {LAYER} starts from the output of "
                   f"{layer_name(layer - 1)}.")


def stage_qkv() -> None:
    step(3, f"Queries, keys and values ({HEAD})",
         f"{HEAD.capitalize()} projects every token's {D}-dim vector x to three shorter vectors of d_k = {dk}: the "
         "**query** q = x·W_Q + b_Q (what this token is looking for), the **key** k = x·W_K + b_K (what it offers to "
         "be found by) and the **value** v = x·W_V + b_V (what it hands over when attended to). Each head has its "
         f"own slice of the weights: dimensions {head * dk} … {(head + 1) * dk - 1} of the full projections.")
    st.dataframe(first_dims({f"q  (query of {tokens[pos]})": w.q[pos], f"k  (key of {tokens[pos]})": w.k[pos],
                             f"v  (value of {tokens[pos]})": w.v[pos]}), width="stretch")
    kc, vc = st.columns(2)
    kc.plotly_chart(figures.matrix_heatmap(w.k, tokens, f"K: keys of all {T} tokens (T × d_k)", highlight_row=pos),
                    key="inside_K")
    vc.plotly_chart(figures.matrix_heatmap(w.v, tokens, f"V: values of all {T} tokens (T × d_k)", highlight_row=pos),
                    key="inside_V")


def stage_softmax() -> None:
    sc, sd = st.columns(2)
    with sc:
        step(4, "Scores: q · kᵀ",
             f"The query of **{tok}** is compared with every key by a dot product: a large positive number means "
             "'this key matches what I am looking for'. That gives one score per token (one row of QKᵀ).")
        st.plotly_chart(figures.token_bars(w.scores, tokens, "q·k", highlight=pos, fmt=".2f"), key="inside_scores")
    with sd:
        step(5, f"Scale: ÷ √d_k = ÷ {math.sqrt(dk):.3f}",
             f"Dot products of {dk}-dim vectors grow with d_k, and large scores would make the softmax nearly one-hot "
             "(and its gradients vanish). Dividing by √d_k keeps them in a moderate range.")
        st.plotly_chart(figures.token_bars(w.scaled, tokens, "q·k / √d_k", highlight=pos, fmt=".2f"),
                        key="inside_scaled")
    step(6, "Add the mask",
         "An additive mask is added before the softmax: 0 for tokens that may be attended to, a huge negative number "
         "for padding (so e^(−huge) = 0). A single sentence has no padding, so here every entry is 0 and nothing "
         f"changes; with a batch of different lengths, the shorter inputs' padding would be masked. Mask values: "
         f"{', '.join(f'{m:g}' for m in w.mask[:12])}{' …' if T > 12 else ''}.")
    step(7, "Softmax",
         "softmax turns the scores into weights that are positive and add up to 1: exp(s_j) / Σ exp(s). This row is "
         f"exactly row {pos} of {LAYER}, {HEAD} in the Attention explorer.")
    st.plotly_chart(figures.token_bars(w.probs, tokens, "attention weight", highlight=pos), key="inside_probs")
    st.caption(f"Sum of the weights: {w.probs.sum():.6f}. Largest difference from the core's own attention map: "
               f"{np.abs(w.probs - ins.attentions[layer, head, pos]).max():.1e}.")


def stage_values() -> None:
    step(8, "Weighted sum of the values: softmax · V",
         f"The head's output for **{tok}** is the average of all value vectors, weighted by the attention weights: "
         f"Σ_j weight_j · v_j. It has d_k = {dk} numbers.")
    top = np.argsort(-w.probs)[:3]
    st.markdown("Biggest contributors: " + ", ".join(f"**{md_escape(tokens[j])}** (#{j}, {w.probs[j]:.2f})"
                                                      for j in top) + ".")
    st.dataframe(first_dims({f"{HEAD} output": w.context}), width="stretch")
    step(9, "Concatenate the heads, then · W_O",
         f"All {H} heads do steps 3 – 8 in parallel. Their {H} outputs of {dk} numbers are laid side by side into "
         f"one vector of {D} ({HEAD}'s slice is outlined), and an output matrix W_O ({D} × {D}) mixes them back "
         "together: this is the attention block's output.")
    st.plotly_chart(figures.vector_strip(w.concat, "concat", highlight=(head * dk, (head + 1) * dk)),
                    key="inside_concat")
    st.dataframe(first_dims({"concat of all heads": w.concat, "· W_O + b_O (attention output)": w.attn_out}),
                 width="stretch")


def stage_output() -> None:
    step(10, "Residual connection + LayerNorm",
         "The attention output is **added** to the layer's input (the residual connection: the layer only has to "
         "learn a change to the vector, and gradients flow straight through), then LayerNorm normalises the sum.")
    st.dataframe(first_dims({"layer input x": w.x[pos], "x + attention output": w.residual1,
                             "after LayerNorm": w.ln1}), width="stretch")
    step(11, "Feed-forward network",
         f"Each token then goes, on its own, through a two-layer network: widen to {cfg.intermediate_size} numbers, "
         f"apply the {cfg.hidden_act.upper()} non-linearity, and project back to {D}. Most of BERT's parameters live "
         "here; it is often described as the layer's memory of facts and patterns.")
    st.plotly_chart(figures.vector_strip(w.ffn_hidden, f"{cfg.hidden_act}(x·W₁+b₁)"), key="inside_ffn_hidden")
    st.dataframe(first_dims({"feed-forward output": w.ffn_out}), width="stretch")
    step(12, "Residual connection + LayerNorm: the layer's output",
         f"Again: add the input of the block, then LayerNorm. The result is **{tok}**'s new vector after {LAYER}; "
         "it is the input of the next layer (or, after the last layer, what the task heads read).")
    out_core = ins.hidden_states[layer + 1, pos]  # hidden_states[0] = embeddings, [i] = output of layer i
    st.dataframe(first_dims({"ffn input + ffn output": w.residual2, "layer output (after LayerNorm)": w.output,
                             "the core's hidden state": out_core}), width="stretch")
    st.plotly_chart(figures.vector_strip(w.output, "output"), key="inside_output")
    diff = float(np.abs(w.output - out_core).max())
    dtype = str(lm.dtype).replace("torch.", "")
    if diff < 1e-3:
        st.success(f"Check: this hand-computed vector matches the model's own hidden state for {LAYER} up to "
                   f"{diff:.1e} (the model runs in {dtype}, this page in float64).", icon=":material/check_circle:")
    else:
        st.info(f"This hand-computed vector differs from the model's own hidden state for {LAYER} by up to "
                f"{diff:.1e}, because the model runs in {dtype} (about {'3' if dtype == 'float16' else '2'} "
                "significant digits) and this page in float64. Pick fp32 in the sidebar to see them agree to about "
                "1e-6.", icon=":material/info:")


STAGES = {"Embeddings": stage_embeddings, "Q, K, V": stage_qkv, "Attention weights": stage_softmax,
          "Mixing the values": stage_values, "Feed-forward and output": stage_output}
if not presenting() and st.toggle("Every stage on one page", key="inside_all",
                                  help="Off: one stage per screen with Back/Next (the pickers stay in reach)."):
    for show in STAGES.values():
        show()
else:
    i = stepper("inside_stage", len(STAGES), param="stage")
    st.segmented_control("Stage", list(range(len(STAGES))), key="inside_stage", label_visibility="collapsed",
                         format_func=lambda k: f"{k + 1}. {list(STAGES)[k]}", required=True)
    list(STAGES.values())[i]()
    step_buttons("inside_stage", len(STAGES), label="Stage")
