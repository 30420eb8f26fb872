"""Cases made from the library, so a person can start without writing any: one passage each,
spread over the papers; the question names the passage's rarest words, the reference is its
first sentence, and its paper is the one retrieval should find."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from litcore.text import FILLER_WORDS, GENERIC_WORDS, STOP_WORDS, terms

_COMMON = STOP_WORDS | FILLER_WORDS | GENERIC_WORDS


def _words(text: str) -> list[str]:
    """The words of four letters or more that a question can name (numbers left out)."""
    return [w for w in terms(text) if w[0].isalpha() and len(w) >= 4]


def cases_from_library(lib: Any, count: int) -> list[dict[str, Any]]:
    papers = [p for p in lib.catalog.papers("indexed")]
    chunks_by_paper = {p.id: lib.catalog.chunks_of(p.id) for p in papers}
    document_freq: Counter[str] = Counter()
    for chunks in chunks_by_paper.values():
        for c in chunks:
            document_freq.update({w.lower() for w in _words(c.text)})
    out: list[dict[str, Any]] = []
    rounds = 0
    while len(out) < count and rounds < 50:
        for p in papers:
            chunks = [c for c in chunks_by_paper[p.id] if len(c.text) > 200]
            if rounds >= len(chunks) or len(out) >= count:
                continue
            c = chunks[(rounds * 7) % len(chunks)]
            words = {w for w in _words(c.text) if w.lower() not in _COMMON}
            rare = sorted(words, key=lambda w: (document_freq[w.lower()], w))[:3]
            if len(rare) < 2:
                continue
            first = re.split(r"(?<=[.!?])\s", c.text.strip(), maxsplit=1)[0][:300]
            out.append({"id": f"lib-{c.id}", "question": f"What does the paper say about "
                                                         f"{', '.join(rare[:-1])} and {rare[-1]}?",
                        "reference": first, "papers": [p.arxiv_id or p.key],
                        "chunks": [c.id], "tags": ["from-library"]})
        rounds += 1
    return out
