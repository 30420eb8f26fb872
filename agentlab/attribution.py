"""Every sentence of an answer matched to the numbered source(s) that say what it says.

The embedded 135M model seldom writes ``[n]`` markers, so litlab does not rely on it: after
generation each sentence (each claim) is verified against each source by
:mod:`agentlab.verify`: the source's best sentence or pair of sentences must mean something
close (MiniLM cosine) *and* say what the claim asserts: its numbers next to the same words, its
names, its content words, with the same polarity. A sentence is **supported** by the sources
whose evidence passes (the evidence is quoted), **contradicted** when a source gives another
value or name for the same thing (the source's value is quoted), and otherwise **not found**.

Markers the model wrote are verified the same way, a little less strictly on meaning: one whose
source does not support its sentence is reported, not shown as evidence. Every citation says
where it came from (``model``: written by the model and verified; ``litlab``: attributed here).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from agentlab.citations import Source
from agentlab.tables import Cell, tables
from agentlab.verify import (
    CONTRADICTED,
    NOT_FOUND,
    SUPPORTED,
    Evidence,
    Number,
    Vocabulary,
    _same,
    judge,
    read,
)
from litcore.text import tokens

Embed = Callable[[list[str]], np.ndarray]

_MARKER = re.compile(r"\s?\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])(?:\s*\[\d+(?:\s*[,;]\s*\d+)*\])*\s+(?=[A-Z0-9\"'(])")
# a period that ends an abbreviation, not a sentence: "Lo et al. (2020) show", "e.g. GROBID"
_ABBREVIATION = re.compile(r"(?i)(?:\bet al|\be\.g|\bi\.e|\bcf|\bvs|\bfigs?|\bsecs?|\beqs?|"
                           r"\btab|\bapprox|\bresp)\.$")
MIN_CLAIM_WORDS = 4  # "See also." or "Yes." claims nothing to attribute
VERIFY_SLACK = 0.1


@dataclass
class Sentence:
    """One sentence of an answer with the sources that support (or contradict) it."""

    text: str
    sources: list[int] = field(default_factory=list)  # supporting source numbers, best first
    scores: dict[int, float] = field(default_factory=dict)  # source number -> support
    # "model" (a verified marker), "litlab" (attributed), "answer_line" (the quoted line) or
    # "computed" (the agent's arithmetic or comparison over quoted numbers; not a claim)
    origin: str | None = None
    unverified: list[int] = field(default_factory=list)  # markers that do not support it
    claim: bool = True  # False: too short to claim anything ("See also."); not judged
    # the source sentences behind the verdict: what supports it, or what contradicts it, or
    # (not found) the closest the sources come
    evidence: list[Evidence] = field(default_factory=list)
    contradicted: bool = False

    @property
    def supported(self) -> bool:
        return bool(self.sources)

    @property
    def verdict(self) -> str:
        return SUPPORTED if self.sources else CONTRADICTED if self.contradicted else NOT_FOUND

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "evidence"}
        return {**d, "supported": self.supported, "verdict": self.verdict,
                "evidence": [e.to_dict() for e in self.evidence],
                "scores": {str(k): round(v, 3) for k, v in self.scores.items()}}


def split_sentences(text: str) -> list[str]:
    """Sentences, each with the markers that follow it; list items and lines stay apart."""
    out: list[str] = []
    fresh = True  # a new block: never joined to the one before
    for block in re.split(r"\n\s*\n|\n(?=\s*(?:[-*•]|\d+[.)])\s)", text):
        block = block.strip()
        if block:
            for s in _SENTENCE_END.split(block):
                s = s.strip()
                if out and _ABBREVIATION.search(out[-1]) and s and not fresh:
                    out[-1] += " " + s
                elif s:
                    out.append(s)
                fresh = False
            fresh = True
    return out


def cells_of(text: str) -> list[Cell]:
    """Every cell of ``text``'s tables (:mod:`agentlab.tables`)."""
    return [c for t in tables(text) for c in t]


def prose(text: str, cells: Sequence[Cell]) -> str:
    """``text`` without the rows of its tables (``cells``: :func:`cells_of` it)."""
    rows = {c.row for c in cells}
    if not rows:
        return text

    def row(line: str) -> bool:  # a row, or the line a row's label began on ("Macro Avg")
        line = " ".join(line.split())
        return bool(line) and (line in rows or any(r.startswith(line + " ") for r in rows))
    return "\n".join(ln for ln in text.splitlines() if not row(ln))


def source_pieces(text: str, cells: Sequence[Cell], claimed: Sequence[Number] = ()
                  ) -> list[str]:
    """What a source says, piece by piece: its sentences, and for its tables (which sentence
    splitting would run together into one "sentence" where every number sits near every
    label) the cells that give a number of ``claimed``, each read with its row, its column
    and its table's caption (``cells``: :func:`cells_of` ``text``)."""
    if not cells:
        return split_sentences(text.replace("\n", " ")) or [text]
    out = split_sentences(prose(text, cells).replace("\n", " "))
    for c in cells:
        if any(_same(mine, theirs, True) for theirs in read(c.value or c.row).numbers
               for mine in claimed):
            out.append(c.text)
    return out or [text]


def attribute(answer: str, sources: Sequence[Source], embed: Embed,
              threshold: float = 0.55, vocabulary: Vocabulary | None = None
              ) -> list[Sentence]:
    """Verify every sentence of ``answer`` against the sources (``vocabulary``: the
    library's, see :func:`agentlab.verify.check`; without it every content word weighs the
    same)."""
    sentences = split_sentences(answer)
    if not sentences or not sources:
        return [Sentence(s) for s in sentences]
    plain = [_MARKER.sub("", s).strip() for s in sentences]
    pieces: list[tuple[int, str]] = []  # (source number, one sentence or table cell of it)
    claimed = [n for s in plain for n in read(s).numbers]
    cells = {src.n: cells_of(src.text) for src in sources}  # each source's tables, read once
    for src in sources:
        pieces += [(src.n, p) for p in source_pieces(src.text, cells[src.n], claimed)]
    vectors = np.asarray(embed(plain + [p for _, p in pieces]), dtype=np.float32)
    mine, theirs = vectors[:len(plain)], vectors[len(plain):]
    similarity = mine @ theirs.T  # normalised vectors: cosine
    by_n = {s.n: s for s in sources}
    # where a claim's names may be besides the sentence: the passage, but not its tables'
    # rows (a name in a row is said of that row's values: "Papers w/ LaTeX full text 1.5M"
    # does not put LaTeX in "full text ... for 8.1M papers")
    contexts = {s.n: f"{s.title} {s.section} {prose(s.text, cells[s.n])}".lower()
                for s in sources}
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
        best = judge(text, pieces, [float(x) for x in similarity[i]], contexts, vocabulary,
                     titles={s.n: s.title for s in sources})
        sentence.scores = {n: e.score for n, e in best.items()}
        passing = {n for n, e in best.items() if e.verdict == SUPPORTED}
        ranked = sorted((n for n in passing if best[n].score >= threshold),
                        key=lambda n: -best[n].score)
        # A marker the model wrote needs less meaning to be confirmed than a source litlab
        # picks on its own: the model read the sources, and a paraphrase lowers the cosine.
        confirmed = {n for n in passing if best[n].score >= threshold - VERIFY_SLACK}
        verified = [n for n in written if n in confirmed]
        sentence.unverified = [n for n in written if n in by_n and n not in confirmed]
        if verified:
            sentence.sources, sentence.origin = verified, "model"
        elif ranked:
            sentence.sources, sentence.origin = ranked[:2], "litlab"
        against = sorted((e for e in best.values() if e.verdict == CONTRADICTED),
                         key=lambda e: -e.score)
        if sentence.sources:
            sentence.evidence = [best[n] for n in sentence.sources]
        elif against:
            sentence.contradicted, sentence.evidence = True, against[:1]
        elif best:
            sentence.evidence = [max(best.values(), key=lambda e: e.score)]  # the closest
        out.append(sentence)
    return out


def claims(sentences: Sequence[Sentence]) -> list[Sentence]:
    """The sentences that claim something (the ones attribution judges)."""
    return [s for s in sentences if s.claim]


def attribute_answer(answer: Any, embed: Embed, threshold: float = 0.55,
                     vocabulary: Vocabulary | None = None, lead: int = 0) -> None:
    """Attribute an :class:`~agentlab.assistant.Answer`'s sentences; its citations become the
    verified markers and the attributed sources, each saying which it is, and its
    ``unverified`` the markers whose source supports nothing they are attached to. The first
    ``lead`` sentences are the answer line: their marker is litlab's ("answer_line"), not the
    model's."""
    from dataclasses import replace

    answer.sentences = attribute(answer.text, answer.sources, embed, threshold, vocabulary)
    for sentence in answer.sentences[:lead]:
        if sentence.sources:
            sentence.origin = "answer_line"
    by_n = {s.n: s for s in answer.sources}
    origin: dict[int, str] = {}
    for sentence in answer.sentences:
        for n in sentence.sources:
            if origin.get(n) != "model":
                origin[n] = str(sentence.origin)
    answer.unverified = sorted({n for s in answer.sentences for n in s.unverified} - set(origin))
    answer.citations = [replace(by_n[n], origin=o) for n, o in sorted(origin.items())]
