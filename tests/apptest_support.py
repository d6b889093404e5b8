"""Helpers shared by the AppTest files: open a page on a chosen model, read the plotly charts it rendered."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def plotly_array(v) -> np.ndarray:
    """A plotly JSON array: plain list, or {'dtype', 'bdata', 'shape'} base64 typed array -> numpy."""
    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]).newbyteorder("<"))
        shape = v.get("shape")
        if shape:
            a = a.reshape([int(s) for s in str(shape).split(",")] if isinstance(shape, str) else shape)
        return a
    return np.asarray(v)


def charts(at: AppTest) -> list[dict]:
    """The plotly figure specs on the page, in order."""
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.exception]


def new_app(model: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if model is not None:
        at.session_state["model_name"] = str(model)
    return at


def open_page(page: str, model: str | None = None, **state) -> AppTest:
    """Run the app (home) once on ``model`` with ``state`` set, then switch to ``page``."""
    at = new_app(model)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    at.switch_page(page)
    at.run()
    return at


def chart(at: AppTest, title: str) -> dict:
    """The plotly figure spec on the page with this title."""
    specs = charts(at)
    for spec in specs:
        if (spec["layout"].get("title") or {}).get("text") == title:
            return spec
    raise AssertionError(f"no chart titled {title!r}: {[(c['layout'].get('title') or {}).get('text') for c in specs]}")


def wait_for(cond, timeout: float) -> None:
    """Poll ``cond`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
