"""Hybrid search: BM25 (the catalog's FTS5 index) and dense vectors, fused by reciprocal rank.

Every hit carries its cosine similarity to the query, whichever ranking found it, so a caller
can hold every hit to the same relevance bar (a chunk found only by one shared keyword is not
waved through because the dense ranking never saw it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from litcore.text import keywords
from retrievers.errors import LibraryError
from retrievers.records import Chunk, Paper
from retrievers.search.proximity import asks_quantity, bm25_idf, proximity_ranking

if TYPE_CHECKING:
    from retrievers.index.catalog import Catalog
    from retrievers.index.vectors import ChunkVectors

RRF_K = 60
# Each ranking's weight in the fusion. A question that asks for a number ("how many", "what
# F1") adds the term-proximity ranking (retrievers/proximity.py) at twice the weight and halves
# the dense one, which barely sees numbers: bench/grounding.py, same run, set 1 recall@5 0.885
# -> 0.962, set 2 0.846 -> 0.962, 14 sampled questions written apart 0.929 -> 1.0, every MRR up.
# Other questions are ranked as before (proximity for them lowered recall@1 on set 2).
WEIGHTS = {"dense": 1.0, "keyword": 1.0, "label": 1.0, "near": 0.0, "named": 1.0}
QUANTITY_WEIGHTS = {"dense": 0.5, "keyword": 1.0, "label": 1.0, "near": 2.0, "named": 1.0}


@dataclass
class Hit:
    """A ranked chunk with the paper it belongs to."""

    chunk: Chunk
    paper: Paper
    score: float
    dense_rank: int | None = None
    keyword_rank: int | None = None
    dense_score: float | None = None  # cosine similarity to the query

    def to_dict(self) -> dict[str, object]:
        return {
            "chunk_id": self.chunk.id, "text": self.chunk.text, "score": round(self.score, 6),
            "relevance": None if self.dense_score is None else round(self.dense_score, 4),
            "paper": self.paper.arxiv_id or self.paper.key, "title": self.paper.title,
            "section": self.chunk.section, "pages": self.chunk.pages,
            "char_start": self.chunk.char_start, "char_end": self.chunk.char_end,
        }


def location(section: str, pages: str) -> str:
    """Where a passage is, as every citation shows it: "3 Method, p. 4"."""
    return ", ".join(x for x in (section, f"p. {pages}" if pages else "") if x)


def hybrid_search(catalog: Catalog, vectors: ChunkVectors, query: str, k: int = 5, *,
                  paper: str | None = None, year: int | None = None,
                  category: str | None = None, tag: str | None = None,
                  mode: str = "hybrid") -> list[Hit]:
    """The ``k`` best chunks for ``query`` under the filters, each with its cosine relevance.

    A filter (``paper``, ``year``, ``category``, ``tag``) restricts every ranking before fusion, so a
    paper that holds relevant chunks gives ``k`` of them however many other papers outrank
    it."""
    if not query.strip():
        raise LibraryError("empty query", "say what to search for")
    within = catalog.chunk_ids_where(paper, year, category, tag) \
        if paper or year or category or tag else None
    # the same candidates for any k up to 10, so `ask` (k 5) ranks as the benchmark (k 10)
    pool = max(k * 8, 80)
    query_vector: np.ndarray | None = None
    dense: list[tuple[int, float]] = []
    keyword: list[tuple[int, float]] = []
    if mode in ("hybrid", "dense"):
        query_vector = vectors.embedder.embed_query(query)
        dense = vectors.store.search(query_vector, pool, within)
    labelled: list[tuple[int, float]] = []
    if mode in ("hybrid", "keyword"):
        keyword = catalog.keyword_search(query, pool, within)
        # a question about "Table 2 of the S2ORC paper" also ranks the captions it names
        # (bench/grounding.py: set 2 recall@5 0.769 -> 0.846, MRR 0.653 -> 0.776)
        labelled = catalog.labelled_chunks(query, pool, within)
    near: list[tuple[int, float]] = []
    weights = WEIGHTS
    if mode == "hybrid" and asks_quantity(query):
        near = _proximity(catalog, query, {c for c, _ in dense} | {c for c, _ in keyword})
        weights = QUANTITY_WEIGHTS
    fused: dict[int, float] = {}
    ranks: dict[int, dict[str, int]] = {}
    cosine = dict(dense)
    for name, ranking in (("dense", dense), ("keyword", keyword), ("label", labelled),
                          ("near", near)):
        for rank, (cid, _score) in enumerate(ranking, start=1):
            fused[cid] = fused.get(cid, 0.0) + weights[name] / (RRF_K + rank)
            ranks.setdefault(cid, {})[name] = rank
    if mode == "hybrid" and within is None:
        _named(catalog, query, fused, ranks)
    order = sorted(fused, key=lambda c: -fused[c])
    hits = _lookup(catalog, order, k, fused, ranks, cosine)
    _fill_relevance(vectors, query, query_vector, hits)
    return hits


def _named(catalog: Catalog, query: str, fused: dict[int, float],
           ranks: dict[int, dict[str, int]]) -> None:
    """A question that names a paper by its short name ("In Multi-LexSum, who reviews ...")
    ranks that paper's candidates once more, in their fused order, at the weight of a ranking:
    its passages come before another paper's that only share more words."""
    named = catalog.papers_named(query)
    if not named:
        return
    papers = catalog.paper_ids_of(list(fused))
    own = sorted((c for c in fused if papers.get(c) in named), key=lambda c: -fused[c])
    for rank, cid in enumerate(own, start=1):
        fused[cid] += WEIGHTS["named"] / (RRF_K + rank)
        ranks[cid]["named"] = rank


def _proximity(catalog: Catalog, query: str, candidates: set[int]) -> list[tuple[int, float]]:
    """The candidates ranked by their best short stretch (question terms near a number)."""
    words = keywords(query)
    if not words or not candidates:
        return []
    texts = {cid: c.text for cid, c in catalog.chunks_by_id(sorted(candidates)).items()}
    return proximity_ranking(query, words, texts,
                             lambda w: bm25_idf(*catalog.chunk_frequency(w)))


def _lookup(catalog: Catalog, order: list[int], k: int, fused: dict[int, float],
            ranks: dict[int, dict[str, int]], cosine: dict[int, float]) -> list[Hit]:
    papers: dict[int, Paper] = {}
    hits: list[Hit] = []
    step = max(2 * k, 10)  # look up a few more than k: a vector may have lost its chunk
    for start in range(0, len(order), step):
        batch = order[start:start + step]
        chunks = catalog.chunks_by_id(batch)
        papers.update(catalog.papers_by_id(
            {int(c.paper_id or 0) for c in chunks.values()} - set(papers)))
        for cid in batch:
            chunk = chunks.get(cid)
            if chunk is None:
                continue  # a vector the catalog no longer has; the next sync drops it
            p = papers.get(int(chunk.paper_id or 0))
            if p is None:
                continue
            hits.append(Hit(chunk, p, fused[cid], ranks[cid].get("dense"),
                            ranks[cid].get("keyword"), cosine.get(cid)))
            if len(hits) == k:
                return hits
    return hits


def _fill_relevance(vectors: ChunkVectors, query: str, query_vector: np.ndarray | None,
                    hits: list[Hit]) -> None:
    """Give hits that only keyword search found their cosine similarity too: the vector store
    scores their stored vectors against the query (a search restricted to them), and only a
    chunk it cannot reach (an IVF list not probed) is embedded again. Embedding them all cost
    about 100 ms a 256-token passage on one thread: 175 ms of a 100k-chunk search's p50."""
    missing = [h for h in hits if h.dense_score is None]
    if not missing:
        return
    if query_vector is None:
        query_vector = vectors.embedder.embed_query(query)
    q = np.asarray(query_vector, dtype=np.float32).reshape(-1)
    stored = dict(vectors.store.search(q, len(missing),
                                       within={int(h.chunk.id or 0) for h in missing}))
    for h in missing:
        h.dense_score = stored.get(int(h.chunk.id or 0))
    missing = [h for h in missing if h.dense_score is None]
    if not missing:
        return
    # a few texts on one thread: beside a local vLLM server a two-thread encode competes with
    # its spinning workers (see TextEmbedder.embed_query)
    embedded = vectors.embedder.embed_few([vectors.passage(h.chunk, h.paper) for h in missing])
    for h, v in zip(missing, np.asarray(embedded, dtype=np.float32), strict=True):
        h.dense_score = float(v @ q)
