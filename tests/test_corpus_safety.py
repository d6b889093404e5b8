"""Classroom-safe tweets, on the real rows of the bundled CSV: HTML entities unescaped, links shown as [link],
broken characters mended, profane tweets left out (by better-profanity's word list) and counted for the user; the
MLM corpus shares the same cleaning."""

from __future__ import annotations

import csv
import re

import pytest
from better_profanity import profanity

from bert_core import corpus
from bert_core import finetune as ft


@pytest.fixture(scope="module")
def raw_rows() -> list[dict]:
    with open(ft.sentiment_csv_path(), encoding="utf-8", errors="replace", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def safe() -> ft.LabelledData:
    return ft.sentiment_data()


def test_html_entities_come_out_as_the_characters(raw_rows, safe):
    raw = next(r["text"] for r in raw_rows if "&amp;" in r["text"] and r["text"].count("&") == r["text"].count("&amp;")
               and "\ufffd" not in r["text"] and not corpus.is_profane(r["text"]))
    tidy = " ".join(raw.replace("&amp;", "&").split())
    assert tidy in set(safe.texts)
    assert sum(1 for r in raw_rows if re.search(r"&(amp|lt|gt|quot);", r["text"])) > 1000  # the CSV is full of them
    assert not any(re.search(r"&(amp|lt|gt|quot|#\d+);", t) for t in safe.texts)


def test_links_are_shown_as_link_and_tweets_that_differ_only_in_a_link_are_one(raw_rows, safe):
    def plain(t: str) -> bool:
        return "&" not in t and t.isascii() and not corpus.is_profane(t)

    t_co = r"http://t\.co/\w+(?=\s|$)"
    raw = next(r["text"] for r in raw_rows if re.search(t_co, r["text"]) and plain(r["text"]))
    assert " ".join(re.sub(t_co, "[link]", raw).split()) in set(safe.texts)
    assert sum(1 for r in raw_rows if "http" in r["text"]) > 10_000  # the CSV's links
    assert not any(re.search(r"http|\bwww\.\S", t, re.IGNORECASE) for t in safe.texts)
    # the CSV's cut-off and glued links too
    assert corpus.links_as_words("so...http://t.co/x and www.a.com http:/\u2026 HTTPS://T.CO end") == \
        "so... [link] and [link] [link] [link] end"
    seen: dict[str, str] = {}
    twin = next(t for r in raw_rows if plain(t := " ".join(r["text"].split())) and "http" in t
                and seen.setdefault(re.sub(r"http\S*", "", t), t) != t)  # another raw row, another link
    assert ft.load_sentiment()["text"].tolist().count(corpus.links_as_words(twin)) == 1


def test_broken_apostrophes_and_quotes_are_mended_and_emoji_debris_goes(raw_rows, safe):
    texts = set(safe.texts)
    raw = next(r["text"].replace("\ufffd", "") for r in raw_rows if r["text"].startswith("I don\u0562_"))
    assert raw.startswith("I don\u0562__t want either! RT @clayhebert") and raw.isascii() is False
    assert re.sub(r"http\S+", "[link]", raw.replace("\u0562__", "'")) in texts  # "I don't want either! RT ..."
    assert sum(1 for r in raw_rows if not r["text"].isascii()) > 1000  # the CSV's broken characters
    assert all(t.isascii() for t in safe.texts)
    broken = "\u0562_\u0381@Kid_Ink: you\u0562__ll see\u0562__\u045d _\u0589_\u058d_ AC_\u7946DC"
    assert corpus.without_mojibake(broken) == '"@Kid_Ink: you\'ll see" AC DC'  # _ goes only when glued to debris


def test_a_tweet_with_a_swear_word_is_left_out_and_counted(raw_rows, safe):
    rude = next(r["text"] for r in raw_rows if r["text"].startswith("stupid autonomous car  if you can drive"))
    assert profanity.contains_profanity(rude)  # the library's own check agrees
    assert corpus.is_profane(rude) and " ".join(rude.split()) not in set(safe.texts)
    n_left_out = len(ft.load_sentiment()) - len(safe.texts)
    assert 1000 < n_left_out < 2500
    assert safe.dropped == f"{n_left_out:,} tweets with swear words left out (better-profanity's word list)."
    unsafe = ft.sentiment_data(safe=False)
    assert len(unsafe.texts) == len(ft.load_sentiment()) and unsafe.dropped == ""


def test_the_count_is_for_the_kept_classes():
    binary = ft.sentiment_data(labels=ft.BINARY)
    df = ft.load_sentiment()
    kept = df[df["label"].isin(ft.BINARY)]
    n = len(kept) - len(binary.texts)
    assert binary.dropped.startswith(f"{n:,} tweets with swear words left out")
    assert ft.load_data(ft.QUICK_DEMO).dropped == binary.dropped  # what the lab shows


def test_clean_words_pass_and_two_word_entries_are_caught():
    assert not corpus.is_profane("What a lovely day for a drive")
    assert corpus.is_profane("That was SHIT, honestly")
    words = corpus.profane_words()
    two = next(w for w in sorted(words) if len(w.split()) == 2 and w.replace(" ", "").isalpha()
               and not any(x in words for x in w.split()))
    assert corpus.is_profane(f"well {two} indeed")
    assert not any(corpus.is_profane(f"well {x} indeed") for x in two.split())
    assert corpus.tidy_tweet("  Tom &amp; Jerry &lt;3  ") == "Tom & Jerry <3"
    assert corpus.tidy_tweet("R&amp;amp;D -&amp;gt; Google&#39;s") == "R&D -> Google's"  # escaped twice in the CSV
