"""Indexing on a Ray cluster (``litlab index files ... --ray [ADDRESS]``).

The work that grows with the corpus runs as Ray Data pipelines: parsing and chunking a file
are CPU tasks, one file each; embedding runs on actors that load the embedder once (on a GPU
when the cluster has them). Results stream back, in order, to this process, which stays the
one writer of the catalog and the vector store: a paper is written in one catalog transaction
as it arrives, vectors are keyed by chunk id, so the crash-safety of a plain run holds
unchanged (a killed run resumes where it stopped; nothing is indexed twice). A task whose
worker dies is run again by Ray.

Ray is the optional ``scale`` extra and is imported only here, only with ``--ray``. The files
and ``LITLAB_HOME`` must be readable (and the home writable) at the same paths on every node
(a shared filesystem), and litlab installed there: a local cluster has both.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from retrievers.errors import LibraryError

LOCAL = "local"  # start a cluster on this machine for the run
WINDOW = 4096  # chunks embedded per pipeline: bounds what waits in memory


def _parse(row: dict[str, Any]) -> dict[str, Any]:
    """A Ray task: parse and chunk one file (the error's text if it cannot be parsed)."""
    from retrievers.index.chunking import chunk_document
    from retrievers.parsing.document import ParseError
    from retrievers.parsing.files import parse_file

    try:
        doc = parse_file(Path(row["path"]), Path(row["folder"]))
    except ParseError as e:
        return {"path": row["path"], "parsed": b"", "error": str(e)}
    return {"path": row["path"], "parsed": pickle.dumps((doc, chunk_document(doc))), "error": ""}


class _Embed:
    """A Ray actor: the embedder, loaded once, embedding batches of passages."""

    def __init__(self, model: str, cache_dir: str | None, gpu: bool) -> None:
        if gpu:
            from retrievers.index.st_embedder import SentenceTransformerEmbedder

            self.embedder: Any = SentenceTransformerEmbedder(model)
        else:
            from retrievers.index.embeddings import get_embedder

            self.embedder = get_embedder(model, Path(cache_dir) if cache_dir else None)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {"id": batch["id"], "vector": self.embedder.embed(list(batch["text"]))}


class RayCluster:
    """A connection to a Ray cluster (``address``: ``local`` starts one on this machine) and
    the pipelines litlab runs on it. ``workers``: embedding actors (default: one per CPU the
    cluster has, or one per GPU)."""

    def __init__(self, address: str = LOCAL, workers: int | None = None) -> None:
        try:
            import ray
        except ImportError as e:
            raise LibraryError("Ray is not installed, so --ray cannot run",
                               "pip install 'litlab[scale]' (or run without --ray)") from e
        self.ray = ray
        self._own = not ray.is_initialized()
        # Ray Data's actors log a C++ warning on this process about their own constructor
        # arguments (ray-project/ray#53727), nothing a person can act on; Python errors
        # still come as exceptions. RAY_BACKEND_LOG_LEVEL set by hand wins.
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
        for name in ("ray", "ray.data"):  # litlab's progress line says how it goes
            logging.getLogger(name).setLevel(logging.ERROR)
        if self._own:
            try:
                if address == LOCAL:
                    ray.init(include_dashboard=False, log_to_driver=False,
                             configure_logging=False,
                             object_store_memory=1024**3)
                else:
                    ray.init(address=address, include_dashboard=False, log_to_driver=False,
                             configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise LibraryError(f"cannot join the Ray cluster at {address}: {e}",
                                   "start it (`ray start --head`), or pass its address "
                                   "(e.g. --ray 10.0.0.5:6379)") from e
        import ray.data

        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # papers arrive in the plain order
        for name in ("ray", "ray.data"):  # ray.data sets its own levels on import
            logging.getLogger(name).setLevel(logging.ERROR)
        context.enable_progress_bars = False
        resources = ray.cluster_resources()
        self.cpus = int(resources.get("CPU", 1))
        self.gpus = int(resources.get("GPU", 0))
        self.workers = max(1, workers or self.gpus or self.cpus)

    def describe(self) -> str:
        return (f"Ray cluster: {self.cpus} CPU(s), {self.gpus} GPU(s); "
                f"{self.workers} embedding worker(s)")

    def parse(self, files: Sequence[tuple[Path, Path]]) -> Iterator[tuple[Path, Any, str]]:
        """Parse and chunk ``(file, folder for its sources)`` pairs on the cluster; yield
        ``(file, (document, chunks) or None, error)`` in the order given, as they are done."""
        if not files:
            return
        ds = self.ray.data.from_items(
            [{"path": str(p), "folder": str(f)} for p, f in files],
            override_num_blocks=len(files)).map(_parse, num_cpus=1)
        for row in ds.iter_rows():
            parsed = pickle.loads(row["parsed"]) if row["parsed"] else None
            yield Path(row["path"]), parsed, str(row["error"])

    def embed(self, batches: Iterable[tuple[list[int], list[str]]], model: str,
              cache_dir: Path | None) -> Iterator[tuple[list[int], Any]]:
        """Embed ``(chunk ids, passages)`` batches on the cluster's actors; yield
        ``(chunk ids, vectors)`` batches as they come back."""
        window: list[dict[str, Any]] = []
        for ids, texts in batches:
            window += [{"id": i, "text": t} for i, t in zip(ids, texts, strict=True)]
            if len(window) >= WINDOW:
                yield from self._embed_window(window, model, cache_dir)
                window = []
        if window:
            yield from self._embed_window(window, model, cache_dir)

    def _embed_window(self, rows: list[dict[str, Any]], model: str,
                      cache_dir: Path | None) -> Iterator[tuple[list[int], Any]]:
        size = max(1, min(128, len(rows) // self.workers))
        items = self.ray.data.from_items(rows, override_num_blocks=max(1, len(rows) // size))
        ds = items.map_batches(
            _Embed, fn_constructor_args=(model, str(cache_dir) if cache_dir else None,
                                         self.gpus > 0),
            batch_size=size, batch_format="numpy",
            compute=self.ray.data.ActorPoolStrategy(size=self.workers),
            num_gpus=1 if self.gpus else 0, num_cpus=0 if self.gpus else 1)
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            yield [int(i) for i in batch["id"]], batch["vector"]

    def close(self) -> None:
        if self._own:
            self.ray.shutdown()
