"""Markdown and plain-text papers: sections from Markdown headings."""

from __future__ import annotations

import re
from pathlib import Path

from retrievers.parsing.document import Document, ParseError, Segment


def parse_text(path: Path) -> Document:
    try:
        text = path.read_text()
    except UnicodeDecodeError as e:
        raise ParseError(f"{path.name} is not UTF-8 text") from e
    if not text.strip():
        raise ParseError(f"{path.name} is empty")
    doc = Document(kind="markdown" if path.suffix.lower() in {".md", ".markdown"} else "text")
    section, current = "", list[str]()
    for line in text.splitlines():
        m = re.match(r"^#{1,6}\s+(.+?)\s*#*$", line) if doc.kind == "markdown" else None
        if m:
            if "\n".join(current).strip():
                doc.segments.append(Segment(section, "\n".join(current).strip()))
            section, current = m.group(1), []
            if not doc.title:
                doc.title = section
            continue
        current.append(line)
    if "\n".join(current).strip():
        doc.segments.append(Segment(section, "\n".join(current).strip()))
    if not doc.title:
        doc.title = next(ln.strip() for ln in text.splitlines() if ln.strip())[:200]
    return doc
