"""Past one machine (docs/scale.md): what Ray, compressed vectors and several servers buy.

Three measurements, each against its baseline in the same run:
  - indexing: `index files` of the same files as a plain run and on a local Ray cluster with 1
    and 2 embedding workers (fresh homes; the ratio to plain, and Ray's overhead on one worker);
  - vectors: recall@10 against exact search, p50 search latency, bytes a vector on disk and
    build time of IVF-Flat and IVF-SQ8 (litlab's store past 50k / past 1M vectors) at 1M
    clustered synthetic vectors and on the largest real set embedded here (60k chunks of
    installed packages' docstrings, bench/real_corpus.py; PQ96 beside them for reference), and
    the Chroma store, embedded and as a `chroma run` server, at 100k;
  - reconcile: an index run's reconciliation of store and catalog at 300k chunks after one new
    paper, against the way it was done before (sets of Python ints, the whole catalog read);
  - servers: one suite (prompt cases) on one vLLM server and on two (`api_base` listing both).
Writes bench/results/scale.json.

    .venv/bin/python bench/scale.py [--papers DIR] [--vectors 1000000] [--chroma 100000]
                                    [--reconcile 300000] [--cases 24] [--smoke]
                                    [--parts indexing,vectors,reconcile,chroma,servers]

--parts measures only those (the others keep their figures in scale.json, each part with its
own date).

With --smoke: the tests' papers, 3,000 vectors, no real corpus, no servers.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from common import ROOT, arguments, clustered_vectors, library, now, percentile, settings, write

QUERIES = 200


def index_runs(papers: Path, root: Path) -> dict[str, Any]:
    """Plain, then Ray with 1 and 2 workers, each into a fresh home, on the same files."""
    from retrievers.index.cluster import RayCluster

    out: dict[str, Any] = {}
    t = time.perf_counter()
    lib = library(root / "plain")
    report = lib.index_files([papers], arxiv=False)
    out["plain"] = {"seconds": round(time.perf_counter() - t, 1), "chunks": report.vectors_added}
    lib.close()
    t = time.perf_counter()
    local = RayCluster()  # a local cluster, as `--ray` alone starts one
    out["ray_start_s"] = round(time.perf_counter() - t, 1)
    try:
        # one small file first: the workers' first imports are not charged to either run
        warm = library(root / "warm-up")
        warm.index_files([next(iter(sorted(papers.glob("*.md"))), next(papers.iterdir()))],
                         arxiv=False, cluster=RayCluster(workers=2))
        warm.close()
        for workers in (1, 2):
            cluster = RayCluster(workers=workers)  # on the cluster just started
            lib = library(root / f"ray{workers}")
            t = time.perf_counter()
            report = lib.index_files([papers], arxiv=False, cluster=cluster)
            out[f"ray_{workers}"] = {"seconds": round(time.perf_counter() - t, 1),
                                     "chunks": report.vectors_added}
            lib.close()
    finally:
        local.close()
    for key in ("ray_1", "ray_2"):
        out[key]["ratio_to_plain"] = round(out[key]["seconds"] / out["plain"]["seconds"], 2)
    for name, row in out.items():
        print(f"  indexing {name:10s} {row}")
    return out


def _search_all(store: Any, queries: Any, k: int = 10) -> tuple[list[float], Any]:
    times, found = [], []
    for q in queries:
        t = time.perf_counter()
        found.append(store.search(q, k))
        times.append(time.perf_counter() - t)
    return times, found


def _recall(found: list[Any], truth: list[Any]) -> float:
    hits = sum(len({i for i, _ in a} & {i for i, _ in b}) for a, b in zip(found, truth, strict=True))
    return round(hits / (10 * len(truth)), 4)


def vector_stores(vectors: Any, queries: Any, root: Path, pq: bool = False) -> dict[str, Any]:
    """Exact, IVF-Flat and IVF-SQ8 (and, with ``pq``, IVF-PQ96) over the same vectors."""
    import faiss

    from retrievers.index.stores import FaissStore

    n = len(vectors)
    ids = list(range(1, n + 1))
    out: dict[str, Any] = {"vectors": n}
    never = 10**12  # each store stays the kind it is built as, whatever its size
    exact = FaissStore(root / "exact", lambda: 384, approx_min=never, compress_min=never)
    exact.add(ids, vectors)
    exact.save()
    times, truth = _search_all(exact, queries)
    out["exact"] = {"p50_ms": round(1000 * percentile(times, 50), 2),
                    "bytes_per_vector": round(exact.path.stat().st_size / n)}
    kinds = [("ivf_flat", False), ("ivf_sq8", True)]
    for name, compressed in kinds:
        store = FaissStore(root / name, lambda: 384, approx_min=never, compress_min=never)
        store.add(ids, vectors)
        t = time.perf_counter()
        store.make_approximate(compressed=compressed)
        build = time.perf_counter() - t
        store.save()
        times, found = _search_all(store, queries)
        out[name] = {"recall_at_10": _recall(found, truth),
                     "p50_ms": round(1000 * percentile(times, 50), 2),
                     "bytes_per_vector": round(store.path.stat().st_size / n),
                     "build_s": round(build, 1)}
        shutil.rmtree(root / name)
    if pq:
        nlist = int(4 * n ** 0.5)
        index = faiss.index_factory(384, f"IVF{nlist},PQ96", faiss.METRIC_INNER_PRODUCT)
        t = time.perf_counter()
        index.train(vectors[:: max(1, n // (64 * nlist))])
        index.add(vectors)
        build = time.perf_counter() - t
        faiss.extract_index_ivf(index).nprobe = 48
        faiss.write_index(index, str(root / "pq.index"))
        _, found_ids = index.search(queries, 10)
        found = [[(int(i) + 1, 0.0) for i in row] for row in found_ids]
        out["ivf_pq96"] = {"recall_at_10": _recall(found, truth),
                           "bytes_per_vector": round((root / "pq.index").stat().st_size / n),
                           "build_s": round(build, 1)}
    shutil.rmtree(root / "exact")
    for name, row in out.items():
        print(f"  {n:>8d} vectors {name:10s} {row}", flush=True)
    return out


def chroma(vectors: Any, queries: Any, root: Path) -> dict[str, Any]:
    """Chroma, embedded (persistent) and as a `chroma run` server, over the same vectors."""
    from retrievers.index.stores import ChromaStore

    out: dict[str, Any] = {"vectors": len(vectors)}
    ids = list(range(1, len(vectors) + 1))
    server = _chroma_server(root / "server-data")
    try:
        for name, url in (("embedded", None), ("server", server[1])):
            store = ChromaStore(root / f"chroma-{name}", url)
            t = time.perf_counter()
            for i in range(0, len(ids), 4096):
                store.add(ids[i:i + 4096], vectors[i:i + 4096])
            add = time.perf_counter() - t
            times, _ = _search_all(store, queries[:50])
            out[name] = {"add_per_s": round(len(ids) / add), "p50_ms":
                         round(1000 * percentile(times, 50), 2)}
            print(f"  chroma {name:9s} {out[name]}", flush=True)
    finally:
        server[0].terminate()
        server[0].wait(10)
    return out


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _chroma_server(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen([str(Path(sys.executable).with_name("chroma")), "run", "--path",
                             str(data), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("chroma run did not start")


class _StandIn:
    """An embedder that returns fixed vectors at once: the reconciliation is measured, not
    MiniLM (which costs the same in both)."""

    name, dim = "stand-in", 384

    def embed(self, texts: list[str], progress: bool = False) -> Any:
        import numpy as np

        return np.tile(clustered_vectors(1), (len(texts), 1))


def reconcile(n: int, root: Path) -> dict[str, Any]:
    """An index run's reconciliation with a catalog of ``n`` chunks after one new paper of 100
    chunks: litlab's (sorted id arrays, the new chunks' id range read) against the sets of
    Python ints and the whole-catalog scan it used before, same stand-in embedder, in time and
    peak traced memory."""
    import tracemalloc

    import numpy as np

    from retrievers.index.indexing import IndexReport, quiet, sync_vectors
    from retrievers.index.vectors import ChunkVectors
    from retrievers.records import Chunk, Paper

    lib = library(root / "home")
    rng = np.random.default_rng(5)
    text = " ".join(f"w{i}" for i in rng.integers(0, 5000, 150))

    def paper(p: int) -> None:
        lib.catalog.put_paper(
            Paper(key=f"bench:{p}", title=f"Paper {p}", content_hash=str(p)), [],
            [Chunk(text=text, section="1", char_start=0, char_end=10, page_start=1, page_end=1,
                   ord=i) for i in range(100)])

    for p in range(n // 100):
        paper(p)
    vectors = ChunkVectors(lib.home, embedder=_StandIn())  # type: ignore[arg-type]
    ids = lib.catalog.chunk_id_array()
    vectors.store.add(ids.tolist(), np.tile(clustered_vectors(1), (len(ids), 1)))
    vectors.store.save()
    out: dict[str, Any] = {"chunks": n, "new_chunks": 100}

    def before() -> None:  # the reconciliation as it was (2026-12-02)
        store = vectors.store
        have, want = store.ids(), lib.catalog.all_chunk_ids()
        missing = want - have
        for batch in lib.catalog.iter_chunks(None, batch=128):
            batch = [c for c in batch if c.id in missing]
            if batch:
                store.add([int(c.id or 0) for c in batch],
                          vectors.embedder.embed([c.text for c in batch]))

    for name, run in (("before", before),
                      ("litlab", lambda: sync_vectors(lib.catalog, vectors, IndexReport(),
                                                      quiet))):
        paper(n // 100 + len(out))  # a new paper, not yet embedded
        tracemalloc.start()
        t = time.perf_counter()
        run()
        seconds = time.perf_counter() - t
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert len(vectors.store.id_array()) == len(lib.catalog.chunk_id_array())
        out[name] = {"seconds": round(seconds, 2), "peak_mib": round(peak / 2**20, 1)}
        print(f"  reconcile at {n} chunks, {name}: {out[name]}", flush=True)
    out["ratio_time"] = round(out["litlab"]["seconds"] / out["before"]["seconds"], 3)
    out["ratio_memory"] = round(out["litlab"]["peak_mib"] / out["before"]["peak_mib"], 3)
    lib.close()
    return out


def servers(cases: int, root: Path) -> dict[str, Any]:
    """The same suite on one local vLLM server, then on two (a pool), no cache."""
    from common import TOPICS

    from agentlab.models import prepare
    from agentlab.server import LocalServer, client_for
    from evals.runner import run_suite
    from evals.suite import load_suite
    from tests.papers import prompt_suite

    base = settings()
    prepare(base.model, base.home_dir / "models")  # as `make run` does; once per home
    homes = []
    for i in range(2):
        home = root / f"server{i}"
        home.mkdir(parents=True)
        (home / "models").symlink_to(base.home_dir / "models", target_is_directory=True)
        homes.append(LocalServer(base.model_copy(update={"home": home, "port": _free_port(),
                                                          "keep_alive": 0})))
    urls = [s.ensure(print) for s in homes]
    path = prompt_suite(root / "suite.yaml", [
        f"In one sentence, what is {TOPICS[i % len(TOPICS)]}? ({i})" for i in range(cases)], 48)
    out: dict[str, Any] = {"cases": cases}
    try:
        for name, api in (("one_server", urls[0]), ("two_servers", ",".join(urls))):
            s = base.model_copy(update={"api_base": api, "home": root / f"run-{name}"})
            t = time.perf_counter()
            summary = run_suite(load_suite(path), s, client_for(api, s), jobs=8, use_cache=False)
            out[name] = {"seconds": round(time.perf_counter() - t, 1),
                         "cases_per_s": round(cases / (time.perf_counter() - t), 3),
                         "answers_by_server": summary.servers}
            print(f"  suite on {name}: {out[name]}", flush=True)
    finally:
        for s in homes:
            s.stop()
    out["ratio_two_to_one"] = round(out["two_servers"]["cases_per_s"] /
                                    out["one_server"]["cases_per_s"], 2)
    return out


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--papers", type=Path,
                        default=ROOT.parent / "shared" / "papers" / "dev")
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--chroma", type=int, default=100_000)
    parser.add_argument("--cases", type=int, default=24)
    parser.add_argument("--reconcile", type=int, default=300_000)
    every = "indexing,vectors,reconcile,chroma,servers"
    parser.add_argument("--parts", default=every)
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    results: dict[str, Any] = {}
    previous = ROOT / "bench" / "results" / "scale.json"
    if not args.smoke and previous.exists() and parts != set(every.split(",")):
        import json

        results = {k: v for k, v in json.loads(previous.read_text()).items()
                   if k not in ("machine", "measured_at")}

    def keep() -> None:  # after each part: a later part that fails loses nothing measured
        write("scale", dict(results), args.smoke)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        papers = args.papers
        if args.smoke or not papers.is_dir():
            papers = _test_papers(root)
        if "indexing" in parts:
            print(f"indexing {papers}")
            results["indexing"] = {**index_runs(papers, root / "index"), "measured_at": now()}
            keep()
        n = 3_000 if args.smoke else args.vectors
        if "vectors" in parts:
            print(f"vectors: {n} clustered synthetic")
            (root / "syn").mkdir()
            results["synthetic"] = {**vector_stores(clustered_vectors(n), clustered_vectors(
                QUERIES, seed=1), root / "syn"), "measured_at": now()}
            keep()
        if "vectors" in parts and not args.smoke:
            import numpy as np
            import real_corpus

            _, real = real_corpus.load(60_000)
            order = np.random.default_rng(3).permutation(len(real))
            (root / "real").mkdir()
            print(f"vectors: {len(real) - QUERIES} real embeddings")
            results["real"] = {**vector_stores(real[order[QUERIES:]], real[order[:QUERIES]],
                                               root / "real", pq=True), "measured_at": now()}
            keep()
        if "reconcile" in parts:
            results["reconcile"] = {**reconcile(2_000 if args.smoke else args.reconcile,
                                                root / "reconcile"), "measured_at": now()}
            keep()
        m = 500 if args.smoke else args.chroma
        if "chroma" in parts:
            results["chroma"] = {**chroma(clustered_vectors(m), clustered_vectors(50, seed=1),
                                          root / "chroma"), "measured_at": now()}
            keep()
        if "servers" in parts and not args.smoke:
            results["servers"] = {**servers(args.cases, root / "servers"),
                                  "measured_at": now()}
    keep()


def _test_papers(root: Path) -> Path:
    from tests.papers import MARKDOWN, make_latex_tarball, make_two_column_pdf, topic_notes

    folder = root / "papers"
    topic_notes(folder)
    make_two_column_pdf(folder / "adaptation.pdf")
    make_latex_tarball(folder / "clip.tar.gz")
    (folder / "rlhf.md").write_text(MARKDOWN)
    return folder


if __name__ == "__main__":
    main()
