"""Indexing throughput and memory: litlab end to end against bare SentenceTransformer.encode.

One run:
  (a) litlab index files over N synthetic Markdown papers (parse, chunk, catalog, embed, FAISS),
      in a fresh process, chunks per second;
  (b) SentenceTransformer.encode of exactly the chunk texts (a) produced, same model, same
      batch size, chunks per second;
  (c) peak RSS of (a) for N, 2N and 4N papers (the ratio is taken on 4N), each in a fresh process: streaming keeps it flat.

Prints the ratio a/b (target >= 0.8) and the peak memory per size; writes
bench/results/indexing.json.

    .venv/bin/python bench/indexing.py [--papers 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import sentence, write

INDEX_ONE = """
import json, resource, sys, time
from pathlib import Path
from retrievers.library import Library
from retrievers.embeddings import get_embedder
lib = Library(Path(sys.argv[1]))
lib.embedder.embed(["warm-up"] * 64)  # load and warm the model, as (b) does
t = time.perf_counter()
report = lib.index_files([Path(sys.argv[2])])
elapsed = time.perf_counter() - t
assert report.ok, report.failed
print(json.dumps({"seconds": elapsed, "chunks": len(lib.catalog.all_chunk_ids()),
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_papers(folder: Path, n: int, seed: int = 0) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sections = []
        for s in range(6):
            paragraphs = [" ".join(sentence(rng) for _ in range(6)) for _ in range(4)]
            sections.append(f"## {s + 1} Section {s + 1}\n\n" + "\n\n".join(paragraphs))
        (folder / f"paper{i:04d}.md").write_text(f"# Paper {i}\n\n" + "\n\n".join(sections) + "\n")


def index_in_fresh_process(papers: Path, home: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", INDEX_ONE, str(home), str(papers)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def bare_encode(home: Path) -> float:
    from retrievers.catalog import Catalog
    from retrievers.embeddings import get_embedder

    catalog = Catalog(home / "library.sqlite")
    texts = [c.text for batch in catalog.iter_chunks(catalog.all_chunk_ids(), 4096)
             for c in batch]
    embedder = get_embedder()
    embedder.embed(texts[:64])  # warm-up
    t = time.perf_counter()
    embedder.model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True)
    return len(texts) / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--papers", type=int, default=20,
                        help="smallest run; memory is also measured at 2x and 4x")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        memory = {}
        for n in (args.papers, 2 * args.papers, 4 * args.papers):
            make_papers(root / f"papers{n}", n)
            run = index_in_fresh_process(root / f"papers{n}", root / f"home{n}")
            memory[n] = round(run["peak_rss_mib"], 1)
            print(f"{n:5d} papers: {run['chunks']} chunks in {run['seconds']:.1f} s "
                  f"({run['chunks'] / run['seconds']:.1f} chunks/s), peak RSS {memory[n]} MiB")
            if n == 4 * args.papers:  # the largest run: one-off costs weigh least
                litlab_cps = run["chunks"] / run["seconds"]
                chunks = run["chunks"]
                bare_cps = bare_encode(root / f"home{n}")
                papers = n
    ratio = litlab_cps / bare_cps
    growth = memory[4 * args.papers] / memory[args.papers]
    print(f"\n(a) litlab index files      {litlab_cps:8.1f} chunks/s")
    print(f"(b) SentenceTransformer.encode {bare_cps:8.1f} chunks/s")
    print(f"a/b = {ratio:.3f}  (target >= 0.8)")
    print(f"peak RSS at 4x the papers / at 1x = {growth:.3f}  (flat: close to 1)")
    write("indexing", {
        "papers": papers, "chunks": chunks,
        "litlab_chunks_per_s": round(litlab_cps, 2), "encode_chunks_per_s": round(bare_cps, 2),
        "ratio_litlab_vs_encode": round(ratio, 3),
        "peak_rss_mib_by_papers": memory, "peak_rss_growth_4x": round(growth, 3),
        "targets": {"ratio_litlab_vs_encode": ">= 0.8", "peak_rss_growth_4x": "flat (~1)"},
    })


if __name__ == "__main__":
    main()
