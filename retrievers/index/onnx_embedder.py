"""The text embedder without torch: the sentence-transformers model exported once to ONNX and
run with ONNX Runtime and the `tokenizers` library.

Importing sentence-transformers and torch costs a cold command seconds before it can embed one
query; ONNX Runtime and `tokenizers` load in about 0.3 s. The export is made once a machine
(:mod:`retrievers.index.embeddings`) into ``CACHE/embeddings/NAME/`` and kept only when its vectors
match sentence-transformers' on texts of several lengths and batch sizes (cosine at least
:data:`MIN_COSINE`), so queries and passages embedded either way share one vector space; the
library uses it for both when it is there.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

MARKER = "litlab-onnx.json"
MIN_COSINE = 0.9999
CHECK_TEXTS = [
    "What does LoRA freeze?",
    "Attention",
    "The Transformer uses multi-head attention with eight heads in every layer, and dropout "
    "of 0.1 on the residual connections; " * 8,
    "Mamba scales linearly with sequence length (33,511 queries; Qwen2.5-7b).",
    "Figure 2: Validation loss against compute for models from 10M to 1B parameters.",
]


BESIDE = "onnx"  # a model folder with a sibling folder of this name keeps its export there


def export_dir(cache: Path, name: str) -> Path:
    """Where the export of ``name`` lives: beside a local model folder that asks for it with a
    sibling ``onnx/`` folder (a fine-tuned retriever: its export goes when it goes), else in
    the machine's cache (a path as a name kept apart from the packaged model's)."""
    beside = Path(name).parent / BESIDE
    if Path(name).is_dir() and beside.is_dir():
        return beside
    return Path(cache) / "embeddings" / name.strip("/").replace("/", "--")


def is_exported(folder: Path) -> bool:
    return (folder / MARKER).is_file() and (folder / "model.onnx").is_file()


class OnnxEmbedder:
    """A :class:`~retrievers.index.embeddings.TextEmbedder` on ONNX Runtime."""

    # Batches of 8: each batch is padded to its own longest text; on this 2-core machine 8 of
    # the dev papers' passages embedded 1.3-1.6x as fast as 64 (24 against 15-19 a second;
    # 16: 21-23), and full 256-token passages about as fast (15-16 a second either way).
    def __init__(self, folder: Path, name: str, batch_size: int = 8) -> None:
        from tokenizers import Tokenizer

        meta = json.loads((folder / MARKER).read_text())
        self.folder, self.name, self.batch_size = folder, name, batch_size
        self.dim = int(meta["dim"])
        self.pooling = str(meta["pooling"])
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=int(meta["max_seq_length"]))
        self.tokenizer.no_padding()  # batches are padded by _run, after sorting by length
        self.pad_id = int(meta["pad_id"])
        self._sessions: dict[int, Any] = {}
        self._lock = threading.Lock()

    def _session(self, threads: int) -> Any:
        with self._lock:
            if threads not in self._sessions:
                import onnxruntime as ort

                options = ort.SessionOptions()
                if threads:
                    options.intra_op_num_threads = threads
                options.log_severity_level = 3
                self._sessions[threads] = ort.InferenceSession(
                    str(self.folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
            return self._sessions[threads]

    def _run(self, texts: list[str], threads: int) -> np.ndarray:
        """Embed ``texts``, longest first in batches padded to their own longest text (as
        sentence-transformers does): one long text no longer pads a whole batch to 256
        tokens, which made real chunks embed 6x slower than short ones."""
        import numpy as np

        session = self._session(threads)
        inputs = {i.name for i in session.get_inputs()}
        encoded = self.tokenizer.encode_batch(texts)
        order = np.argsort([-len(e.ids) for e in encoded], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            rows = order[start:start + self.batch_size]
            width = len(encoded[rows[0]].ids)
            ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            types = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                e = encoded[i]
                ids[r, :len(e.ids)], mask[r, :len(e.ids)] = e.ids, 1
                types[r, :len(e.ids)] = e.type_ids
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            hidden = session.run(None, {k: v for k, v in feeds.items() if k in inputs})[0]
            if self.pooling == "cls":
                vectors = hidden[:, 0]
            else:
                weights = mask[..., None].astype(np.float32)
                vectors = (hidden * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            out[rows] = vectors / np.maximum(norms, 1e-12)
        return out

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self._run(texts, 0)  # every core: indexing

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_few([text])[0]

    def embed_few(self, texts: list[str]) -> np.ndarray:
        """One thread, as for the torch embedder: beside a local vLLM server whose workers
        spin after each request, a second thread costs more than it brings."""
        return self._run(texts, 1)


def export(name: str, cache: Path, force: bool = False) -> dict[str, Any]:
    """Export ``name`` (a sentence-transformers model) to ONNX in ``cache``; check it (again
    with ``force``). Two processes exporting at once do it one after the other (the second
    finds it made)."""
    import fcntl

    folder = export_dir(cache, name)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_exported(folder) and not force:
            return dict(json.loads((folder / MARKER).read_text()))
        return _export(name, folder)


def _export(name: str, folder: Path) -> dict[str, Any]:
    import os

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    from retrievers.errors import LibraryError
    from retrievers.index.st_embedder import model_path

    hf_logging.disable_progress_bar()
    st = SentenceTransformer(model_path(name), device="cpu")
    pooling_module = next((m for m in st if type(m).__name__ == "Pooling"), None)
    mode = getattr(pooling_module, "pooling_mode", None) or (
        "cls" if getattr(pooling_module, "pooling_mode_cls_token", False) else "mean")
    if mode not in ("mean", "cls"):
        raise LibraryError(f"{name} pools by '{mode}', which the ONNX embedder does not do",
                           "it stays on sentence-transformers")
    transformer: Any = st[0].auto_model
    transformer.eval()
    tokenizer = st.tokenizer
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    class Wrapped(torch.nn.Module):
        def __init__(self, m: Any) -> None:
            super().__init__()
            self.m = m

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.m(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    sample = tokenizer(CHECK_TEXTS[:2], padding=True, return_tensors="pt")
    if "token_type_ids" not in sample:
        sample["token_type_ids"] = torch.zeros_like(sample["input_ids"])
    import warnings

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on BERT's mask code: checked below
        torch.onnx.export(
            Wrapped(transformer), tuple(sample[k] for k in names), str(tmp / "model.onnx"),
            input_names=names, output_names=["last_hidden_state"],
            dynamic_axes={k: {0: "batch", 1: "tokens"} for k in [*names, "last_hidden_state"]},
            opset_version=17, dynamo=False)
    tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"))
    meta = {"name": name, "dim": int(st.get_embedding_dimension() or 0), "pooling": mode,
            "max_seq_length": int(st.max_seq_length or 512),
            "pad_id": int(tokenizer.pad_token_id or 0), "pad_token": str(tokenizer.pad_token)}
    (tmp / MARKER).write_text(json.dumps(meta))
    mine = OnnxEmbedder(tmp, name)
    cosines = []
    for texts in (CHECK_TEXTS, CHECK_TEXTS[:1], CHECK_TEXTS[2:3]):
        want = st.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
        got = mine.embed(texts)
        cosines += list((want * got).sum(1))
    worst = float(np.min(cosines))
    if worst < MIN_COSINE:
        shutil.rmtree(tmp, ignore_errors=True)
        raise LibraryError(f"the ONNX export of {name} differs from sentence-transformers "
                           f"(cosine {worst:.5f})", "litlab keeps using sentence-transformers")
    meta["min_cosine"] = worst
    (tmp / MARKER).write_text(json.dumps(meta))
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return meta
