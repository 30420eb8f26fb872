"""The library's records: a paper, a passage of it (chunk), a figure, a file it came from.

Plain data, shared by parsing, the catalog, search and every caller; the catalog stores them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Paper:
    """A paper as the catalog records it."""

    key: str
    title: str = ""
    authors: list[str] = field(default_factory=list)
    abstract: str = ""
    arxiv_id: str | None = None
    version: int | None = None
    categories: list[str] = field(default_factory=list)
    published: str | None = None
    updated: str | None = None
    license: str | None = None
    source: str = ""
    content_hash: str | None = None
    state: str = "indexed"
    error: str | None = None
    indexed_from: str | None = None  # latex | pdf | markdown | text
    source_note: str | None = None  # why an arXiv paper was not indexed from its LaTeX
    retry_source: bool = False  # the LaTeX failed for a transient reason: try it next run
    cite_key: str | None = None  # the key a reference manager (Zotero, a .bib) gave it
    tags: list[str] = field(default_factory=list)  # its collections there
    id: int | None = None

    @property
    def year(self) -> int | None:
        return int(self.published[:4]) if self.published and self.published[:4].isdigit() else None


@dataclass
class Chunk:
    """A passage of a paper that a citation can point at."""

    text: str
    section: str
    char_start: int
    char_end: int
    page_start: int | None = None
    page_end: int | None = None
    ord: int = 0
    id: int | None = None
    paper_id: int | None = None

    @property
    def pages(self) -> str:
        if self.page_start is None:
            return ""
        if self.page_end in (None, self.page_start):
            return str(self.page_start)
        return f"{self.page_start}-{self.page_end}"


@dataclass
class Figure:
    """A figure: its caption, and the image file it was drawn from when there is one."""

    caption: str
    label: str | None = None
    image_path: str | None = None
    page: int | None = None
    section: str = ""
    skipped: str | None = None  # why its image is not used (corrupt, too large, no renderer)
    id: int | None = None
    paper_id: int | None = None

    @property
    def name(self) -> str:
        """"Figure 3", or "Figure" for an unlabelled one; LaTeX labels ("fig:arch") read as
        the caption's own words would not, so they show as "Figure (fig:arch)"."""
        label = self.label or ""
        if not label or label.lower().startswith(("figure", "fig.", "table")):
            return label or "Figure"
        return f"Figure ({label})"


@dataclass
class FileRecord:
    kind: str
    path: str
    sha256: str
    bytes: int
