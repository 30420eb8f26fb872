"""A real text corpus of a few hundred thousand chunks, embedded once, kept out of the repo.

No paper collection of that size is on this offline machine, so the corpus is the prose that
is: the docstrings, Markdown/reST/text files and package descriptions of every installed Python
package (torch, transformers, vLLM, scipy,
Textual ... a few hundred thousand paragraphs of technical English, much of it about deep
learning), cut into windows of 48 words (litlab's chunks are 180 words; MiniLM embeds those at 19 a
second on 2 cores, so a corpus of that size would take hours; shorter windows are still real
embeddings of real text, which is what IVF recall depends on). It is embedded with
litlab's own text embedder (MiniLM through ONNX Runtime, as the library embeds) and cached
with its texts under ``~/.cache/litlab-bench/`` (``LITLAB_BENCH_CACHE``): later runs load it.
Used by bench/retrieval.py (IVF recall on real embeddings) and bench/indexing.py (memory).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

CACHE = Path(os.environ.get("LITLAB_BENCH_CACHE", "~/.cache/litlab-bench")).expanduser()
WORDS_PER_CHUNK = 48  # ~64 tokens: embedding 180-word chunks runs at 19/s on 2 cores


def _docstrings(path: Path) -> list[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    except (SyntaxError, ValueError, RecursionError):
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node)
            if doc and len(doc) >= 200:
                found.append(doc)
    return found


def _prose(doc: str) -> str:
    """Paragraphs of prose: code examples, tables and argument lists' markup left out."""
    keep = []
    for para in re.split(r"\n\s*\n", doc):
        lines = [ln.strip() for ln in para.splitlines()]
        if any(ln.startswith((">>>", "...", "|", "$", "```")) for ln in lines):
            continue
        text = " ".join(ln for ln in lines if ln and not set(ln) <= set("-=~^*"))
        if len(re.findall(r"[A-Za-z]{3,}", text)) >= 8:
            keep.append(text)
    return " ".join(keep)


def _file_prose(path: Path) -> str:
    """The prose of one file: a module's docstrings, or a Markdown/reST/text file or a
    package's long description (METADATA) as it is."""
    if path.suffix == ".py":
        return " ".join(_prose(d) for d in _docstrings(path))
    try:
        return _prose(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, RecursionError):
        return ""


def _files(site: Path) -> list[Path]:
    found = [p for pattern in ("*.py", "*.md", "*.rst", "*.txt", "METADATA")
             for p in site.rglob(pattern)]
    return sorted(p for p in found if "LICENSE" not in p.name.upper() and p.is_file())


def texts(limit: int, processes: int | None = None) -> list[str]:
    """Up to ``limit`` distinct chunks, in a fixed order (sorted files)."""
    from multiprocessing import Pool

    site = Path(sysconfig.get_paths()["purelib"])
    seen: set[str] = set()
    chunks: list[str] = []
    with Pool(processes) as pool:
        for prose in pool.imap(_file_prose, _files(site), chunksize=64):
            words = prose.split()
            for start in range(0, len(words), WORDS_PER_CHUNK):
                window = words[start:start + WORDS_PER_CHUNK]
                if len(window) < WORDS_PER_CHUNK // 2:
                    continue
                text = " ".join(window)
                key = hashlib.sha1(text.encode()).hexdigest()
                if key not in seen:
                    seen.add(key)
                    chunks.append(text)
                    if len(chunks) >= limit:
                        pool.terminate()
                        return chunks
    return chunks


def load(limit: int, progress: bool = True) -> tuple[list[str], Any]:
    """(texts, unit vectors float32) of up to ``limit`` chunks, embedded once and cached."""
    import numpy as np

    CACHE.mkdir(parents=True, exist_ok=True)
    stem = CACHE / f"docstrings-{limit}"
    if stem.with_suffix(".npy").exists():
        chunk_texts = json.loads(stem.with_suffix(".json").read_text())
        return chunk_texts, np.load(stem.with_suffix(".npy"))
    chunk_texts = texts(limit)
    print(f"corpus: {len(chunk_texts)} chunks of installed packages' docstrings; embedding "
          f"them once (cached in {CACHE})", flush=True)
    from agentlab.settings import load_settings
    from retrievers.index.embeddings import get_embedder

    s = load_settings().settings
    embedder = get_embedder(s.embed_model, s.cache_path)
    parts, batch, started = [], 512, time.perf_counter()
    for i in range(0, len(chunk_texts), batch):
        parts.append(np.asarray(embedder.embed(chunk_texts[i:i + batch]), dtype="float32"))
        done = min(i + batch, len(chunk_texts))
        if progress:
            rate = done / (time.perf_counter() - started)
            print(f"\r  {done}/{len(chunk_texts)} chunks, {rate:.0f}/s, "
                  f"{(len(chunk_texts) - done) / rate / 60:.0f} min left", end="", flush=True)
    vectors = np.concatenate(parts)
    print(flush=True)
    np.save(stem.with_suffix(".npy"), vectors)
    stem.with_suffix(".json").write_text(json.dumps(chunk_texts))
    return chunk_texts, vectors


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    t, v = load(n)
    print(len(t), v.shape)
