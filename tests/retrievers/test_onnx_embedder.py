"""The ONNX export of the text embedder: made once a machine (by `models prepare`, or on first
use), checked against sentence-transformers, then used by every home for queries and passages
alike (no torch on a command's path); an export that cannot be made is said, never silent."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from retrievers.index import embeddings
from retrievers.index.embeddings import get_embedder
from retrievers.index.onnx_embedder import OnnxEmbedder, export_dir
from retrievers.index.st_embedder import SentenceTransformerEmbedder
from retrievers.library import Library

MODEL = "all-MiniLM-L6-v2"


def test_a_fresh_cache_gets_the_export_on_first_use_and_every_home_shares_it(
        papers_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "cache"
    first = Library(tmp_path / "home-a", cache_dir=cache)
    with caplog.at_level(logging.WARNING, logger="litlab"):
        assert first.index_files([papers_dir]).ok
    assert isinstance(first.embedder, OnnxEmbedder)  # made now, not skipped
    assert "exporting the text embedder" in caplog.text  # and said so
    assert (export_dir(cache, MODEL) / "model.onnx").is_file()
    before = [(h.chunk.id, round(h.score, 4)) for h in first.search("What does LoRA freeze?", 5)]
    first.close()

    onnx = get_embedder(MODEL, cache)
    texts = ["low-rank adaptation", "Mamba scales linearly with sequence length " * 30, "ViT"]
    torch_vectors = SentenceTransformerEmbedder().embed(texts)
    for vectors in (onnx.embed(texts), onnx.embed_few(texts)):
        assert vectors.shape == torch_vectors.shape and vectors.dtype == np.float32
        assert np.min((vectors * torch_vectors).sum(1)) > 0.9999
    after = [(h.chunk.id, round(h.score, 4)) for h in
             Library(tmp_path / "home-a", cache_dir=cache).search("What does LoRA freeze?", 5)]
    assert [c for c, _ in after] == [c for c, _ in before]

    # Another home on the machine: indexes and searches in a cold process that never imports
    # torch (the export is found in the cache, not made again), nor Ray (only --ray does).
    home = tmp_path / "home-b"
    env = {**os.environ, "LITLAB_HOME": str(home), "LITLAB_CACHE_DIR": str(cache)}
    code = ("import sys; from pathlib import Path; from retrievers.library import Library; "
            f"lib = Library(Path({str(home)!r})); "
            f"assert lib.index_files([Path({str(papers_dir / 'rlhf.md')!r})]).ok; "
            "print(len(lib.search('What does RLHF optimise?', 2))); "
            "print('torch' in sys.modules, 'ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True, cwd=Path(__file__).parents[2])
    assert out.stdout.split() == ["2", "False", "False"]
    assert "exporting" not in out.stderr


def test_an_export_that_fails_is_said_and_the_embedder_still_works(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from retrievers.errors import LibraryError
    from retrievers.index import onnx_embedder

    def broken(name: str, cache: Path, force: bool = False) -> dict[str, object]:
        raise LibraryError(f"{name} pools by 'max', which the ONNX embedder does not do")

    monkeypatch.setattr(onnx_embedder, "export", broken)
    with caplog.at_level(logging.WARNING, logger="litlab"):
        embedder = get_embedder(MODEL, tmp_path / "cache")
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert "runs on sentence-transformers" in caplog.text and "pools by 'max'" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="litlab"):  # not tried again every command
        get_embedder(MODEL, tmp_path / "cache")
    assert "pools by 'max'" in caplog.text and "exporting" not in caplog.text
    embeddings.forget_failure(tmp_path / "cache", MODEL)
    assert embeddings._failure(export_dir(tmp_path / "cache", MODEL)) is None
