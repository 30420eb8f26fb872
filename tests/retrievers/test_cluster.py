"""Indexing on a local Ray cluster (`litlab index files --ray`): the same library as a plain
run, Ray workers killed mid-run, and a run interrupted then resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrievers.library import Library
from tests.papers import topic_notes

ray = pytest.importorskip("ray", reason="the `scale` extra (Ray) is not installed")

pytestmark = pytest.mark.slow

QUERIES = ["How much does low-rank adaptation reduce trainable parameters?",
           "What do diffusion models learn to reverse?", "reward model preferences",
           "sparse attention", "Which figure shows samples?"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """One local Ray cluster (two CPUs) for the module."""
    from retrievers.index.cluster import RayCluster

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=256 * 1024**2)
    yield RayCluster(workers=2)
    ray.shutdown()


@pytest.fixture
def corpus(papers_dir: Path) -> Path:
    """A PDF, a LaTeX project, Markdown and notes: six papers."""
    topic_notes(papers_dir)
    return papers_dir


def _library(home: Path) -> Library:
    return Library(home, cache_dir=None)


def _contents(lib: Library) -> dict[str, Any]:
    """What a person gets from a library: each paper's chunks, each chunk's vector (by paper
    and text), and the ranked hits of a few searches."""
    papers = {p.id: p.key for p in lib.catalog.papers()}
    chunks: dict[str, list[str]] = {}
    vectors: dict[tuple[str, str], np.ndarray] = {}
    index = lib.vectors.store.index  # type: ignore[attr-defined]
    for batch in lib.catalog.iter_chunks():
        for c in batch:
            key = papers[c.paper_id]
            chunks.setdefault(key, []).append(c.text)
            vectors[(key, c.text)] = index.reconstruct(int(c.id or 0))
    hits = {q: [(h.paper.key, h.chunk.text) for h in lib.search(q, k=5)] for q in QUERIES}
    return {"chunks": chunks, "vectors": vectors, "hits": hits}


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["chunks"] == b["chunks"]
    assert a["vectors"].keys() == b["vectors"].keys()
    for k, v in a["vectors"].items():
        np.testing.assert_allclose(v, b["vectors"][k], atol=1e-5)
    assert a["hits"] == b["hits"]


@pytest.fixture
def plain(corpus: Path, tmp_path: Path) -> dict[str, Any]:
    lib = _library(tmp_path / "plain")
    report = lib.index_files([corpus], arxiv=False)
    assert report.ok and len(report.added) == 6
    try:
        return _contents(lib)
    finally:
        lib.close()


def test_the_cluster_builds_the_same_library_as_a_plain_run(
        corpus: Path, tmp_path: Path, cluster: Any, plain: dict[str, Any]) -> None:
    lib = _library(tmp_path / "ray")
    said: list[str] = []
    report = lib.index_files([corpus], said.append, arxiv=False, cluster=cluster)
    assert report.ok and len(report.added) == 6
    assert any("on the Ray cluster" in m for m in said)
    _same(_contents(lib), plain)
    # a second run on the cluster finds nothing to do
    again = lib.index_files([corpus], arxiv=False, cluster=cluster)
    assert len(again.unchanged) == 6 and again.vectors_added == 0
    # `library rebuild --ray`: every chunk embedded again on the cluster, the same library
    rebuilt = lib.rebuild(cluster=cluster)
    assert rebuilt.vectors_added == sum(len(c) for c in plain["chunks"].values())
    _same(_contents(lib), plain)
    lib.close()


def _ray_workers() -> list[int]:
    """The worker processes (tasks, actors, idle ones): not the raylet's own agents."""
    import psutil

    names = {p.pid: p.info["name"] or "" for p in psutil.process_iter(["name"])}
    return [pid for pid, name in names.items()
            if name.startswith("ray::") and not name.endswith("Agent")]


def test_workers_killed_mid_run_are_replaced_and_the_library_is_whole(
        corpus: Path, tmp_path: Path, cluster: Any, plain: dict[str, Any]) -> None:
    lib = _library(tmp_path / "ray")
    killed: dict[str, list[int]] = {}

    def progress(message: str) -> None:
        for stage in ("parsed ", "embedded "):  # parse tasks, then embedding actors
            if stage not in killed and message.startswith(stage):
                killed[stage] = _ray_workers()
                for pid in killed[stage]:
                    os.kill(pid, signal.SIGKILL)

    report = lib.index_files([corpus], progress, arxiv=False, cluster=cluster)
    assert killed["parsed "] and killed["embedded "], "no Ray worker was running to kill"
    assert report.ok and len(report.added) == 6
    _same(_contents(lib), plain)
    lib.close()


def test_an_interrupted_run_resumes_where_it_stopped(
        corpus: Path, tmp_path: Path, cluster: Any, plain: dict[str, Any]) -> None:
    lib = _library(tmp_path / "ray")

    def progress(message: str) -> None:
        if message.startswith("parsed ") and "(3/" in message:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lib.index_files([corpus], progress, arxiv=False, cluster=cluster)
    report = lib.index_files([corpus], arxiv=False, cluster=cluster)
    assert len(report.unchanged) == 3 and len(report.added) == 3  # nothing indexed twice
    _same(_contents(lib), plain)
    lib.close()


def test_the_cli_says_what_to_do_without_ray_or_with_workers_alone(
        corpus: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITLAB_")}
    env["LITLAB_HOME"] = str(tmp_path / "home")
    out = subprocess.run([sys.executable, "-m", "litlab", "index", "files", str(corpus),
                          "--workers", "2"], capture_output=True, text=True, env=env)
    assert out.returncode != 0 and "needs --ray" in out.stderr
    # Ray absent (hidden from the import system): one line with the install command
    code = ("import sys; sys.modules['ray'] = None; from litlab.cli import main; "
            "main(['index', 'files', sys.argv[1], '--ray'])")
    out = subprocess.run([sys.executable, "-c", code, str(corpus)], capture_output=True,
                         text=True, env=env)
    assert out.returncode != 0
    assert "pip install 'litlab[scale]'" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
