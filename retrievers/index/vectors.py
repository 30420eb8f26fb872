"""The chunks' vectors: one vector store, the embedder that made its vectors, and how a chunk
is turned into the text that is embedded.

Each store records the embedding its vectors came from (the model, and whether chunks carry
their paper's title and section in front: "contextual" chunks). Opening a store made another
way is refused with the command that rebuilds it, never mixed; a store made before chunks
carried their context stays consistent with itself until ``litlab library rebuild``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from retrievers.errors import LibraryError
from retrievers.records import Chunk, Paper

if TYPE_CHECKING:
    from retrievers.index.embeddings import TextEmbedder
    from retrievers.index.stores import VectorStore


class ChunkVectors:
    """The vector store of a library's chunks under ``home/indexes``, with its embedder."""

    def __init__(self, home: Path, store: str = "faiss", chroma_url: str | None = None,
                 embed_model: str = "all-MiniLM-L6-v2", chunk_context: bool = True,
                 cache_dir: Path | None = None, embedder: TextEmbedder | None = None) -> None:
        """``embedder``: one already loaded for ``embed_model`` (else it is loaded on first
        use, its fast export preferred)."""
        self.home = home
        self.cache_dir = cache_dir
        self.store_kind = store
        self.chroma_url = chroma_url
        self.embed_model = embed_model
        # Embed each chunk with its paper's title and its section in front: a question that
        # names the paper or the section finds its passages.
        self.chunk_context = self._wanted_context = chunk_context
        self._store: VectorStore | None = None
        self._embedder: TextEmbedder | None = embedder

    @property
    def embedder(self) -> TextEmbedder:
        if self._embedder is None:
            from retrievers.index.embeddings import get_embedder

            self._embedder = get_embedder(self.embed_model, self.cache_dir)
        return self._embedder

    @property
    def store(self) -> VectorStore:
        if self._store is None:
            from retrievers.index.stores import open_store

            built_with = self._recorded()
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

    def passage(self, chunk: Chunk, paper: Paper | None) -> str:
        """The text embedded for a chunk."""
        if not self.chunk_context or paper is None:
            return chunk.text
        head = " · ".join(x for x in (paper.title, chunk.section) if x)
        return f"{head}\n{chunk.text}" if head else chunk.text

    @property
    def _meta_path(self) -> Path:
        return self.home / "indexes" / f"{self.store_kind}.json"

    def _recorded(self) -> str | None:
        """The embedding the vectors in this store were made with, if recorded."""
        try:
            return str(json.loads(self._meta_path.read_text())["embed_model"])
        except (FileNotFoundError, KeyError, ValueError):
            return None

    def record_model(self) -> None:
        """Write down which embedding made the store's vectors."""
        if self._recorded() == self.embedding:
            return
        self._meta_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"embed_model": self.embedding}))
        os.replace(tmp, self._meta_path)

    def drop(self) -> None:
        """Empty the store (under the library's lock: a rebuild embeds everything again)."""
        if self.store_kind == "faiss":
            (self.home / "indexes" / "faiss.index").unlink(missing_ok=True)
        self._meta_path.unlink(missing_ok=True)  # the old model no longer matters
        self._store = None
        self.chunk_context = self._wanted_context
        if self.store_kind == "chroma":
            self.store.remove(self.store.ids())
