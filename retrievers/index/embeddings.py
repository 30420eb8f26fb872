"""The text embedder a library uses, and where its fast form lives.

Commands embed with the embedder's ONNX export (ONNX Runtime and ``tokenizers`` load in about
0.3 s; sentence-transformers and torch take seconds before the first query). The export is
derived from the packaged model, so it lives in a machine-wide cache beside no particular
``LITLAB_HOME`` (``cache_dir``; by default ``~/.cache/litlab``): every
home on the machine uses it. It is made by ``litlab models prepare`` (which ``make run``
runs) or, where it was never made, on first use, with a note saying so. An export that cannot
be made is recorded with its reason and the embedder stays on sentence-transformers, with a
note each time, never silently.
"""

from __future__ import annotations

import json
import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from retrievers.errors import LibraryError
from retrievers.index.st_embedder import DEFAULT_MODEL, SentenceTransformerEmbedder

if TYPE_CHECKING:
    import numpy as np

__all__ = ["DEFAULT_MODEL", "TextEmbedder", "default_cache_dir", "get_embedder"]

log = logging.getLogger("litlab")
FAILED = "litlab-onnx-failed.json"  # beside an export that could not be made: why


class TextEmbedder(Protocol):
    """What the library needs of an embedder: L2-normalised vectors (inner product = cosine)."""

    name: str
    dim: int

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray: ...
    def embed_query(self, text: str) -> np.ndarray: ...
    def embed_few(self, texts: list[str]) -> np.ndarray: ...


def default_cache_dir() -> Path:
    """The machine-wide cache of derived models: ``$LITLAB_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/litlab``, else ``~/.cache/litlab``."""
    if os.environ.get("LITLAB_CACHE_DIR"):
        return Path(os.environ["LITLAB_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "litlab"


def get_embedder(name: str = DEFAULT_MODEL, cache_dir: Path | None = None) -> TextEmbedder:
    """The embedder for ``name``: its checked ONNX export in ``cache_dir`` (made now if the
    machine has none), else sentence-transformers. Both give the same vectors."""
    from retrievers.index.onnx_embedder import export, export_dir, is_exported

    cache = cache_dir or default_cache_dir()
    folder = export_dir(cache, name)
    if not is_exported(folder):
        failed = _failure(folder)
        if failed is None:
            log.warning("note: exporting the text embedder %s to ONNX once for this machine "
                        "(about 15 s; commands then embed without torch) into %s", name, folder)
            try:
                export(name, cache)
            except (ImportError, LibraryError, OSError, RuntimeError) as e:
                failed = str(e)
                _record_failure(folder, failed)
        if failed is not None:
            log.warning("note: %s runs on sentence-transformers, seconds slower per command "
                        "(its ONNX export failed: %s; `litlab models prepare --force` tries "
                        "again)", name, failed)
            return _torch_embedder(name)
    return _onnx_embedder(folder, name)


def _failure(folder: Path) -> str | None:
    try:
        return str(json.loads((folder.parent / f"{folder.name}.{FAILED}").read_text())["reason"])
    except (OSError, ValueError, KeyError):
        return None


def _record_failure(folder: Path, reason: str) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    (folder.parent / f"{folder.name}.{FAILED}").write_text(json.dumps({"reason": reason}))


def forget_failure(cache: Path, name: str) -> None:
    """Let the next :func:`get_embedder` try the export again."""
    from retrievers.index.onnx_embedder import export_dir

    folder = export_dir(cache, name)
    (folder.parent / f"{folder.name}.{FAILED}").unlink(missing_ok=True)


@lru_cache(maxsize=2)
def _torch_embedder(name: str) -> TextEmbedder:
    return SentenceTransformerEmbedder(name)


@lru_cache(maxsize=2)
def _onnx_embedder(folder: Path, name: str) -> TextEmbedder:
    from retrievers.index.onnx_embedder import OnnxEmbedder

    return OnnxEmbedder(folder, name)
