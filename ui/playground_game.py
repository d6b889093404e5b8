"""The playground's "Guessing game" tab: renders a ``bert_core.game.GameState`` and hands the player's moves to it.

The whole game lives in one session key (GAME_KEY) as an immutable GameState; the callbacks below replace it.
A teacher's own sentences are shared with a short link (``?set=ID``, the set saved in the class database); the long
``?game=`` link, which carries the sentences themselves, keeps working and is the fallback without a database.
"""

from __future__ import annotations

import urllib.parse

import pandas as pd
import streamlit as st

from bert_core import BUNDLED, InputError, game, lens, mlm
from classroom import ClassError
from ui import classroom as cls
from ui import figures_mlm as figs
from ui.text import md_line as md
from ui.text import PIECES_NOTE, has_pieces, pct

GAME_KEY = "pg_game"  # the GameState
MSG_KEY = "pg_game_msg"  # why the last guess was refused
NO_TOOLBAR = {"displayModeBar": False}  # on a phone plotly's toolbar would cover the chart's title
CODE_KEY = "pg_game_code"  # the ?game= or ?set= link already started in this session
SET_IDS = "pg_game_set_ids"  # sentences (joined) -> the short id they were saved under in this session
SKIPPED = "–"


def state() -> game.GameState:
    return st.session_state[GAME_KEY]


def start(new: game.GameState) -> None:
    st.session_state[GAME_KEY] = new
    st.session_state[MSG_KEY] = None


def masked_markdown(text: str, fill: str | None = None) -> str:
    """A sentence with its [MASK] highlighted (orange), or with ``fill`` written in its place (green)."""
    slot = ":orange-background[**\\[MASK\\]**]" if fill is None else f":green-background[**{md(fill)}**]"
    return slot.join(md(part) for part in text.split("[MASK]"))


def history_table(rows: tuple[game.HistoryRow, ...]) -> pd.DataFrame:
    """The rounds played, as the player reads them: a skipped round shows '–' (never None)."""
    return pd.DataFrame([{
        "round": r.round, "sentence": r.sentence, "your guess": "(skipped)" if r.skipped else r.guess,
        "BERT's probability": SKIPPED if r.prob is None else pct(r.prob),
        "rank": SKIPPED if r.rank is None else f"{r.rank:,}", "points": r.points,
        "BERT's top word": r.bert_top or SKIPPED} for r in rows])


# --- moves (widget callbacks) -----------------------------------------------------------------------------------------
def on_guess(lm) -> None:
    try:
        start(state().guess(lm, st.session_state.get("pg_game_guess", "")))
    except InputError as e:
        st.session_state[MSG_KEY] = str(e)


def on_skip() -> None:
    start(state().skip())


def on_next() -> None:
    start(state().next())


def on_again() -> None:
    start(state().restart())


def load_shared_set() -> None:
    """A teacher's link starts that set once per link: ``?set=ID`` (a saved set) or ``?game=...`` (the long form)."""
    sid, code = st.query_params.get("set"), st.query_params.get("game")
    link = f"set:{sid}" if sid else code
    if not link or st.session_state.get(CODE_KEY) == link:
        return
    st.session_state[CODE_KEY] = link
    try:
        if sid:
            store = cls.class_store()  # None: it has shown why the database cannot be used
            sentences = store.load_set(sid) if store is not None else []
        else:
            sentences = game.decode_set(code)
        items, _problems = game.parse_sentence_set("\n".join(sentences))
    except (InputError, ClassError) as e:
        st.error(str(e))
        return
    if not items:
        st.error("This game link holds no usable sentences.")
        return
    start(game.GameState.start(items, f"a shared set of {len(items)} sentences"))


def save_short_id(sources: list[str]) -> str | None:
    """Save the set (once per session and content) and return its short id; None when the class database cannot
    be used (then the long link is the share link)."""
    ids = st.session_state.setdefault(SET_IDS, {})
    text = "\n".join(sources)
    if text not in ids:
        store = cls.class_store(quiet=True)
        try:
            ids[text] = store.save_set(sources) if store is not None else None
        except ClassError:  # the database cannot be written (ClassUnavailable included): the long link still works
            ids[text] = None
    return ids[text]


def share_link(lm, sources: list[str]) -> None:
    """On request: the short share link (``?set=ID``, the public address), and a link to run the set as a class.
    Without a usable database: the long ``?game=`` link."""
    text = "\n".join(sources)
    if text not in st.session_state.get(SET_IDS, {}):
        if not st.button("Share these sentences", key="pg_game_share", icon=":material/share:"):
            return
    sid = save_short_id(sources)
    pin = "" if lm.name == BUNDLED else f"&model={urllib.parse.quote(lm.name, safe='')}"
    query = f"set={sid}" if sid else f"game={game.encode_set(sources)}"
    addr = cls.student_address(f"playground?{query}{pin}")
    st.caption("Share link (copy it with the button on the right). It also picks "
               f"{'the bundled model' if not pin else md(lm.name)} for everyone who opens it, so the whole "
               "class plays against the same BERT:")
    st.code(addr.url, language=None, wrap_lines=True)
    if addr.note:
        (st.caption if addr.reachable else st.warning)(addr.note)
    if sid:
        st.page_link("app_pages/classroom.py", label="Run these sentences as a class game (join code, leaderboard)",
                     icon=":material/groups:", query_params={"set": sid})
    else:
        st.caption("The class database cannot be used, so this is the long link and a class game cannot start.")


# --- views --------------------------------------------------------------------------------------------------------
def teacher_panel(lm) -> None:
    with st.expander("Teacher: play your own sentences and share them with the class", icon=":material/school:"):
        st.markdown("One sentence per line; put **{braces}** around the word to hide, e.g. "
                    "`The {cat} sat on the mat.` (without braces the last word of 3+ letters is hidden). "
                    "Everyone who opens the link plays the same sentences in the same order.")
        st.session_state.setdefault("pg_game_own", "\n".join(game.BUILTIN_SENTENCES[:5]))
        own = st.text_area("Your sentences", key="pg_game_own", height=150)
        items, problems = game.parse_sentence_set(own)
        for p in problems[:5]:
            st.warning(md(p))
        if not items:
            return
        sources = [it.source for it in items]
        if st.button(f"Play these {len(items)} sentences", key="pg_game_play_own", icon=":material/play_arrow:"):
            sid = save_short_id(sources)
            link = f"set:{sid}" if sid else game.encode_set(sources)
            st.session_state[CODE_KEY] = link
            st.query_params.pop("game" if sid else "set", None)
            st.query_params["set" if sid else "game"] = sid or link
            if lm.name != BUNDLED:
                st.query_params["model"] = lm.name  # the address bar is a share link too
            start(game.GameState.start(items, f"your own set of {len(items)} sentences"))
            st.rerun()
        share_link(lm, sources)


def game_over_view(s: game.GameState) -> None:
    st.success(f"Game over! You scored **{s.score}** of {s.max_score} points.")
    if s.history:
        st.dataframe(history_table(s.history), hide_index=True)
    st.button("Play again", key="pg_game_again", type="primary", icon=":material/replay:", on_click=on_again)


def guess_view(s: game.GameState, lm) -> None:
    """The round before the guess: the guess box and 'skip'."""
    with st.form("pg_game_form", clear_on_submit=True, border=False):
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        c1.text_input("Your guess (one word)", key="pg_game_guess", placeholder="type a word and press Enter")
        c2.form_submit_button("Guess", type="primary", on_click=on_guess, args=(lm,), width="stretch",
                              icon=":material/send:")
    if st.session_state.get(MSG_KEY):
        st.warning(md(st.session_state[MSG_KEY]))
    st.columns([1, 3])[0].button("Skip this one", key="pg_game_skip", icon=":material/skip_next:", on_click=on_skip)


def verdict(rank: int):
    """(message box, icon, words) for a guess BERT ranks ``rank``."""
    if rank == 1:
        return st.success, ":material/target:", "BERT's top choice!"
    if rank <= 10:
        return st.success, ":material/thumb_up:", "Close to BERT."
    if rank <= 200:
        return st.info, ":material/sentiment_satisfied:", "BERT finds it possible."
    return st.warning, ":material/sentiment_dissatisfied:", "BERT would not write that."


def reveal_view(s: game.GameState, lm) -> None:
    """The round after the guess: points, the original word, BERT's top 10 and its layer-by-layer answer."""
    res, item = s.result, s.item
    g, a = res.guess, res.answer
    box, icon, words = verdict(g.rank)
    box(f"{words} You guessed **{md(g.word)}**: BERT gives it {pct(g.prob)} "
        f"(rank {g.rank:,} of {lm.config.vocab_size:,}) → **+{res.points} points**"
        + (f" (including {game.ANSWER_BONUS} for the original word)." if res.is_answer else "."), icon=icon)
    if not a.error:
        st.markdown(f"The sentence had **{md(a.word)}** — BERT gives it {pct(a.prob)} (rank {a.rank:,}):")
    st.markdown("> " + masked_markdown(item.masked, fill=item.answer))
    hl = {t: figs.GUESS for t in g.pieces[:1]}
    hl.update({t: figs.ANSWER for t in a.pieces[:1]})
    chart, side = st.columns([3, 2], gap="large")
    words_only = side.toggle("Whole words only", key="pg_game_words",
                             help="Leave out '##' pieces: only words a player could have typed.")
    top = res.top_words if words_only and res.top_words else res.top
    chart.plotly_chart(figs.topk_bar([t for t, _ in top], [p for _, p in top],
                                     "BERT's top 10 whole words" if words_only else "BERT's top 10", hl),
                       key="pg_game_chart", config=NO_TOOLBAR)
    side.caption("Orange bar: your guess · green bar: the original word (when they are in BERT's top 10).")
    if not words_only and has_pieces(t for t, _ in top):
        side.caption(PIECES_NOTE + " Switch on *Whole words only* to see the words you could have typed.")
    with st.expander("Layer by layer: when did BERT settle on its answer?", icon=":material/stacked_line_chart:"):
        st.caption("The logit lens reads BERT's guess off every layer (see *Explore a sentence*). Lines: BERT's "
                   "final answer, your guess and the original word (first piece for words of several pieces).")
        ll = lens.logit_lens(lm, mlm.prepare(lm, item.masked), 0, [g.word, a.word])
        st.plotly_chart(figs.logit_lens_figure(ll.layers, ll.tracked, ll.top_tokens, ll.top_probs), config=NO_TOOLBAR,
                        key="pg_game_lens")
    side.button("See the final score" if s.last_round else "Next round", key="pg_game_next", type="primary",
                on_click=on_next, icon=":material/flag:" if s.last_round else ":material/arrow_forward:")


def game_tab(lm) -> None:
    """The question comes first (on a phone it must be on the first screen); round, score and rules below it."""
    load_shared_set()
    if GAME_KEY not in st.session_state:
        start(game.GameState.builtin())
    s = state()
    if s.over:
        game_over_view(s)
    else:
        st.markdown("#### " + masked_markdown(s.item.masked))
        (guess_view if s.result is None else reveal_view)(s, lm)
    c1, c2, c3 = st.columns([1, 1, 2])
    c1.metric("Round", f"{min(s.round + 1, s.n_rounds)} of {s.n_rounds}")
    c2.metric("Score", s.score)
    c3.caption(f"Playing {s.label}.")
    st.markdown("BERT hides a word. **Guess what BERT thinks goes there** — not necessarily the word the sentence "
                f"had! Points come from BERT's rank for your guess: {game.points_rule()}.")
    teacher_panel(lm)
