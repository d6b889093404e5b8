"""Presenter mode (a sidebar toggle, or ``?present=1``) and a stepper whose step lives in the URL (``?step=N``).

    presenter.setup()                      # app.py, once per run: the toggle, the large-type style, an exit button
    if not presenter.presenting(): knobs()  # a page hides its fine knobs on the projector
    i = presenter.stepper("lesson_step", n) # 0-based step; the URL shows it 1-based, so a link jumps to it
    presenter.step_buttons("lesson_step", n)
"""

from __future__ import annotations

import streamlit as st

KEY = "presenter"
_FROM_URL = "_presenter_from_url"
# Large type for a projector; the sidebar (with its fine knobs) out of the way. Constant CSS, no user text.
CSS = """<style>
html { font-size: 19px; }
section[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="collapsedControl"],
header[data-testid="stHeader"] { display: none !important; }
[data-testid="stMainBlockContainer"], .block-container
  { padding-top: 2.4rem !important; padding-bottom: 2rem !important; max-width: 1500px; }
h1, h2 { font-size: 1.75rem !important; padding-top: 0.2rem !important; }
.st-key-presenter_leave { position: fixed; top: 0; right: 0.8rem; z-index: 999990; width: auto !important; }
</style>"""  # the leave button sits in the top corner, above the page's first row


def presenting() -> bool:
    return bool(st.session_state.get(KEY, False))


def _leave() -> None:
    st.session_state[KEY] = False


def setup() -> None:
    """The sidebar toggle (``?present=1`` turns it on once per session), and in presenter mode the style and a
    small 'leave' button at the top of the page (the sidebar is hidden then)."""
    if not st.session_state.get(_FROM_URL):
        st.session_state[_FROM_URL] = True
        if st.query_params.get("present") == "1":
            st.session_state[KEY] = True
    st.sidebar.toggle("Presenter mode", key=KEY,
                      help="Large type for a projector, sidebar hidden, one idea per screen (also: add ?present=1 "
                           "to the address).")
    if presenting():
        st.query_params["present"] = "1"
        st.html(CSS)
        st.button("Leave presenter mode", icon=":material/close_fullscreen:", on_click=_leave, type="tertiary",
                  key="presenter_leave")
    elif "present" in st.query_params:
        del st.query_params["present"]


def step_from_url(raw, n: int) -> int:
    """A 1-based step from the URL, clamped to 1..n, as a 0-based index (junk -> 0)."""
    try:
        return min(max(int(str(raw).strip()), 1), n) - 1
    except (TypeError, ValueError):
        return 0


def stepper(key: str, n: int, param: str = "step") -> int:
    """The current 0-based step of a walk of ``n`` steps. The URL's ``?{param}=N`` (1-based) sets it on the page's
    first run in a session; afterwards the URL follows the step, so the address bar always jumps back here."""
    done = f"_{key}_from_url"
    if not st.session_state.get(done):
        st.session_state[done] = True
        if param in st.query_params:
            st.session_state[key] = step_from_url(st.query_params[param], n)
    i = min(max(int(st.session_state.get(key, 0)), 0), n - 1)
    st.session_state[key] = i
    st.query_params[param] = str(i + 1)
    return i


def _move(key: str, delta: int, n: int) -> None:
    st.session_state[key] = min(max(int(st.session_state.get(key, 0)) + delta, 0), n - 1)


def step_buttons(key: str, n: int, where: str = "bottom", label: str = "Step") -> None:
    """Back / 'Step k of n' / Next. ``where`` keeps the widget keys apart when the buttons show twice."""
    i = int(st.session_state.get(key, 0))
    c1, c2, c3 = st.columns([1, 2, 1], vertical_alignment="center")
    c1.button("Back", key=f"{key}_back_{where}", icon=":material/arrow_back:", disabled=i <= 0,
              on_click=_move, args=(key, -1, n), width="stretch")
    c2.progress((i + 1) / n, text=f"{label} {i + 1} of {n}")
    c3.button("Next", key=f"{key}_next_{where}", icon=":material/arrow_forward:", disabled=i >= n - 1,
              on_click=_move, args=(key, 1, n), type="primary", width="stretch")
