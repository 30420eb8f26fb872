"""Every benchmark runs as the Makefile runs it (`python bench/NAME.py`), here in its smoke mode:
tiny sizes, a fresh home, the session's vLLM server for the ones that talk to a model. A bench
that crashes on a renamed method or a shadowed package fails here, not in `make bench`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RunningServer, home_with_models

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OFFLINE = ["indexing", "retrieval", "app", "figures", "startup", "grounding", "claims",
           "retriever", "scale"]
WITH_SERVER = {"serving": [], "ask": [], "suites": [], "grounding": ["--answers"], "api": [],
               "agent": []}


def _run(script: str, env: dict[str, str], *args: str) -> str:
    before = {p: p.stat().st_mtime for p in (BENCH / "results").glob("*.json")}
    proc = subprocess.run([sys.executable, str(BENCH / f"{script}.py"), "--smoke", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"bench/{script}.py --smoke failed:\n{proc.stderr[-4000:]}"
    assert f"smoke run: bench/results/{script}.json not written" in proc.stdout
    after = {p: p.stat().st_mtime for p in (BENCH / "results").glob("*.json")}
    assert after == before, "a smoke run must not touch bench/results"
    return proc.stdout


def test_every_bench_has_a_smoke_test() -> None:
    scripts = {p.stem for p in BENCH.glob("*.py")} - {"common", "real_corpus"}
    assert scripts == set(OFFLINE) | set(WITH_SERVER) | {"training", "finetune_quality",
                                                         "cpu_serving"}


@pytest.mark.slow
@pytest.mark.parametrize("script", OFFLINE)
def test_offline_bench_runs(script: str) -> None:
    _run(script, dict(os.environ))


@pytest.mark.slow
def test_training_bench_runs(prepared_models: Path, tmp_path: Path) -> None:
    home = home_with_models(tmp_path / "bench-home", prepared_models)
    out = _run("training", {**os.environ, "LITLAB_HOME": str(home)})
    assert "litlab/TRL tokens per second" in out


@pytest.mark.slow
def test_cpu_serving_bench_runs(prepared_models: Path, tmp_path: Path) -> None:
    """Four servers of its own (bfloat16, auto, LoRA, merged) in a home of its own."""
    home = home_with_models(tmp_path / "bench-home", prepared_models)
    out = _run("cpu_serving", {**os.environ, "LITLAB_HOME": str(home)})
    assert "c/d = " in out and "a/b = " in out


@pytest.mark.slow
def test_finetune_quality_bench_runs(prepared_models: Path, tmp_path: Path) -> None:
    """The recipe's stages on the tests' papers, one step each (the gate needs the server:
    the smoke run skips it)."""
    home = home_with_models(tmp_path / "bench-home", prepared_models)
    out = _run("finetune_quality", {**os.environ, "LITLAB_HOME": str(home)})
    assert "stage 2 of 2: grpo from q-sft" in out


@pytest.mark.parametrize("script", sorted(WITH_SERVER))
def test_bench_with_the_model_server_runs(script: str, vllm_server: RunningServer) -> None:
    _run(script, vllm_server.env(), *WITH_SERVER[script])
