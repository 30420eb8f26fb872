"""Every sentence of an answer matched to the numbered source(s) that support it.

The embedded 135M model seldom writes ``[n]`` markers, so litlab does not rely on it: after
generation each sentence is scored against each source by

- meaning: the best cosine similarity between the sentence and any sentence of the source
  (the library's MiniLM embedder), and
- evidence: the share of the sentence's distinctive terms (numbers, names such as
  "Qwen2.5-7B", rare words) that the source contains; a number the source does not contain
  caps the score, since a wrong number is the error that matters most;
- the paper: a sentence that names one of the answer's papers ("the Multi-LexSum paper") is
  not supported by a passage of another paper that does not name it either (the 135M model
  mixes papers up: "Table 5 of the Multi-LexSum paper" said of S2ORC's Table 5).

A capped score is below what even a marker the model wrote needs to be confirmed.

A sentence is supported by the sources that reach ``threshold``; one with none is marked
unsupported. Markers the model wrote are checked the same way: a marker whose source does not
support its sentence is reported, not shown as evidence. Every citation says where it came
from (``model``: written by the model and verified; ``litlab``: attributed here).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from agentlab.citations import Source
from litcore.text import FILLER_WORDS, STOP_WORDS, tokens

Embed = Callable[[list[str]], np.ndarray]

_MARKER = re.compile(r"\s?\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])(?:\s*\[\d+(?:\s*[,;]\s*\d+)*\])*\s+(?=[A-Z0-9\"'(])")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*(?:\s?[%xX×]|[kKmMbB]\b)?")
_TERM = re.compile(r"[A-Za-z][\w.-]*\d[\w.-]*|[A-Z][a-zA-Z]+(?:-[A-Za-z0-9]+)*|[a-z]{7,}")
# Words that are no evidence of anything (function words, sentence starters).
_STOP = STOP_WORDS | FILLER_WORDS
MIN_CLAIM_WORDS = 4  # "See also." or "Yes." claims nothing to attribute
VERIFY_SLACK = 0.1


@dataclass
class Sentence:
    """One sentence of an answer with the sources that support it."""

    text: str
    sources: list[int] = field(default_factory=list)  # supporting source numbers, best first
    scores: dict[int, float] = field(default_factory=dict)  # source number -> support
    origin: str | None = None  # "model" (a verified marker) or "litlab" (attributed)
    unverified: list[int] = field(default_factory=list)  # markers that do not support it
    claim: bool = True  # False: too short to claim anything ("See also."); not judged

    @property
    def supported(self) -> bool:
        return bool(self.sources)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "supported": self.supported,
                "scores": {str(k): round(v, 3) for k, v in self.scores.items()}}


def split_sentences(text: str) -> list[str]:
    """Sentences, each with the markers that follow it; list items and lines stay apart."""
    out: list[str] = []
    for block in re.split(r"\n\s*\n|\n(?=\s*(?:[-*•]|\d+[.)])\s)", text):
        block = block.strip()
        if block:
            out += [s.strip() for s in _SENTENCE_END.split(block) if s.strip()]
    return out


def _terms(text: str) -> tuple[set[str], set[str]]:
    """(numbers, distinctive terms) of a text, lower-cased, markers removed."""
    text = _MARKER.sub(" ", text)
    numbers = {n.replace(",", "").replace(" ", "").lower() for n in _NUMBER.findall(text)}
    terms = {t.lower().rstrip(".-") for t in _TERM.findall(text)} - _STOP
    return numbers, terms


def evidence(sentence: str, source: str) -> tuple[float, bool]:
    """(share of the sentence's numbers and distinctive terms found in the source, whether a
    number of the sentence is missing from it)."""
    numbers, terms = _terms(sentence)
    s_numbers, _ = _terms(source)
    low = source.lower()
    wanted = len(numbers) + len(terms)
    if not wanted:
        return 0.0, False
    found_numbers = {n for n in numbers if n in s_numbers}
    found_terms = {t for t in terms if re.search(rf"(?<![\w-]){re.escape(t)}(?![\w-])", low)}
    return (len(found_numbers) + len(found_terms)) / wanted, bool(numbers - found_numbers)


def paper_name(title: str) -> str | None:
    """The short name a paper goes by, when its title gives one: "S2ORC" of "S2ORC: The
    Semantic Scholar Open Research Corpus" (up to two words before a colon), "Mamba" of a
    one-word title. A longer title without a colon gives none: "Deep Learning" is a phrase
    before it is a name."""
    if ":" in title:
        head = title.split(":", 1)[0].strip()
        return head if len(head) >= 3 and len(head.split()) <= 2 else None
    return title.strip() if len(title.split()) == 1 and len(title.strip()) >= 3 else None


def _names(text: str, names: set[str]) -> set[str]:
    low = text.lower()
    return {n for n in names if re.search(rf"(?<![\w-]){re.escape(n.lower())}(?![\w-])", low)}


def attribute(answer: str, sources: Sequence[Source], embed: Embed,
              threshold: float = 0.55) -> list[Sentence]:
    """Attribute every sentence of ``answer`` to the sources that support it."""
    sentences = split_sentences(answer)
    if not sentences or not sources:
        return [Sentence(s) for s in sentences]
    plain = [_MARKER.sub("", s).strip() for s in sentences]
    pieces: list[tuple[int, str]] = []  # (source number, one sentence of it)
    for src in sources:
        parts = split_sentences(src.text.replace("\n", " ")) or [src.text]
        pieces += [(src.n, p) for p in parts]
    vectors = np.asarray(embed(plain + [p for _, p in pieces]), dtype=np.float32)
    mine, theirs = vectors[:len(plain)], vectors[len(plain):]
    similarity = mine @ theirs.T  # normalised vectors: cosine
    by_n = {s.n: s for s in sources}
    name_of = {s.n: paper_name(s.title) for s in sources}
    names = {n for n in name_of.values() if n}
    cap = threshold - VERIFY_SLACK - 0.05  # below what a model's marker needs, too
    columns = {n: [j for j, (m, _) in enumerate(pieces) if m == n] for n in by_n}
    out = []
    for i, (raw, text) in enumerate(zip(sentences, plain, strict=True)):
        sentence = Sentence(raw)
        written = [int(x) for m in _MARKER.finditer(raw)
                   for x in re.split(r"\s*[,;]\s*", m.group(1))]
        if len(tokens(text)) < MIN_CLAIM_WORDS:
            # Too short to judge: a marker the model put on it stands as written.
            sentence.claim = False
            sentence.sources = [n for n in written if n in by_n]
            sentence.origin = "model" if sentence.sources else None
            out.append(sentence)
            continue
        named = _names(text, names)
        for n, src in by_n.items():
            cols = columns[n]
            meaning = float(similarity[i, cols].max()) if cols else 0.0
            share, wrong_number = evidence(text, src.text)
            score = 0.6 * meaning + 0.4 * share
            other_paper = bool(named) and name_of[n] not in named \
                and not _names(src.text, named)
            if wrong_number or other_paper:
                score = min(score, cap)
            sentence.scores[n] = score
        ranked = sorted((n for n, sc in sentence.scores.items() if sc >= threshold),
                        key=lambda n: -sentence.scores[n])
        # A marker the model wrote needs less to be confirmed than a source litlab picks on
        # its own: the model read the sources, and a paraphrase ("LoRA" for "low-rank
        # adaptation") lowers the lexical evidence.
        confirmed = {n for n, sc in sentence.scores.items() if sc >= threshold - VERIFY_SLACK}
        verified = [n for n in written if n in confirmed]
        sentence.unverified = [n for n in written if n in by_n and n not in confirmed]
        if verified:
            sentence.sources, sentence.origin = verified, "model"
        elif ranked:
            sentence.sources, sentence.origin = ranked[:2], "litlab"
        out.append(sentence)
    return out


def claims(sentences: Sequence[Sentence]) -> list[Sentence]:
    """The sentences that claim something (the ones attribution judges)."""
    return [s for s in sentences if s.claim]


def attribute_answer(answer: Any, embed: Embed, threshold: float = 0.55) -> None:
    """Attribute an :class:`~agentlab.assistant.Answer`'s sentences; its citations become the
    verified markers and the attributed sources, each saying which it is, and its
    ``unverified`` the markers whose source supports nothing they are attached to."""
    from dataclasses import replace

    answer.sentences = attribute(answer.text, answer.sources, embed, threshold)
    by_n = {s.n: s for s in answer.sources}
    origin: dict[int, str] = {}
    for sentence in answer.sentences:
        for n in sentence.sources:
            if origin.get(n) != "model":
                origin[n] = str(sentence.origin)
    answer.unverified = sorted({n for s in answer.sentences for n in s.unverified} - set(origin))
    answer.citations = [replace(by_n[n], origin=o) for n, o in sorted(origin.items())]
