"""Vector stores behind one small interface: FAISS (embedded default) and Chroma.

Vector ids are catalog chunk ids, so a store can always be reconciled with the catalog: what
the catalog has and the store lacks is embedded and added, what the store has and the catalog
lost is removed. That is what makes an interrupted index run safe to run again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np


class VectorStore(Protocol):
    name: str

    def ids(self) -> set[int]: ...
    def id_array(self) -> np.ndarray: ...
    def add(self, ids: list[int], vectors: np.ndarray) -> None: ...
    def remove(self, ids: Iterable[int]) -> None: ...
    def search(self, vector: np.ndarray, k: int,
               within: set[int] | None = None) -> list[tuple[int, float]]:
        """The ``k`` nearest vectors (id, cosine), best first; only ids in ``within`` when
        it is given (a search restricted to a paper, a year, a category)."""
        ...

    def save(self) -> None: ...


# Exact search costs ~0.25 ms per 1k vectors on two cores (bench/retrieval.py: 23 ms p50 at 100k,
# 350 ms at 1M; IVF 1-4 ms). Past 50k it would take over a quarter of the 50 ms search budget,
# so the index becomes an inverted-file index there; the same benchmark checks its recall@10
# against exact search (>= 0.95 with NPROBE lists probed).
APPROX_MIN_VECTORS = 50_000
# Past a million vectors (1.5 GB as float32) the IVF lists hold 8-bit scalar-quantised vectors
# (IVF-SQ8): 3.8x smaller, and on 60k real embeddings recall@10 0.966 against IVF-Flat's 0.973
# at the same nprobe, where product quantisation (PQ48 / PQ96) fell to 0.73 / 0.85
# (bench/scale.py; docs/scale.md). At 30M chunks: 11.5 GB instead of 46 GB.
COMPRESS_MIN_VECTORS = 1_000_000
NPROBE = 48
EXACT_WITHIN = 5_000  # a restricted search over at most this many ids probes every list


class FaissStore:
    """Inner-product search over normalised vectors, persisted to one file.

    Exact (a flat index) for small libraries; once it holds ``approx_min`` vectors it is rebuilt
    as an IVF index (trained on what it holds), which keeps add and remove by id; once it holds
    ``compress_min``, as IVF-SQ8 (8 bits a dimension), retrained on what it holds by then. The file is
    replaced atomically on :meth:`save`; a crash loses at most the vectors added since, which
    the next run's reconciliation adds again.
    """

    name = "faiss"

    def __init__(self, folder: Path, dim: Callable[[], int],
                 approx_min: int = APPROX_MIN_VECTORS, filename: str = "faiss.index",
                 compress_min: int = COMPRESS_MIN_VECTORS) -> None:
        import faiss

        self.path = folder / filename
        self.approx_min, self.compress_min = approx_min, compress_min
        self.index: Any  # faiss's SWIG classes (IndexIDMap2 or IndexIVFFlat); stubs lag them
        if self.path.exists():  # opening an index needs no embedding model
            self.index = faiss.read_index(str(self.path))
        else:
            self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim()))
        self._dirty = False

    @property
    def approximate(self) -> bool:
        return not hasattr(self.index, "id_map")

    @property
    def compressed(self) -> bool:
        """The IVF lists hold quantised vectors (IVF-SQ8), not float32 ones."""
        return self.approximate and "ScalarQuantizer" in type(self.index).__name__

    def ids(self) -> set[int]:
        return set(self.id_array().tolist())

    def id_array(self) -> np.ndarray:
        """Every id the index holds, sorted (int64: 8 bytes an id, where a set of Python
        ints takes about 70)."""
        import faiss
        import numpy as np

        if not self.approximate:
            return np.sort(faiss.vector_to_array(self.index.id_map).astype("int64"))
        lists: Any = faiss.extract_index_ivf(self.index).invlists
        parts = [faiss.rev_swig_ptr(lists.get_ids(i), n).astype("int64")
                 for i in range(lists.nlist) if (n := lists.list_size(i))]
        return np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype="int64")

    def add(self, ids: list[int], vectors: np.ndarray) -> None:
        import numpy as np

        if ids:
            self.index.add_with_ids(vectors, np.asarray(ids, dtype="int64"))
            self._dirty = True

    def remove(self, ids: Iterable[int]) -> None:
        import numpy as np

        arr = np.asarray(sorted(ids), dtype="int64")
        if arr.size:
            self.index.remove_ids(arr)
            self._dirty = True

    def search(self, vector: np.ndarray, k: int,
               within: set[int] | None = None) -> list[tuple[int, float]]:
        if self.index.ntotal == 0 or (within is not None and not within):
            return []
        params: Any = None
        if within is not None:
            import faiss
            import numpy as np

            selector = faiss.IDSelectorBatch(np.fromiter(within, dtype="int64"))
            # (faiss's stubs lag its SWIG classes, which take these keywords)
            if self.approximate:
                # A few ids (a paper's chunks, the hits to score) may lie in lists far from
                # the query: probe every list, which costs an id check per vector (about a
                # millisecond at 100k), so the search over them is exact.
                nprobe = self.index.nlist if len(within) <= EXACT_WITHIN else self.index.nprobe
                params = faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)  # type: ignore[call-arg]
            else:
                params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        scores, ids = self.index.search(vector.reshape(1, -1), min(k, self.index.ntotal),
                                        params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def make_approximate(self, batch: int = 8192, *, compressed: bool = False) -> None:
        """Rebuild the index as IVF-Flat (or, ``compressed``, IVF-SQ8) with about 4·sqrt(n)
        lists, trained on a sample of 64 vectors a list. The vectors move over in batches, so
        the rebuild holds about two copies of them at its peak (reconstructed all at once,
        bench/indexing.py measured 3.4x the vectors' own size)."""
        import faiss
        import numpy as np

        n, d = self.index.ntotal, self.index.d
        nlist = int(4 * np.sqrt(n))
        step = max(1, n // (64 * nlist))
        sample = np.concatenate([v[::step] for _, v in self._batches(batch)])
        ivf: Any
        if compressed:
            ivf = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(d), d, nlist,
                                                faiss.ScalarQuantizer.QT_8bit,
                                                faiss.METRIC_INNER_PRODUCT)
        else:
            ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.max_points_per_centroid = 64
        ivf.train(sample)
        del sample
        for ids, vectors in self._batches(batch):
            ivf.add_with_ids(vectors, ids)
        ivf.nprobe = NPROBE
        self.index = ivf
        self._dirty = True

    def _batches(self, batch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, float32 vectors) of everything the index holds, ``batch`` at a time (read
        back from a flat index, or decoded from an IVF index's lists)."""
        import faiss

        if not self.approximate:
            ids = faiss.vector_to_array(self.index.id_map).astype("int64")
            for i in range(0, len(ids), batch):
                yield ids[i:i + batch], self.index.index.reconstruct_n(
                    i, min(batch, len(ids) - i))
            return
        ivf: Any = faiss.downcast_index(faiss.extract_index_ivf(self.index))
        lists = ivf.invlists
        for i in range(lists.nlist):
            n = lists.list_size(i)
            if not n:
                continue
            ids = faiss.rev_swig_ptr(lists.get_ids(i), n).copy().astype("int64")
            codes = faiss.rev_swig_ptr(lists.get_codes(i), n * lists.code_size).copy()
            if not self.compressed:
                yield ids, codes.view("float32").reshape(n, ivf.d)
                continue
            vectors = ivf.sq.decode(codes.reshape(n, lists.code_size))
            if ivf.by_residual:  # the codes are of the vector minus its list's centroid
                vectors += ivf.quantizer.reconstruct(i)
            yield ids, vectors

    def save(self) -> None:
        import faiss

        if not self.compressed and self.index.ntotal >= self.compress_min:
            self.make_approximate(compressed=True)
        elif not self.approximate and self.index.ntotal >= self.approx_min:
            self.make_approximate()
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        faiss.write_index(self.index, str(tmp))
        os.replace(tmp, self.path)
        self._dirty = False


class ChromaStore:
    """A Chroma collection: embedded and persistent by default, or a Chroma server by URL."""

    name = "chroma"

    def __init__(self, folder: Path, url: str | None = None, collection: str = "chunks") -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        settings = ChromaSettings(anonymized_telemetry=False)
        if url:
            from urllib.parse import urlparse

            u = urlparse(url)
            self.client = chromadb.HttpClient(host=u.hostname or "localhost",
                                              port=u.port or 8000, ssl=u.scheme == "https",
                                              settings=settings)
        else:
            self.client = chromadb.PersistentClient(path=str(folder / "chroma"), settings=settings)
        self.collection = self.client.get_or_create_collection(
            collection, metadata={"hnsw:space": "cosine"})

    def ids(self) -> set[int]:
        return {int(i) for i in self.collection.get(include=[])["ids"]}

    def id_array(self) -> np.ndarray:
        import numpy as np

        return np.sort(np.fromiter(self.ids(), dtype="int64"))

    def add(self, ids: list[int], vectors: np.ndarray) -> None:
        for start in range(0, len(ids), 1000):
            part = ids[start:start + 1000]
            self.collection.upsert(ids=[str(i) for i in part],
                                   embeddings=vectors[start:start + len(part)].tolist())

    def remove(self, ids: Iterable[int]) -> None:
        keys = [str(i) for i in ids]
        if keys:
            self.collection.delete(ids=keys)

    def search(self, vector: np.ndarray, k: int,
               within: set[int] | None = None) -> list[tuple[int, float]]:
        n = self.collection.count() if within is None else len(within)
        if n == 0:
            return []
        res = self.collection.query(query_embeddings=[vector.tolist()], n_results=min(k, n),
                                    ids=None if within is None else [str(i) for i in within],
                                    include=["distances"])
        return [(int(i), 1.0 - float(d)) for i, d in
                zip(res["ids"][0], res["distances"][0], strict=True)]  # type: ignore[index]

    def save(self) -> None:
        pass  # Chroma persists each write


def open_store(
    kind: str, folder: Path, dim: Callable[[], int], chroma_url: str | None = None,
    name: str = "chunks",
) -> VectorStore:
    """Open one of the library's stores (``name``: ``chunks``, or the figure stores
    ``figure_captions`` and ``figure_images``); ``dim`` is asked only when a new index must be
    created."""
    if kind == "faiss":
        return FaissStore(folder, dim,
                          filename="faiss.index" if name == "chunks" else f"{name}.index")
    if kind == "chroma":
        return ChromaStore(folder, chroma_url, collection=name)
    from retrievers.errors import LibraryError

    raise LibraryError(f"unknown vector store '{kind}'", "use --store faiss or --store chroma")
