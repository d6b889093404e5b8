"""Putting user text into Markdown safely: it must show as typed, never as formatting, HTML, links or LaTeX."""

_MD_SPECIAL = set("\\`*_{}[]()#+-.!|<>~$&:")


def md_escape(text: str) -> str:
    """Backslash-escape every Markdown-active character, so ``st.markdown`` shows the text literally."""
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in str(text))
