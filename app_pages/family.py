"""BERT's family: where the parameters of BERT and its successors sit, and how distillation softens a teacher."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from bert_core import InputError, MissingHeadError
from bert_core import family as fam
from ui import figures_family as figs
from ui.state import current_model
from ui.text import md_escape

st.title("BERT's family")
st.markdown("BERT's successors keep the same encoder and change the recipe around it: fewer layers learned from a "
            "bigger teacher (DistilBERT, MiniLM), shared weights and a narrower embedding table (ALBERT), more data "
            "and no next-sentence task (RoBERTa). Below, their sizes are computed from their shapes with the same "
            "formula that counts the sidebar's model exactly, and the temperature trick of distillation runs on "
            "the sidebar model's real guesses.")

lm = current_model()
mine = fam.shape_of(lm.config, pooler=lm.model.bert.pooler is not None)

st.subheader("Where the parameters are")
names = list(fam.FAMILY)
shapes = [fam.FAMILY[n] for n in names]
if all(fam.total(mine) != fam.total(s) for s in shapes):
    names.append(f"sidebar: {lm.name}")
    shapes.append(mine)
st.plotly_chart(figs.parameter_bars(names, [fam.parameters(s) for s in shapes], "Parameters by part"),
                key="fam_bars")
st.dataframe(pd.DataFrame({"model": names, "layers": [s.layers for s in shapes], "hidden": [s.hidden for s in shapes],
                           "vocabulary": [s.vocab for s in shapes],
                           "parameters (M)": [round(fam.total(s) / 1e6, 1) for s in shapes],
                           "what changed": [s.note or "the model picked in the sidebar" for s in shapes]}),
             hide_index=True, key="fam_table", column_config={"what changed": st.column_config.TextColumn(width="large")})
st.caption(fam.size_note(lm.name, mine, lm.model.num_parameters(), fam.head_parameters(
    mine, lm.has_mlm_head, lm.has_nsp_head, lm.config.num_labels if lm.has_classifier else 0)))
st.caption("The word-embedding table (vocabulary × hidden) is a large share of a small model: in the bundled MiniLM "
           "it is more than half. ALBERT shrinks it by factorising (30,000 × 128 plus 128 × 768) and shares one "
           "layer's weights across all 12 layers, so it has 11.7M parameters but still computes as much as "
           "BERT-base per token. DistilBERT keeps BERT-base's width and drops half the layers.")

st.subheader("Build your own")
c1, c2, c3 = st.columns(3)
layers = c1.slider("Layers", 1, 48, mine.layers, key="fam_layers")
hidden = c1.select_slider("Hidden size", [128, 256, 384, 512, 768, 1024, 2048], value=mine.hidden
                          if mine.hidden in (128, 256, 384, 512, 768, 1024, 2048) else 768, key="fam_hidden")
vocab = c2.select_slider("Vocabulary", [8000, 16000, 30522, 50265, 120000, 250000], value=30522, key="fam_vocab")
ratio = c2.select_slider("Feed-forward width (× hidden)", [1, 2, 4, 8], value=4, key="fam_ffn")
factorise = c3.toggle("Factorised embeddings (ALBERT)", key="fam_fact")
emb = c3.select_slider("Embedding width E", [64, 128, 256], value=128, key="fam_emb", disabled=not factorise)
shared = c3.toggle("Share one layer's weights (ALBERT)", key="fam_shared")
own = fam.Shape(vocab=vocab, hidden=hidden, layers=layers, heads=max(1, hidden // 64), intermediate=ratio * hidden,
                embedding=emb if factorise else None, shared_layers=shared)
parts = fam.parameters(own)
n = fam.total(own)
m1, m2, m3, m4 = st.columns(4)
m1.metric("Parameters", f"{n / 1e6:.1f} M")
m2.metric("Compared with BERT-base", f"{n / fam.total(fam.FAMILY['bert-base-uncased']):.2f}×")
m3.metric("Weights in fp32 / fp16", f"{n * 4 / 2**20:.0f} / {n * 2 / 2**20:.0f} MiB")
m4.metric("Share in the embeddings", f"{parts['embeddings'] / n:.0%}")
st.caption(f"Per layer: attention 4 × ({hidden}² + {hidden}) = {4 * (hidden * hidden + hidden):,} weights (Q, K, V, "
           f"output), feed-forward 2 × {hidden} × {ratio * hidden} + biases = "
           f"{2 * hidden * ratio * hidden + ratio * hidden + hidden:,}. Sharing layers divides those by {layers} but "
           "not the compute: every layer still runs.")

st.subheader("Distillation: learning from a teacher's soft guesses")
st.markdown("A student model is trained to match the teacher's whole probability distribution, not just its top "
            "word: the runner-up words say what else *would* fit, which a single right answer cannot. At the normal "
            "temperature T = 1 most of the probability sits on a few words and the rest get tiny weights. Dividing "
            "the logits by T > 1 before the softmax flattens the distribution so those small weights count, and the "
            "student minimises T² · KL(teacher_T ‖ student_T) (the T² keeps the gradients the same size). Move T "
            "and watch the sidebar model's real guesses soften; T < 1 sharpens them instead.")
text = st.text_input("A sentence with one [MASK]", "The doctor works in a [MASK].", key="fam_text", max_chars=1000)
T = st.slider("Temperature T", 0.5, 5.0, 2.0, step=0.25, key="fam_T")
try:
    _, probs = lm.mask_probs(text)
except (InputError, MissingHeadError) as e:
    st.info(md_escape(str(e)))
else:
    logp = np.log(np.clip(probs[0].double().numpy(), 1e-300, None))  # log-probs = logits minus a constant
    hard, soft = fam.soften(logp, 1.0), fam.soften(logp, T)
    top = np.argsort(-hard)[:12]
    tokens = lm.tokenizer.convert_ids_to_tokens([int(i) for i in top])
    st.plotly_chart(figs.soft_targets(tokens, hard[top], soft[top], T, "The teacher's top 12 words"),
                    key="fam_soft")
    k1, k2, k3 = st.columns(3)
    k1.metric("Top word at T = 1", f"{hard[top[0]]:.1%}")
    k2.metric(f"Top word at T = {T:g}", f"{soft[top[0]]:.1%}")
    k3.metric("Entropy T = 1 → T", f"{fam.entropy_bits(hard):.1f} → {fam.entropy_bits(soft):.1f} bits",
              help="How spread the distribution is; log2 of the vocabulary size would be perfectly even.")
    st.caption(f"The bars use a log scale. Over a vocabulary of {len(hard):,} wordpieces the tail is huge: already "
               f"at T = {T:g} the 12 words shown keep {soft[top].sum():.1%} of the probability (at T = 1: "
               f"{hard[top].sum():.1%}). That is why distilling a masked-language model uses a modest temperature, "
               "while Hinton's original examples with ten classes used large ones.")
    if len(probs) > 1:
        st.caption("Only the first [MASK] is shown.")
