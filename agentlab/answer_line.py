"""The answer line: the sentence of the sources that best answers the question, quoted and
cited, before the model's own words.

A 135M model often garbles what its sources say ("2 heads" where the passage says 8), while
the retrieval in front of it finds the passage that answers (recall@5 0.96 on the dev papers).
So an answer leads with that passage's best sentence, verbatim: a person reads the source's own
words first, and the model's prose after them is verified sentence by sentence as before.

The sentence is chosen without a model, in microseconds: the share of the question's terms it
holds, each weighed by its rarity in the library, plus, when the question asks for a number
("how many", "what F1": :func:`retrievers.search.proximity.asks_quantity`), a number beside the
question's terms (a number about something else counts for little), plus a little for the
passage's rank.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from agentlab.tables import CAPTION, MARKERS, is_row, tables
from litcore.text import keywords, stem, tokens

_NUMBER = re.compile(r"\d")
MIN_SHARE = 0.34  # at least a third of the question's weight, or no answer line


def best_sentence(question: str, sources: Sequence[Any], idf: Any = None,
                  accept: Callable[[str], bool] | None = None) -> tuple[int, str] | None:
    """(source number, sentence) of the sentence that best answers ``question``, or None when
    no sentence holds enough of it. ``idf``: the library's word rarity (a callable);
    ``accept``: a test every chosen sentence must also pass."""
    from agentlab.attribution import split_sentences
    from agentlab.verify import missing_names, read
    from retrievers.search.proximity import answer_form_words, asks_quantity

    form = answer_form_words(question)  # "how many": "many" is no term of the answer
    terms = {stem(w): w for w in keywords(question) if w not in form}
    if not terms:
        return None
    weight = {s: max(float(idf(w)) if idf else 1.0, 0.1) for s, w in terms.items()}
    total = sum(weight.values())
    wants_number = asks_quantity(question)
    asked = read(question)  # its names, read once for every source
    best: tuple[float, int, str] | None = None
    for rank, src in enumerate(sources):
        if getattr(src, "figure_id", None) is not None:
            continue  # a caption is no sentence of the paper's text
        if missing_names(asked, src.text, f"{src.title} {src.section}"):
            continue  # about something else: "GPT-4" asked, a passage about SciBERT found
        for sentence, shortest, caption in _candidates(src.text, split_sentences):
            words = tokens(sentence.replace("_", " "))  # warmup_steps: warmup steps
            if not shortest <= len(words) <= 60:
                continue
            held = {stem(w) for w in words + tokens(caption)}
            share = sum(v for s, v in weight.items() if s in held) / total
            if share < MIN_SHARE:
                continue
            score = share - 0.03 * rank
            if accept is not None and not accept(sentence):
                continue
            if wants_number:
                score += _number_bonus(MARKERS.sub(" ", sentence), weight, total)
            if best is None or score > best[0]:
                best = (score, src.n, " ".join(sentence.split()))
    return (best[1], best[2]) if best else None


def _candidates(text: str, split: Callable[[str], list[str]]) -> list[tuple[str, int, str]]:
    """What may be quoted, each with its fewest words and the words it is read with: the
    passage's sentences (six words or more), and its table rows ("Papers w/ LaTeX full text
    1.5M (1.8%)", four words or more), which sentence splitting runs together into one long
    run of a table; a row is read with its table's caption ("Over 50 pages 2.27M" under
    "Table 8: PDFs filtered out before GROBID processing"); and a table's cells whose header
    lines up, each with its row, column and caption ("Test (20%), Tiny T is 312 (Table 8:
    Multi-LexSum train-dev-test splits)"), where the row alone does not say which value is
    which."""
    rows = [" ".join(ln.split()) for ln in text.splitlines() if is_row(ln)]
    # a "sentence" holding two rows is the table run together, not a sentence
    sentences = [t for t in split(text.replace("\n", " "))
                 if sum(r in " ".join(t.split()) for r in rows) < 2]
    caption = next((ln for ln in text.splitlines() if CAPTION.match(ln)), "") if rows else ""
    cells = [c.text for t in tables(text) for c in t if c.column] if rows else []
    return [(t, 6, "") for t in sentences] + [(r, 4, caption) for r in rows] + \
        [(c, 3, "") for c in cells]


def answering_number(question: str, sentence: str, idf: Any = None,
                     counted: str = "", count: bool = False) -> Any:
    """The number of ``sentence`` that answers ``question`` (a :class:`agentlab.verify.Number`):
    the one with most of the question's weight within a few tokens of it ("8" in "we employ
    h = 8 parallel attention layers, or heads" for "how many attention heads"); with
    ``counted`` (what is counted: "attention heads"), only a number with one of its words
    close by; with ``count``, only a count or a size (not a share, a ratio or a score below
    one). None when no number qualifies."""
    from agentlab.verify import read

    weight = {stem(w): max(float(idf(w)) if idf else 1.0, 0.1) for w in keywords(question)}
    what = {stem(w) for w in keywords(counted)}
    reading = read(MARKERS.sub(" ", sentence))
    best: tuple[float, Any] | None = None
    for number in reading.numbers:
        near = reading.stems_near(number.pos, NUMBER_NEAR)
        near |= {stem(w) for w in near}
        if what and not (what & _counts(reading, number) and _a_count(reading, number)
                         and not re.search(rf"\(\s*{re.escape(number.text)}\s*\)", sentence)):
            continue  # "0.94" of "coverage of 0.94" counts no summaries, "(1)" is a list's
        if count and not _a_count(reading, number):
            continue  # "which is larger": a vocabulary's 31k, not its Jaccard index of 0.536
        score = sum(v for s, v in weight.items() if s in near)
        if score > 0 and (best is None or score > best[0]):
            best = (score, number)
    return best[1] if best else None


def _counts(reading: Any, number: Any) -> set[str]:
    """What a number counts, stemmed: the words after it ("16.4B tokens", "8 parallel attention
    layers") or a label just before it ("warmup_steps = 4000")."""
    before = {reading.tokens[number.pos - 1]} if number.pos else set()
    return {stem(w) for w in reading.unit(number) | before}


def _a_count(reading: Any, number: Any) -> bool:
    """Whether a number can be a count of things: not a share, a ratio ("three times"), a
    fraction below one."""
    after = reading.tokens[number.pos + 1] if number.pos + 1 < len(reading.tokens) else ""
    return not number.percent and number.value >= 1 and after not in ("times", "fold", "x")


def line(n: int, sentence: str) -> str:
    """How the answer line reads: the source's words, quoted, and their source."""
    return f"“{sentence.rstrip()}” [{n}]\n\n"


_LINE = re.compile(r"“[^”]*” \[\d+\]\n\n")


def model_words(text: str) -> str:
    """``text`` without its answer line: what the model wrote (training data is the model's
    words; the line is litlab's and is added again at answer time)."""
    m = _LINE.match(text)
    return text[m.end():] if m else text


NUMBER_NEAR = 4  # tokens between a number and a question term for the number to answer it


def _number_bonus(sentence: str, weight: dict[str, float], total: float) -> float:
    """For a question that asks for a number: how well a number of ``sentence`` answers it.
    A number beside the question's terms ("9,280 expert-authored summaries" for "how many
    expert-authored summaries") counts for the weight of the terms around it; a number about
    something else in the sentence ("over 75,000 words") counts for little."""
    words = [w.strip(".,;:()[]") for w in sentence.split()]
    numbers = [i for i, w in enumerate(words) if _NUMBER.search(w)]
    if not numbers:
        return 0.0
    stems = [stem(w.lower()) for w in words]
    best = 0.0
    for i in numbers:
        near = {stems[j] for j in range(max(0, i - NUMBER_NEAR),
                                         min(len(words), i + NUMBER_NEAR + 1))}
        best = max(best, sum(v for s_, v in weight.items() if s_ in near) / total)
    return 0.05 + 0.4 * best
