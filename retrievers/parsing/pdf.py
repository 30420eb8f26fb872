"""PDF papers: text in reading order (PDFium, :mod:`retrievers.parsing.pdf_text`), sections
from numbered headings, figures from captions with their embedded or vector-drawn images, and
the title, authors and arXiv id from the first page (:mod:`retrievers.parsing.first_page`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from retrievers.parsing.document import Document, ParseError, Segment
from retrievers.parsing.first_page import (
    arxiv_stamp,
    first_page_authors,
    largest_text,
    looks_broken,
    real_title,
    whole_title,
)
from retrievers.parsing.pdf_text import HEADING, dehyphenate, page_texts, pypdf_page_text
from retrievers.records import Figure


def _save_images(page: Any, number: int, folder: Path) -> list[str]:
    """Write a page's embedded images to ``folder``; an image pypdf cannot decode is skipped."""
    out: list[str] = []
    try:
        images = list(page.images)
    except Exception:  # noqa: BLE001 - a broken image stream must not lose the page's text
        return out
    for i, image in enumerate(images):
        suffix = Path(image.name).suffix or ".png"
        target = folder / f"page{number}-{i + 1}{suffix}"
        folder.mkdir(parents=True, exist_ok=True)
        target.write_bytes(image.data)
        out.append(str(target))
    return out


_CAPTION = re.compile(r"^\s*(Figure|Fig\.)\s*(\d+)[:.]\s*(.+)$")


# An appendix's heading, lettered ("A Multi-LexSum release", "B.2 Writing summaries"): read
# only after the references begin (in the body "A Transformer ..." may start a line), else
# every appendix was cited as "References"
APPENDIX_HEADING = re.compile(r"^(?P<num>[A-H](?:\.\d{1,2})*)\.?\s+"
                              r"(?P<title>[A-Z][A-Za-z][^\n]{0,68}[^\n.,;:0-9])$")


def _appendix_may_start(section: str) -> bool:
    return section == "References" or re.match(r"^[A-H](?:\.\d{1,2})* ", section) is not None


FOOTNOTES = "Footnotes"  # the section of the footnotes, gathered at the end


def parse_pdf(path: Path, images_to: Path | None = None) -> Document:
    """Per-page text in reading order, sections from headings, figures from captions.

    With ``images_to``, embedded images are saved there and paired in order with the figure
    captions on their page; an image with no caption on its page is kept as an unlabelled figure.
    """
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise ParseError(f"{path.name} is encrypted; decrypt it first (e.g. qpdf --decrypt)")
        read = page_texts(path) or [(pypdf_page_text(p), "") for p in reader.pages]
        pages = [dehyphenate(text) for text, _ in read]
        notes = [dehyphenate(note) for _, note in read]
    except ParseError:
        raise
    except (PdfReadError, ValueError, KeyError, OSError, TypeError) as e:
        raise ParseError(f"{path.name} is not a readable PDF ({type(e).__name__}: {e})") from e
    if not any(p.strip() for p in pages):
        raise ParseError(f"{path.name} has no extractable text (a scan? run OCR on it first)")

    doc = Document(kind="pdf")
    meta_title = (reader.metadata.title if reader.metadata else None) or ""
    section = ""
    for number, text in enumerate(pages, start=1):
        current: list[str] = []
        open_caption: Figure | None = None  # a caption runs on until a line ends a sentence
        for line in text.splitlines():
            if open_caption is not None:
                if line.strip() and len(open_caption.caption) < 600 \
                        and not HEADING.match(line.strip()) and not _CAPTION.match(line):
                    open_caption.caption += " " + " ".join(line.split())
                    if line.rstrip().endswith("."):
                        open_caption = None
                else:
                    open_caption = None
            m = HEADING.match(line.strip())
            lettered = APPENDIX_HEADING.match(line.strip()) if _appendix_may_start(section) \
                else None
            heading = m or lettered
            if heading is not None:
                if current:
                    doc.segments.append(Segment(section, "\n".join(current).strip(), number))
                    current = []
                named = heading.groupdict().get("named")
                section = (named or f"{heading.group('num')} {heading.group('title')}").strip()
                continue
            current.append(line)
            cap = _CAPTION.match(line)
            # a caption seen twice on a page (text drawn twice for bold, or a figure that shows
            # a page holding the same words) is one figure
            if cap and not any(f.label == f"Figure {cap.group(2)}" and f.page == number
                               for f in doc.figures):
                doc.figures.append(Figure(caption=" ".join(cap.group(3).split()),
                                          label=f"Figure {cap.group(2)}", page=number,
                                          section=section))
                open_caption = None if line.rstrip().endswith(".") else doc.figures[-1]
        if "\n".join(current).strip():
            doc.segments.append(Segment(section, "\n".join(current).strip(), number))
        if images_to is not None:
            captions = iter([f for f in doc.figures if f.page == number])
            for image_path in _save_images(reader.pages[number - 1], number, images_to):
                figure = next(captions, None)
                if figure is None:
                    doc.figures.append(Figure(caption="", page=number, section=section,
                                              image_path=image_path))
                else:
                    figure.image_path = image_path
    # footnotes after the paper's text, each with its page: drawn where a column ends, they
    # had cut the sentence running on into the next column or page in two
    doc.segments += [Segment(FOOTNOTES, note.strip(), number)
                     for number, note in enumerate(notes, start=1) if note.strip()]
    if images_to is not None:  # captions with no embedded image: vector drawings, cropped
        from retrievers.parsing.pdf_figures import crop_vector_figures

        crop_vector_figures(path, doc.figures, images_to)
    first = next((ln.strip() for ln in pages[0].splitlines() if ln.strip()), "")
    title = real_title(meta_title) or largest_text(reader.pages[0])
    if looks_broken(title):  # small capitals, letters drawn one by one: PDFium reads it whole
        title = whole_title(title, pages[0]) or title
    doc.title = title or first[:200]
    abstract = [s.text for s in doc.segments if s.section == "Abstract"]
    doc.abstract = abstract[0][:2000] if abstract else ""
    doc.authors = first_page_authors(pages[0], doc.title)
    doc.arxiv_id, doc.version = arxiv_stamp(pages[0], path.stem)
    return doc
