"""A PDF's title, authors and arXiv id from its first page (when its metadata has none)."""

from __future__ import annotations

import re
from typing import Any

from retrievers.parsing.pdf_text import HEADING
from retrievers.sources.arxiv_ids import NEW_ID, OLD_ID, BadArxivId, parse_arxiv_id


def real_title(meta: str) -> str:
    """The metadata title, unless it is a placeholder a tool wrote ("untitled", a file name,
    "Microsoft Word - draft.docx")."""
    meta = meta.strip()
    if meta.lower() in ("", "untitled", "title", "no title") or meta.startswith("Microsoft ") \
            or re.search(r"\.(pdf|docx?|tex|dvi|ps)$", meta, re.I):
        return ""
    return meta


def largest_text(page: Any) -> str:
    """A PDF's title when it has no metadata: the upright text in the largest font on its first
    page, whatever the number of lines (rotated margin stamps such as arXiv's are left out)."""
    spans: list[tuple[float, str]] = []

    def visit(text: str, cm: Any, tm: Any, _font: Any, size: float) -> None:
        if not text.strip() or tm[1] or tm[2] or cm[1] or cm[2]:
            return
        spans.append((round(size * abs(tm[3] or 1) * abs(cm[3] or 1), 1), text.strip()))

    try:
        page.extract_text(visitor_text=visit)
    except Exception:  # noqa: BLE001 - a title is a nicety; the first line will do
        return ""
    if not spans:
        return ""
    largest = max(size for size, _ in spans)
    title = re.sub(r"\s+", " ", " ".join(t for size, t in spans if size >= largest - 0.5))
    return title[:300] if len(title) >= 8 else ""


def looks_broken(title: str) -> bool:
    """A title read in pieces: two single letters in a row ("L E : Guidelines ..." for small
    capitals, "Pa per S e a rch" for letters drawn one by one)."""
    words = re.findall(r"[A-Za-z0-9]+", title)
    single = [len(w) == 1 and w.isalpha() for w in words]
    return any(a and b for a, b in zip(single, single[1:], strict=False))


def whole_title(pieces: str, page_text: str) -> str:
    """The lines of ``page_text`` (a page's text as PDFium reads it, words whole) that hold a
    title read in ``pieces``: the first one to three lines near the top that start with its
    first letter and hold all its letters in order and each of its longer pieces. Empty when
    none does."""
    def letters(text: str) -> str:
        return re.sub(r"[^0-9a-z]", "", text.lower())

    target = letters(pieces)
    longer = [letters(w) for w in pieces.split() if len(letters(w)) >= 3]
    lines = [" ".join(ln.split()) for ln in page_text.splitlines() if ln.strip()][:25]
    if not target:
        return ""
    for i in range(len(lines)):
        for n in range(1, 4):
            window = " ".join(lines[i:i + n])
            have = letters(window)
            if not have.startswith(target[0]) or not all(w in have for w in longer):
                continue
            rest = iter(have)
            if all(c in rest for c in target):  # a subsequence: the pieces, in order
                return window[:300]
    return ""


# arXiv stamps the first page of every PDF it serves: "arXiv:2206.10883v3 [cs.CL] 22 Jul 2022".
# A bare "arXiv:..." elsewhere on the page is usually a citation, so only the stamp counts (or
# a file named by its id, as arXiv's downloads are).
_STAMP = re.compile(rf"arXiv:\s*(?P<ref>(?:{NEW_ID}|{OLD_ID})(?:v\d+)?)"
                    r"\s*\[[a-zA-Z\-.]{2,20}\]")


def arxiv_stamp(first_page: str, file_stem: str = "") -> tuple[str | None, int | None]:
    """The arXiv id and version a PDF carries in its stamp, else in its file name."""
    m = _STAMP.search(first_page)
    try:
        aid = parse_arxiv_id(m.group("ref") if m else file_stem)
    except BadArxivId:
        return None, None
    return aid.id, aid.version


# Footnote marks after an author's name (†, ∗, ♦, α..ω, digits) and the words that join names.
_NAME_SEPARATORS = re.compile(
    r"\s*(?:[†‡∗*§¶♦♣♠♥⋆★\u03b1-\u03c9\d,;&]|\band\b)+\s*")
_AFFILIATION = re.compile(
    r"(?i)\b(universit|institut|college|school|department|dept\b|laborator|labs?\b|inc\b|"
    r"corp|research|cent(er|re)\b|academy|foundation|hospital|company|gmbh|ltd|google|"
    r"microsoft|deepmind|openai|nvidia|\bai\b)")
_PARTICLES = {"de", "van", "der", "von", "da", "di", "la", "le", "du", "dos", "del", "bin", "al"}


def _is_name(words: list[str]) -> bool:
    return 2 <= len(words) <= 4 and all(
        (w[0].isupper() and re.fullmatch(r"[^\W\d_][\w.'\-]*", w) is not None)
        or w in _PARTICLES for w in words) and words[-1][0].isupper()


def first_page_authors(first_page: str, title: str) -> list[str]:
    """Author names from the lines between a PDF's title and its abstract: names split at
    footnote marks, commas and "and"; lines of affiliations and e-mail addresses left out.
    Empty when the title is not found on the page (nothing to start from)."""
    lines = [" ".join(ln.split()) for ln in first_page.splitlines() if ln.strip()]
    wanted = " ".join(title.lower().split())
    start = None
    for i, line in enumerate(lines[:30]):
        if len(line) >= 4 and line.lower() in wanted:
            start = i
            while start + 1 < len(lines) and lines[start + 1].lower() in wanted:
                start += 1
            break
    if start is None:
        return []
    authors: list[str] = []
    misses = 0
    for line in lines[start + 1:start + 12]:
        if re.match(r"(?i)abstract\b", line) or HEADING.match(line):
            break
        if "@" in line or _AFFILIATION.search(line):
            continue
        names = [" ".join(part.split()) for part in _NAME_SEPARATORS.split(line)]
        found = [n for n in names if n and _is_name(n.split())]
        if not found:
            misses += 1
            if misses == 2 and authors:
                break
            continue
        authors += [n for n in found if n not in authors]
    return authors[:50]
