"""Class game, teacher: start a class, show the join code and QR code, pace the rounds, reveal, standings, CSV."""

from __future__ import annotations

import io
import random
import urllib.parse

import segno
import streamlit as st

from bert_core import BUNDLED, game
from classroom import CLOSED, LOBBY, OPEN, OVER, REVEALED, ClassError, ClassView
from ui import classroom as ui
from ui.state import current_model

BUILTIN, OWN, SAVED = "The built-in sentences", "My own sentences", "A saved set"
CODE_CSS = "font-size:4.5rem;font-weight:700;letter-spacing:.3em;font-family:monospace;line-height:1.15"
SEEN = "cls_teacher_seen"  # (state, round) the page was drawn for; the desk redraws the page when it changes


def start_form(store) -> None:
    st.markdown("Run the masked-word game for a whole class. Students join on their phones with a short code, "
                "everyone guesses the hidden word, and after each round you reveal what the class guessed beside "
                "what BERT guesses. You set the pace: **show the sentence → students guess → close → reveal**.")
    lm = current_model()
    if not lm.has_mlm_head:
        st.warning("The model picked in the sidebar has no masked-language-model head; pick one that has.")
        return
    if st.query_params.get("set"):  # "Run as a class game" from the playground: that saved set, preselected
        st.session_state.setdefault("cls_source", SAVED)
        st.session_state.setdefault("cls_set_id", st.query_params["set"])
    source = st.radio("Sentences", [BUILTIN, OWN, SAVED], horizontal=True, key="cls_source")
    sentences: list[str] = []
    if source == BUILTIN:
        n = st.slider("Rounds", 3, len(game.BUILTIN_SENTENCES), game.GAME_ROUNDS, key="cls_rounds")
        sentences = random.Random().sample(list(game.BUILTIN_SENTENCES), n)
    elif source == OWN:
        st.caption("One sentence per line; put **{braces}** around the word to hide, e.g. `The {cat} sat on the mat.`")
        st.session_state.setdefault("cls_own", "\n".join(game.BUILTIN_SENTENCES[:5]))
        items, problems = game.parse_sentence_set(st.text_area("Your sentences", key="cls_own", height=160))
        for p in problems[:5]:
            st.warning(ui.md(p))
        sentences = [it.source for it in items]
        if sentences and st.button("Save this set for later", key="cls_save", icon=":material/bookmark_add:"):
            try:
                st.session_state["cls_saved_id"] = store.save_set(sentences)
            except ClassError as e:
                st.error(str(e))
        if st.session_state.get("cls_saved_id"):
            st.success(f"Saved as **{st.session_state['cls_saved_id']}**: pick *{SAVED}* and type this id next time.")
    else:
        sid = st.text_input("Id of the saved set", key="cls_set_id", max_chars=16, placeholder="e.g. K7MXR3TA")
        if sid.strip():
            try:
                sentences = store.load_set(sid)
                first = game.parse_game_sentence(sentences[0]).plain
                st.caption(f"{len(sentences)} sentences, first: {ui.md(first)}")
            except ClassError as e:
                st.error(str(e))
    model = "the bundled model" if lm.name == BUNDLED else ui.md(lm.name)
    st.caption(f"The class plays against {model} (the sidebar's choice), {len(sentences)} rounds.")
    if st.button("Start the class", type="primary", icon=":material/groups:", disabled=not sentences,
                 key="cls_start"):
        try:
            t = store.create_class(sentences, lm.name)
        except ClassError as e:
            st.error(str(e))
            return
        st.query_params.pop("set", None)
        st.query_params.update({"class": t.code, "key": t.key})
        st.rerun()


def qr_png(url: str) -> bytes:
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="png", scale=8, border=2)
    return buf.getvalue()


def header(v: ClassView) -> None:
    """Join address, code and QR code: large in the lobby, one line once the game runs (QR in a pop-over)."""
    addr = ui.student_address("join?" + urllib.parse.urlencode({"class": v.code}))
    where = ui.md(addr.url.split("/join?")[0] + "/join")
    if v.state == LOBBY:
        left, right = st.columns([3, 1], vertical_alignment="center")
        with left:
            st.markdown(f"### Join at **{where}** with the code")
            st.markdown(f"<div style='{CODE_CSS}'>{v.code}</div>", unsafe_allow_html=True)  # our alphabet only
            st.code(addr.url, language=None)
        right.image(qr_png(addr.url), caption="Scan to join", width=230)
    else:
        left, right = st.columns([5, 1], vertical_alignment="center")
        left.markdown(f"#### Join at **{where}** with the code **{v.code}**")
        with right.popover("QR code", icon=":material/qr_code_2:"):
            st.image(qr_png(addr.url), caption=addr.url, width=230)
    if addr.note:
        (st.caption if addr.reachable else st.warning)(addr.note)


def teacher_link(v: ClassView, key: str) -> None:
    base = (st.context.url or "").split("?")[0]
    with st.expander("Teacher link (keep it private: it runs this class)", icon=":material/key:"):
        st.caption("Open it in another tab or on another device to run the class from there.")
        st.code(f"{base}?{urllib.parse.urlencode({'class': v.code, 'key': key})}", language=None)


def act(action, *args) -> None:
    try:
        action(*args)
        st.session_state.pop("cls_msg", None)
    except ClassError as e:
        st.session_state["cls_msg"] = str(e)


def controls(store, v: ClassView, key: str) -> None:
    lm = ui.class_model(v.model_name)
    cols = st.columns(3, vertical_alignment="bottom")
    if v.state == LOBBY:
        cols[0].button("Show the first sentence", type="primary", icon=":material/play_arrow:", key="cls_open",
                       on_click=act, args=(store.open_next, v.code, key, lm), width="stretch")
    elif v.state == OPEN:
        cols[0].button("Close guessing", type="primary", icon=":material/lock:", key="cls_close",
                       on_click=act, args=(store.close, v.code, key), width="stretch")
    elif v.state == CLOSED:
        cols[0].button("Reveal", type="primary", icon=":material/visibility:", key="cls_reveal",
                       on_click=act, args=(store.reveal, v.code, key), width="stretch")
    elif v.state == REVEALED:
        last = v.current >= v.n_rounds
        cols[0].button("Final standings" if last else "Next sentence", type="primary", key="cls_next",
                       icon=":material/flag:" if last else ":material/arrow_forward:", width="stretch",
                       on_click=act, args=(store.open_next, v.code, key, lm))
    if v.state in (OPEN, CLOSED):
        cols[1].button("Skip this sentence", icon=":material/skip_next:", key="cls_skip",
                       on_click=act, args=(store.skip, v.code, key, lm), width="stretch")
    if v.state != OVER:
        cols[2].button("End the class", icon=":material/stop:", key="cls_end",
                       on_click=act, args=(store.end, v.code, key), width="stretch")
    if st.session_state.get("cls_msg"):
        st.warning(ui.md(st.session_state["cls_msg"]))


def counts(v: ClassView) -> None:
    round_open = v.state in (OPEN, CLOSED)
    m = st.columns(2)
    m[0].metric("Joined", v.n_players)
    m[1].metric("Guessed this round", f"{v.n_guessed} of {v.n_players}" if round_open else "–")
    st.markdown("**Leaderboard** (points count once a round is revealed)")
    ui.standings_table(v.standings, round_open)


def dashboard(store, code: str, key: str) -> None:
    """The teacher's desk: round, controls, sentence, reveal, counts and leaderboard. It is one fragment that
    polls the database (``ui.teacher_beat``), with the controls inside it: a click and a poll are then requests
    for the same fragment, which Streamlit queues and merges (a click's trigger survives a poll that comes with
    it), instead of a full-page rerun racing the fragment's."""
    try:
        v = store.teacher_view(code, key)
    except ClassError as e:
        st.error(str(e))
        return
    if (v.state, v.current) != st.session_state.get(SEEN):
        st.rerun()  # the class moved on (this click or another teacher tab): header and polling beat change too
    m = st.columns([1, 1.3, 4], vertical_alignment="bottom")
    m[0].metric("Round", f"{v.current} of {v.n_rounds}" if v.current else f"– of {v.n_rounds}")
    m[1].metric("Now", {LOBBY: "joining", OPEN: "guessing", CLOSED: "closed", REVEALED: "revealed",
                        OVER: "finished"}[v.state])
    with m[2]:
        controls(store, v, key)
    if v.state == OVER:
        st.subheader("Final standings")
        ui.standings_table(v.standings, False)
        st.download_button("Download all guesses (CSV)", store.guesses_csv(v.code, key),
                           f"class-{v.code}-guesses.csv", mime="text/csv", icon=":material/download:",
                           key="cls_csv", on_click="ignore")
        return
    if v.masked and v.state in (OPEN, CLOSED):
        st.markdown("### " + ui.masked_sentence(v.masked))
        with st.expander("Answer (for you; hidden from the screen until you open it)"):
            st.markdown(f"**{ui.md(v.answer)}**")
    chart, board = st.columns([3, 2], gap="large")
    if v.reveal:
        with chart:
            ui.reveal_view(v.reveal, key="cls_reveal_chart")
    elif v.state == LOBBY:
        chart.info("Students open the address above (or scan the code) and pick a nickname. Start when everyone "
                   "is in; late students can still join.", icon=":material/groups:")
    elif v.state == OPEN:
        chart.info("Students are guessing. Close guessing when everyone is in (or when time is up).",
                   icon=":material/edit:")
    with board:
        counts(v)


store = ui.class_store()
if store is None:
    st.stop()
code, key = st.query_params.get("class"), st.query_params.get("key")
if not (code and key):
    st.title("Class game")
    start_form(store)
    st.stop()
try:
    view = store.teacher_view(code, key)
except ClassError as e:  # NotAllowed included: a wrong or old teacher link
    st.error(str(e))
    if st.button("Start a new class", key="cls_new"):
        st.query_params.clear()
        st.rerun()
    st.stop()
st.session_state[SEEN] = (view.state, view.current)
header(view)
st.fragment(dashboard, run_every=ui.teacher_beat(view.state))(store, code, key)
teacher_link(view, key)
