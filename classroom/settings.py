"""Class-game settings, read from the environment (one setting each, sensible defaults).

- ``BERT_LAB_DB``: any SQLAlchemy URL (``postgresql+psycopg://user:pw@host/db``); default an SQLite file
  ``classroom.db`` under the user's data directory (``$XDG_DATA_HOME/bert-lab`` or ``~/.local/share/bert-lab``).
- ``BERT_LAB_PUBLIC_URL``: the address students type (e.g. ``https://bert.school.example``), when the app sits
  behind a proxy or a name the server cannot know by itself.
- ``BERT_LAB_CLASS_HOURS``: how long a class lives after it is started (default 12 hours); older ones are deleted.
"""

from __future__ import annotations

import os
from pathlib import Path

DB_ENV, PUBLIC_URL_ENV, HOURS_ENV = "BERT_LAB_DB", "BERT_LAB_PUBLIC_URL", "BERT_LAB_CLASS_HOURS"
DEFAULT_HOURS = 12.0


def data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "bert-lab"


def database_url() -> str:
    """The class database: ``$BERT_LAB_DB``, or an SQLite file under the user's data directory."""
    return os.environ.get(DB_ENV) or f"sqlite:///{data_dir() / 'classroom.db'}"


def public_url() -> str | None:
    url = (os.environ.get(PUBLIC_URL_ENV) or "").strip().rstrip("/")
    return url or None


def class_hours() -> float:
    try:
        return max(0.01, float(os.environ.get(HOURS_ENV, DEFAULT_HOURS)))
    except ValueError:
        return DEFAULT_HOURS
