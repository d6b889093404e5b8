"""Home: what BERT Lab teaches and where to start."""

import streamlit as st

from ui.state import current_model

st.title("BERT Lab")
st.markdown("A hands-on lab for **BERT**, the bidirectional Transformer encoder (Devlin et al., 2018). "
            "Every number on these pages comes from a real checkpoint running in our own compact PyTorch BERT; "
            "pick a different one in the sidebar at any time.")

lm = current_model()
f = lm.facts()
c1, c2, c3, c4 = st.columns(4)
c1.metric("Layers", f["layers"])
c2.metric("Heads per layer", f["heads"])
c3.metric("Hidden size", f["hidden"])
c4.metric("Parameters", f"{f['parameters'] / 1e6:.1f} M")

st.subheader("Where to start")
a, b = st.columns(2)
with a.container(border=True):
    st.page_link("app_pages/attention.py", label="**Attention explorer**", icon=":material/grid_on:")
    st.markdown("Type a sentence (or two) and see which words each of the "
                f"{f['layers'] * f['heads']} heads looks at: one head large, all heads as a grid, and a dashboard "
                "of what heads tend to do (look at the next word, at [SEP], at punctuation…).")
with b.container(border=True):
    st.page_link("app_pages/inside_bert.py", label="**Inside BERT: the maths**", icon=":material/calculate:")
    st.markdown("Follow one token through one layer with the real numbers: embeddings, Q/K/V, "
                "softmax(QKᵀ/√d_k)V, the output projection, residuals, LayerNorm and the feed-forward block.")
with a.container(border=True):
    st.page_link("app_pages/playground.py", label="**Masked-word playground**", icon=":material/target:")
    st.markdown("Hide a word with [MASK] and watch BERT guess it: the game it was pretrained on.")
with b.container(border=True):
    st.page_link("app_pages/pretraining.py", label="**Pretraining lab**", icon=":material/fitness_center:")
    st.markdown("Pretrain a tiny BERT yourself with masked-language modelling and watch the loss fall.")
with b.container(border=True):
    st.page_link("app_pages/family.py", label="**BERT's family**", icon=":material/account_tree:")
    st.markdown("Where the parameters of BERT, DistilBERT, ALBERT, RoBERTa and MiniLM sit, a model of your own "
                "shape, and distillation's temperature on this model's real guesses.")
with a.container(border=True):
    st.page_link("app_pages/finetune.py", label="**Fine-tuning lab**", icon=":material/tune:")
    st.markdown("Put a classifier on the [CLS] vector and fine-tune on tweet sentiment or your own CSV: accuracy, "
                "a confusion matrix, and the [CLS] vectors pulling apart by class.")

st.subheader("BERT in eight ideas")
st.markdown(r"""
1. **Self-attention.** Every token builds a query $q$, a key $k$ and a value $v$. Token $i$ mixes the values of all
   tokens with weights $\mathrm{softmax}(q_i K^\top/\sqrt{d_k})$, so
   $\mathrm{Attention}(Q,K,V)=\mathrm{softmax}\!\left(QK^\top/\sqrt{d_k}\right)V$. Several heads do this in parallel,
   each with its own projections, and their outputs are concatenated.
   See it in the *Attention explorer* and, with real numbers, in *Inside BERT*.
2. **Wordpieces.** Text is split into a fixed vocabulary of about 30,000 pieces (*playing* → `play ##ing`);
   `[CLS]` starts every input and `[SEP]` ends each sentence.
3. **Position and segment embeddings.** Attention itself ignores order, so a learned *position* vector is added to
   every token, plus a *segment* vector saying whether it belongs to sentence A or B.
4. **Bidirectional encoder.** Unlike GPT, every token may look left *and* right, in every one of the stacked layers
   (each: attention → add & LayerNorm → feed-forward → add & LayerNorm).
5. **Pretraining: MLM + NSP.** BERT learned by filling in 15 % hidden words (masked-language modelling) and by telling
   whether sentence B really followed sentence A (next-sentence prediction).
   Try it in the *Masked-word playground* and the *Pretraining lab*.
6. **Fine-tuning.** For a task (sentiment, question answering, NER …) a small head is put on top — usually on the
   `[CLS]` vector — and the whole network is trained a little more on labelled examples.
   Do it in the *Fine-tuning lab*.
7. **Training tips.** Small learning rates (2e-5 to 5e-5) with warm-up, 2-4 epochs, batch 16-32; longer inputs cost
   quadratically (attention is T × T), so keep sequences as short as the task allows.
8. **Successors.** DistilBERT (distillation: a 6-layer student copies a 12-layer teacher), RoBERTa (more data, no NSP,
   dynamic masking), ALBERT (shared layers, factorised embeddings) and the MiniLM model bundled here keep the same
   encoder at heart. Compare their sizes, and soften a teacher's guesses as distillation does, in *BERT's family*.
""")

st.caption("The bundled model is all-MiniLM-L6-v2: a 6-layer, 12-head BERT distilled from a larger one and tuned for "
           "sentence similarity. It runs offline. Bigger hub models (bert-base-uncased …) can be picked in the "
           "sidebar when they are in the local Hugging Face cache or the machine is online.")
