"""Keyword search on the names and numbers real papers are full of (issue 12): a model name or
a count written with separators is found in the chunk that holds it exactly, ahead of chunks
that hold its pieces apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrievers.catalog import Catalog, Chunk, Paper

FILLER = ("The system is evaluated on several benchmarks with a strong baseline and careful "
          "ablations of each component, reported in the tables below.")


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    catalog = Catalog(tmp_path / "library.sqlite")
    texts = {
        "holds": "The Crawler is built on Qwen2.5-7B and the dataset holds 33,511 queries. "
                 + FILLER,
        # The same pieces, apart: the naive tokenisation cannot tell these from the above.
        # The same pieces, apart, in shorter chunks (BM25 favours them): the naive
        # tokenisation cannot tell these from the above.
        "pieces": "We compare Qwen2 and a 7B model over 5 runs with 33 seeds and 511 queries.",
        "other": "Qwen2-7B answers 33 of the 511 questions in 2.5 seconds.",
    }
    for i, (key, text) in enumerate(texts.items()):
        catalog.put_paper(Paper(key=key, title=f"Paper {key}", content_hash=str(i)), [],
                          [Chunk(text=text, section="1 Setup", char_start=0,
                                 char_end=len(text))])
    return catalog


def _paper_of(catalog: Catalog, chunk_id: int) -> str:
    return str(catalog.db.execute(
        "SELECT p.key FROM chunks c JOIN papers p ON p.id = c.paper_id WHERE c.id = ?",
        (chunk_id,)).fetchone()[0])


@pytest.mark.parametrize("query", ["Qwen2.5-7B", "33,511"])
def test_a_name_or_number_with_separators_finds_the_chunk_that_holds_it(
        catalog: Catalog, query: str) -> None:
    hits = catalog.keyword_search(query, 3)
    assert hits and _paper_of(catalog, hits[0][0]) == "holds"
    assert hits[0][1] > hits[1][1]  # ahead, not tied with the chunks holding the pieces
