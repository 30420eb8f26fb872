"""Term proximity for questions that ask for a number.

"How many samples are in the training split?" is answered by a passage that holds the
question's words next to a number: "We split all cases into train (70%, 3177 samples)". BM25
scores a chunk by its words wherever they stand, and a MiniLM vector barely sees a number (on
the real dev papers, dense search ranked such answers 41st to 55th). This ranks the candidates
that the other rankings found by the best short stretch of each: the IDF-weighted share of the
question's terms it holds, with a number counted as one more term.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

from litcore.text import stem, tokens

WINDOW = 12  # tokens: a clause, or a table row (bench/grounding.py: 12 and 20 > 30 > 50)

_DIGIT = re.compile(r"\d")
# Reference markers ("[14, 16, 39]", "[5-7]") are numbers that answer nothing.
_REFERENCES = re.compile(r"\[\s*\d+(?:\s*[,;\u2013-]\s*\d+)*\s*\]")
# "how many", "how long": the word after "how" says what kind of answer is wanted, not what
# the answer is about, so it is not looked for in the passage.
_HOW = re.compile(r"(?i)\bhow\s+(many|much|long|large|big|often|fast|high|low)\b")
_QUANTITY = re.compile(
    _HOW.pattern + r"|(?i:\b(?:scores?|accuracy|f1|bleu|rouge(?:-\w+)?|perplexity|precision|recall|"
    r"percentage|percent|number|count|size|ratio|rate)\b)")


def answer_form_words(query: str) -> set[str]:
    """The words that only say what kind of answer is wanted ("many" of "how many")."""
    return {m.group(1).lower() for m in _HOW.finditer(query)}


def asks_quantity(query: str) -> bool:
    """Whether the question's answer is a number ("how many ...", "what F1 ...")."""
    return bool(_QUANTITY.search(query))


def proximity_ranking(query: str, query_words: Sequence[str], chunks: dict[int, str],
                      idf: Callable[[str], float]) -> list[tuple[int, float]]:
    """(chunk id, score in [0, 1]), best first, for the ``chunks`` given (id -> text).

    A chunk's score is that of its best stretch of ``WINDOW`` tokens: the IDF (``idf`` of a
    query word) of the distinct question terms in it, plus one term of average weight for a
    number the question does not hold (reference markers left out), over the most a stretch
    could hold. Chunks with no question term score nothing and are left out."""
    asked = answer_form_words(query)
    weights: dict[str, float] = {}
    for word in query_words:  # single lower-case words (litcore.text.keywords)
        if word not in asked:
            weights.setdefault(stem(word), idf(word))
    if not weights:
        return []
    number = sum(weights.values()) / len(weights)
    total = sum(weights.values()) + number
    stems: dict[str, str] = {}
    scored = []
    for cid, text in chunks.items():
        # only where question terms and numbers stand matters: slide over those places
        marks: list[tuple[int, str]] = []
        for pos, token in enumerate(tokens(_REFERENCES.sub(" ", text))):
            t = stems.get(token) or stems.setdefault(token, stem(token))
            if t in weights:
                marks.append((pos, t))
            elif _DIGIT.search(t):
                marks.append((pos, ""))  # "": a number
        best = _best_window(marks, weights, number)
        if best:
            scored.append((cid, best / total))
    return sorted(scored, key=lambda x: -x[1])


def _best_window(marks: list[tuple[int, str]], weights: dict[str, float],
                 number: float) -> float:
    """The best score of any ``WINDOW`` consecutive tokens, from the marked places; a
    stretch holding a number but no question term scores nothing."""
    best = 0.0
    lo = 0
    for hi in range(len(marks)):
        while marks[hi][0] - marks[lo][0] >= WINDOW:
            lo += 1
        held = {t for _, t in marks[lo:hi + 1]}
        terms = sum(weights[t] for t in held if t)
        if terms:
            best = max(best, terms + (number if "" in held else 0.0))
    return best


def bm25_idf(df: int, n_rows: int) -> float:
    """BM25's IDF of a term held by ``df`` of ``n_rows`` rows."""
    return math.log(1 + (n_rows - df + 0.5) / (df + 0.5))
