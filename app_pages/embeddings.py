"""Contextual embeddings: one ambiguous word in many sentences, layer by layer, and its nearest neighbours."""

import numpy as np
import streamlit as st

from bert_core import InputError, LoadedModel
from bert_core.embeddings import (CORPUS, WORDS, EncodedCorpus, encode_corpus, nearest_neighbours, occurrences,
                                  project, sense_accuracy, user_sentences)
from ui import figures_explain as figures
from ui.state import current_model, model_key
from ui.text import hidden_state_name, md_escape

st.session_state.setdefault("emb_word", "bank")
st.session_state.setdefault("emb_user", "I left my bike by the bank and went for a swim.")
st.session_state.setdefault("emb_method", "pca")


@st.cache_resource(show_spinner=False, max_entries=8, ttl=1800)
def _corpus(_lm: LoadedModel, key: str, extra: tuple[str, ...]) -> EncodedCorpus:
    return encode_corpus(_lm, [*CORPUS, *user_sentences("\n".join(extra))])


@st.cache_data(show_spinner=False, max_entries=64, ttl=1800)
def _project(vectors: np.ndarray, method: str) -> np.ndarray:
    return project(vectors, method)


lm = current_model()
L = lm.config.num_hidden_layers

st.title("Contextual embeddings")
st.markdown("A word's vector in the **embeddings** (slider at 0) comes from the embedding table: the same "
            "wordpiece gives (almost) the same vector in every sentence, only its position differs. Every layer "
            "after that mixes in the other words, so the vector starts to say *which* bank or bat it is. Below, "
            "every occurrence of one word in "
            f"our {len(CORPUS)} built-in sentences (and in yours) is squeezed onto a 2-D map: move the layer slider "
            "and watch the senses separate.")

c1, c2, c3 = st.columns([1.3, 2.5, 1.2])
word = c1.selectbox("Word", WORDS, key="emb_word", help="Each word has two senses in the built-in sentences.")
st.session_state["emb_layer"] = min(int(st.session_state.get("emb_layer", min(4, L))), L)
layer = c2.slider("Layer", 0, L, key="emb_layer",
                  help="0 = the embeddings (before any attention); 1 = the output of layer 1; "
                       f"{L} = the last layer.")
method = c3.radio("Map", ["pca", "tsne"], key="emb_method", horizontal=True,
                  format_func={"pca": "PCA", "tsne": "t-SNE"}.get,
                  help="PCA keeps the two directions of largest spread (fast, faithful to distances). t-SNE keeps "
                       "neighbours together and can exaggerate clusters.")
user = st.text_area("Your own sentences with the word (one per line, up to 20)", key="emb_user", height=80,
                    max_chars=5000)
mine = user_sentences(user)

try:
    with st.spinner(f"Running {len(CORPUS) + len(mine)} sentences through the model…"):
        corpus = _corpus(lm, model_key(lm), tuple(s.text for s in mine))
except InputError as e:
    st.info(f"One of your sentences cannot be read: {e}", icon=":material/edit:")
    st.stop()

occ = occurrences(corpus, word, layer)
n_yours = sum(s == "your sentence" for s in occ.senses)
if mine and n_yours == 0:
    st.caption(f"None of your sentences contains the whole word “{md_escape(word)}”, so only the built-in ones "
               "are shown.")
if len(occ.texts) < 3:
    st.info("Too few occurrences to draw a map.", icon=":material/scatter_plot:")
    st.stop()

with st.spinner("Projecting to 2-D…"):
    xy = _project(occ.vectors, method)
acc = [sense_accuracy(occurrences(corpus, word, k)) for k in range(L + 1)]

st.session_state.setdefault("emb_pick", 0)
st.session_state["emb_pick"] = min(int(st.session_state["emb_pick"]), len(occ.texts) - 1)
left, right = st.columns([2.2, 1])
with left:
    where = "the " + hidden_state_name(layer) if layer == 0 else hidden_state_name(layer)
    title = f"“{word}” at {where} ({'PCA' if method == 'pca' else 't-SNE'}, {len(occ.texts)} occurrences)"
    st.plotly_chart(figures.embedding_scatter(xy, occ.senses, occ.texts, title=title,
                                              highlight=st.session_state["emb_pick"]), key="emb_map")
with right:
    st.markdown(f"**Do the senses separate?** For each occurrence we look up its nearest other occurrence (by "
                f"cosine) and check whether it has the same sense. At {where}: "
                f"**{acc[layer]:.0%}** (chance ≈ 50%).")
    st.plotly_chart(figures.layer_curve(np.array(acc), "same sense as nearest (%)", selected=layer),
                    key="emb_curve", config={"displayModeBar": False})
    st.caption("The embeddings are not at chance: the occurrences differ by position, and neighbours in position can "
               "share a sense by luck.")

st.subheader("Nearest neighbours")
st.markdown("Pick one occurrence: the table lists the tokens in the whole corpus whose vectors at this layer point "
            "the most in the same direction (cosine similarity), as in exBERT's search. In late layers the "
            "neighbours of “bank” by a river are river words and river banks.")
pick = st.selectbox("Occurrence", list(range(len(occ.texts))), key="emb_pick",
                    format_func=lambda i: f"{occ.texts[i]}  [{occ.senses[i]}]")
nn = nearest_neighbours(corpus, layer, occ.vectors[pick], k=10,
                        exclude=(int(occ.sentence[pick]), occ.positions[pick]))
st.dataframe(nn.drop(columns=["sentence_index"]).assign(cosine=nn["cosine"].round(3)), width="stretch",
             hide_index=True)
