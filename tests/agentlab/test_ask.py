"""`litlab ask` end to end: the real vLLM server answering over a real small library."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest

from agentlab.citations import NOT_IN_LIBRARY_MESSAGE
from retrievers.library import Library
from tests.agentlab.test_server import litlab_cli
from tests.conftest import RunningServer

pytestmark = pytest.mark.server


@pytest.fixture
def env(vllm_server: RunningServer, papers_dir: Path, tmp_path: Path) -> dict[str, str]:
    """A home with an indexed library, asking the session's server as a remote one."""
    home = tmp_path / "asker"
    lib = Library(home)
    assert lib.index_files([papers_dir]).ok
    lib.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITLAB_")}
    env.update(LITLAB_HOME=str(home), LITLAB_API_BASE=vllm_server.api_base)
    return env


def ask(env: dict[str, str], *args: str) -> dict:
    proc = litlab_cli("ask", "--json", "--temperature", "0", "--max-tokens", "80", *args, env=env)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def test_answer_over_the_library_has_every_citation_resolved(env: dict[str, str]) -> None:
    answer = ask(env, "How does Mamba scale with sequence length?")
    assert not answer["not_in_library"] and answer["answer"].strip()
    retrieved = next(s for s in answer["trace"] if s["kind"] == "retrieve")["sources"]
    assert retrieved[0]["section"] == "3 State Space Models" and retrieved[0]["pages"] == "2"
    catalog = Library(Path(env["LITLAB_HOME"])).catalog
    for c in answer["citations"]:  # each citation is a real chunk of a real paper
        chunk = catalog.chunks_by_id([c["chunk_id"]])[c["chunk_id"]]
        assert chunk.text == c["text"] and chunk.section == c["section"]
        assert chunk.pages == c["pages"]
    cited = {c["n"] for c in answer["citations"]}
    markers = {int(n) for group in re.findall(r"\[(\d+(?:\s*,\s*\d+)*)\]", answer["answer"])
               for n in re.split(r"\s*,\s*", group)}
    assert markers <= cited  # no marker in the answer points at nothing
    assert not set(answer["dropped_citations"]) & cited
    gen = next(s for s in answer["trace"] if s["kind"] == "generate")
    assert gen["completion_tokens"] > 0

    db = sqlite3.connect(Path(env["LITLAB_HOME"]) / "chats.sqlite")
    kinds = [r[0] for r in db.execute(
        "SELECT kind FROM steps WHERE message_id = ? ORDER BY ord", (answer["message_id"],))]
    assert kinds == ["retrieve", "prompt", "generate", "cite"]


def test_a_question_the_library_cannot_answer_says_so(env: dict[str, str]) -> None:
    answer = ask(env, "What is the capital of France?")
    assert answer["not_in_library"] and answer["answer"] == NOT_IN_LIBRARY_MESSAGE
    assert answer["citations"] == [] and answer["completion_tokens"] == 0  # the model not asked


def test_ask_prints_sources_and_trace(env: dict[str, str]) -> None:
    proc = litlab_cli("ask", "--trace", "--temperature", "0", "--max-tokens", "40",
                      "What does the reward model learn from?", env=env)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "Trace:" in out and "retrieve" in out and "generate" in out


def test_agent_turn_is_traced(env: dict[str, str]) -> None:
    env = {**env, "LITLAB_AGENT_MAX_STEPS": "2"}
    answer = ask(env, "--agent", "How is the RLHF policy optimised?")
    models = [s for s in answer["trace"] if s["kind"] == "model"]
    assert models and all(s["text"] for s in models)
    assert answer["answer"].strip()
    cited = {c["n"] for c in answer["citations"]}
    assert all(c["chunk_id"] for c in answer["citations"]) and len(cited) == len(answer["citations"])


def test_line_chat_answers_and_keeps_the_conversation(env: dict[str, str]) -> None:
    env = {**env, "LITLAB_MAX_TOKENS": "24", "LITLAB_TEMPERATURE": "0"}
    proc = litlab_cli("chat", env=env, stdin=subprocess.PIPE)
    out, err = proc.communicate("How does Mamba scale with sequence length?\n/quit\n",
                                timeout=300)
    assert proc.returncode == 0, err
    assert "you>" in out and "Traceback" not in err
    db = sqlite3.connect(Path(env["LITLAB_HOME"]) / "chats.sqlite")
    roles = [r[0] for r in db.execute("SELECT role FROM messages ORDER BY id")]
    assert roles == ["user", "assistant"]
