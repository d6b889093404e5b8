"""Class game, student: join with the code and a nickname, guess once per round, see the reveal and the standings.

The student's token rides in the address (``?class=CODE&p=TOKEN``), so a reload or a dropped connection rejoins
with the same name and score. Nothing here receives the answer before the teacher reveals it.
"""

from __future__ import annotations

import streamlit as st

from classroom import CLOSED, LOBBY, OPEN, OVER, REVEALED, ClassError, NotAllowed, StudentView
from ui import classroom as ui

SEEN = "cls_seen"  # (state, round, version) the page was drawn for; the poller redraws when it changes


def join_form(store, code: str) -> None:
    st.markdown("Type the code your teacher shows and pick a nickname (1 to 24 characters). Everyone sees it on "
                "the leaderboard.")
    with st.form("cls_join"):
        typed = st.text_input("Class code", value=code, max_chars=16, placeholder="e.g. K7MXR3")
        nick = st.text_input("Nickname", max_chars=24, placeholder="e.g. Ada")
        go = st.form_submit_button("Join", type="primary", icon=":material/login:")
    if go:
        try:
            link = store.join(typed, nick)
        except ClassError as e:
            st.error(str(e))
            return
        st.query_params.update({"class": link.code, "p": link.token})
        st.rerun()


def submit(store, v: StudentView, token: str) -> None:
    word = st.session_state.get("cls_guess", "")
    try:
        store.submit_guess(v.code, token, word, ui.class_model(v.model_name))
        st.session_state.pop("cls_guess_msg", None)
    except ClassError as e:
        st.session_state["cls_guess_msg"] = str(e)


def round_view(store, v: StudentView, token: str) -> None:
    st.markdown(f"**Round {v.current} of {v.n_rounds}** · what does BERT write in place of [MASK]?")
    if not v.reveal:  # after the reveal the sentence shows with its answer instead
        st.markdown("### " + ui.masked_sentence(v.masked))
    g = v.my_guess
    if v.state == OPEN and g is None:
        with st.form("cls_guess_form", clear_on_submit=True, border=False):
            c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
            c1.text_input("Your guess (one word)", key="cls_guess", max_chars=40, placeholder="type a word")
            c2.form_submit_button("Guess", type="primary", icon=":material/send:", on_click=submit,
                                  args=(store, v, token), width="stretch")
        if st.session_state.get("cls_guess_msg"):
            st.warning(ui.md(st.session_state["cls_guess_msg"]))
    elif g is not None and g.points is None:
        st.success(f"Your guess **{ui.md(g.word)}** is in. Points come when your teacher reveals the answer.",
                   icon=":material/check_circle:")
    elif g is not None:
        st.success(f"You guessed **{ui.md(g.word)}**: BERT ranks it {g.rank:,} → **+{g.points} points**.",
                   icon=":material/emoji_events:")
    elif v.state in (CLOSED, REVEALED):
        st.info("Guessing is closed for this round; you did not guess.", icon=":material/lock:")
    if v.state == CLOSED:
        st.caption("Waiting for your teacher to reveal the answer …")
    if v.reveal:
        ui.reveal_view(v.reveal, key="cls_st_reveal")


@st.fragment(run_every=ui.POLL_STUDENT_S)
def live(store, code: str, token: str) -> None:
    """Polls the class: redraws the page when the teacher moves on, else refreshes the counts and leaderboard."""
    try:
        v = store.student_view(code, token)
    except ClassError as e:
        st.error(str(e))
        return
    if (v.state, v.current, v.version) != st.session_state.get(SEEN):
        st.rerun()
    if v.state in (OPEN, CLOSED):
        st.caption(f"{v.n_guessed} of {v.n_players} players have guessed.")
    st.markdown("**Leaderboard**")
    ui.standings_table(v.standings, v.state in (OPEN, CLOSED))


code, token = st.query_params.get("class", ""), st.query_params.get("p")
store = ui.class_store()
if store is None:
    st.stop()
if not token:
    st.title("Join the class game")
    join_form(store, code)
    st.stop()
try:
    view = store.student_view(code, token)
except NotAllowed as e:
    st.error(str(e))
    del st.query_params["p"]
    join_form(store, code)
    st.stop()
except ClassError as e:
    st.error(str(e))
    st.stop()
st.session_state[SEEN] = (view.state, view.current, view.version)
place = f"rank {view.my_rank} of {view.n_players}" if view.my_rank else ""
st.caption(f"You are **{ui.md(view.nickname)}** · class {view.code} · **{view.my_score} points** · {place}")
if view.state == LOBBY:
    st.info("You're in! Wait for your teacher to show the first sentence.", icon=":material/hourglass_top:")
elif view.state == OVER:
    st.subheader("The class is over")
    st.markdown(f"You finished **{ui.md(view.nickname)}** with **{view.my_score} points** ({place}). Well played!")
elif view.masked:
    round_view(store, view, token)
live(store, view.code, token)
