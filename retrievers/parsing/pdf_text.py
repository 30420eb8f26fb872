"""A PDF page's text in reading order, from PDFium (``pypdfium2``).

PDFium gives a page's text in the order it is drawn, with lines and spacing well kept. Papers
(LaTeX's output above all) draw a two-column page left column first, so that order is the
reading order; pypdf's text with our own column split interleaved the columns on real papers
("the harmonic mean be-title-tween"), and 10 of the 52 dev questions' answers were in no chunk.

Where a page is drawn out of order (a stretch of its left column is drawn after right-column
text lower on the page), the page is read in bands instead: full-width runs across, two-column
runs left half then right half. Bands are the fallback, not the rule: PDFium's text cut out
by rectangles loses characters that reach past them (commas' tails) and repeats ones that
overlap two (bench/grounding.py: recall@5 0.846 and 0.654 read in bands, 0.885 and 0.731 in
drawing order).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

MID_MARGIN = 3.0  # points a run may reach past the middle and still sit in one half


def page_texts(path: Path) -> list[tuple[str, str]] | None:
    """Each page's (text, footnotes), or None when PDFium cannot read the file (pypdf's text
    is used)."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError:
        return None
    try:
        return [page_text(pdf[i]) for i in range(len(pdf))]
    except pdfium.PdfiumError:
        return None
    finally:
        pdf.close()


def page_text(page: Any) -> tuple[str, str]:
    """The page's running text and its footnotes, apart (see :func:`_footnotes_apart`)."""
    text = page.get_textpage()
    if not _drawn_out_of_order(text, page.get_width() / 2, page.get_height()):
        return _footnotes_apart(text, page.get_height())
    return _banded(page, text), ""


FOOTNOTE_TYPE = 0.92  # a footnote's type is at most this share of the page's body type
_MARK = r"^\s*(?:\d{1,2}|[*\u2020\u2021\u2217\u00a7\u00b6])"  # a footnote's: 12, *, \u2020 ...
# A footnote opens with its mark, then an address or a capital ("12The S2ORC data format
# ...", "3https://...", "* Equal contribution"), or has its mark on a line of its own above it
_FOOTNOTE_MARK = re.compile(_MARK + r"\s?(?:(?P<address>https?:|www\.)|(?=[A-Z\u201c\"(]))")
_MARK_ALONE = re.compile(_MARK + r"\s*$")
_WORD = re.compile(r"[(\u201c\"]?[A-Za-z]{2,}[.,;:)]?")  # a word of letters only


def _opens_footnote(line: str) -> bool:
    """The line opens a footnote: its mark, then an address or words (three of letters
    only; a table's row in small type has numbers: "1BW (800M) 0.41")."""
    m = _FOOTNOTE_MARK.match(line)
    if not m:
        return False
    words = [w for w in line[m.end():].split() if _WORD.fullmatch(w)]
    return bool(m.group("address")) or len(words) >= 3


_PAGE_NUMBER = re.compile(r"^\s*(?:\d{1,4}|[ivxlc]{1,6})\s*$")
MARGIN = 0.08  # the page's head and foot margins, a share of its height


def _in_margin(bottom: float, top: float, height: float) -> bool:
    """In the page's head or foot margin (PDF coordinates run up from the page's foot)."""
    return top < MARGIN * height or bottom > (1 - MARGIN) * height


def _footnotes_apart(text: Any, height: float) -> tuple[str, str]:
    """The page's text in drawing order without what interrupts its sentences: footnotes
    (drawn after their column's last line, so a sentence that runs on into the next column
    or page read "we use majority voting to select 12The S2ORC data format is described at
    https:// ... canonical metadata values") come back apart, and page numbers in the head
    or foot margin are left out. A footnote is a run of lines in smaller type than the
    page's body, the first opening with a mark, that ends its column (the next line is
    higher up, or there is none)."""
    import pypdfium2.raw as pdfium_c

    raw = text.get_text_range()
    if len(raw) != text.count_chars():  # no way to tell each character's type: as it is
        return _clean(raw), ""
    lines: list[tuple[str, float, float, float]] = []  # (text, type size, bottom, top)
    sizes: dict[float, int] = {}
    start = 0
    for end in [i for i, ch in enumerate(raw) if ch == "\n"] + [len(raw)]:
        # the type of a line's first dozen letters (enough to tell, and parsing stays fast;
        # of its digits and marks when it has none: "1" set above its footnote); only
        # letters make the page's body type
        letters = [i for i in range(start, end) if raw[i].isalpha()][:12] or \
            [i for i in range(start, end) if not raw[i].isspace()][:12]
        size, bottom, top = 0.0, 0.0, 0.0
        if letters:
            counts: dict[float, int] = {}
            for i in letters:
                s = round(pdfium_c.FPDFText_GetFontSize(text.raw, i), 1)
                counts[s] = counts.get(s, 0) + 1
                if raw[i].isalpha():
                    sizes[s] = sizes.get(s, 0) + 1
            size = max(counts, key=lambda s: counts[s])
            _, bottom, _, top = text.get_charbox(letters[0])
        lines.append((raw[start:end].rstrip("\r"), size, bottom, top))
        start = end + 1
    if not sizes:
        return _clean(raw), ""
    body = max(sizes, key=lambda s: sizes[s])
    small = [0 < size <= FOOTNOTE_TYPE * body for _, size, _, _ in lines]
    keep: list[str] = []
    notes: list[str] = []
    i = 0
    while i < len(lines):
        line, _, bottom, top = lines[i]
        if _PAGE_NUMBER.match(line) and _in_margin(bottom, top, height):
            i += 1
            continue
        if small[i] and (_opens_footnote(line) or (
                _MARK_ALONE.match(line) and i + 1 < len(lines) and small[i + 1]
                and _opens_footnote(line.strip() + lines[i + 1][0].lstrip()))):
            j = i  # the run of small lines going down the column
            while j + 1 < len(lines) and (small[j + 1] or not lines[j + 1][0].strip()) \
                    and lines[j + 1][3] <= lines[j][3] + 1:
                j += 1
            after = next((k for k in range(j + 1, len(lines)) if lines[k][0].strip()), None)
            if after is None or lines[after][3] > lines[j][3] + 1 or \
                    _PAGE_NUMBER.match(lines[after][0]):
                notes += [ln for ln, *_ in lines[i:j + 1]]
                i = j + 1
                continue
        keep.append(line)
        i += 1
    return _clean("\n".join(keep)), _clean("\n".join(notes))


OUT_OF_ORDER_CHARS = 40  # left-column characters drawn after right-column text below them


def _drawn_out_of_order(text: Any, mid: float, height: float) -> bool:
    """True when a stretch of the left column is drawn after right-column text below it (the
    page's head and foot margins left out: a page number is often drawn first)."""
    right_bottom: float | None = None  # how far down the right column has been drawn
    late = 0
    for i in range(text.count_chars()):
        left, bottom, right, top = text.get_charbox(i)
        if right - left <= 0 or _in_margin(bottom, top, height):
            continue
        if left > mid + MID_MARGIN:
            right_bottom = bottom if right_bottom is None else min(right_bottom, bottom)
        elif right_bottom is not None and right < mid - MID_MARGIN and top > right_bottom + 1:
            late += 1
            if late >= OUT_OF_ORDER_CHARS:
                return True
    return False


def _clean(text: str) -> str:
    # PDFium marks a word broken at a line's end with \x02 or U+FFFE and joins its halves
    # ("decom\x02position")
    return text.replace("\x02", "").replace("\ufffe", "").replace("\r\n", "\n") \
        .replace("\r", "\n")


def _banded(page: Any, text: Any) -> str:
    width = page.get_width()
    mid = width / 2
    runs = sorted((text.get_rect(i) for i in range(text.count_rects())), key=lambda r: -r[3])
    bands: list[list[Any]] = []  # [full-width?, top, bottom]
    for left, bottom, right, top in runs:
        wide = left < mid - MID_MARGIN and right > mid + MID_MARGIN
        if bands and bands[-1][0] == wide:
            bands[-1][1] = max(bands[-1][1], top)
            bands[-1][2] = min(bands[-1][2], bottom)
        else:
            bands.append([wide, top, bottom])
    parts: list[str] = []
    for i, (wide, top, bottom) in enumerate(bands):
        # bounds halfway to the neighbouring bands, so no character falls between two
        hi = top + 2 if i == 0 else (bands[i - 1][2] + top) / 2
        lo = bottom - 2 if i == len(bands) - 1 else (bottom + bands[i + 1][1]) / 2
        if wide:
            parts.append(text.get_text_bounded(0, lo, width, hi))
        else:
            parts.append(text.get_text_bounded(0, lo, mid, hi))
            parts.append(text.get_text_bounded(mid, lo, width, hi))
    return "\n".join(_clean(p) for p in parts if p.strip())


# A numbered heading: section numbers of one or two digits a level (not a year or a table
# value: "2005 WL 5253339." is a legal citation), a title that starts with a capital word and
# does not end like a sentence or a number.
HEADING = re.compile(
    r"^(?:(?P<num>\d{1,2}(?:\.\d{1,2})*)\.?\s+"
    r"(?P<title>[A-Z][A-Za-z][^\n]{0,68}[^\n.,;:0-9])|"
    r"(?P<named>Abstract|Introduction|Related Work|Background|Method|Methods|Experiments|"
    r"Results|Discussion|Conclusions?|References|Acknowledg(?:e)?ments|Appendix))\s*$"
)


# Typographic ligatures as PDFs store them ("ﬁeld"): spelled out, or neither keyword search
# nor the embedder sees "field" (135 of them in two of the dev papers' 188 chunks)
_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi",
                            "\ufb04": "ffl", "\ufb05": "st", "\ufb06": "st"})


def dehyphenate(text: str) -> str:
    text = text.translate(_LIGATURES)
    text = re.sub(r"(\w)-\n(\w)", r"\1\2", text)  # trans-\nformer -> transformer
    text = re.sub(r"[ \t]+\n", "\n", text)
    return text


def pypdf_page_text(page: object) -> str:
    """A page's text from pypdf (when PDFium cannot read the file): a left column, then a
    right one, when the page has two."""
    fragments: list[tuple[float, float, str]] = []

    def visit(text: str, _cm: object, tm: list[float], *_: object) -> None:
        if text.strip():
            fragments.append((tm[4], tm[5], text))

    plain = page.extract_text(visitor_text=visit) or ""  # type: ignore[attr-defined]
    width = float(page.mediabox.width)  # type: ignore[attr-defined]
    mid = width / 2
    left = [f for f in fragments if f[0] < mid - 5]
    right = [f for f in fragments if f[0] >= mid - 5]
    # Two columns: both halves carry text and few fragments cross the middle.
    if len(left) >= 3 and len(right) >= 3 and all(len(f[2]) < width / 4 for f in left[:3]):
        def lines(frags: list[tuple[float, float, str]]) -> str:
            ordered = sorted(frags, key=lambda f: (-round(f[1], 0), f[0]))
            out: list[str] = []
            last_y: float | None = None
            for _x, y, t in ordered:
                if last_y is not None and abs(y - last_y) > 1:
                    out.append("\n")
                elif out and not out[-1].endswith((" ", "\n")):
                    out.append(" ")
                out.append(t.rstrip("\n"))
                last_y = y
            return "".join(out)

        return dehyphenate(lines(left) + "\n" + lines(right))
    return dehyphenate(plain)
