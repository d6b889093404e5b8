"""Why did BERT say that? Attributions for a [MASK] guess or a classifier's class, three methods side by side."""

import streamlit as st

from bert_core import InputError, MissingHeadError
from ui.state import current_model
from ui.why_panel import why_panel

DEFAULT = "The doctor went to the [MASK] to see her patients."

st.session_state.setdefault("why_text", st.query_params.get("why_text", DEFAULT))

lm = current_model()
st.title("Why did BERT say that?")
st.markdown("BERT guessed a word for `[MASK]` (or, for a fine-tuned model, a class). Which words of the sentence "
            "made it say so? Three common answers are computed below on the model's real numbers. They often "
            "disagree, and that is the lesson: **attention is not explanation**.")

text = st.text_area("Sentence (with [MASK] for a word guess)", key="why_text", height=80, max_chars=20000)
st.query_params["why_text"] = text[:2000]

options, kind = [], None
try:
    if lm.has_classifier and "[mask]" not in text.lower():
        kind, options = "class", [name for name, _ in lm.classify(text)]
    else:
        kind, options = "mask", [w for w, _ in lm.fill_mask(text, top_k=5)[0]]
except (InputError, MissingHeadError) as e:
    st.info(str(e), icon=":material/edit:")
    st.stop()

label = "Explain the class" if kind == "class" else "Explain BERT's guess at the first [MASK]"
options = [o for o in options if not o.startswith("##")] or options
target = st.pills(label, options, default=options[0], key=f"why_pick_{kind}",
                  help="Ranked from most to least likely. Pick any of them: the panel explains that one.")
if kind == "mask":
    typed = st.text_input("…or any other word", key="why_word", max_chars=40,
                          placeholder="e.g. hospital").strip()
    target = typed or target
why_panel(lm, text, target or options[0], key="why")
