"""Indexing throughput and memory: litlab end to end against bare SentenceTransformer.encode.

One run:
  (a) litlab index files over N synthetic Markdown papers (parse, chunk, catalog, embed, FAISS),
      in a fresh process, chunks per second;
  (b) SentenceTransformer.encode of exactly the chunk texts (a) produced, same model, same
      batch size, chunks per second;
  (c) peak RSS of (a) for N, 2N and 4N papers (the ratio is taken on 4N), each in a fresh process:
      at these sizes the model's 1.5 GiB hides the index, so this says little;
  (d) litlab's own memory at 27k-108k chunks (--scale), where the index is measurable: the
      embedder replaced by random unit vectors (embedding that many chunks takes hours here),
      everything else real; the RSS growth while indexing against the vectors' own bytes.

Prints the ratio a/b (target >= 0.8) and the peak memory per size; writes
bench/results/indexing.json.

    .venv/bin/python bench/indexing.py [--papers 20] [--smoke]

litlab embeds with what `litlab index` uses (the ONNX export in the machine's cache, made on
first use); the baseline is sentence-transformers itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import arguments, sentence, write

INDEX_ONE = """
import json, resource, sys, time
from pathlib import Path
from agentlab.settings import load_settings
from retrievers.library import Library
lib = Library.from_settings(load_settings(home=sys.argv[1]).settings)
lib.embedder.embed(["warm-up"] * 64)  # load and warm the model, as (b) does
t = time.perf_counter()
report = lib.index_files([Path(sys.argv[2])])
elapsed = time.perf_counter() - t
assert report.ok, report.failed
print(json.dumps({"seconds": elapsed, "chunks": len(lib.catalog.all_chunk_ids()),
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


# (d): litlab's own memory at library sizes where the index is measurable. Embedding a few
# hundred thousand chunks takes hours on a CPU, so the embedder is replaced by one that hands
# out random unit vectors (memory does not depend on their values); everything else is the
# real path: parse, chunk, catalog, FAISS (which turns IVF past 50k), streamed in batches.
INDEX_AT_SCALE = """
import json, sys
from pathlib import Path
import numpy as np
from agentlab.settings import load_settings
from retrievers.library import Library

class Vectors:
    name, dim = "bench-random", 384
    rng = np.random.default_rng(0)
    def embed(self, texts, progress=False):
        v = self.rng.standard_normal((len(texts), self.dim)).astype("float32")
        return v / np.linalg.norm(v, axis=1, keepdims=True)

lib = Library.from_settings(load_settings(home=sys.argv[1]).settings)
lib.vectors._embedder = Vectors()
assert lib.index_files([Path(sys.argv[3])]).ok  # one paper: the libraries it imports loaded
def hwm():  # this process's peak RSS (ru_maxrss would carry the parent's over exec)
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024
base = hwm()
report = lib.index_files([Path(sys.argv[2])])
assert report.ok, report.failed
print(json.dumps({"chunks": len(lib.catalog.all_chunk_ids()), "base_rss_mib": base,
                  "peak_rss_mib": hwm()}))
"""


def memory_at_scale(root: Path, papers: list[int]) -> dict[str, Any]:
    rows = {}
    make_papers(root / "warm", 1, seed=2)
    for n in papers:
        make_papers(root / f"scale{n}", n, seed=1)
        out = subprocess.run([sys.executable, "-c", INDEX_AT_SCALE, str(root / f"shome{n}"),
                              str(root / f"scale{n}"), str(root / "warm")], check=True, capture_output=True,
                             text=True)
        run = json.loads(out.stdout.strip().splitlines()[-1])
        vectors_mib = run["chunks"] * 384 * 4 / 2**20
        grew = run["peak_rss_mib"] - run["base_rss_mib"]
        rows[str(run["chunks"])] = {"papers": n, "rss_growth_mib": round(grew, 1),
                                    "vectors_mib": round(vectors_mib, 1),
                                    "growth_per_vector_byte": round(grew / vectors_mib, 2)}
        print(f"  {run['chunks']:7d} chunks: RSS grew {grew:7.1f} MiB while indexing; the "
              f"vectors alone are {vectors_mib:6.1f} MiB ({grew / vectors_mib:.2f}x)", flush=True)
    return rows


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
    return json.loads(out.stdout.strip().splitlines()[-1])


def bare_encode(home: Path) -> float:
    """SentenceTransformer.encode of exactly the strings litlab embedded for its chunks (with
    their paper's title and section in front, `chunk_context`): the same work, without
    parsing, chunking, the catalog or the vector store."""
    from agentlab.settings import load_settings
    from retrievers.index.st_embedder import SentenceTransformerEmbedder
    from retrievers.library import Library

    lib = Library.from_settings(load_settings(home=home).settings)
    catalog = lib.catalog
    texts = []
    for batch in catalog.iter_chunks(catalog.all_chunk_ids(), 4096):
        papers = catalog.papers_by_id({int(c.paper_id or 0) for c in batch})
        texts += [lib.vectors.passage(c, papers.get(int(c.paper_id or 0))) for c in batch]
    embedder = SentenceTransformerEmbedder()
    embedder.embed(texts[:64])  # warm-up
    t = time.perf_counter()
    embedder.model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True)
    return len(texts) / (time.perf_counter() - t)


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--papers", type=int, default=20,
                        help="smallest run; memory is also measured at 2x and 4x")
    parser.add_argument("--scale", default="1500,3000,6000",
                        help="papers for the memory check at scale (d), about 18 chunks each; "
                             "empty skips it")
    args = parser.parse_args()
    if args.smoke:
        args.papers, args.scale = 1, "2"

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
        print("(d) memory at scale, random vectors instead of the model:")
        scale = memory_at_scale(root, [int(x) for x in args.scale.split(",") if x])
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
        "memory_at_scale": scale,
        "targets": {"ratio_litlab_vs_encode": ">= 0.8", "peak_rss_growth_4x": "flat (~1)",
                    "memory_at_scale": "RSS growth close to the vectors' own size (a small "
                                       "multiple: FAISS copies them once when it turns IVF)"},
    }, args.smoke)


if __name__ == "__main__":
    main()
