"""Masked-word playground: what BERT writes in place of [MASK], why, and a guessing game for a class."""

from __future__ import annotations

import random
import urllib.parse

import numpy as np
import pandas as pd
import streamlit as st

from bert_core import BUNDLED, InputError, MissingHeadError, game, lens, mlm
from ui import figures_mlm as figs
from ui.state import current_model
from ui.text import md_escape

MAX_WORD_PILLS = 60  # words offered for whole-word masking
MAX_JOINT_MASKS = 40  # joint fill runs one forward pass per mask
EXPLORE, GAME = "Explore a sentence", "Guessing game"


def md(text) -> str:
    """User text made literal for st.markdown (one line): every markdown/HTML character backslash-escaped."""
    return md_escape(str(text)).replace("\n", " ")


def filled_markdown(mi: mlm.MaskedInput, tokens: list[str], color: str) -> str:
    """The sentence with the filled-in words highlighted."""
    return "".join(f":{color}-background[**{md(t)}**]" if filled else md(t)
                   for t, filled in mlm.render_segments(mi, tokens))


def masked_markdown(text: str) -> str:
    """A sentence with its [MASK]s highlighted."""
    return ":orange-background[**\\[MASK\\]**]".join(md(part) for part in text.split("[MASK]"))


def pct(p: float) -> str:
    return f"{p:.1%}" if p >= 0.001 else f"{p:.2g}"


def signed_pct(x: float) -> str:
    """A change in probability, in percentage points."""
    return f"{x * 100:+.1f} pts" if abs(x) >= 0.001 else f"{x * 100:+.2g} pts"


# --- explore ------------------------------------------------------------------------------------------------------
def read_sentence(lm) -> mlm.MaskedInput | None:
    """The sentence box and the word picker -> a MaskedInput, or None after showing a hint."""
    text = st.text_area("Sentence (write [MASK] where BERT should guess a word)", key="pg_text", height=80,
                        max_chars=20000)
    try:
        ws = mlm.words(lm, text)
    except InputError as e:
        st.info(str(e), icon=":material/edit:")
        return None
    hidden = []
    if ws:
        shown = ws[:MAX_WORD_PILLS]
        key = f"pg_hide_{abs(hash(text)) % 10**9}"  # a new sentence starts with a fresh selection
        hidden = st.pills("…or click words to hide them (all of a word's pieces are masked together)",
                          [w.index for w in shown], format_func=lambda i: next(w.text for w in shown if w.index == i),
                          selection_mode="multi", key=key) or []
        if len(ws) > MAX_WORD_PILLS:
            st.caption(f"Showing the first {MAX_WORD_PILLS} of {len(ws)} words.")
    try:
        mi = mlm.mask_words(lm, text, hidden)
    except mlm.NoMaskError as e:
        st.info(str(e), icon=":material/lightbulb:")
        return None
    except InputError as e:
        st.info(str(e), icon=":material/edit:")
        return None
    if mi.truncated:
        cut = (f" {mi.n_cut} [MASK]{'s' if mi.n_cut > 1 else ''} after the cut {'are' if mi.n_cut > 1 else 'is'} "
               "ignored.") if mi.n_cut else ""
        st.warning(f"Your text is {mi.encoded.n_original} tokens long; BERT reads only the first "
                   f"{len(mi.encoded.tokens)}, so the rest was cut.{cut}", icon=":material/content_cut:")
    if mi.hidden_words:
        orig = dict(mi.original_tokens)
        groups = [g for g in mi.groups if g[0] in orig]  # the hidden words' groups, left to right like hidden_words
        st.caption("Hidden: " + ", ".join(
            f"**{md(w)}**" + (f" ({len(g)} pieces: {md(' '.join(orig[p] for p in g))})" if len(g) > 1 else "")
            for w, g in zip(mi.hidden_words, groups)))
    return mi


def mask_label(mi: mlm.MaskedInput, i: int) -> str:
    """'mask 2 (the ___ and)': the mask's number and its neighbours, to tell masks apart."""
    toks, special = mi.encoded.tokens, mi.encoded.special
    p = int(mi.positions[i])
    before = next((toks[j] for j in range(p - 1, -1, -1) if not special[j] and toks[j] != "[MASK]"), "")
    after = next((toks[j] for j in range(p + 1, len(toks)) if not special[j] and toks[j] != "[MASK]"), "")
    return f"mask {i + 1} ({before} ___ {after})".replace("( ", "(").replace(" )", ")")


def predictions_view(lm, mi: mlm.MaskedInput) -> None:
    M = len(mi.positions)
    chart, side = st.columns([3, 2], gap="large")
    with side:
        st.markdown("BERT reads the whole sentence at once and gives every word in its vocabulary a probability for "
                    "each [MASK]. The bars are its favourite words. BERT never sees what was there: a word it ranks "
                    "highly *fits the context*, even if it is not the word you had in mind.")
        top_k = st.slider("How many of BERT's guesses to show", 3, 30, 10, key="pg_topk")
        i = 0
        if M > 1:
            i = st.selectbox("Chart for", range(M), format_func=lambda k: mask_label(mi, k), key="pg_pred_mask")
    pred = mlm.predict(lm, mi, top_k)
    original = dict(mi.original_tokens).get(int(mi.positions[i]))  # the hidden word's piece: green
    highlight = {original: figs.ANSWER} if original else {}
    with chart:
        st.plotly_chart(figs.topk_bar(pred.top_tokens[i], pred.top_probs[i], f"Top {top_k} for {mask_label(mi, i)}",
                                      highlight), key="pg_topk_chart")
        if original in pred.top_tokens[i]:
            st.caption(f"Green: the word that was there ('{md(original)}'), if it is among the bars.")
    if M > 1:
        st.subheader("Several masks: two ways to fill them")
        if M >= 8:
            st.info(f"{M} masks: with so many words hidden, BERT has little context left and its guesses get vague.",
                    icon=":material/info:")
        ind = mlm.independent_fill(lm, mi, pred)
        st.markdown("**Independent** — each [MASK] takes its own top word from one pass; the masks never see each "
                    "other's choices, so the result can be ungrammatical:")
        st.markdown("> " + filled_markdown(mi, ind.tokens, "blue"))
        if M <= MAX_JOINT_MASKS:
            joint = mlm.joint_fill(lm, mi)
            st.markdown("**Joint (the sentence BERT would write)** — fill the mask BERT is surest about, run BERT "
                        "again with that word written in, and repeat, most confident first:")
            st.markdown("> " + filled_markdown(mi, joint.tokens, "green"))
            st.caption("Fill order: " + " → ".join(f"{md(joint.tokens[k])} ({pct(joint.probs[k])})"
                                                 for k in joint.order))
        else:
            st.caption(f"The joint fill runs BERT once per mask; it is skipped above {MAX_JOINT_MASKS} masks.")
        rows = [{"mask": mask_label(mi, k), **{f"#{j + 1}": f"{t} ({pct(p)})" for j, (t, p) in
                                               enumerate(pred.top(k)[:3])}} for k in range(M)]
        st.dataframe(pd.DataFrame(rows), hide_index=True)

    st.subheader("Your candidates")
    st.caption("Type words you think fit; BERT scores each one in the chosen slot. A word BERT splits into several "
               "pieces is scored piece by piece, left to right: the slot gets one [MASK] per piece and "
               "P(word) = P(piece 1) × P(piece 2 | piece 1) × … Its rank is how many single vocabulary tokens BERT "
               "likes more (approximate for multi-piece words).")
    c1, c2 = st.columns([3, 1])
    typed = c1.text_input("Candidate words, separated by commas", key="pg_cands", placeholder="e.g. mat, sofa, moon")
    g = 0
    if len(mi.groups) > 1:
        g = c2.selectbox("Slot", range(len(mi.groups)), key="pg_cand_slot",
                         format_func=lambda k: mask_label(mi, sum(len(x) for x in mi.groups[:k])))
    cands = list(dict.fromkeys(w.strip() for w in typed.split(",") if w.strip()))[:20]
    if cands:
        scores = mlm.score_candidates(lm, mi, cands, g)
        good = [s for s in scores if not s.error]
        for s in scores:
            if s.error:
                st.warning(md(s.error))
        if good:
            st.plotly_chart(figs.candidates_bar([s.word for s in good], [s.prob for s in good],
                                                [s.rank for s in good], [s.pieces for s in good]),
                            key="pg_cand_chart")


def logit_lens_view(lm, mi: mlm.MaskedInput) -> None:
    st.markdown("BERT builds its answer layer by layer. The **logit lens** applies the final prediction head to the "
                "vector at the [MASK] after *every* layer, as if BERT had to answer early. Watch when its final "
                "answer climbs to rank 1: early layers mostly know about the word's position and neighbours, the "
                "meaning usually arrives in the upper layers.")
    c1, c2 = st.columns([1, 2])
    i = 0
    if len(mi.positions) > 1:
        i = c1.selectbox("Mask", range(len(mi.positions)), format_func=lambda k: mask_label(mi, k), key="pg_lens_mask")
    guess = c2.text_input("Also follow this word", key="pg_lens_word", placeholder="e.g. dog")
    track = [guess] if guess.strip() else []
    if guess.strip():
        try:
            mlm.word_pieces(lm, guess)
        except InputError as e:
            st.warning(md(e))
    ll = lens.logit_lens(lm, mi, i, track)
    st.plotly_chart(figs.logit_lens_figure(ll.layers, ll.tracked, ll.top_tokens, ll.top_probs),
                    key="pg_lens_chart")


def ablation_view(lm, mi: mlm.MaskedInput) -> None:
    L, H = lm.config.num_hidden_layers, lm.config.num_attention_heads
    st.markdown("Each layer has several attention heads. Knock some out (their output is set to zero) and see "
                "whether BERT still finds its word. **KL** measures how far the whole probability distribution "
                "moved (0 = not at all). Below, every head is knocked out on its own to find the heads this "
                "prediction leans on most.")
    i = 0
    if len(mi.positions) > 1:
        i = st.selectbox("Mask", range(len(mi.positions)), format_func=lambda k: mask_label(mi, k), key="pg_abl_mask")
    c1, c2 = st.columns(2)
    layers = c1.multiselect("Knock out whole layers (all their heads)", list(range(1, L + 1)), key="pg_abl_layers",
                            format_func=lambda n: f"layer {n}")
    heads = c2.multiselect("Knock out single heads", [(l, h) for l in range(1, L + 1) for h in range(1, H + 1)],
                           key="pg_abl_heads", format_func=lambda t: f"L{t[0]}·H{t[1]}")
    hm = np.ones((L, H), dtype=np.float32)
    for n in layers:
        hm[n - 1] = 0
    for l, h in heads:
        hm[l - 1, h - 1] = 0
    ab = lens.ablate(lm, mi, hm, i)
    if hm.all():
        st.caption("Nothing knocked out yet: pick layers or heads above.")
    else:
        m1, m2, m3 = st.columns(3)
        m1.metric(f"P('{md(ab.target)}') with all heads", pct(ab.p_before))
        m2.metric(f"P('{md(ab.target)}') knocked out", pct(ab.p_after), delta=signed_pct(ab.p_after - ab.p_before))
        m3.metric("KL(before ‖ after)", f"{ab.kl:.3f} nats")
        top = np.argsort(-ab.before)[:8].tolist()
        top += [j for j in np.argsort(-ab.after)[:3].tolist() if j not in top]
        st.plotly_chart(figs.ablation_bars(mlm.token_strings(lm, top), ab.before[top], ab.after[top],
                                           "BERT's top words before and after"), key="pg_abl_chart")
    imp = head_ranking(lm, mi, i)
    st.subheader(f"Most important heads for '{md(imp.target)}'")
    st.plotly_chart(figs.head_importance_heatmap(imp.drop, imp.target), key="pg_abl_heatmap")
    st.caption(f"Red: BERT needs the head ('{md(imp.target)}' loses probability without it); blue: the word gets "
               f"*more* likely without it. With all heads P('{md(imp.target)}') = {pct(imp.p_base)}.")
    rows = [{"head": f"L{l + 1}·H{h + 1}", f"P('{imp.target}') without it": pct(imp.p_target[l, h]),
             "change": signed_pct(-d), "relative change": f"{-d / imp.p_base:+.0%}" if imp.p_base else "",
             "KL (nats)": f"{k:.3g}"} for l, h, d, k in imp.ranking(10)]
    st.dataframe(pd.DataFrame(rows), hide_index=True)


@st.cache_data(max_entries=64, show_spinner=False)
def _head_ranking(_lm, _mi: mlm.MaskedInput, model_key: tuple, ids: tuple, groups: tuple,
                  mask: int) -> lens.HeadImportance:
    return lens.head_importance(_lm, _mi, mask)


def head_ranking(lm, mi: mlm.MaskedInput, mask: int) -> lens.HeadImportance:
    """One batched pass per layer; cached per model and input so other widgets don't recompute it."""
    key = (lm.name, str(lm.device), str(lm.dtype))
    return _head_ranking(lm, mi, key, tuple(mi.encoded.input_ids.tolist()), mi.groups, mask)


def explore_tab(lm) -> None:
    st.session_state.setdefault("pg_text", "The cat sat on the [MASK].")
    mi = read_sentence(lm)
    if mi is None:
        return
    pred_t, lens_t, abl_t = st.tabs(["Predictions", "Logit lens: layer by layer", "Knock out heads"],
                                    key="pg_view", on_change="rerun")
    if pred_t.open is not False:
        with pred_t:
            predictions_view(lm, mi)
    if lens_t.open:
        with lens_t:
            logit_lens_view(lm, mi)
    if abl_t.open:
        with abl_t:
            ablation_view(lm, mi)


# --- the game -----------------------------------------------------------------------------------------------------
def start_game(sources: list[str], label: str, shuffle: bool) -> None:
    order = list(range(len(sources)))
    if shuffle:
        random.Random().shuffle(order)  # own generator: other modules may seed the global one
        order = order[:game.GAME_ROUNDS]
    st.session_state.update(pg_game_set=list(sources), pg_game_order=order, pg_game_round=0, pg_game_score=0,
                            pg_game_history=[], pg_game_result=None, pg_game_label=label, pg_game_msg=None)


def load_shared_set() -> None:
    """A teacher's link (?game=...) starts that set once per link."""
    code = st.query_params.get("game")
    if not code or st.session_state.get("pg_game_code") == code:
        return
    st.session_state["pg_game_code"] = code
    try:
        items, problems = game.parse_sentence_set("\n".join(game.decode_set(code)))
    except InputError as e:
        st.error(str(e))
        return
    if not items:
        st.error("This game link holds no usable sentences.")
        return
    start_game([it.source for it in items], f"a shared set of {len(items)} sentences", shuffle=False)


def submit_guess(lm, item: game.GameItem) -> None:
    guess = st.session_state.get("pg_game_guess", "")
    try:
        res = game.score_guess(lm, item, guess)
    except InputError as e:
        st.session_state["pg_game_msg"] = str(e)
        return
    st.session_state["pg_game_msg"] = None
    st.session_state["pg_game_result"] = res
    st.session_state["pg_game_score"] += res.points
    st.session_state["pg_game_history"].append(
        {"round": st.session_state["pg_game_round"] + 1, "sentence": item.source, "your guess": res.guess.word,
         "BERT's probability": pct(res.guess.prob), "rank": res.guess.rank, "points": res.points,
         "BERT's top word": res.top[0][0]})


def next_round() -> None:
    st.session_state["pg_game_round"] += 1
    st.session_state["pg_game_result"] = None
    st.session_state["pg_game_msg"] = None


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
            st.session_state["pg_game_code"] = code
            st.query_params["game"] = code
            if lm.name != BUNDLED:
                st.query_params["model"] = lm.name  # the address bar is a share link too
            start_game([it.source for it in items], f"your own set of {len(items)} sentences", shuffle=False)
            st.rerun()
        base = (st.context.url or "").split("?")[0] or "http://localhost:8501/playground"
        pin = "" if lm.name == BUNDLED else f"&model={urllib.parse.quote(lm.name, safe='')}"
        st.caption("Share link (copy it with the button on the right). It also picks "
                   f"{'the bundled model' if not pin else md(lm.name)} for everyone who opens it, so the whole "
                   "class plays against the same BERT:")
        st.code(f"{base}?game={code}{pin}", language=None, wrap_lines=True)


def game_tab(lm) -> None:
    st.markdown("BERT hides a word. **Guess what BERT thinks goes there** — not necessarily the word the sentence "
                "had! Points come from BERT's rank for your guess: its top choice scores 100, top 3 scores 70, "
                "top 10 scores 50, top 50 scores 25, top 200 scores 10, plus 20 if you also found the original word.")
    load_shared_set()
    if "pg_game_set" not in st.session_state:
        start_game(list(game.BUILTIN_SENTENCES), "the built-in sentences", shuffle=True)
    ss = st.session_state
    n, r = len(ss["pg_game_order"]), ss["pg_game_round"]
    c1, c2, c3 = st.columns([1, 1, 2])
    c1.metric("Round", f"{min(r + 1, n)} of {n}")
    c2.metric("Score", ss["pg_game_score"])
    c3.caption(f"Playing {ss['pg_game_label']}.")
    if r >= n:
        st.success(f"Game over! You scored **{ss['pg_game_score']}** of {n * (100 + game.ANSWER_BONUS)} points.")
        if ss["pg_game_history"]:
            st.dataframe(pd.DataFrame(ss["pg_game_history"]), hide_index=True)
        if st.button("Play again", key="pg_game_again", type="primary", icon=":material/replay:"):
            start_game(ss["pg_game_set"], ss["pg_game_label"], shuffle=ss["pg_game_label"].startswith("the built"))
            st.rerun()
        teacher_panel(lm)
        return
    try:
        item = game.parse_game_sentence(ss["pg_game_set"][ss["pg_game_order"][r]])
    except InputError as e:
        st.error(md(e))
        return
    st.markdown("#### " + masked_markdown(item.masked))
    res: game.GuessResult | None = ss["pg_game_result"]
    if res is None:
        with st.form("pg_game_form", clear_on_submit=True, border=False):
            c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
            c1.text_input("Your guess (one word)", key="pg_game_guess", placeholder="type a word and press Enter")
            c2.form_submit_button("Guess", type="primary", on_click=submit_guess, args=(lm, item), width="stretch",
                                  icon=":material/send:")
        if ss.get("pg_game_msg"):
            st.warning(md(ss["pg_game_msg"]))
        c = st.columns([1, 3])[0]
        if c.button("Skip this one", key="pg_game_skip", icon=":material/skip_next:"):
            ss["pg_game_history"].append({"round": r + 1, "sentence": item.source, "your guess": "(skipped)",
                                          "BERT's probability": "", "rank": None, "points": 0,
                                          "BERT's top word": ""})
            next_round()
            st.rerun()
    else:
        g, a = res.guess, res.answer
        icon, verdict = ((":material/target:", "BERT's top choice!") if g.rank == 1
                         else (":material/thumb_up:", "Close to BERT.") if g.rank <= 10
                         else (":material/sentiment_satisfied:", "BERT finds it possible.") if g.rank <= 200
                         else (":material/sentiment_dissatisfied:", "BERT would not write that."))
        box = st.success if g.rank <= 10 else st.info if g.rank <= 200 else st.warning
        box(f"{verdict} You guessed **{md(g.word)}**: BERT gives it {pct(g.prob)} "
            f"(rank {g.rank:,} of {lm.config.vocab_size:,}) → **+{res.points} points**"
            + (" (including 20 for the original word)." if res.is_answer else "."), icon=icon)
        if not a.error:
            st.markdown(f"The sentence had **{md(a.word)}** — BERT gives it {pct(a.prob)} (rank {a.rank:,}):")
        st.markdown("> " + f":green-background[**{md(item.answer)}**]".join(md(x) for x in item.masked.split("[MASK]")))
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
        last = r + 1 >= n
        side.button("See the final score" if last else "Next round", key="pg_game_next", type="primary",
                    on_click=next_round, icon=":material/flag:" if last else ":material/arrow_forward:")
    teacher_panel(lm)


# --- page ---------------------------------------------------------------------------------------------------------
st.title("Masked-word playground")
st.markdown("BERT was trained by hiding words in sentences and guessing them back. Here you hide the words: "
            "write **[MASK]** in a sentence or click a word, and see what BERT would put there, how sure it is, "
            "which layers work out the answer and which attention heads it relies on. Then play against it.")
lm = current_model()
if not lm.has_mlm_head:
    shown = "The bundled model (all-MiniLM-L6-v2)" if lm.kind == "bundled" else f"**{md(lm.name)}**"
    st.warning(f"{shown} has no masked-language-model head, so it cannot guess hidden words. Pick a model "
               "with one in the sidebar: for example `bert-base-uncased` (needs a download once) or a local "
               "folder holding a `BertForMaskedLM` / `BertForPreTraining` checkpoint.", icon=":material/block:")
    st.stop()
tab = st.tabs([EXPLORE, GAME], key="pg_tab", on_change="rerun",
              default=GAME if "game" in st.query_params else None)
try:
    if tab[0].open is not False:
        with tab[0]:
            explore_tab(lm)
    if tab[1].open:
        with tab[1]:
            game_tab(lm)
except MissingHeadError as e:
    st.warning(str(e))
