"""Putting user text and numbers into Markdown safely: text must show as typed, never as formatting, HTML, links
or LaTeX."""

_MD_SPECIAL = set("\\`*_{}[]()#+-.!|<>~$&:")


def md_escape(text: str) -> str:
    """Backslash-escape every Markdown-active character, so ``st.markdown`` shows the text literally."""
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in str(text))


def md_line(text) -> str:
    """User text made literal for one line of ``st.markdown`` (newlines become spaces)."""
    return md_escape(str(text)).replace("\n", " ")


def pct(p: float) -> str:
    """A probability for people: '12.3%', '0.04%' below 0.1%, and '<0.01%' below that (never '4.2e-05')."""
    if p >= 0.001:
        return f"{p:.1%}"
    return f"{p:.2%}" if p >= 0.0001 else "<0.01%"


def signed_pct(x: float) -> str:
    """A change in probability, in percentage points: '+1.5 pts', '-0.03 pts', or '±<0.01 pts' when smaller."""
    if abs(x) >= 0.001:
        return f"{x * 100:+.1f} pts"
    return f"{x * 100:+.2f} pts" if abs(x) >= 0.0001 else "±<0.01 pts"


PIECES_NOTE = ("A token starting with `##` is a *piece* that continues a word (`un ##bel ##ie ##va ##bly`): BERT "
               "may guess a piece when a word is split into several.")


def has_pieces(tokens) -> bool:
    """True when some token is a '##' continuation piece (then show PIECES_NOTE beside it)."""
    return any(str(t).startswith("##") for t in tokens)


# --- one numbering: every layer and head a user sees counts from 1 ---------------------------------------------
# Code indexes from 0 (l0, h0); people read "layer 1" = the first encoder layer. Where hidden states are shown,
# "embeddings" is the output before layer 1 (hidden_states[0]).

def layer_name(l0: int) -> str:
    """'layer 1' for the first encoder layer (index 0)."""
    return f"layer {int(l0) + 1}"


def head_name(h0: int) -> str:
    """'head 1' for the first head (index 0)."""
    return f"head {int(h0) + 1}"


def head_label(l0: int, h0: int) -> str:
    """The short name of a head, as in the knock-out ranking: 'L3·H5' = layer index 2, head index 4."""
    return f"L{int(l0) + 1}·H{int(h0) + 1}"


def hidden_state_name(i: int) -> str:
    """A hidden state's name: index 0 is the embeddings, index i the output of layer i."""
    return "embeddings" if int(i) == 0 else layer_name(int(i) - 1)


def explorer_params(text: str, l0: int, h0: int, model: str | None = None) -> dict[str, str]:
    """The Attention explorer's URL state for one head on one text (indexes 0-based, as the explorer stores them;
    ``model`` makes a fresh tab load the same checkpoint)."""
    q = {"text": str(text), "layer": str(int(l0)), "head": str(int(h0)), "tab": "head"}
    return q | ({"model": str(model)} if model else {})


def explorer_link(text: str, l0: int, h0: int, model: str | None = None) -> str:
    """A relative URL that opens this head in the Attention explorer (in a new tab: a fresh session reads it)."""
    from urllib.parse import urlencode

    return "attention?" + urlencode(explorer_params(text, l0, h0, model))
