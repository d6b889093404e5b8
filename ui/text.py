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
    """A probability for people: '12.3%', or '4.2e-05' when it would round to 0.0%."""
    return f"{p:.1%}" if p >= 0.001 else f"{p:.2g}"


def signed_pct(x: float) -> str:
    """A change in probability, in percentage points."""
    return f"{x * 100:+.1f} pts" if abs(x) >= 0.001 else f"{x * 100:+.2g} pts"
