"""Freely licensed English text that installs offline: WordNet glosses/examples and the fortune cookie files.

Debian packages: ``wordnet-base`` (/usr/share/wordnet) and ``fortunes`` (/usr/share/games/fortunes).
The held-out split is a stable hash of each text, so it never changes between runs or machines.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

WORDNET_DIR = Path("/usr/share/wordnet")
FORTUNES_DIR = Path("/usr/share/games/fortunes")
_SKIP_FORTUNES = {"art", "ascii-art"}  # pictures, not prose

# Everyday cloze probes (not from the corpus) for reporting and for the pretraining lab's probe panel.
PROBE_SENTENCES = [
    "Paris is the capital of [MASK].",
    "The cat sat on the [MASK].",
    "She poured milk into a glass and [MASK] it.",
    "I need to buy some [MASK] at the grocery store.",
    "The sun rises in the [MASK].",
    "He opened the door with a [MASK].",
    "It is very cold in the [MASK], so wear a coat.",
    "The children are playing in the [MASK].",
    "She plays the [MASK] in the school orchestra.",
    "We sleep in a [MASK] at night.",
    "The doctor works in a [MASK].",
    "Water boils at one hundred [MASK].",
    "A week has seven [MASK].",
    "My brother is older [MASK] me.",
    "The teacher wrote the answer on the [MASK].",
    "Birds can [MASK] in the sky.",
    "I drink a cup of [MASK] every morning.",
    "The opposite of hot is [MASK].",
    "He was hungry, so he ate a [MASK].",
    "Please turn off the [MASK] when you leave the room.",
]


def stable_fraction(text: str) -> float:
    """A number in [0, 1) fixed by the text alone."""
    return int(hashlib.md5(text.encode("utf-8")).hexdigest()[:8], 16) / 2**32


def wordnet_texts(root: Path = WORDNET_DIR) -> list[str]:
    """Definitions and quoted example sentences of every WordNet synset."""
    out: list[str] = []
    for pos in ("noun", "verb", "adj", "adv"):
        f = root / f"data.{pos}"
        if not f.is_file():
            continue
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("  ") or "|" not in line:  # licence header
                continue
            gloss = line.split("|", 1)[1].strip()
            examples = re.findall(r'"([^"]+)"', gloss)
            definition = re.sub(r'"[^"]*"', "", gloss).strip(" ;")
            if len(definition.split()) >= 3:
                out.append(definition[0].upper() + definition[1:] + ".")
            out.extend(e.strip() for e in examples if len(e.split()) >= 4)
    return out


def fortune_texts(root: Path = FORTUNES_DIR) -> list[str]:
    """Every fortune of the top-level fortune files, whitespace collapsed."""
    out: list[str] = []
    if not root.is_dir():
        return out
    for f in sorted(root.iterdir()):
        if f.suffix or not f.is_file() or f.name in _SKIP_FORTUNES:
            continue
        for entry in f.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            text = " ".join(entry.replace("%", " ").split())
            if 4 <= len(text.split()) <= 120:
                out.append(text)
    return out


def load_corpus(sources: tuple[str, ...] = ("wordnet", "fortunes"), heldout: float = 0.02) -> tuple[list[str], list[str]]:
    """(train, held-out) texts. Raises FileNotFoundError with the install hint if nothing is installed."""
    texts: list[str] = []
    if "wordnet" in sources:
        texts += wordnet_texts()
    if "fortunes" in sources:
        texts += fortune_texts()
    if not texts:
        raise FileNotFoundError("No corpus found: install Debian's text packages with "
                                "`apt-get install wordnet-base fortunes`.")
    texts = list(dict.fromkeys(texts))  # drop exact duplicates, keep order
    train = [t for t in texts if stable_fraction(t) >= heldout]
    held = [t for t in texts if stable_fraction(t) < heldout]
    return train, held
