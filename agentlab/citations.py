"""Numbered sources in, checked citations out.

The model sees sources as ``[n] Title (arXiv id), section, p. X`` followed by the chunk text and
cites them as ``[n]`` (or ``[n, m]``). :func:`resolve` maps every marker back to its chunk, paper,
section, pages and (where the chunk holds one) figure; a marker that points at no source is
removed from the answer and reported, never shown as if it were evidence. An answer the library
cannot support is the shared sentinel :data:`NOT_IN_LIBRARY`, never an invented source.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

NOT_IN_LIBRARY = "NOT_IN_LIBRARY"
NOT_IN_LIBRARY_MESSAGE = (
    "The library has nothing that answers this. Add papers on it "
    "(`litlab index arxiv --query \"...\"`) and ask again."
)
ABSTAINED_MESSAGE = (
    "The library does not support an answer to this: no sentence the model wrote is backed by "
    "the passages found. The closest passages are listed below."
)
WITHHELD_MESSAGE = (
    "(The model's own words are not shown: no sentence of them is backed by the sources. The "
    "quoted sentence above is the source's own.)"
)
_MARKER = re.compile(r"\s?\[(\d+(?:\s*[,;]\s*\d+)*)\]")


@dataclass
class Source:
    """A retrieved chunk as the model sees it, under its number."""

    n: int
    chunk_id: int
    paper: str
    title: str
    section: str
    pages: str
    text: str
    figures: list[str] = field(default_factory=list)  # "Figure 2: caption" held by the chunk
    # as a citation: "model" (its marker, verified), "litlab" (attributed) or "answer_line"
    origin: str | None = None
    # a figure as a source: its caption is the text; the citation resolves to the figure
    figure_id: int | None = None
    figure: str | None = None  # "Figure 2"
    image_path: str | None = None
    # the catalog's key ("file:/papers/pasa.pdf"): the file a paper came from stays findable
    # once an arXiv stamp on its first page made ``paper`` its arXiv id
    key: str = ""

    @classmethod
    def from_hit(cls, n: int, hit: Any, figures: Sequence[Any] = ()) -> Source:
        text = hit.chunk.text
        held = [f"{f.label or 'Figure'}: {f.caption}" for f in figures
                if f.caption and f.caption[:60] in text]
        return cls(n=n, chunk_id=int(hit.chunk.id or 0),
                   paper=hit.paper.arxiv_id or hit.paper.key, title=hit.paper.title,
                   section=hit.chunk.section, pages=hit.chunk.pages, text=text, figures=held,
                   key=hit.paper.key)

    @classmethod
    def from_figure(cls, n: int, hit: Any) -> Source:
        """A figure found by figure search (``retrievers.search.figures.FigureHit``)."""
        f = hit.figure
        return cls(n=n, chunk_id=0, paper=hit.paper.arxiv_id or hit.paper.key,
                   title=hit.paper.title, section=f.section,
                   pages=str(f.page) if f.page else "", text=f"{f.name}: {f.caption}",
                   figure_id=f.id, figure=f.name,
                   image_path=None if f.skipped else f.image_path, key=hit.paper.key)

    def header(self) -> str:
        return header(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Numbering:
    """Numbers hits as sources from 1, once per chunk, with the figures each chunk holds.
    One per answer: an agent's searches share it, so a passage keeps its number."""

    def __init__(self, figures_of: Callable[[int], Sequence[Any]]) -> None:
        self.figures_of = figures_of
        self.sources: list[Source] = []
        self._by_chunk: dict[int, Source] = {}
        self._figures: dict[int, Sequence[Any]] = {}
        # an agent's opening searches run in parallel threads: one number a passage, always
        self._lock = threading.Lock()

    def add(self, hits: Sequence[Any]) -> list[Source]:
        with self._lock:
            return self._add(hits)

    def _add(self, hits: Sequence[Any]) -> list[Source]:
        out = []
        for h in hits:
            cid = int(h.chunk.id or 0)
            if cid not in self._by_chunk:
                pid = int(h.paper.id or 0)
                if pid not in self._figures:
                    self._figures[pid] = self.figures_of(pid)
                self._by_chunk[cid] = Source.from_hit(len(self.sources) + 1, h,
                                                      self._figures[pid])
                self.sources.append(self._by_chunk[cid])
            out.append(self._by_chunk[cid])
        return out

    def add_figures(self, hits: Sequence[Any]) -> list[Source]:
        """Number figure hits as sources too (once per figure), after the passages."""
        with self._lock:
            return self._add_figures(hits)

    def _add_figures(self, hits: Sequence[Any]) -> list[Source]:
        out = []
        for h in hits:
            key = -int(h.figure.id or 0)  # figures share the index with chunks, negated
            if key not in self._by_chunk:
                self._by_chunk[key] = Source.from_figure(len(self.sources) + 1, h)
                self.sources.append(self._by_chunk[key])
            out.append(self._by_chunk[key])
        return out


def header(c: dict[str, Any]) -> str:
    """How a source or citation is named everywhere (prompt, CLI, app, exports):
    ``[n] Title (arXiv id), section, p. X``; a local file shows no id."""
    from retrievers.search.hybrid import location

    paper = str(c.get("paper") or "")
    named = f" ({paper})" if paper and not paper.startswith("file:") else ""
    where = location(", ".join(x for x in (str(c.get("figure") or ""),
                                           str(c.get("section") or "")) if x),
                     str(c.get("pages") or ""))
    how = " (attributed by litlab)" if c.get("origin") == "litlab" else ""
    return f"[{c['n']}] {c.get('title') or 'Untitled'}{named}" + (f", {where}" if where else "") \
        + how


def format_sources(sources: Sequence[Source]) -> str:
    """The sources block of a prompt: each header, then the chunk text."""
    return "\n\n".join(f"{s.header()}\n{s.text.strip()}" for s in sources)


@dataclass
class Resolved:
    text: str
    citations: list[Source]
    dropped: list[int]
    not_in_library: bool = False

    @property
    def supported(self) -> bool:
        return bool(self.citations) and not self.not_in_library


def resolve(answer: str, sources: Sequence[Source]) -> Resolved:
    """Check every ``[n]`` in ``answer`` against ``sources``; drop and report the rest."""
    if NOT_IN_LIBRARY in answer:
        return Resolved(NOT_IN_LIBRARY_MESSAGE, [], [], not_in_library=True)
    by_n = {s.n: s for s in sources}
    cited: dict[int, Source] = {}
    dropped: list[int] = []

    def check(m: re.Match[str]) -> str:
        numbers = [int(x) for x in re.split(r"\s*[,;]\s*", m.group(1))]
        good = [n for n in numbers if n in by_n]
        dropped.extend(n for n in numbers if n not in by_n and n not in dropped)
        for n in good:
            cited.setdefault(n, by_n[n])
        if not good:
            return ""
        return m.group(0)[: len(m.group(0)) - len(m.group(0).lstrip())] + \
            f"[{', '.join(map(str, good))}]"

    text = _MARKER.sub(check, answer).strip()
    return Resolved(text, list(cited.values()), dropped)


def split_reasoning(text: str) -> tuple[str, str]:
    """(reasoning, answer) of a chain-of-thought reply: ``<think>...</think>`` or an
    ``Answer:`` line; a reply with neither is all answer."""
    m = re.search(r"<think>(.*?)(?:</think>|$)(.*)", text, flags=re.S)
    if m:
        reasoning, rest = m.group(1).strip(), m.group(2)
    else:
        reasoning, rest = "", text
    parts = re.split(r"(?im)^\s*(?:final\s+)?answer\s*:\s*", rest, maxsplit=1)
    if len(parts) == 2:
        reasoning = (reasoning + "\n" + parts[0]).strip()
        rest = parts[1]
    return reasoning, rest.strip()


def citation_regex(numbers: Sequence[int]) -> str:
    """A regular expression every answer must match when the citation format is held by
    decoding (vLLM structured outputs): :data:`NOT_IN_LIBRARY` alone, or sentences that each
    end in one or two markers over ``numbers`` ("... [2]." / "... [1][3]."). Inside a
    sentence a period may only stand between digits ("Qwen2.5", "45.5%"), so a sentence
    cannot end without its marker (given "snakes.1" or "snakes.They", the model took them),
    and a sentence is at most 150 pieces long, so a run-on sentence must come to its marker.
    The grammar engine expands a bounded repeat into states: 150 made decoding about 5x
    slower here; 400 over eight sentences made it 50x slower."""
    marker = r"\[(" + "|".join(str(n) for n in sorted(set(numbers))) + r")\]"
    body = r"([^\[\]\n.!?0-9]|[0-9]+([.,][0-9]+)*){1,150}"
    sentence = f"{body} {marker}({marker})?[.!?]"
    return f"({NOT_IN_LIBRARY}|{sentence}( {sentence})*)"
