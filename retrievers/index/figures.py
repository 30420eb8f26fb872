"""The figure index: figure captions (the text embedder) and figure images (CLIP), each in its
own vector store beside the chunks', kept in step with the catalog the same way.

Vectors are keyed by catalog figure id (never reused), so an interrupted run is finished by the
next one: what the catalog has and a store lacks is embedded, what a store has and the catalog
lost is dropped. Each store records the model that made its vectors; a different model empties
it and embeds again. Without a CLIP checkpoint the captions are still indexed and one note says
how to add CLIP (``litlab library rebuild --figures`` embeds the images later).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from retrievers.records import Figure

if TYPE_CHECKING:
    import numpy as np

    from retrievers.index.catalog import Catalog
    from retrievers.index.clip import ClipEmbedder
    from retrievers.index.embeddings import TextEmbedder
    from retrievers.index.stores import VectorStore

Progress = Callable[[str], None]
Notes = list[tuple[str, str]]  # (what, note): said to the person at the end of an index run

CAPTIONS = "figure_captions"
IMAGES = "figure_images"
BATCH = 64  # figures read from the catalog at a time (CLIP batches within)


def caption_text(figure: Figure) -> str:
    """What a figure's caption vector is made from: "Figure 2: caption". Not the paper's title
    (unlike chunks): with it, "bar chart of papers by field of study" scored 0.37 against the
    caption "Distribution of papers by ... field of study" instead of 0.56; titles stay in the
    captions' keyword index."""
    return f"{figure.name}: {figure.caption}"


class FigureIndex:
    """The two figure stores of one library: captions embedded with ``embedder`` (the text
    embedder the chunks use, loaded when first needed), images with CLIP."""

    def __init__(self, home: Path, catalog: Catalog, embedder: Callable[[], TextEmbedder],
                 store: str = "faiss", chroma_url: str | None = None,
                 embed_model: str = "all-MiniLM-L6-v2", clip_model: str | None = None) -> None:
        self.home = home
        self.catalog = catalog
        self._embedder = embedder
        self.store_kind = store
        self.chroma_url = chroma_url
        self.embed_model = embed_model
        self.clip_model = clip_model
        self._stores: dict[str, VectorStore] = {}
        self._clip: ClipEmbedder | None = None

    @property
    def embedder(self) -> TextEmbedder:
        return self._embedder()

    @property
    def thumbs(self) -> Path:
        """The CLIP-sized copies of figure images
        (:func:`retrievers.parsing.images.thumbnail_path`)."""
        return self.home / "figures" / "thumbs"

    @property
    def _meta_path(self) -> Path:
        return self.home / "indexes" / f"figures-{self.store_kind}.json"

    def recorded(self) -> dict[str, str]:
        try:
            return dict(json.loads(self._meta_path.read_text()))
        except (FileNotFoundError, ValueError):
            return {}

    def record(self, name: str, model: str) -> None:
        """Write down which model made the vectors of store ``name``."""
        meta = self.recorded()
        if meta.get(name) != model:
            self._write_meta({**meta, name: model})

    def _write_meta(self, meta: dict[str, str]) -> None:
        self._meta_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, self._meta_path)

    def _absent(self, name: str) -> bool:
        """No vectors of this kind were ever stored (a FAISS store without its file)."""
        return self.store_kind == "faiss" and name not in self._stores and \
            not (self.home / "indexes" / f"{name}.index").exists()

    def store(self, name: str) -> VectorStore:
        if name not in self._stores:
            from retrievers.index.stores import open_store

            dim = (lambda: self.embedder.dim) if name == CAPTIONS else \
                (lambda: self.clip().dim)
            self._stores[name] = open_store(self.store_kind, self.home / "indexes", dim,
                                            self.chroma_url, name=name)
        return self._stores[name]

    def clip(self) -> ClipEmbedder:
        """The CLIP embedder the settings name, or :class:`~retrievers.index.clip.ClipUnavailable`."""
        if self._clip is None:
            from retrievers.index.clip import clip_path, load_clip

            self._clip = load_clip(clip_path(self.clip_model, self.home))
        return self._clip

    def clip_ready(self) -> bool:
        """CLIP is set up and its vectors were made by the checkpoint the settings name."""
        from retrievers.index.clip import ClipUnavailable, clip_path

        try:
            folder = clip_path(self.clip_model, self.home)
        except ClipUnavailable:
            return False
        return self.recorded().get(IMAGES) == str(folder)

    def drop(self, name: str) -> None:
        """Empty one store (a model changed, or ``library rebuild --figures``)."""
        self._stores.pop(name, None)
        if self.store_kind == "faiss":  # nothing to open (an image store needs CLIP's size)
            (self.home / "indexes" / f"{name}.index").unlink(missing_ok=True)
        else:
            store = self.store(name)
            store.remove(store.ids())
        meta = self.recorded()
        if meta.pop(name, None) is not None:
            self._write_meta(meta)

    # -- keeping the stores in step with the catalog ----------------------------------------
    def sync(self, notes: Notes, progress: Progress) -> None:
        """Bring both stores in step with the catalog; what the person should know (no CLIP
        checkpoint, say) is added to ``notes``."""
        added = self._sync_captions(progress)
        self._sync_images(notes, progress, added)

    def _sync_captions(self, progress: Progress) -> int:
        """Bring the caption store in step; returns how many captions it embedded."""
        catalog = self.catalog
        want = catalog.figure_ids()
        if not want and self._absent(CAPTIONS):
            return 0  # nothing to hold or drop: no reason to load the embedder
        if self.recorded().get(CAPTIONS) not in (None, self.embed_model):
            self.drop(CAPTIONS)
        store = self.store(CAPTIONS)
        missing = _reconcile(store, want)
        done = 0
        for batch in self._batches(missing):
            texts = [caption_text(f) for f in batch]
            store.add([int(f.id or 0) for f in batch], self.embedder.embed(texts))
            done += len(batch)
            progress(f"embedded {done}/{len(missing)} figure captions")
        store.save()
        if want:
            self.record(CAPTIONS, self.embed_model)
        return len(missing)

    def _sync_images(self, notes: Notes, progress: Progress, new_figures: int) -> None:
        from retrievers.index.clip import ClipUnavailable, clip_path

        catalog = self.catalog
        want = catalog.figure_ids(images=True)
        try:
            folder = str(clip_path(self.clip_model, self.home))
        except ClipUnavailable as e:  # said once, when figures come in
            if not (want and new_figures):
                return
            if not self.clip_model:
                notes.append(("figures", f"{len(want)} figure images are found by their "
                                                f"captions only; for image search {e.hint}"))
            else:
                notes.append(("figures", str(e)))
            return
        if not want and self._absent(IMAGES):
            return  # no figure images yet: CLIP need not load
        if self.recorded().get(IMAGES) not in (None, folder):
            self.drop(IMAGES)
        store = self.store(IMAGES)
        missing = _reconcile(store, want)
        done = 0
        for batch in self._batches(missing):
            ids, vectors = self._embed_images(batch)
            store.add(ids, vectors)
            done += len(batch)
            progress(f"embedded {done}/{len(missing)} figure images (CLIP)")
            if done % 256 < len(batch):
                store.save()
        store.save()
        if want:
            self.record(IMAGES, folder)

    def _embed_images(self, figures: list[Figure]) -> tuple[list[int], np.ndarray]:
        """CLIP vectors of the figures whose images open; the others get their reason."""
        from retrievers.parsing.images import thumbnail_path

        paths = []
        for f in figures:  # the small copy made when the paper was indexed, if it is there
            thumb = thumbnail_path(self.thumbs, f.image_path or "")
            paths.append(thumb if thumb.is_file() else Path(f.image_path or ""))
        done, vectors, failures = self.clip().embed_files(paths)
        for i, reason in failures.items():
            self.catalog.skip_figure(int(figures[i].id or 0), reason)
        return [int(figures[i].id or 0) for i in done], vectors

    def _batches(self, ids: set[int]) -> Iterator[list[Figure]]:
        ordered = sorted(ids)
        for i in range(0, len(ordered), BATCH):
            figures = list(self.catalog.figures_by_id(ordered[i:i + BATCH]).values())
            if figures:
                yield figures


def _reconcile(store: VectorStore, want: set[int]) -> set[int]:
    """Drop the store's vectors the catalog no longer has; return the ids it lacks."""
    have = store.ids()
    if have - want:
        store.remove(have - want)
    return want - have
