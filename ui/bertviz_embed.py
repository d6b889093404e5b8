"""bertviz's head view and model view as self-contained HTML documents for ``st.iframe``.

bertviz loads require.js, d3 and jQuery from cdnjs.cloudflare.com. Two things are added around its output:
- user text stays text: '<', '>' and '&' in tokens reach the page only as JSON escapes (\\u003c …), so a token can
  never close the <script> block that carries the data;
- a visible note replaces the blank box when the browser cannot reach the CDN (offline classroom, firewall).
No Streamlit here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

import numpy as np
import torch

CDN_HOST = "cdnjs.cloudflare.com"
NOTE_ID = "bertlab-cdn-note"
OFFLINE_NOTE = (f"This interactive bertviz view needs scripts from {CDN_HOST} (require.js, d3, jQuery), and this "
                "browser could not load them, probably because there is no internet connection. The attention "
                "heatmaps, the all-heads grid and the statistics on this page work fully offline.")

_NOTE_HTML = f"""
<style>body.bertlab-offline [id^="bertviz-"] {{ display: none; }}</style>
<div id="{NOTE_ID}" style="font-family:sans-serif;font-size:14px;padding:10px 14px;border-radius:8px;
     background:#eef3fb;color:#1f3a5f;border:1px solid #c6d6ee;margin-bottom:8px">
  Loading the bertviz view from {CDN_HOST}…
</div>
<script>
(function() {{
  var failed = false;
  function showNote() {{
    if (failed) return; failed = true;
    var n = document.getElementById("{NOTE_ID}");
    if (n) {{ n.textContent = {json.dumps(OFFLINE_NOTE)}; n.style.background = "#fff4e5"; n.style.color = "#663c00";
             n.style.borderColor = "#ffd8a8"; n.setAttribute("data-offline", "1"); }}
    document.body.classList.add("bertlab-offline");  // hides bertviz's empty controls, also those parsed later
  }}
  window.addEventListener("error", function(e) {{
    var src = (e && e.target && e.target.src) || (e && e.message) || "";
    if (/require|define|cdnjs|Script error|d3|jquery/i.test(String(src))) showNote();
  }}, true);
  var started = Date.now();
  var timer = setInterval(function() {{
    if (document.querySelector("svg")) {{
      clearInterval(timer);
      var n = document.getElementById("{NOTE_ID}"); if (n && !failed) n.style.display = "none";
    }} else if (Date.now() - started > 8000) {{ clearInterval(timer); showNote(); }}
  }}, 250);
}})();
</script>
"""


def _safe_tokens(tokens: Sequence[str], marker: str) -> list[str]:
    return [str(t).replace("&", f"{marker}AMP").replace("<", f"{marker}LT").replace(">", f"{marker}GT")
            for t in tokens]


def _unmark(doc: str, marker: str) -> str:
    return doc.replace(f"{marker}AMP", "\\u0026").replace(f"{marker}LT", "\\u003c").replace(f"{marker}GT", "\\u003e")


def _drop_params_comment(doc: str) -> str:
    """bertviz's template comment also says PYTHON_PARAMS, so the data is pasted twice: keep only the code."""
    head, sep, rest = doc.partition("; // HACK: ")
    if not sep:
        return doc
    return head + ";" + rest[rest.find("\n"):]


def _as_bertviz(attentions: np.ndarray, decimals: int) -> tuple[torch.Tensor, ...]:
    """(L, H, T, T) -> bertviz's tuple of (1, H, T, T) tensors, rounded so the JSON stays small."""
    a = torch.as_tensor(np.asarray(attentions), dtype=torch.float64)
    a = torch.round(a, decimals=decimals)
    return tuple(a[i].unsqueeze(0) for i in range(a.shape[0]))


def bertviz_html(attentions: np.ndarray, tokens: Sequence[str], view: str = "head",
                 sentence_b_start: int | None = None, layers: Sequence[int] | None = None,
                 decimals: int = 2) -> str:
    """The bertviz ``head`` or ``model`` view as one HTML document (with the offline note and escaped tokens).

    layers: restrict to these layers (keeps the page light; the head view of one layer is enough for a class).
    """
    from bertviz import head_view, model_view

    marker = "BLX" + uuid.uuid4().hex[:12]
    att = _as_bertviz(np.asarray(attentions), decimals)
    toks = _safe_tokens(tokens, marker)
    include = None if layers is None else [int(x) for x in layers]
    if view == "head":
        out = head_view(att, toks, sentence_b_start=sentence_b_start, include_layers=include, html_action="return")
    elif view == "model":
        out = model_view(att, toks, sentence_b_start=sentence_b_start, include_layers=include,
                         html_action="return", display_mode="light")
    else:
        raise ValueError(f"view must be 'head' or 'model', got {view!r}")
    body = _unmark(_drop_params_comment(out.data), marker)
    return ("<!doctype html><html><head><meta charset='utf-8'></head>"
            "<body style='margin:0;background:white'>" + _NOTE_HTML + body + "</body></html>")


BUDGET_BYTES = 1_500_000  # keep one interaction under 2 MB including the rest of the page
_BYTES_PER_WEIGHT = 6.0  # "0.01, " after rounding to 2 decimals (measured: about 5.5)
_BASE_BYTES = 45_000  # bertviz's own script and markup


def bertviz_bytes(view: str, n_layers: int, n_heads: int, n_tokens: int, pair: bool) -> int:
    """Rough size of the HTML document (for a pair bertviz adds A→A, B→B, A→B, B→A blocks: twice the data)."""
    layers = 1 if view == "head" else n_layers
    copies = 2 if pair else 1
    return int(_BASE_BYTES + copies * layers * n_heads * n_tokens**2 * _BYTES_PER_WEIGHT)


def bertviz_size(view: str, n_layers: int, n_heads: int, n_tokens: int, pair: bool) -> tuple[bool, str]:
    """Whether the view fits the page budget, and if not, a message saying how short the text must be."""
    size = bertviz_bytes(view, n_layers, n_heads, n_tokens, pair)
    if size <= BUDGET_BYTES:
        return True, ""
    layers = 1 if view == "head" else n_layers
    copies = 2 if pair else 1
    n_max = int(((BUDGET_BYTES - _BASE_BYTES) / (copies * layers * n_heads * _BYTES_PER_WEIGHT)) ** 0.5)
    name = "head view" if view == "head" else "model view"
    return False, (f"bertviz's {name} would send about {size / 1e6:.1f} MB to the browser for {n_tokens} tokens. "
                   f"It is shown for up to {n_max} tokens with this model: shorten the text (or try the "
                   f"{'head view' if view == 'model' else 'plotly views in the other tabs'}).")
