"""The ONNX export of the text embedder: made once, checked against sentence-transformers, and
then used by the library for queries and passages alike (no torch on a command's path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from retrievers.embeddings import TextEmbedder, get_embedder
from retrievers.library import Library
from retrievers.onnx_embedder import OnnxEmbedder, export, export_dir


def test_onnx_and_torch_embeddings_agree_and_search_is_unchanged(papers_dir: Path) -> None:
    home = Path(os.environ["LITLAB_HOME"])
    lib = Library(home)
    assert lib.index_files([papers_dir]).ok  # indexed with sentence-transformers
    assert isinstance(lib.embedder, TextEmbedder)
    before = [(h.chunk.id, round(h.score, 4)) for h in lib.search("What does LoRA freeze?", 5)]
    lib.close()

    meta = export("all-MiniLM-L6-v2", home)
    assert meta["min_cosine"] >= 0.9999
    onnx = get_embedder("all-MiniLM-L6-v2", home)
    assert isinstance(onnx, OnnxEmbedder)
    texts = ["low-rank adaptation", "Mamba scales linearly with sequence length " * 30, "ViT"]
    torch_vectors = TextEmbedder().embed(texts)
    for vectors in (onnx.embed(texts), onnx.embed_few(texts)):
        assert vectors.shape == torch_vectors.shape and vectors.dtype == np.float32
        assert np.min((vectors * torch_vectors).sum(1)) > 0.9999

    lib = Library(home)
    assert isinstance(lib.embedder, OnnxEmbedder)
    after = [(h.chunk.id, round(h.score, 4)) for h in lib.search("What does LoRA freeze?", 5)]
    assert [c for c, _ in after] == [c for c, _ in before]
    lib.close()

    # A cold process searching the library never imports torch.
    code = ("import sys; from retrievers.library import Library; "
            f"lib = Library(__import__('pathlib').Path({str(home)!r})); "
            "print(len(lib.search('What does LoRA freeze?', 3))); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[2]).stdout.split()
    assert out == ["3", "False"]
    assert (export_dir(home, "all-MiniLM-L6-v2") / "model.onnx").is_file()
