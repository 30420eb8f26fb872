"""Chunking with LlamaIndex's sentence-aware splitter, keeping what a citation needs.

Chunks never cross a section. Each knows its section, the page(s) it spans and its character
offsets in the paper's text (:attr:`retrievers.parsing.Document.text`, which the catalog keeps:
``paper_text[char_start:char_end]`` is the chunk).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from retrievers.parsing.document import Document
from retrievers.records import Chunk

_WORD = re.compile(r"\w+|[^\w\s]")


def approx_tokens(text: str) -> list[str]:
    """A fast, offline token count (LlamaIndex defaults to tiktoken, which downloads)."""
    return _WORD.findall(text)


def chunk_document(
    doc: Document,
    chunk_size: int = 180,
    overlap: int = 30,
    tokenizer: Callable[[str], list[str]] = approx_tokens,
) -> list[Chunk]:
    from llama_index.core import Document as LIDocument
    from llama_index.core.node_parser import SentenceSplitter

    splitter = SentenceSplitter(chunk_size=chunk_size, chunk_overlap=overlap,
                                tokenizer=tokenizer, include_metadata=False)
    # Global offsets of each segment in doc.text ("\n\n"-joined).
    spans: list[tuple[int, int]] = []
    pos = 0
    for seg in doc.segments:
        spans.append((pos, pos + len(seg.text)))
        pos += len(seg.text) + 2

    chunks: list[Chunk] = []
    i = 0
    while i < len(doc.segments):
        # A run of segments of one section (one per page for PDFs).
        j = i
        while j + 1 < len(doc.segments) and doc.segments[j + 1].section == doc.segments[i].section:
            j += 1
        start, end = spans[i][0], spans[j][1]
        text = doc.text[start:end]
        nodes = splitter.get_nodes_from_documents([LIDocument(text=text)])
        cursor = 0
        for node in nodes:
            content = node.get_content()
            local = _locate(text, content, cursor, getattr(node, "start_char_idx", None))
            cursor = local + 1
            s, e = start + local, start + local + len(content)
            pages = [p for k in range(i, j + 1)
                     if (p := doc.segments[k].page) is not None
                     and spans[k][0] < e and spans[k][1] > s]
            chunks.append(Chunk(
                text=content, section=doc.segments[i].section,
                char_start=s, char_end=e,
                page_start=min(pages) if pages else None, page_end=max(pages) if pages else None,
                ord=len(chunks),
            ))
        i = j + 1
    return chunks + caption_chunks(doc, spans, len(chunks))


# A caption line: "Figure 2: ...", "Fig. 3. ...", "Table 1: ..." (PDF, text) or "[Figure: ...]"
# (what the LaTeX parser leaves where a figure was), with up to two lines that continue it.
_CAPTION = re.compile(r"(?m)^[ \t]*(?:(?:Figure|Fig\.|Table)[ \t]*\d+[:.]|\[Figure:)[^\n]*"
                      r"(?:\n(?![ \t]*\n)[^\n]+){0,2}")
MAX_CAPTION_CHARS = 600


def caption_chunks(doc: Document, spans: list[tuple[int, int]], first_ord: int) -> list[Chunk]:
    """Each figure or table caption as a chunk of its own, besides the body chunk that holds
    it: a question about "Figure 2" or "Table 1" then meets the caption alone, not a caption
    buried in a page of body text. Offsets point at the caption in the paper's text."""
    out: list[Chunk] = []
    for m in _CAPTION.finditer(doc.text):
        text = m.group(0).strip()[:MAX_CAPTION_CHARS]
        start = m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
        if len(text) < 12:
            continue
        k = next((k for k, (a, b) in enumerate(spans) if a <= start < b), None)
        seg = doc.segments[k] if k is not None else None
        out.append(Chunk(text=text, section=seg.section if seg else "",
                         char_start=start, char_end=start + len(text),
                         page_start=seg.page if seg else None, page_end=seg.page if seg else None,
                         ord=first_ord + len(out)))
    return out


def _locate(text: str, content: str, cursor: int, hint: int | None) -> int:
    """Where ``content`` starts in ``text``: the splitter's own offset when it is right, else
    the next occurrence after the previous chunk's start. Offsets are a promise (the catalog
    keeps the text they point into), so a chunk that cannot be found is an error, never its
    section's whole span."""
    if hint is not None and text[hint:hint + len(content)] == content:
        return hint
    found = text.find(content, cursor)
    if found < 0:
        found = text.find(content)
    if found < 0:
        raise ValueError(f"chunk not found in its section's text: {content[:60]!r}")
    return found
