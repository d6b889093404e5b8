"""The class game's small rules: join codes, secrets, nicknames, CSV cells. No database, no Streamlit."""

from __future__ import annotations

import csv
import hashlib
import io
import secrets
import unicodedata
from collections.abc import Iterable, Sequence

from .db import CODE_LEN, NICK_MAX

# No look-alikes: no 0/O/Q/D, 1/I/L/J, 2/Z, 5/S, 8/B, U/V.
CODE_ALPHABET = "ACEFGHKMNPRTWXY34679"
SET_ID_LEN = 8
_ALLOWED_FORMAT = {"\u200d", "\ufe0f"}  # zero-width joiner, emoji variation selector: parts of emoji, allowed


class ClassError(Exception):
    """A message for the user (bad input, wrong state); never a traceback."""


class NotAllowed(ClassError):
    """A key or token that does not hold the right to this action."""


class ClassUnavailable(ClassError):
    """The class database cannot be read or written."""


def new_code(length: int = CODE_LEN) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def normalize_code(text: str) -> str:
    """What a student typed -> a code to look up: upper case, spaces and dashes dropped."""
    return "".join(c for c in str(text or "").upper() if c.isalnum())[:16]


def new_secret() -> str:
    """A teacher key or player token: 192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


def digest(secret: str) -> str:
    """What the database keeps of a key or token (a leaked database does not hand out teacher rights)."""
    return hashlib.sha256(str(secret or "").encode()).hexdigest()


def clean_nickname(name: str) -> tuple[str, str]:
    """A typed nickname -> (shown name, uniqueness key); ClassError for an empty, long or invisible-character name.

    Any visible text is allowed (HTML, emoji, any script): pages show it only as text.
    """
    name = " ".join(unicodedata.normalize("NFC", str(name or "")).split())
    if not name:
        raise ClassError("Pick a nickname (1 to 24 characters).")
    if any(unicodedata.category(c)[0] == "C" and c not in _ALLOWED_FORMAT for c in name):
        raise ClassError("Nicknames cannot hold control or invisible characters.")
    if len(name) > NICK_MAX:
        raise ClassError(f"Nicknames are at most {NICK_MAX} characters (this one has {len(name)}).")
    return name, name.casefold()


def safe_cell(value) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP: prefix =, +, -, @, tab, CR with ')."""
    s = "" if value is None else str(value)
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


def to_csv(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL)
    w.writerow(header)
    for row in rows:
        w.writerow([safe_cell(v) for v in row])
    return buf.getvalue()
