"""The guided lesson: about 20 minutes of BERT in nine steps, each run live on the loaded model.

Each step: a short explanation, a live view of a preset example, a predict-then-reveal question, talking points
for the teacher, and Back/Next. The step is in the URL (``?step=3``) so a projector can jump to it."""

import streamlit as st

from bert_core import lesson
from ui import lesson_views as views
from ui.presenter import presenting, step_buttons, stepper
from ui.state import current_model, model_key

COMPUTE = {"attention": lesson.step_attention, "tokens": lesson.step_tokens, "bidirectional": lesson.step_bidirectional,
           "mlm": lesson.step_mlm, "nsp": lesson.step_nsp, "finetune": lesson.step_finetune,
           "training": lesson.step_training, "family": lesson.step_family}
N = len(lesson.STEPS)


@st.cache_resource(show_spinner=False, max_entries=64, ttl=1800)
def result(_lm, key: str, step: str):
    """One step's numbers on one model, shared read-only between sessions (the lesson never changes the model)."""
    return COMPUTE[step](_lm) if step in COMPUTE else None


def question(step: lesson.Step, q: lesson.Question, r) -> bool:
    """Students commit to an answer first; the reveal then shows the real number. True once revealed."""
    st.markdown(f"**Predict first:** {q.prompt}")
    choice = st.radio("Your prediction", q.options, index=None, key=f"lesson_q_{step.key}",
                      label_visibility="collapsed", horizontal=True)
    shown = f"lesson_shown_{step.key}"
    if st.button("Reveal", key=f"lesson_reveal_{step.key}", icon=":material/visibility:", disabled=choice is None,
                 help="Pick an answer first: committing to a guess is what makes the answer stick."):
        st.session_state[shown] = True
    if st.session_state.get(shown) and choice is not None:
        right = choice == q.options[q.answer]
        verdict = "Right! " if right else f"Not quite: the answer is **{q.options[q.answer]}**. "
        text = verdict + views.reveal(step.key, r)
        (st.success if right else st.warning)(text, icon=":material/check_circle:" if right else ":material/info:")
        return True
    return False


lm = current_model()
i = stepper("lesson_step", N)
step = lesson.STEPS[i]
if not presenting():
    st.html(views.PHONE_CSS)
    st.caption("**BERT in 20 minutes**: a guided lesson, run live on the model loaded in this app. For the "
               "projector, turn on **Presenter mode** in the sidebar.")
if presenting():
    step_buttons("lesson_step", N, "top")
with st.spinner("Running the model on this step's example…"):
    r = result(lm, model_key(lm), step.key)
q = getattr(r, "question", None) or (lesson.recap_question() if step.key == "recap" else None)
# On the projector: one screen, the words and the question on the left, the live view on the right.
if presenting():
    left, right = st.columns([1, 1], gap="medium")  # wide enough for the answers on one line
    head, view, tail = left, right, left
else:  # on a laptop or phone: one column, the view between the words and the question
    head, view, tail = st.container(), st.container(), st.container()
with head:
    st.header(f"{i + 1}. {step.title}")
    st.markdown(step.explain)
with tail:
    revealed = question(step, q, r) if q is not None else True
    with st.expander("Talking points for the teacher", icon=":material/record_voice_over:"):
        st.markdown("\n".join(f"- {t}" for t in step.talking_points))
with view:  # the live view would give the answer away: it appears with the reveal
    if revealed:
        views.show(step.key, r, lm.name)
    elif presenting():  # on one column the question right below says so already (and a phone has no room)
        st.info("Predict first, then press **Reveal**: BERT's real numbers for this example appear here.",
                icon=":material/visibility_off:")
step_buttons("lesson_step", N)
