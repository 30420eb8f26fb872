"""The library: the facade callers use. It holds the catalog (``library.sqlite``), the chunks'
vectors and the figure index under ``home``, and the lock that lets one index run at a time.

What a library does lives in the sub-packages, each taking only the parts it needs:
:mod:`retrievers.index.indexing` (index runs, crash-safe), :mod:`retrievers.search.hybrid`
(hybrid search), :mod:`retrievers.search.figures` (figure search). The methods here are the
short way to call them.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrievers.errors import LibraryBusy
from retrievers.index.catalog import Catalog
from retrievers.index.indexing import IndexReport, Progress, quiet
from retrievers.index.vectors import ChunkVectors
from retrievers.records import Paper
from retrievers.search.hybrid import Hit

if TYPE_CHECKING:
    from retrievers.index.embeddings import TextEmbedder
    from retrievers.index.figures import FigureIndex
    from retrievers.index.stores import VectorStore
    from retrievers.search.figures import FigureHit
    from retrievers.sources.references import Reference

__all__ = ["Hit", "IndexReport", "Library"]


class Library:
    """The catalog, the chunks' vectors and the figure index, under ``home``."""

    def __init__(self, home: Path, store: str = "faiss", chroma_url: str | None = None,
                 embed_model: str = "all-MiniLM-L6-v2", chunk_context: bool = True,
                 clip_model: str | None = None, cache_dir: Path | None = None) -> None:
        """``cache_dir``: the machine-wide cache holding the embedder's fast export (see
        :mod:`retrievers.index.embeddings`; None: its default)."""
        self.home = home
        self.store_kind = store
        self.chroma_url = chroma_url
        self.embed_model = embed_model
        self.clip_model = clip_model
        self.catalog = Catalog(home / "library.sqlite")
        self.vectors = ChunkVectors(home, store, chroma_url, embed_model, chunk_context,
                                    cache_dir)
        self._figures: FigureIndex | None = None

    @classmethod
    def from_settings(cls, s: Any) -> Library:
        """The library a settings object describes (``home_dir``, ``store``, ``chroma_url``,
        ``embed_model``, ``chunk_context``, ``clip_model``, ``cache_path``: duck-typed, so this
        package needs none of the others)."""
        return cls(s.home_dir, store=s.store, chroma_url=s.chroma_url, embed_model=s.embed_model,
                   chunk_context=s.chunk_context, clip_model=s.clip_model,
                   cache_dir=s.cache_path)

    @property
    def embedder(self) -> TextEmbedder:
        """The text embedder (chunks, captions, queries)."""
        return self.vectors.embedder

    @property
    def store(self) -> VectorStore:
        """The chunks' vector store."""
        return self.vectors.store

    @property
    def figures(self) -> FigureIndex:
        """The figure stores: captions (text embedder) and images (CLIP)."""
        if self._figures is None:
            from retrievers.index.figures import FigureIndex

            self._figures = FigureIndex(self.home, self.catalog, lambda: self.vectors.embedder,
                                        self.store_kind, self.chroma_url, self.embed_model,
                                        self.clip_model)
        return self._figures

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One index run per home; a second one is told, not blocked."""
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / "library.lock", "w") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LibraryBusy(f"another index run is using {self.home}",
                                  "wait for it to finish, then run this again") from None
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # -- the short way to index and search -----------------------------------------------
    def index_files(self, paths: Sequence[Path], progress: Progress = quiet,
                    arxiv: Any = None, cluster: Any = None) -> IndexReport:
        """Index files; a PDF carrying an arXiv id gets arXiv's metadata (``arxiv``: the
        client, None for a default one, False for no look-up). ``cluster``: a
        :class:`~retrievers.index.cluster.RayCluster` to parse and embed on."""
        from retrievers.index import indexing

        with self.locked():
            return indexing.index_files(self.catalog, self.vectors, self.figures, self.home,
                                        paths, progress, arxiv, cluster)

    def index_arxiv(self, refs: Sequence[str] = (), query: str | None = None,
                    max_results: int = 10, client: Any = None,
                    progress: Progress = quiet, cluster: Any = None) -> IndexReport:
        """Index arXiv papers by id (any pasted form) or by an arXiv search query (the chunks
        embedded on ``cluster`` when given)."""
        from retrievers.index import indexing

        with self.locked():
            return indexing.index_arxiv(self.catalog, self.vectors, self.figures, self.home,
                                        refs, query, max_results, client, progress, cluster)

    def index_references(self, refs: Sequence[Reference], progress: Progress = quiet,
                         arxiv: Any = None) -> IndexReport:
        """Index a reference manager's entries (a .bib file's, a Zotero library's): attached
        files, or arXiv papers by id; citation keys and tags kept."""
        from retrievers.index import indexing

        with self.locked():
            return indexing.index_references(self.catalog, self.vectors, self.figures,
                                             self.home, refs, progress, arxiv)

    def remove(self, ref: str) -> Paper:
        """Remove a paper (key, arXiv id or catalog id) with its chunks, figures and vectors."""
        from retrievers.index import indexing

        with self.locked():
            return indexing.remove(self.catalog, self.vectors, self.figures, ref)

    def sync(self, progress: Progress = quiet) -> IndexReport:
        """Bring the vector stores in step with the catalog (what an index run ends with)."""
        from retrievers.index import indexing

        report = IndexReport()
        with self.locked():
            indexing.sync(self.catalog, self.vectors, self.figures, report, progress)
        return report

    def rebuild(self, progress: Progress = quiet, *, figures: bool = False,
                cluster: Any = None) -> IndexReport:
        """Drop the vector store and embed every chunk again from the catalog (on
        ``cluster`` when given); with ``figures``, the figure stores instead (captions, and
        images when CLIP is set)."""
        from retrievers.index import indexing

        with self.locked():
            return indexing.rebuild(self.catalog, self.vectors, self.figures, progress,
                                    figures_only=figures, cluster=cluster)

    def search(self, query: str, k: int = 5, *, paper: str | None = None,
               year: int | None = None, category: str | None = None,
               tag: str | None = None, mode: str = "hybrid") -> list[Hit]:
        """Hybrid search: BM25 and dense rankings fused by reciprocal rank; every hit carries
        its cosine relevance to the query."""
        from retrievers.search.hybrid import hybrid_search

        return hybrid_search(self.catalog, self.vectors, query, k, paper=paper, year=year,
                             category=category, tag=tag, mode=mode)

    def search_figures(self, query: str | None = None, k: int = 5, *,
                       like: int | None = None, paper: str | None = None,
                       images: bool = True) -> list[FigureHit]:
        """Figures for a text query (captions by words and meaning, images through CLIP unless
        ``images`` is false) or like figure ``like``, fused by reciprocal rank."""
        from retrievers.search.figures import figure_search

        return figure_search(self.catalog, self.figures, query, k, like=like, paper=paper,
                             images=images)

    def idf(self, word: str) -> float:
        """How rare ``word`` is among the library's chunks (BM25's IDF; FTS5 stems it)."""
        from retrievers.search.proximity import bm25_idf

        return bm25_idf(*self.catalog.chunk_frequency(word))

    def holds(self, word: str) -> bool:
        """Whether any chunk of the library holds ``word`` (as FTS5 stems it)."""
        return self.catalog.chunk_frequency(word)[0] > 0

    def close(self) -> None:
        self.catalog.close()
