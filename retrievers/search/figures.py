"""Figure search: captions by words (BM25) and by meaning (the text embedder), images through
CLIP, fused by reciprocal rank as chunk search is.

A text query asks all three; ``like`` a figure asks the image store with that figure's CLIP
vector (and the caption store with its caption's). Without CLIP the caption rankings alone
answer, so figure search works on a machine with no CLIP checkpoint. Every hit carries its
caption's cosine similarity to the query, which callers hold to the same bar as chunks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from retrievers.errors import LibraryError
from retrievers.index.figures import CAPTIONS, IMAGES, caption_text
from retrievers.records import Figure, Paper
from retrievers.search.hybrid import RRF_K

if TYPE_CHECKING:
    from retrievers.index.catalog import Catalog
    from retrievers.index.figures import FigureIndex


@dataclass
class FigureHit:
    figure: Figure
    paper: Paper
    score: float
    ranks: dict[str, int] = field(default_factory=dict)  # keyword, caption, image: 1-based
    relevance: float | None = None  # the caption's cosine similarity to the query
    image_score: float | None = None  # CLIP similarity (text or figure to this image)

    def to_dict(self) -> dict[str, object]:
        f = self.figure
        return {
            "figure_id": f.id, "label": f.name, "caption": f.caption, "page": f.page,
            "section": f.section, "image_path": f.image_path, "skipped": f.skipped,
            "paper": self.paper.arxiv_id or self.paper.key, "title": self.paper.title,
            "score": round(self.score, 6), "ranks": self.ranks,
            "relevance": None if self.relevance is None else round(self.relevance, 4),
            "image_score": None if self.image_score is None else round(self.image_score, 4),
        }


def figure_search(catalog: Catalog, figures: FigureIndex, query: str | None = None, k: int = 5, *,
                  like: int | None = None, paper: str | None = None,
                  query_vector: np.ndarray | None = None, images: bool = True
                  ) -> list[FigureHit]:
    """The ``k`` best figures for ``query`` or like figure ``like`` (optionally in one paper:
    every ranking is restricted to it before fusion)."""
    if like is None and not (query or "").strip():
        raise LibraryError("empty figure query", "say what the figure shows, or give --like ID")
    pool = max(k * 8, 50)
    within = catalog.figure_ids_where(paper) if paper else None
    rankings: dict[str, list[tuple[int, float]]] = {}
    exclude: set[int] = set()
    caption_vector: np.ndarray | None = None
    if like is not None:
        found = catalog.figures_by_id([like]).get(like)
        if found is None:
            raise LibraryError(f"no figure {like} in the library",
                               "figure ids are listed by `litlab search --figures` and "
                               "`litlab library show PAPER`")
        exclude = {like}
        if found.caption:
            caption_vector = figures.embedder.embed_query(caption_text(found))
            rankings["caption"] = figures.store(CAPTIONS).search(caption_vector, pool, within)
        if images and found.image_path and not found.skipped and figures.clip_ready():
            from retrievers.parsing.images import thumbnail_path

            thumb = thumbnail_path(figures.thumbs, found.image_path)
            done, vectors, _failed = figures.clip().embed_files(
                [thumb if thumb.is_file() else Path(found.image_path)])
            if done:
                rankings["image"] = figures.store(IMAGES).search(vectors[0], pool, within)
    else:
        text = str(query)
        rankings["keyword"] = catalog.figure_keyword_search(text, pool, within)
        caption_vector = query_vector if query_vector is not None \
            else figures.embedder.embed_query(text)
        rankings["caption"] = figures.store(CAPTIONS).search(caption_vector, pool, within)
        if images and figures.clip_ready():
            rankings["image"] = figures.store(IMAGES).search(
                figures.clip().embed_query(text), pool, within)
    hits = _fuse(catalog, rankings, k, exclude)
    _fill_relevance(figures, caption_vector, hits)
    return hits


def _fuse(catalog: Catalog, rankings: dict[str, list[tuple[int, float]]], k: int,
          exclude: set[int]) -> list[FigureHit]:
    fused: dict[int, float] = {}
    ranks: dict[int, dict[str, int]] = {}
    for name, ranking in rankings.items():
        for rank, (fid, _score) in enumerate((r for r in ranking if r[0] not in exclude),
                                             start=1):
            fused[fid] = fused.get(fid, 0.0) + 1.0 / (RRF_K + rank)
            ranks.setdefault(fid, {})[name] = rank
    order = sorted(fused, key=lambda f: -fused[f])
    caption_scores = dict(rankings.get("caption", []))
    image_scores = dict(rankings.get("image", []))
    hits: list[FigureHit] = []
    step = max(2 * k, 10)
    for start in range(0, len(order), step):
        batch = order[start:start + step]
        figures = catalog.figures_by_id(batch)
        papers = catalog.papers_by_id({int(f.paper_id or 0) for f in figures.values()})
        for fid in batch:
            f = figures.get(fid)
            p = papers.get(int(f.paper_id or 0)) if f else None
            if f is None or p is None:
                continue  # a vector the catalog no longer has; the next sync drops it
            hits.append(FigureHit(f, p, fused[fid], ranks[fid], caption_scores.get(fid),
                                  image_scores.get(fid)))
            if len(hits) == k:
                return hits
    return hits


def _fill_relevance(figures: FigureIndex, caption_vector: np.ndarray | None,
                    hits: list[FigureHit]) -> None:
    """Captions the caption ranking did not reach get their cosine similarity too."""
    missing = [h for h in hits if h.relevance is None and h.figure.caption]
    if caption_vector is None or not missing:
        return
    vectors = figures.embedder.embed_few([caption_text(h.figure) for h in missing])
    q = np.asarray(caption_vector, dtype=np.float32).reshape(-1)
    for h, v in zip(missing, np.asarray(vectors, dtype=np.float32), strict=True):
        h.relevance = float(v @ q)
