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
CARDS = [  # (page, title, icon, what a student does there)
    ("app_pages/lesson.py", "Guided lesson", "school",
     "BERT in 20 minutes, one idea per step: predict the answer, then reveal the model's real numbers."),
    ("app_pages/attention.py", "Attention explorer", "grid_on",
     f"Type a sentence (or two) and see which words each of the {f['layers'] * f['heads']} heads looks at: one head "
     "large, all heads as a grid, lines, the neuron view, and what heads tend to do (next word, [SEP], punctuation…)."),
    ("app_pages/inside_bert.py", "Inside BERT: the maths", "calculate",
     "Follow one token through one layer with the real numbers: embeddings, Q/K/V, softmax(QKᵀ/√d_k)V, the output "
     "projection, residuals, LayerNorm and the feed-forward block."),
    ("app_pages/playground.py", "Masked-word playground", "target",
     "Hide a word with [MASK] and watch BERT guess it: the game it was pretrained on."),
    ("app_pages/classroom.py", "Class game", "groups",
     "Run the guessing game for a whole class: a join code, live guesses and the class against BERT."),
    ("app_pages/why.py", "Why did BERT say that?", "help",
     "Which words made BERT guess a word or a class: three attribution methods side by side."),
    ("app_pages/embeddings.py", "Contextual embeddings", "scatter_plot",
     "One word, many meanings: watch 'bank' or 'bat' separate by sense, layer by layer."),
    ("app_pages/family.py", "BERT's family", "account_tree",
     "Where the parameters of BERT, DistilBERT, ALBERT, RoBERTa and MiniLM sit, a model of your own shape, and "
     "distillation's temperature on this model's real guesses."),
    ("app_pages/pretraining.py", "Pretraining lab", "fitness_center",
     "Pretrain a tiny BERT yourself with masked-language modelling and watch the loss fall."),
    ("app_pages/finetune.py", "Fine-tuning lab", "tune",
     "Put a classifier on the [CLS] vector and fine-tune on tweet sentiment or your own CSV: accuracy, a confusion "
     "matrix, and the [CLS] vectors pulling apart by class."),
]
cols = st.columns(2)
for i, (page, title, icon, text) in enumerate(CARDS):
    with cols[i % 2].container(border=True):
        st.page_link(page, label=f"**{title}**", icon=f":material/{icon}:")
        st.markdown(text)


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
