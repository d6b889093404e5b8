"""AppTest for Home: its 'Where to start' cards link every page of the app's navigation, in one place."""

from __future__ import annotations

import ast
from pathlib import Path

from apptest_support import APP, errors, new_app


def navigation_pages() -> set[str]:
    """The url paths app.py's navigation lists (read from its source), Home and the student-only join page aside."""
    tree = ast.parse(Path(APP).read_text())
    paths = {k.value.value for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "Page"
             for k in n.keywords if k.arg == "url_path"}
    return paths - {"join"}


def test_home_links_every_page_once():
    at = new_app()
    at.run()
    assert not errors(at)
    links = [p.proto.page for p in at.get("page_link")]
    assert sorted(links) == sorted(navigation_pages())  # each page once, none missing
    labels = [p.proto.label for p in at.get("page_link")]
    assert labels[0] == "**Guided lesson**" and "**Class game**" in labels
