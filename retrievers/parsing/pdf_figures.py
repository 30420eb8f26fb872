"""Figures drawn as vector graphics in a PDF, cropped from the rendered page by their caption.

A vector figure has no image to extract: it is drawing commands on the page. Papers put the
caption right under the figure, so the figure is the region above the caption up to the nearest
line of running text (a line much wider than an axis label), within the caption's column. The
crop is kept only when it is plausible: tall and wide enough, not mostly text, not blank.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retrievers.records import Figure

SCALE = 2.0  # render at 144 dpi
MIN_HEIGHT_PT = 48
MIN_WIDTH_PT = 96
TEXT_LINE_SHARE = 0.3  # a text run at least this share of the page wide is running text
GAP_PT = 3


@dataclass
class Box:
    left: float
    bottom: float
    right: float
    top: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.top - self.bottom


def crop_vector_figures(pdf_path: Path, figures: list[Figure], folder: Path) -> None:
    """Give each captioned figure without an image a crop of its page, where one is plausible
    (PDF pages numbered from 1 in ``figure.page``)."""
    wanted = [f for f in figures if f.image_path is None and f.caption and f.page and f.label]
    if not wanted:
        return
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(pdf_path))
    except pdfium.PdfiumError:
        return  # pypdf read it; the figures keep their captions
    try:
        for f in wanted:
            if f.page is None or f.page > len(pdf):
                continue
            page = pdf[f.page - 1]
            box = figure_box(page, f)
            if box is None:
                continue
            image = page.render(scale=SCALE, crop=(box.left, box.bottom,
                                                   page.get_width() - box.right,
                                                   page.get_height() - box.top)).to_pil()
            if not _has_drawing(image):
                continue
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"page{f.page}-{re.sub(r'[^A-Za-z0-9]+', '', f.label or '')}.png"
            image.convert("RGB").save(target, format="PNG")
            f.image_path = str(target)
    finally:
        pdf.close()


def figure_box(page: Any, figure: Figure) -> Box | None:
    """The region of ``page`` (PDF points, origin bottom left) holding the figure whose caption
    starts ``figure.label``, or None when no plausible region is found."""
    text = page.get_textpage()
    caption = _caption_box(text, figure)
    if caption is None:
        return None
    width, height = page.get_width(), page.get_height()
    lines = [Box(*text.get_rect(i)) for i in range(text.count_rects())]
    # The caption's column: the page's left or right half, or the whole width for a figure
    # that spans both columns (its caption starts in the left half and runs past the middle).
    mid = width / 2
    if caption.right <= mid + 10:
        column = (0.0, mid)
    elif caption.left >= mid - 10:
        column = (mid, width)
    else:
        column = (0.0, width)
    in_column = [b for b in lines if b.right > column[0] + 5 and b.left < column[1] - 5]
    running = [b for b in in_column if b.width >= TEXT_LINE_SHARE * width
               and b.bottom > caption.top + GAP_PT]
    margin_top = max((b.top for b in lines), default=height - 36)
    top = min((b.bottom for b in running), default=margin_top) - GAP_PT
    bottom = caption.top + GAP_PT
    left = min((b.left for b in in_column), default=column[0])
    right = max((b.right for b in in_column), default=column[1])
    box = Box(max(left, column[0]), bottom, min(right, column[1]), min(top, height))
    if box.height < MIN_HEIGHT_PT or box.width < MIN_WIDTH_PT or box.height > 0.85 * height:
        return None
    inside = [b for b in in_column if b.bottom >= box.bottom and b.top <= box.top
              and b.width >= TEXT_LINE_SHARE * width]
    if len(inside) > 2:  # mostly running text: not a figure region
        return None
    return box


def _caption_box(text: Any, figure: Figure) -> Box | None:
    """Where the caption's first words are on the page: "Figure 3:" (or "." or a space) followed
    by the caption's first word."""
    label = figure.label or ""
    first = (figure.caption.split() or [""])[0]
    for sep in (": ", ". ", ":", ".", " "):
        search = text.search(f"{label}{sep}{first}", match_case=True)
        found = search.get_next()
        if found:
            start, count = found
            n = text.count_rects(start, count)
            if n:
                return _union([Box(*text.get_rect(i)) for i in range(n)])
    return None


def _union(boxes: list[Box]) -> Box:
    return Box(min(b.left for b in boxes), min(b.bottom for b in boxes),
               max(b.right for b in boxes), max(b.top for b in boxes))


def _has_drawing(image: Any) -> bool:
    """False for a blank crop (white page, nothing drawn)."""
    gray = image.convert("L")
    lo, hi = gray.getextrema()
    if hi - lo < 30:
        return False
    dark = sum(gray.histogram()[:200])
    return dark > 0.005 * gray.width * gray.height
