"""Retrieval latency and recall at 100k and 1M vectors of dimension 384.

For each size, in one run:
  - FAISS exact (litlab's flat index) and FAISS approximate (litlab's IVF index): p50 and p99
    latency of single queries, and recall@10 of the approximate index against exact;
  - Chroma (embedded, HNSW) up to --chroma-max vectors: p50 and p99;
and end to end at 100k chunks: ``Library.search`` (embed the query with MiniLM, FTS5 BM25,
FAISS, fusion, catalog lookups) against the bare baseline of MiniLM encode + FAISS search.

Vectors are synthetic (clustered unit vectors; embedding a million real chunks takes hours on
a CPU), the end-to-end queries are real text embedded for real. IVF recall is also measured on
real embeddings (--real N: a corpus of real technical prose, bench/real_corpus.py, embedded
once with litlab's embedder and cached out of the repo) for several nprobe values, at the
50k switch-over and at N. Writes
bench/results/retrieval.json. Targets: recall@10 >= 0.95, end-to-end p50 < 50 ms at 100k.

    .venv/bin/python bench/retrieval.py [--sizes 100000,1000000] [--chroma-max 100000] [--smoke]

A part not re-run (--only-end-to-end, --only-real) keeps its figures and the date they were
measured (each part carries its own ``measured_at``); nothing is re-dated.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from common import RESULTS, arguments, clustered_vectors, library, now, percentile, sentence, write

QUERIES = 200


def latencies(search: Callable[[Any], Any], queries: Any) -> tuple[list[float], list[Any]]:
    times, results = [], []
    for q in queries:
        t = time.perf_counter()
        results.append(search(q))
        times.append(time.perf_counter() - t)
    return times, results


def summary(times: list[float]) -> dict[str, float]:
    return {"p50_ms": round(1000 * percentile(times, 50), 3),
            "p99_ms": round(1000 * percentile(times, 99), 3)}


def bench_size(n: int, chroma_max: int, root: Path) -> dict[str, Any]:
    from retrievers.index.stores import ChromaStore, FaissStore

    vectors = clustered_vectors(n)
    queries = clustered_vectors(QUERIES, seed=1)
    ids = list(range(1, n + 1))
    out: dict[str, Any] = {}

    exact = FaissStore(root / f"exact{n}", lambda: 384, approx_min=10**12)
    exact.add(ids, vectors)
    times, truth = latencies(partial(exact.search, k=10), queries)
    out["faiss_exact"] = summary(times)

    approx = FaissStore(root / f"approx{n}", lambda: 384, approx_min=10**12)
    approx.add(ids, vectors)
    t = time.perf_counter()
    approx.make_approximate()
    out["faiss_approx_build_s"] = round(time.perf_counter() - t, 1)
    times, found = latencies(partial(approx.search, k=10), queries)
    out["faiss_approx"] = summary(times)
    hits = sum(len({i for i, _ in a} & {i for i, _ in b}) for a, b in zip(found, truth, strict=True))
    out["recall_at_10"] = round(hits / (10 * QUERIES), 4)

    if n <= chroma_max:
        chroma = ChromaStore(root / f"chroma{n}")
        t = time.perf_counter()
        chroma.add(ids, vectors)
        out["chroma_add_s"] = round(time.perf_counter() - t, 1)
        times, _ = latencies(partial(chroma.search, k=10), queries)
        out["chroma"] = summary(times)
    for name, value in out.items():
        print(f"  {n:>8d} {name:22s} {value}")
    return out


def real_ivf(limit: int, root: Path) -> dict[str, Any]:
    """IVF against exact search on real embeddings (bench/real_corpus.py): recall@10 and p50
    latency for several ``nprobe`` values, at the switch-over size and at the whole corpus.
    Queries are held-out chunks (never in the index), embedded like the rest."""
    import faiss
    import numpy as np
    import real_corpus

    from retrievers.index.stores import APPROX_MIN_VECTORS, NPROBE, FaissStore

    _, vectors = real_corpus.load(limit)
    rng = np.random.default_rng(3)
    order = rng.permutation(len(vectors))
    queries, pool = vectors[order[:QUERIES]], vectors[order[QUERIES:]]
    out: dict[str, Any] = {"corpus": "installed packages' docstrings, 180-word windows",
                           "chunks": len(vectors), "nprobe_default": NPROBE}
    for n in sorted({min(APPROX_MIN_VECTORS, len(pool)), len(pool)}):
        ids = list(range(1, n + 1))
        exact = FaissStore(root / f"real-exact{n}", lambda: 384, approx_min=10**12)
        exact.add(ids, pool[:n])
        _, truth = latencies(partial(exact.search, k=10), queries)
        approx = FaissStore(root / f"real-approx{n}", lambda: 384, approx_min=10**12)
        approx.add(ids, pool[:n])
        approx.make_approximate()
        rows = {}
        for nprobe in (8, 16, 32, 48, 64, 128):
            faiss.extract_index_ivf(approx.index).nprobe = nprobe
            times, found = latencies(partial(approx.search, k=10), queries)
            hits = sum(len({i for i, _ in a} & {i for i, _ in b})
                       for a, b in zip(found, truth, strict=True))
            rows[str(nprobe)] = {"recall_at_10": round(hits / (10 * QUERIES), 4),
                                 **summary(times)}
            print(f"  real embeddings, {n} vectors, nprobe {nprobe:3d}: {rows[str(nprobe)]}",
                  flush=True)
        out[str(n)] = rows
    return out


def end_to_end(n: int, root: Path) -> dict[str, Any]:
    """A library of ``n`` real-text chunks (catalog + FTS5) with synthetic vectors."""
    import numpy as np

    from retrievers.records import Chunk, Paper

    rng = np.random.default_rng(2)
    lib = library(root / "home")
    per_paper = 100
    for p in range(n // per_paper):
        chunks = [Chunk(text=" ".join(sentence(rng) for _ in range(5)), section="1 Method",
                        char_start=i * 500, char_end=i * 500 + 500, page_start=1, page_end=1,
                        ord=i) for i in range(per_paper)]
        lib.catalog.put_paper(Paper(key=f"bench:{p}", title=f"Paper {p}", content_hash=str(p)),
                              [], chunks)
    chunk_ids = sorted(lib.catalog.all_chunk_ids())
    lib.store.add(chunk_ids, clustered_vectors(len(chunk_ids)))
    lib.store.save()
    lib.vectors.record_model()
    questions = [sentence(rng, 8).rstrip(".") for _ in range(QUERIES)]
    embedder, store = lib.embedder, lib.store
    lib.search(questions[0])  # warm-up: caches, the FTS index pages
    ours, _ = latencies(lambda q: lib.search(q, 5), questions)
    bare, _ = latencies(lambda q: store.index.search(embedder.embed([q]), 5), questions)
    vectors = [embedder.embed([q])[0] for q in questions]
    parts = {
        "embed_query": summary(latencies(lambda q: embedder.embed([q]), questions)[0]),
        "dense_search": summary(latencies(lambda v: store.search(v, 50), vectors)[0]),
        "keyword_search": summary(latencies(lambda q: lib.catalog.keyword_search(q, 50),
                                            questions)[0]),
    }
    result: dict[str, Any] = {"chunks": len(chunk_ids), "litlab_search": summary(ours),
              "bare_embed_plus_faiss": summary(bare), "parts": parts}
    result["ratio_p50_litlab_vs_bare"] = round(
        result["litlab_search"]["p50_ms"] / result["bare_embed_plus_faiss"]["p50_ms"], 3)
    print(f"  end to end at {len(chunk_ids)} chunks: {result}")
    return result


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--only-end-to-end", action="store_true",
                        help="skip the store-by-store figures (minutes at 1M)")
    parser.add_argument("--chroma-max", type=int, default=100_000,
                        help="largest size also measured on Chroma (its inserts are slow)")
    parser.add_argument("--only-real", action="store_true",
                        help="run only the real-embeddings IVF part (keeps the other figures)")
    parser.add_argument("--real", type=int, default=60_000, metavar="CHUNKS",
                        help="chunks of the real corpus for IVF recall on real embeddings "
                             "(embedded once and cached: about 20 minutes the first time on a "
                             "2-core CPU); 0 skips it")
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.chroma_max, args.real = "2000", 2000, 0
    sizes = [int(s) for s in args.sizes.split(",")]

    results: dict[str, Any] = {"dim": 384, "queries": QUERIES, "sizes": {}}
    if (args.only_end_to_end or args.only_real) and (RESULTS / "retrieval.json").exists():
        results = json.loads((RESULTS / "retrieval.json").read_text())  # keep what is not re-run
    with tempfile.TemporaryDirectory() as tmp:
        if args.only_real:
            results["real_embeddings_ivf"] = {**real_ivf(args.real, Path(tmp)),
                                              "measured_at": now()}
            write("retrieval", results, args.smoke)
            return
        if not args.only_end_to_end:
            results["sizes"] = {}
        for n in [] if args.only_end_to_end else sizes:
            print(f"{n} vectors ...")
            results["sizes"][str(n)] = {**bench_size(n, args.chroma_max, Path(tmp)),
                                        "measured_at": now()}
        results["end_to_end"] = {**end_to_end(min(sizes), Path(tmp)), "measured_at": now()}
        if args.real:
            results["real_embeddings_ivf"] = {**real_ivf(args.real, Path(tmp)),
                                              "measured_at": now()}
    recalls = [r["recall_at_10"] for r in results["sizes"].values()]
    e2e = results["end_to_end"]["litlab_search"]["p50_ms"]
    print(f"\nrecall@10 approximate vs exact: {recalls}  (target >= 0.95)")
    print(f"end-to-end search p50: {e2e} ms  (target < 50 ms); "
          f"litlab/bare = {results['end_to_end']['ratio_p50_litlab_vs_bare']}")
    results["targets"] = {"recall_at_10": ">= 0.95", "end_to_end_p50_ms": "< 50"}
    write("retrieval", results, args.smoke)


if __name__ == "__main__":
    main()
