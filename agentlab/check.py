"""Checking a person's own draft against the library: every sentence supported (with the
source sentence quoted), contradicted (with the source's value), or not found.

A draft is Markdown, LaTeX or plain text; it is read as text (markup, LaTeX commands, math
and code left out), split into sentences, and each sentence that claims something is searched
in the library and verified (:mod:`agentlab.verify`) as `ask` verifies its own answers.
Nothing is written to the library.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentlab.attribution import MIN_CLAIM_WORDS, attribute, split_sentences
from agentlab.errors import DraftError
from agentlab.verify import CONTRADICTED, NOT_FOUND, SUPPORTED, Vocabulary
from litcore.text import tokens

MAX_BYTES = 2_000_000  # a draft, not a book: about 300 pages of text
FORMATS = {".md": "markdown", ".markdown": "markdown", ".tex": "latex", ".txt": "text",
           ".text": "text", "": "text"}


@dataclass
class Checked:
    """One sentence of the draft with its verdict and the evidence behind it."""

    text: str
    line: int
    verdict: str  # supported | contradicted | not_found
    evidence: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "line": self.line, "verdict": self.verdict,
                "evidence": self.evidence}


def read_draft(arg: str, stdin: Callable[[], str] | None = None) -> tuple[str, str]:
    """(text, format) of a draft given as a path, ``-`` (standard input) or the text itself."""
    if arg == "-":
        if stdin is None:
            raise DraftError("no standard input to read", "pipe the draft in, or give a file")
        return _bounded(stdin()), "text"
    path = Path(arg)
    looks_like_path = "\n" not in arg and len(arg) < 4096 and (
        path.suffix.lower() in FORMATS or "/" in arg) and " " not in path.name
    if looks_like_path or path.is_file():
        if not path.is_file():
            raise DraftError(f"{arg}: no such file", "give a file, - for standard input, or "
                                                     "the text itself in quotes")
        kind = FORMATS.get(path.suffix.lower())
        if kind is None:
            raise DraftError(f"{path.name}: unknown format '{path.suffix}'",
                             "give Markdown (.md), LaTeX (.tex) or plain text (.txt)")
        if path.stat().st_size > MAX_BYTES:
            raise DraftError(f"{path.name} is {path.stat().st_size // 1_000_000} MB; a draft "
                             f"of at most {MAX_BYTES // 1_000_000} MB is checked",
                             "check it a section at a time")
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            raise DraftError(f"{path.name} is a binary file, not a draft",
                             "give Markdown, LaTeX or plain text")
        try:
            return data.decode("utf-8"), kind
        except UnicodeDecodeError:
            raise DraftError(f"{path.name} is not UTF-8 text", "save it as UTF-8") from None
    return _bounded(arg), "text"


def _bounded(text: str) -> str:
    if len(text.encode()) > MAX_BYTES:
        raise DraftError(f"the draft is over {MAX_BYTES // 1_000_000} MB",
                         "check it a section at a time")
    return text


def plain_text(text: str, kind: str) -> str:
    """The draft's prose, keeping its line breaks (so a sentence keeps its line number)."""
    if kind == "latex":
        text = re.sub(r"(?<!\\)%.*", "", text)
        text = re.sub(r"\\begin\{(equation|align|figure|table|verbatim|lstlisting)\*?\}.*?"
                      r"\\end\{\1\*?\}", lambda m: "\n" * m.group(0).count("\n"), text,
                      flags=re.S)
        text = re.sub(r"\$\$.*?\$\$|\$[^$]*\$", " ", text, flags=re.S)
        text = re.sub(r"\\(cite[pt]?|ref|eqref|autoref|cref|label|url)\*?\{[^}]*\}", "", text)
        text = re.sub(r"\\(section|subsection|subsubsection|paragraph|title|caption)\*?"
                      r"\{([^}]*)\}", r"\2.", text)
        text = re.sub(r"\\(textbf|textit|emph|texttt|textrm|underline)\{([^}]*)\}", r"\2", text)
        text = re.sub(r"\\[a-zA-Z]+\*?(\[[^\]]*\])?(\{[^}]*\})?", " ", text)
        text = text.replace("~", " ").replace("{", "").replace("}", "")
    elif kind == "markdown":
        text = re.sub(r"```.*?```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
        text = re.sub(r"`[^`]*`", " ", text)
        text = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", text)
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
        text = re.sub(r"(?m)^[ \t]{0,3}#{1,6}[ \t]*(.*?)[ \t]*#*[ \t]*$", r"\1.", text)
        text = re.sub(r"(\*\*|__|\*|_)(\S[^*_]*?)\1", r"\2", text)
        text = re.sub(r"(?m)^[ \t]*(?:[-*+]|\d+[.)])[ \t]+", "", text)
        text = re.sub(r"(?m)^[ \t]*>[ \t]?", "", text)
    return text


def sentences(text: str) -> Iterator[tuple[int, str]]:
    """(line number, sentence) of the draft's sentences that claim something."""
    for start, block in _blocks(text):
        # a line that ends a sentence ends it whatever the next one starts with ("...
        # science.\npapermage's ...")
        for part in re.finditer(r".+?(?:[.!?](?=[ \t]*\n)|$)", block, re.S):
            line = start + block[:part.start()].count("\n")
            flat = part.group(0).replace("\n", " ")
            for s in split_sentences(flat):
                at = flat.find(s)
                s = " ".join(s.split())
                if len(tokens(s)) >= MIN_CLAIM_WORDS and not s.endswith(":"):
                    yield line + part.group(0)[:max(at, 0)].count("\n"), s


def _blocks(text: str) -> Iterator[tuple[int, str]]:
    line = 1
    for block in re.split(r"(\n\s*\n)", text):
        if block.strip() and not re.fullmatch(r"\n\s*\n", block):
            yield line, block
        line += block.count("\n")


def check_draft(text: str, kind: str, library: Any, *, k: int = 5,
                progress: Callable[[int, int], None] | None = None) -> list[Checked]:
    """Verify every claim of a draft against the library."""
    from agentlab.citations import Source

    claims = list(sentences(plain_text(text, kind)))
    if not claims:
        raise DraftError("the draft has no sentence to check", "give it some prose")
    out = []
    for i, (line, claim) in enumerate(claims, start=1):
        hits = library.search(claim, k)
        sources = [Source.from_hit(n, h) for n, h in enumerate(hits, start=1)]
        judged = attribute(claim, sources, library.embedder.embed_few,
                           vocabulary=Vocabulary.of(library))
        if not judged:
            out.append(Checked(claim, line, NOT_FOUND))
            continue
        s = judged[0]
        by_n = {src.n: src for src in sources}
        evidence = [{**e.to_dict(), "paper": by_n[e.n].paper, "title": by_n[e.n].title,
                     "section": by_n[e.n].section, "pages": by_n[e.n].pages,
                     "chunk_id": by_n[e.n].chunk_id} for e in s.evidence if e.n in by_n]
        # overlapping chunks hold the same sentence: quoted once a paper
        once: dict[tuple[str, str], dict[str, Any]] = {}
        for e in evidence:
            once.setdefault((e["paper"], " ".join(e["quote"].split())), e)
        evidence = list(once.values())
        verdict = SUPPORTED if s.supported else CONTRADICTED if s.contradicted else NOT_FOUND
        if verdict == NOT_FOUND:
            evidence = evidence[:1]  # the closest the library comes
        out.append(Checked(claim, line, verdict, evidence))
        if progress is not None:
            progress(i, len(claims))
    return out


def bibtex(papers: list[Any]) -> str:
    """BibTeX entries of ``papers`` (catalog records): the citation key a reference manager
    gave the paper, else one made of the first author, the year and a title word."""
    entries = []
    for p in papers:
        author = p.authors[0].split()[-1].lower() if p.authors else "anon"
        year = p.year or ""
        first_word = next((w for w in re.findall(r"[A-Za-z]+", p.title.lower())
                           if len(w) > 3), "paper")
        key = p.cite_key or re.sub(r"[^a-z0-9]", "", f"{author}{year}{first_word}")
        fields = {"title": f"{{{p.title}}}", "author": " and ".join(p.authors) or None,
                  "year": str(year) if year else None}
        if p.arxiv_id:
            fields |= {"eprint": p.arxiv_id, "archivePrefix": "arXiv",
                       "primaryClass": p.categories[0] if p.categories else None,
                       "url": f"https://arxiv.org/abs/{p.arxiv_id}"}
        body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields.items() if v)
        entries.append(f"@article{{{key},\n{body}\n}}")
    return "\n\n".join(entries)
