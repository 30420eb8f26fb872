"""What a parser makes of a paper's files: a :class:`Document` of sections with pages, and
its figures. Parsers are plain functions ``path -> Document``."""

from __future__ import annotations

from dataclasses import dataclass, field

from retrievers.records import Figure


class ParseError(ValueError):
    """A file that cannot be read as what it claims to be."""


@dataclass
class Segment:
    """A run of text from one section on one page."""

    section: str
    text: str
    page: int | None = None


@dataclass
class Document:
    title: str = ""
    abstract: str = ""
    segments: list[Segment] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    kind: str = "text"
    authors: list[str] = field(default_factory=list)
    arxiv_id: str | None = None  # a PDF's arXiv identifier, from its stamp or file name
    version: int | None = None

    @property
    def text(self) -> str:
        return "\n\n".join(s.text for s in self.segments)
