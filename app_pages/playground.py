"""Masked-word playground: what BERT writes in place of [MASK], why, and a guessing game for a class.

The page only picks the model and the tab; the views live in ``ui/playground_explore.py`` and
``ui/playground_game.py``, the logic in ``bert_core.mlm``, ``bert_core.lens`` and ``bert_core.game``.
"""

from __future__ import annotations

import streamlit as st

from bert_core import MissingHeadError
from ui.playground_explore import explore_tab
from ui.playground_game import game_tab
from ui.state import current_model
from ui.text import md_line

EXPLORE, GAME = "Explore a sentence", "Guessing game"

from_link = "game" in st.query_params or "set" in st.query_params  # a phone opened the teacher's game link
st.title("Guess the word" if from_link else "Masked-word playground")
if not from_link:
    st.markdown("BERT was trained by hiding words in sentences and guessing them back. Here you hide the words: "
                "write **[MASK]** in a sentence or click a word, and see what BERT would put there, how sure it is, "
                "which layers work out the answer and which attention heads it relies on. Then play against it.")
lm = current_model()
if not lm.has_mlm_head:
    shown = "The bundled model (all-MiniLM-L6-v2)" if lm.kind == "bundled" else f"**{md_line(lm.name)}**"
    st.warning(f"{shown} has no masked-language-model head, so it cannot guess hidden words. Pick a model "
               "with one in the sidebar: for example `bert-base-uncased` (needs a download once) or a local "
               "folder holding a `BertForMaskedLM` / `BertForPreTraining` checkpoint.", icon=":material/block:")
    st.stop()
explore, play = st.tabs([EXPLORE, GAME], key="pg_tab", on_change="rerun",
                        default=GAME if from_link else None)
try:
    if explore.open is not False:
        with explore:
            explore_tab(lm)
    if play.open:
        with play:
            game_tab(lm)
except MissingHeadError as e:
    st.warning(str(e))
