"""Turn a paper's files into a :class:`Document`: title, abstract, sections with pages, figures.

Parsers are plain functions ``path -> Document``. PDF uses pypdf (BSD; PyMuPDF is AGPL), with a
reading order that handles two-column pages and de-hyphenates line breaks. LaTeX keeps
equations as LaTeX, resolves ``\\input``/``\\include`` inside the project and reads figure
environments with their captions and image files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrievers.arxiv_ids import NEW_ID, OLD_ID, BadArxivId, parse_arxiv_id
from retrievers.catalog import Figure


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


# -- PDF -------------------------------------------------------------------------------------
# A numbered heading: section numbers of one or two digits a level (not a year or a table
# value: "2005 WL 5253339." is a legal citation), a title that starts with a capital word and
# does not end like a sentence or a number.
_HEADING = re.compile(
    r"^(?:(?P<num>\d{1,2}(?:\.\d{1,2})*)\.?\s+"
    r"(?P<title>[A-Z][A-Za-z][^\n]{0,68}[^\n.,;:0-9])|"
    r"(?P<named>Abstract|Introduction|Related Work|Background|Method|Methods|Experiments|"
    r"Results|Discussion|Conclusions?|References|Acknowledg(?:e)?ments|Appendix))\s*$"
)


# Typographic ligatures as PDFs store them ("ﬁeld"): spelled out, or neither keyword search
# nor the embedder sees "field" (135 of them in two of the dev papers' 188 chunks)
_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi",
                            "\ufb04": "ffl", "\ufb05": "st", "\ufb06": "st"})


def _dehyphenate(text: str) -> str:
    text = text.translate(_LIGATURES)
    text = re.sub(r"(\w)-\n(\w)", r"\1\2", text)  # trans-\nformer -> transformer
    text = re.sub(r"[ \t]+\n", "\n", text)
    return text


def _page_text(page: object) -> str:
    """Page text in reading order: a left column, then a right one, when the page has two."""
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

        return _dehyphenate(lines(left) + "\n" + lines(right))
    return _dehyphenate(plain)


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
        from retrievers.pdf_text import page_texts

        pages = page_texts(path) or [_page_text(p) for p in reader.pages]
        pages = [_dehyphenate(p) for p in pages]
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
                        and not _HEADING.match(line.strip()) and not _CAPTION.match(line):
                    open_caption.caption += " " + " ".join(line.split())
                    if line.rstrip().endswith("."):
                        open_caption = None
                else:
                    open_caption = None
            m = _HEADING.match(line.strip())
            if m:
                if current:
                    doc.segments.append(Segment(section, "\n".join(current).strip(), number))
                    current = []
                section = (m.group("named") or f"{m.group('num')} {m.group('title')}").strip()
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
    if images_to is not None:  # captions with no embedded image: vector drawings, cropped
        from retrievers.pdf_figures import crop_vector_figures

        crop_vector_figures(path, doc.figures, images_to)
    first = next((ln.strip() for ln in pages[0].splitlines() if ln.strip()), "")
    doc.title = _real_title(meta_title) or _largest_text(reader.pages[0]) or first[:200]
    abstract = [s.text for s in doc.segments if s.section == "Abstract"]
    doc.abstract = abstract[0][:2000] if abstract else ""
    doc.authors = first_page_authors(pages[0], doc.title)
    doc.arxiv_id, doc.version = arxiv_stamp(pages[0], path.stem)
    return doc


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
        if re.match(r"(?i)abstract\b", line) or _HEADING.match(line):
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


# -- LaTeX -----------------------------------------------------------------------------------
_SECTION = re.compile(r"\\(section|subsection|subsubsection)\*?\s*(?:\[[^\]]*\])?\s*\{")


def _braced(text: str, start: int) -> tuple[str, int]:
    """The content of the brace group opening at ``text[start] == '{'``, and the end index."""
    depth = 0
    for i in range(start, len(text)):
        c = text[i]
        if c == "\\":
            continue
        if c == "{" and (i == 0 or text[i - 1] != "\\"):
            depth += 1
        elif c == "}" and text[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[start + 1:i], i + 1
    raise ParseError("unbalanced braces in LaTeX source")


def _real_title(meta: str) -> str:
    """The metadata title, unless it is a placeholder a tool wrote ("untitled", a file name,
    "Microsoft Word - draft.docx")."""
    meta = meta.strip()
    if meta.lower() in ("", "untitled", "title", "no title") or meta.startswith("Microsoft ") \
            or re.search(r"\.(pdf|docx?|tex|dvi|ps)$", meta, re.I):
        return ""
    return meta


def _largest_text(page: Any) -> str:
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


def _strip_comments(text: str) -> str:
    return re.sub(r"(?<!\\)%.*", "", text)


def _resolve_inputs(text: str, root: Path, depth: int = 0) -> str:
    if depth > 10:
        raise ParseError("\\input nesting deeper than 10 (a cycle?)")

    def repl(m: re.Match[str]) -> str:
        name = m.group(2).strip()
        target = (root / name).resolve()
        if not target.suffix:
            target = target.with_suffix(".tex")
        if root.resolve() not in target.parents or not target.is_file():
            return ""  # outside the project or missing: skip, never read it
        return _resolve_inputs(_strip_comments(target.read_text(errors="replace")), root, depth + 1)

    return re.sub(r"\\(input|include)\s*\{([^}]*)\}", repl, text)


def _latex_to_text(tex: str) -> str:
    """Readable text; math stays LaTeX."""
    tex = re.sub(r"\\(cite|citep|citet|ref|eqref|autoref|cref|label)\*?\{[^}]*\}",
                 lambda m: "" if m.group(1) == "label" else f"[{m.group(1)}]", tex)
    tex = re.sub(r"\\(textbf|textit|emph|texttt|textrm|mathrm|underline)\{([^{}]*)\}", r"\2", tex)
    tex = re.sub(r"\\begin\{(itemize|enumerate|description|center)\}|\\end\{(itemize|enumerate|description|center)\}", "", tex)
    tex = re.sub(r"\\item\s*", "- ", tex)
    tex = re.sub(r"\\(maketitle|centering|noindent|newpage|clearpage|bigskip|medskip|smallskip)\b", "", tex)
    tex = re.sub(r"~", " ", tex)
    tex = re.sub(r"\n{3,}", "\n\n", tex)
    return tex.strip()


def _find_main_tex(folder: Path) -> Path:
    candidates = sorted(folder.rglob("*.tex"))
    for c in candidates:
        if "\\documentclass" in c.read_text(errors="replace"):
            return c
    if candidates:
        return candidates[0]
    raise ParseError(f"no .tex file in {folder.name}")


def parse_latex(path: Path) -> Document:
    """Parse a LaTeX project: a ``.tex`` file or a folder holding one."""
    main = _find_main_tex(path) if path.is_dir() else path
    root = main.parent
    tex = _resolve_inputs(_strip_comments(main.read_text(errors="replace")), root)
    doc = Document(kind="latex")

    m = re.search(r"\\title\s*(?:\[[^\]]*\])?\s*\{", tex)
    if m:
        doc.title = re.sub(r"\s+", " ", _latex_to_text(_braced(tex, m.end() - 1)[0]))
    m = re.search(r"\\begin\{abstract\}(.*?)\\end\{abstract\}", tex, re.S)
    if m:
        doc.abstract = _latex_to_text(m.group(1))
        doc.segments.append(Segment("Abstract", doc.abstract))

    body_start = tex.find("\\begin{document}")
    body = tex[body_start + len("\\begin{document}"):] if body_start >= 0 else tex
    body = body.split("\\end{document}")[0]
    body = re.sub(r"\\begin\{abstract\}.*?\\end\{abstract\}", "", body, flags=re.S)
    body = re.sub(r"\\title\s*\{.*?\}\s*", "", body, flags=re.S)
    body = re.sub(r"\\(author|date|thanks)\s*\{[^}]*\}", "", body)

    # Figures: captions and image files, then out of the running text.
    def figure(m: re.Match[str]) -> str:
        env = m.group(0)
        caption = ""
        cm = re.search(r"\\caption\s*(?:\[[^\]]*\])?\s*\{", env)
        if cm:
            caption = _latex_to_text(_braced(env, cm.end() - 1)[0])
        image = re.search(r"\\includegraphics\s*(?:\[[^\]]*\])?\s*\{([^}]*)\}", env)
        image_path = None
        if image:
            base = (root / image.group(1).strip()).resolve()
            found = [base] if base.suffix else [base.with_suffix(s) for s in
                                                  (".png", ".jpg", ".jpeg", ".pdf", ".eps")]
            image_path = next((str(p) for p in found if p.is_file() and root.resolve() in p.parents), None)
        missing = f"image file {image.group(1).strip()} not found in the LaTeX source" \
            if image and image_path is None else None
        # numbered as LaTeX numbers them (figure environments in order), as the paper shows
        doc.figures.append(Figure(caption=caption, label=f"Figure {len(doc.figures) + 1}",
                                  image_path=image_path, skipped=missing))
        return f"\n[Figure: {caption}]\n" if caption else ""

    body = re.sub(r"\\begin\{figure\*?\}.*?\\end\{figure\*?\}", figure, body, flags=re.S)

    positions = [(m.start(), m) for m in _SECTION.finditer(body)]
    preamble = body[: positions[0][0]] if positions else body
    if _latex_to_text(preamble).strip():
        doc.segments.append(Segment("", _latex_to_text(preamble)))
    for i, (_start, m) in enumerate(positions):
        title, after = _braced(body, m.end() - 1)
        end = positions[i + 1][0] if i + 1 < len(positions) else len(body)
        text = _latex_to_text(body[after:end])
        title = _latex_to_text(title)
        if text:
            doc.segments.append(Segment(title, text))
    # Figures know their section: the last section heading before their caption in the text.
    for f in doc.figures:
        for s in doc.segments:
            if f.caption and f.caption in s.text:
                f.section = s.section
                break
    if not doc.segments:
        raise ParseError(f"{main.name} has no text")
    return doc


# -- Markdown and plain text -----------------------------------------------------------------
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
