"""LaTeX papers: a ``.tex`` file or a project folder. Equations stay LaTeX, ``\\input`` and
``\\include`` are resolved inside the project (never outside it), and figure environments give
their captions and image files."""

from __future__ import annotations

import re
from pathlib import Path

from retrievers.parsing.document import Document, ParseError, Segment
from retrievers.records import Figure

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
