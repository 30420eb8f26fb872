"""The text toolkit: stop words and tokenising, one copy for keyword search, term proximity,
attribution, dataset building and the suites.

Three word lists, each a superset's worth of reason to leave a word out:

- :data:`STOP_WORDS`: function words. Keyword search leaves them out of a query (they barely
  move BM25 and scoring every chunk that holds them is slow).
- :data:`FILLER_WORDS`: words a claim is built from that are evidence of nothing ("however",
  "several", "first"). Attribution does not look for them in a source.
- :data:`GENERIC_WORDS`: words every deep-learning paper uses ("model", "table", "results").
  Questions made from a passage do not ask about them.
"""

from __future__ import annotations

import re

STOP_WORDS = frozenset((  # noqa: SIM905 - a paragraph reads better than quoted words
    "a an the of and or in on at to for with by from as into about is are was were be been "
    "being am do does did done has have had how what which who whom whose why when where it its "
    "this that these those than then there their them they we you your our us i me my he she his "
    "her not no nor can could should would will shall may might must so such very also just"
).split())

FILLER_WORDS = frozenset((  # noqa: SIM905
    "because however between through without within against another especially therefore "
    "although whether several different important possible usually see yes if but while after "
    "before overall finally first second thus here all any each both more most some other over "
    "only"
).split())

GENERIC_WORDS = frozenset((  # noqa: SIM905
    "model models method methods approach paper results result table figure section data "
    "used using uses use based show shows shown one two three new task tasks work works "
    "problem setting system systems framework"
).split())

_TOKEN = re.compile(r"\w+")
# A term as a paper writes it: a word, a name with digits, dots or hyphens ("Qwen2.5-7B",
# "GPT-4o"), or a number with its decimal or thousands marks and a per cent sign.
_TERM = re.compile(r"[A-Za-z][A-Za-z0-9.+-]*[A-Za-z0-9]|\d+(?:[.,]\d+)*%?")


def tokens(text: str) -> list[str]:
    """The lower-case word tokens of ``text`` (letters, digits and underscores)."""
    return _TOKEN.findall(text.lower())


def keywords(text: str) -> list[str]:
    """The words of ``text`` a search looks for: tokens of two characters or more that are not
    stop words, each once, in order."""
    return list(dict.fromkeys(w for w in tokens(text) if len(w) > 1 and w not in STOP_WORDS))


def terms(text: str) -> list[str]:
    """The terms of ``text`` as written (case kept): words, names such as "Qwen2.5-7B" whole,
    and numbers such as "33,511" or "8.5%"."""
    return _TERM.findall(text)


def stem(word: str) -> str:
    """A light suffix stripper, applied to question and passage alike (only equality
    matters): "summaries" ~ "summary", "training" ~ "trained" ~ "train", "samples" ~
    "sampled". Porter's stemmer (what FTS5 uses) is in nltk, whose import takes 2 s."""
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) > 4 and word.endswith("ed"):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word
