"""Streamlit pieces shared by the class game's teacher and student pages: the store, the model, the views."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bert_core import LoadedModel, game
from classroom import ClassStore, ClassUnavailable, Reveal, Standing, settings
from classroom.address import JoinAddress, app_address, lan_ip
from ui import figures_classroom as figs
from ui.state import cached_model
from ui.text import md_escape

POLL_TEACHER_S = 1.0  # how often the teacher's desk asks the database while students join or guess
POLL_TEACHER_IDLE_S = 5.0  # the same while only a teacher can move the class on (another teacher tab)
POLL_STUDENT_S = 2.0  # the same on each student's page (30 of them: a slower beat)


def teacher_beat(state: str) -> float:
    """Seconds between the teacher desk's polls: fast while students join or guess, slow otherwise."""
    return POLL_TEACHER_S if state in ("lobby", "open") else POLL_TEACHER_IDLE_S


@st.cache_resource(show_spinner=False)
def _store(url: str) -> ClassStore:
    return ClassStore.from_url(url)


def class_store(quiet: bool = False) -> ClassStore | None:
    """The process's store (one engine per database URL), or None after showing (unless ``quiet``) why the
    database is unusable."""
    try:
        return _store(settings.database_url())
    except ClassUnavailable as e:
        if not quiet:
            st.error(str(e), icon=":material/database:")
        return None


def student_address(query: str) -> JoinAddress:
    """The address students open for ``query`` (``join?class=…``, ``playground?set=…``): the public URL when one
    is configured, else this server's network address; never a localhost their devices cannot reach."""
    return app_address(st.context.url, query, settings.public_url(), st.get_option("server.address"),
                       st.get_option("server.port"), lan_ip())


def class_model(name: str) -> LoadedModel:
    """The class's BERT (the one the teacher had picked), from the shared read-only cache."""
    return cached_model(name, "auto", "fp32")


def md(text) -> str:
    return md_escape(str(text)).replace("\n", " ")


def masked_sentence(masked: str) -> str:
    """A round's sentence with its [MASK] highlighted, user text escaped."""
    return ":orange-background[**\\[MASK\\]**]".join(md(p) for p in masked.split("[MASK]"))


def standings_table(standings: list[Standing], round_open: bool) -> None:
    """The leaderboard as a static table (names as plain text; readable on a projector)."""
    if not standings:
        st.caption("No one has joined yet.")
        return
    df = pd.DataFrame({"#": [s.rank for s in standings], "nickname": [s.nickname for s in standings],
                       "points": [s.score for s in standings]})
    if round_open:
        df["guessed"] = ["✓" if s.guessed else "…" for s in standings]
    st.table(df, hide_index=True, border="horizontal")


def reveal_view(r: Reveal, key: str) -> None:
    """The answer, the class's guesses beside BERT's top-k, and the points."""
    rank = f"BERT ranks it {r.answer_rank:,}" if r.answer_rank else "BERT's vocabulary cannot spell it"
    st.markdown("#### " + f":green-background[**{md(r.answer)}**]".join(md(p) for p in r.masked.split("[MASK]")))
    st.caption(f"The hidden word was **{md(r.answer)}** ({rank}). {r.n_guesses} guesses. Points come from BERT's rank "
               f"for each guess, not from matching the original word: {game.points_rule()}.")
    fig = figs.class_vs_bert([w.word for w in r.words], [w.count for w in r.words], [w.points for w in r.words],
                             [t for t, _ in r.bert_top], [p for _, p in r.bert_top], r.answer,
                             title=f"Round {r.number}: the class against BERT")
    st.plotly_chart(fig, key=key, config={"displayModeBar": False})  # on a phone the toolbar covered the title


def joined_student() -> bool:
    """True when this session is a student in a class that is not over (their navigation shows only the game)."""
    code, token = st.query_params.get("class"), st.query_params.get("p")
    if not (code and token):
        return False
    try:
        return _store(settings.database_url()).pulse(code).state != "over"
    except Exception:  # noqa: BLE001 - no database or no such class: the normal app, whose pages say why
        return False
