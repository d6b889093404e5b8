"""Share a view: a page's state lives in its URL (``st.query_params``), so the link restores what is on screen.

    FIELDS = [UrlField("text", "att_text"), UrlField("layer", "att_layer", int)]
    sync_url(FIELDS, "att")          # at the top of the page, before its widgets

On the page's first run in a session the URL's values become session state (a value that does not parse is
ignored); on every run the current values are written back, so the address bar always holds the view.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st

MAX_TEXT = 8000  # characters of one text kept in a URL (longer texts are shared cut)


def _text(value: Any) -> str:
    return str(value)[:MAX_TEXT]


@dataclass(frozen=True)
class UrlField:
    param: str  # the name in the URL
    key: str  # the session-state key (usually a widget's)
    parse: Callable[[str], Any] = str  # URL text -> state value (may raise ValueError/KeyError)
    show: Callable[[Any], str] = _text  # state value -> URL text


def flag(value: Any) -> str:
    return "1" if value else "0"


def parse_flag(raw: str) -> bool:
    return raw == "1"


def sync_url(fields: Sequence[UrlField], page: str) -> None:
    """Restore ``fields`` from the URL once per session for ``page``, then write their current values to it."""
    done = f"_url_restored_{page}"
    if not st.session_state.get(done):
        st.session_state[done] = True
        for f in fields:
            raw = st.query_params.get(f.param)
            if raw is None:
                continue
            try:
                st.session_state[f.key] = f.parse(raw)
            except (ValueError, KeyError):
                pass
    for f in fields:
        if f.key in st.session_state and st.session_state[f.key] is not None:
            st.query_params[f.param] = f.show(st.session_state[f.key])
