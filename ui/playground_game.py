"""The playground's "Guessing game" tab: renders a ``bert_core.game.GameState`` and hands the player's moves to it.

The whole game lives in one session key (GAME_KEY) as an immutable GameState; the callbacks below replace it.
"""

from __future__ import annotations

import urllib.parse

import pandas as pd
import streamlit as st

from bert_core import BUNDLED, InputError, game, lens, mlm
from ui import figures_mlm as figs
from ui.text import md_line as md
from ui.text import pct

GAME_KEY = "pg_game"  # the GameState
MSG_KEY = "pg_game_msg"  # why the last guess was refused
CODE_KEY = "pg_game_code"  # the ?game= link already started in this session
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
    """A teacher's link (?game=...) starts that set once per link."""
    code = st.query_params.get("game")
    if not code or st.session_state.get(CODE_KEY) == code:
        return
    st.session_state[CODE_KEY] = code
    try:
        items, _problems = game.parse_sentence_set("\n".join(game.decode_set(code)))
    except InputError as e:
        st.error(str(e))
        return
    if not items:
        st.error("This game link holds no usable sentences.")
        return
    start(game.GameState.start(items, f"a shared set of {len(items)} sentences"))


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
        code = game.encode_set([it.source for it in items])
        if st.button(f"Play these {len(items)} sentences", key="pg_game_play_own", icon=":material/play_arrow:"):
            st.session_state[CODE_KEY] = code
            st.query_params["game"] = code
            if lm.name != BUNDLED:
                st.query_params["model"] = lm.name  # the address bar is a share link too
            start(game.GameState.start(items, f"your own set of {len(items)} sentences"))
            st.rerun()
        base = (st.context.url or "").split("?")[0] or "http://localhost:8501/playground"
        pin = "" if lm.name == BUNDLED else f"&model={urllib.parse.quote(lm.name, safe='')}"
        st.caption("Share link (copy it with the button on the right). It also picks "
                   f"{'the bundled model' if not pin else md(lm.name)} for everyone who opens it, so the whole "
                   "class plays against the same BERT:")
        st.code(f"{base}?game={code}{pin}", language=None, wrap_lines=True)


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
    chart.plotly_chart(figs.topk_bar([t for t, _ in res.top], [p for _, p in res.top], "BERT's top 10", hl),
                       key="pg_game_chart")
    side.caption("Orange bar: your guess · green bar: the original word (when they are in BERT's top 10).")
    with st.expander("Layer by layer: when did BERT settle on its answer?", icon=":material/stacked_line_chart:"):
        st.caption("The logit lens reads BERT's guess off every layer (see *Explore a sentence*). Lines: BERT's "
                   "final answer, your guess and the original word (first piece for words of several pieces).")
        ll = lens.logit_lens(lm, mlm.prepare(lm, item.masked), 0, [g.word, a.word])
        st.plotly_chart(figs.logit_lens_figure(ll.layers, ll.tracked, ll.top_tokens, ll.top_probs),
                        key="pg_game_lens")
    side.button("See the final score" if s.last_round else "Next round", key="pg_game_next", type="primary",
                on_click=on_next, icon=":material/flag:" if s.last_round else ":material/arrow_forward:")


def game_tab(lm) -> None:
    st.markdown("BERT hides a word. **Guess what BERT thinks goes there** — not necessarily the word the sentence "
                f"had! Points come from BERT's rank for your guess: {game.points_rule()}.")
    load_shared_set()
    if GAME_KEY not in st.session_state:
        start(game.GameState.builtin())
    s = state()
    c1, c2, c3 = st.columns([1, 1, 2])
    c1.metric("Round", f"{min(s.round + 1, s.n_rounds)} of {s.n_rounds}")
    c2.metric("Score", s.score)
    c3.caption(f"Playing {s.label}.")
    if s.over:
        game_over_view(s)
    else:
        st.markdown("#### " + masked_markdown(s.item.masked))
        (guess_view if s.result is None else reveal_view)(s, lm)
    teacher_panel(lm)
