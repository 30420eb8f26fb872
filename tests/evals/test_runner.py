"""The runner on the real vLLM server (the session's): a small suite, its cache, the judge's
schema-held verdict, resume after SIGKILL, and compare on two runs at temperature 0."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agentlab.settings import load_settings
from evals.runner import run_suite
from evals.suite import load_suite
from tests.conftest import RunningServer

pytestmark = [pytest.mark.server, pytest.mark.slow]

SUITE = """\
description: a small suite for the tests
library: [{papers}]
targets:
  - {{name: base, kind: ask, temperature: 0, max_tokens: 24}}
prompts: [rag]
assert:
  - {{type: refusal}}
  - {{type: recall_at_k, k: 3}}
cases:
  - id: mamba
    question: How does Mamba scale with sequence length?
    papers: [adaptation.pdf]
    assert: [{{type: rubric, value: "answers how the cost grows with length", weight: 0.5}}]
  - id: rlhf
    question: What does the reward model learn from?
    papers: [rlhf.md]
  - id: france
    question: What is the capital of France?
    should_refuse: true
"""


class CountingClient:
    """The real client, counting the requests that reach the server."""

    def __init__(self, client: Any) -> None:
        self.client, self.calls = client, 0

    def chat(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.client.chat(*args, **kwargs)


@pytest.fixture
def suite_file(papers_dir: Path, tmp_path: Path) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE.format(papers=papers_dir))
    return path


def test_a_suite_runs_then_comes_from_the_cache(suite_file: Path,
                                                vllm_server: RunningServer) -> None:
    settings = load_settings(api_base=vllm_server.api_base).settings
    suite = load_suite(suite_file)
    client = CountingClient(vllm_server.client())
    first = run_suite(suite, settings, client, jobs=3)
    assert len(first.results) == 3 and client.calls == first.requests >= 3
    by_case = {r.case_id: r for r in first.results}
    assert by_case["france"].scores["refusal"]["passed"]  # refused without asking the model
    assert "recall_at_k" not in by_case["france"].scores  # no expected paper: not applicable
    assert by_case["mamba"].scores["recall_at_k"]["passed"]
    verdict = by_case["mamba"].scores["rubric"]
    assert verdict["judge"] == "smollm2-135m-instruct"  # the verdict says who judged
    assert 0.0 <= verdict["score"] <= 1.0 and "JSON" not in verdict["reason"]

    client.calls = 0
    again = run_suite(suite, settings, client, jobs=3)
    assert client.calls == 0 and again.cache_hits == first.requests  # nothing reached the server
    assert [r.output["text"] for r in again.results] == [r.output["text"] for r in first.results]


def test_a_killed_run_resumes_without_running_a_case_twice(suite_file: Path, tmp_path: Path,
                                                           vllm_server: RunningServer) -> None:
    cases = "\n".join(json.dumps({"id": f"q{i}", "question": f"What is said about topic {i} "
                                                            "of state space models?"})
                      for i in range(8))
    (tmp_path / "many.jsonl").write_text(cases + "\n")
    text = suite_file.read_text().split("cases:")[0] + "cases:\n  - file: many.jsonl\n"
    suite_file.write_text(text.replace("max_tokens: 24", "max_tokens: 48"))
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITLAB_")}
    env.update(LITLAB_HOME=str(home), LITLAB_API_BASE=vllm_server.api_base)
    argv = [sys.executable, "-m", "litlab", "eval", "run", str(suite_file), "-j", "1",
            "--no-cache", "--json"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    db = home / "runs" / "evals" / "runs.sqlite"
    deadline = time.monotonic() + 240
    stored = 0
    while time.monotonic() < deadline and stored < 2:
        time.sleep(0.2)
        if db.exists():
            try:
                stored = sqlite3.connect(db).execute("SELECT count(*) FROM results").fetchone()[0]
            except sqlite3.OperationalError:
                stored = 0
    assert stored >= 2, (proc.stderr.read().decode() if proc.stderr and proc.poll() is not None
                         else "no results")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = sqlite3.connect(db).execute("SELECT count(*) FROM results").fetchone()[0]
    assert before < 8  # killed mid-run

    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode in (0, 1), again.stderr  # 1: some case failed its checks
    summary = json.loads(again.stdout)
    assert summary["resumed"] == before and summary["cases"] == 8
    assert summary["requests"] == 8 - before  # only the cases that had not finished
    (run_dir,) = [d for d in (home / "runs" / "evals").iterdir() if d.name.startswith("suite-")]
    lines = [json.loads(x) for x in (run_dir / "cases.jsonl").read_text().splitlines()]
    assert sorted(x["case"] for x in lines) == sorted(f"q{i}" for i in range(8))  # each once

    # Two runs of the same suite at temperature 0 are not told apart.
    third = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert third.returncode in (0, 1), third.stderr
    cmp = subprocess.run([sys.executable, "-m", "litlab", "eval", "compare", "last~1",
                          "last", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert cmp.returncode == 0, cmp.stdout + cmp.stderr
    assert json.loads(cmp.stdout)["regressed"] == []


AGENT_SUITE = """\
description: the agent beside plain ask
library: [{papers}]
targets:
  - {{name: agent, kind: agent, temperature: 0, max_tokens: 32}}
  - {{name: ask, kind: ask, temperature: 0, max_tokens: 16}}
prompts: [rag, zero_shot]
cases:
  - id: compare
    question: "Which is trained on human preference comparisons: the reward model or Mamba?"
    assert:
      - {{type: tool, value: [search_library, search_library, search_library]}}
"""


def test_an_agent_target_on_the_real_server(papers_dir: Path, tmp_path: Path,
                                            vllm_server: RunningServer) -> None:
    """The embedded model under the step schema: every step it makes is a valid call or
    answer, the turn ends with an answer, and a suite counts its model calls and runs it once
    (not once per prompt, which it does not use)."""
    from agentlab.agent import ResearchAgent
    from retrievers.library import Library

    settings = load_settings(api_base=vllm_server.api_base, agent_max_steps=3).settings
    path = tmp_path / "agent.yaml"
    path.write_text(AGENT_SUITE.format(papers=papers_dir))
    client = vllm_server.client()
    summary = run_suite(load_suite(path), settings, client, jobs=1, use_cache=False)
    agent = [r for r in summary.results if r.target == "agent"]
    ask = [r for r in summary.results if r.target == "ask"]
    assert [r.prompt for r in agent] == ["-"] and sorted(r.prompt for r in ask) == [
        "rag", "zero_shot"]
    assert agent[0].scores["tool"]["passed"]  # the question and each side searched
    assert "tool" not in ask[0].scores  # plain ask is not failed for using no tool
    assert not agent[0].output.get("error") and agent[0].output["text"]
    assert summary.requests > 2  # ask's two answers and the agent's model calls

    library = Library(tmp_path / "home")
    assert library.index_files([papers_dir]).ok
    bot = ResearchAgent.from_settings(settings, client, library)
    assert bot.protocol == "schema"  # no tool parser: steps held by decoding
    answer = bot.run("What does the reward model learn from?")
    model_steps = [s for s in answer.steps if s.kind == "model"]
    assert model_steps and not any("error" in s.data for s in model_steps)
    assert "without a final answer" not in answer.text
    assert answer.steps[-1].kind == "end"
