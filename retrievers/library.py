"""The library: the catalog plus one vector store and the embedder, under ``home``.

What a library does lives beside it, one concept a module: :mod:`retrievers.files` (hashing,
safe extraction, parsing a file), :mod:`retrievers.indexing` (index runs, crash-safe),
:mod:`retrievers.search` (hybrid search). The methods here are the short way to call them.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrievers.catalog import Catalog, Paper
from retrievers.errors import LibraryBusy, LibraryError
from retrievers.indexing import IndexReport, Progress, quiet
from retrievers.search import Hit

if TYPE_CHECKING:
    from retrievers.embeddings import TextEmbedder
    from retrievers.figure_index import FigureIndex
    from retrievers.figure_search import FigureHit
    from retrievers.stores import VectorStore

__all__ = ["Hit", "IndexReport", "Library"]


class Library:
    """The catalog plus one vector store, under ``home``."""

    def __init__(self, home: Path, store: str = "faiss", chroma_url: str | None = None,
                 embed_model: str = "all-MiniLM-L6-v2", chunk_context: bool = True,
                 clip_model: str | None = None) -> None:
        self.home = home
        # Embed each chunk with its paper's title and its section in front ("contextual"
        # chunks): a question that names the paper or the section finds its passages.
        self.chunk_context = self._wanted_context = chunk_context
        self.store_kind = store
        self.chroma_url = chroma_url
        self.embed_model = embed_model
        self.catalog = Catalog(home / "library.sqlite")
        self.clip_model = clip_model
        self._store: VectorStore | None = None
        self._embedder: TextEmbedder | None = None
        self._figures: FigureIndex | None = None

    @classmethod
    def from_settings(cls, s: Any) -> Library:
        """The library a settings object describes (``home_dir``, ``store``, ``chroma_url``,
        ``embed_model``: duck-typed, so this package needs none of the others)."""
        return cls(s.home_dir, store=s.store, chroma_url=s.chroma_url, embed_model=s.embed_model,
                   chunk_context=getattr(s, "chunk_context", True),
                   clip_model=getattr(s, "clip_model", None))

    @property
    def embedder(self) -> TextEmbedder:
        if self._embedder is None:
            from retrievers.embeddings import get_embedder

            self._embedder = get_embedder(self.embed_model, self.home)
        return self._embedder

    @property
    def figures(self) -> FigureIndex:
        """The figure stores: captions (text embedder) and images (CLIP)."""
        if self._figures is None:
            from retrievers.figure_index import FigureIndex

            self._figures = FigureIndex(self)
        return self._figures

    @property
    def store(self) -> VectorStore:
        if self._store is None:
            from retrievers.stores import open_store

            built_with = self._recorded_model()
            if built_with == self.embed_model and self.chunk_context:
                # Built before chunks carried their context: stay consistent with it;
                # `litlab library rebuild` adds the context.
                self.chunk_context = False
            if built_with not in (None, self.embedding):
                raise LibraryError(
                    f"the {self.store_kind} index was built as '{built_with}', but the "
                    f"settings ask for '{self.embedding}' (embed_model, chunk_context)",
                    "run `litlab library rebuild` to embed the library again, "
                    "or set them back")
            self._store = open_store(self.store_kind, self.home / "indexes",
                                     lambda: self.embedder.dim, self.chroma_url)
        return self._store

    @property
    def embedding(self) -> str:
        """How the vectors are made: the model, and whether chunks carry their context."""
        return self.embed_model + ("+context" if self.chunk_context else "")

    def passage(self, chunk: Any, paper: Paper | None) -> str:
        """The text embedded for a chunk."""
        if not self.chunk_context or paper is None:
            return str(chunk.text)
        head = " · ".join(x for x in (paper.title, chunk.section) if x)
        return f"{head}\n{chunk.text}" if head else str(chunk.text)

    @property
    def _meta_path(self) -> Path:
        return self.home / "indexes" / f"{self.store_kind}.json"

    def _recorded_model(self) -> str | None:
        """The embedding model the vectors in this store were made with, if recorded."""
        try:
            return str(json.loads(self._meta_path.read_text())["embed_model"])
        except (FileNotFoundError, KeyError, ValueError):
            return None

    def record_model(self) -> None:
        """Write down which embedding model made the store's vectors."""
        if self._recorded_model() == self.embedding:
            return
        self._meta_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"embed_model": self.embedding}))
        os.replace(tmp, self._meta_path)

    def drop_vectors(self) -> None:
        """Empty the vector store (under the lock: a rebuild embeds everything again)."""
        if self.store_kind == "faiss":
            (self.home / "indexes" / "faiss.index").unlink(missing_ok=True)
        self._meta_path.unlink(missing_ok=True)  # the old model no longer matters
        self._store = None
        self.chunk_context = self._wanted_context
        if self.store_kind == "chroma":
            self.store.remove(self.store.ids())

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

    # -- the short way to index and search (see retrievers.indexing and retrievers.search) ---
    def index_files(self, paths: Sequence[Path], progress: Progress = quiet,
                    arxiv: Any = None) -> IndexReport:
        """Index files; a PDF carrying an arXiv id gets arXiv's metadata (``arxiv``: the
        client, None for a default one, False for no look-up)."""
        from retrievers.indexing import index_files

        return index_files(self, paths, progress, arxiv)

    def index_arxiv(self, refs: Sequence[str] = (), query: str | None = None,
                    max_results: int = 10, client: Any = None,
                    progress: Progress = quiet) -> IndexReport:
        """Index arXiv papers by id (any pasted form) or by an arXiv search query."""
        from retrievers.indexing import index_arxiv

        return index_arxiv(self, refs, query, max_results, client, progress)

    def remove(self, ref: str) -> Paper:
        from retrievers.indexing import remove

        return remove(self, ref)

    def rebuild(self, progress: Progress = quiet, *, figures: bool = False) -> IndexReport:
        """Drop the vector store and embed every chunk again from the catalog; with
        ``figures``, the figure stores instead (captions, and images when CLIP is set)."""
        from retrievers.indexing import rebuild

        return rebuild(self, progress, figures=figures)

    def search(self, query: str, k: int = 5, *, paper: str | None = None,
               year: int | None = None, category: str | None = None,
               mode: str = "hybrid") -> list[Hit]:
        """Hybrid search: BM25 and dense rankings fused by reciprocal rank; every hit carries
        its cosine relevance to the query."""
        from retrievers.search import hybrid_search

        return hybrid_search(self, query, k, paper=paper, year=year, category=category,
                             mode=mode)

    def search_figures(self, query: str | None = None, k: int = 5, *,
                       like: int | None = None, paper: str | None = None,
                       images: bool = True) -> list[FigureHit]:
        """Figures for a text query (captions by words and meaning, images through CLIP unless
        ``images`` is false) or like figure ``like``, fused by reciprocal rank."""
        from retrievers.figure_search import figure_search

        return figure_search(self, query, k, like=like, paper=paper, images=images)

    def close(self) -> None:
        self.catalog.close()
