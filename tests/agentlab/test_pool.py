"""Two real vLLM servers share one suite run (``api_base`` listing both); one stopped during
the run leaves it with a note and its cases are answered by the other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentlab.pool import ModelPool
from agentlab.server import LocalServer, client_for
from agentlab.settings import Settings, load_settings
from evals.runner import run_suite
from evals.suite import load_suite
from tests.conftest import RunningServer, free_port, home_with_models
from tests.papers import prompt_suite

pytestmark = [pytest.mark.server, pytest.mark.slow]

QUESTIONS = ["What is 2 + 2?", "Name a colour.", "Name a fruit.", "What is the opposite of up?",
             "Name a planet.", "What do bees make?", "Name a month.", "What is ice made of?",
             "Name an animal.", "What colour is the sky?", "Name a number.", "Say hello."]


@pytest.fixture
def second_server(tmp_path_factory: pytest.TempPathFactory,
                  vllm_server: RunningServer) -> Iterator[LocalServer]:
    """Another real server on the same model, on its own port and home."""
    models = (vllm_server.settings.home / "models").resolve()
    home = home_with_models(tmp_path_factory.mktemp("second-home"), models)
    settings = Settings(home=home, port=free_port(), max_model_len=2048, temperature=0.0,
                        keep_alive=0)
    server = LocalServer(settings)
    server.ensure()
    yield server
    server.stop()


def test_two_servers_share_a_suite_run_and_one_stopped_mid_run_is_dropped(
        tmp_path: Path, vllm_server: RunningServer, second_server: LocalServer) -> None:
    second = second_server.running()
    assert second is not None
    both = f"{vllm_server.api_base},{second.api_base}"
    suite_path = prompt_suite(tmp_path / "pair.yaml", QUESTIONS, 24)

    # through the CLI, both running: the answers are spread over both servers
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITLAB_")}
    env.update(LITLAB_HOME=str(tmp_path / "cli-home"), LITLAB_API_BASE=both)
    out = subprocess.run([sys.executable, "-m", "litlab", "eval", "run", str(suite_path),
                          "--jobs", "4", "--json"], capture_output=True, text=True, env=env,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["notes"] == []
    assert sorted(report["servers"]) == sorted([vllm_server.api_base, second.api_base])
    assert all(n >= 2 for n in report["servers"].values()), report["servers"]
    assert sum(report["servers"].values()) == len(QUESTIONS)

    # in process, no cache: the second server is stopped once it has answered a case
    settings = load_settings(api_base=both, home=tmp_path / "run-home").settings
    pool = client_for(both, settings)
    assert isinstance(pool, ModelPool)
    stopped: list[bool] = []

    def progress(done: int, total: int, passed: int) -> None:
        if not stopped and pool.served[second.api_base] >= 1:
            stopped.append(True)
            second_server.stop()

    summary = run_suite(load_suite(suite_path), settings, pool, jobs=4, use_cache=False,
                        progress=progress)
    assert stopped
    assert len(summary.results) == len(QUESTIONS)
    assert all(r.output.get("error") in (None, "") for r in summary.results), \
        [r.output.get("error") for r in summary.results if r.output.get("error")]
    assert all(r.passed for r in summary.results)
    assert len(summary.notes) == 1 and second.api_base in summary.notes[0]
    assert "left the run" in summary.notes[0]
    assert summary.servers[vllm_server.api_base] > summary.servers[second.api_base] >= 1
