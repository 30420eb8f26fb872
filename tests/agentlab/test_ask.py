"""`litlab ask` end to end: the real vLLM server answering over a real small library."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from agentlab.citations import NOT_IN_LIBRARY_MESSAGE
from retrievers.library import Library
from tests.agentlab.test_server import litlab_cli
from tests.conftest import RunningServer

pytestmark = pytest.mark.server

# The 135M model seldom writes [n] on its own; asked to repeat a cited sentence, it does, so the
# citation check runs on a real reply: [1] exists, [7] does not.
ECHO_CITE = '''description = "Repeat a cited sentence (tests)."
variables = ["question", "sources"]
system = """You repeat text exactly.

Sources:
{{ sources }}"""
user = """Repeat this sentence exactly, nothing else:
Mamba scales linearly with sequence length [1], unlike attention [7]."""
'''


@pytest.fixture
def env(vllm_server: RunningServer, papers_dir: Path, tmp_path: Path) -> dict[str, str]:
    """A home with an indexed library, asking the session's server as a remote one."""
    home = tmp_path / "asker"
    lib = Library(home)
    assert lib.index_files([papers_dir]).ok
    lib.close()
    (home / "prompts").mkdir()
    (home / "prompts" / "echo_cite.toml").write_text(ECHO_CITE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITLAB_")}
    env.update(LITLAB_HOME=str(home), LITLAB_API_BASE=vllm_server.api_base)
    return env


def ask(env: dict[str, str], *args: str) -> dict:
    proc = litlab_cli("ask", "--json", "--temperature", "0", "--max-tokens", "80", *args, env=env)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return json.loads(out)


def test_answer_over_the_library_retrieves_the_right_passage(env: dict[str, str]) -> None:
    answer = ask(env, "How does Mamba scale with sequence length?")
    assert not answer["not_in_library"] and answer["answer"].strip()
    retrieved = next(s for s in answer["trace"] if s["kind"] == "retrieve")["sources"]
    assert retrieved[0]["section"] == "3 State Space Models" and retrieved[0]["pages"] == "2"
    gen = next(s for s in answer["trace"] if s["kind"] == "generate")
    assert gen["completion_tokens"] > 0
    db = sqlite3.connect(Path(env["LITLAB_HOME"]) / "chats.sqlite")
    kinds = [r[0] for r in db.execute(
        "SELECT kind FROM steps WHERE message_id = ? ORDER BY ord", (answer["message_id"],))]
    # the answer line (the sources' own sentence) is a step of its own, before the model's
    assert kinds == ["retrieve", "prompt", "answer_line", "generate", "cite"]


def test_every_marker_resolves_to_its_chunk_and_a_marker_to_nothing_is_removed(
        env: dict[str, str]) -> None:
    answer = ask(env, "--prompt", "echo_cite", "--bib",
                 "How does Mamba scale with sequence length?")
    assert "[1]" in answer["answer"] and "[7]" not in answer["answer"]
    # --bib: the cited paper's entry, ready for a .bib file
    assert answer["bibtex"].startswith("@article{") and \
        "title = {{Efficient Adaptation of Generative Models}}" in answer["bibtex"]
    assert answer["dropped_citations"] == [7]
    (cited,) = answer["citations"]
    assert cited["n"] == 1
    catalog = Library(Path(env["LITLAB_HOME"])).catalog
    chunk = catalog.chunks_by_id([cited["chunk_id"]])[cited["chunk_id"]]
    assert chunk.text == cited["text"] and "Mamba" in chunk.text
    assert (cited["section"], cited["pages"]) == ("3 State Space Models", "2") == \
        (chunk.section, chunk.pages)
    assert cited["title"] == "Efficient Adaptation of Generative Models"


def test_a_question_the_library_cannot_answer_says_so(env: dict[str, str]) -> None:
    answer = ask(env, "What is the capital of France?")
    assert answer["not_in_library"] and answer["answer"] == NOT_IN_LIBRARY_MESSAGE
    assert answer["citations"] == [] and answer["completion_tokens"] == 0  # the model not asked


def test_ask_prints_sources_and_trace(env: dict[str, str]) -> None:
    proc = litlab_cli("ask", "--trace", "--prompt", "echo_cite", "--temperature", "0",
                      "--max-tokens", "40", "How does Mamba scale with sequence length?", env=env)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    sources = out.split("Sources:", 1)[1].split("Trace:", 1)[0]
    assert "[1] Efficient Adaptation of Generative Models, 3 State Space Models, p. 2" in sources
    assert "removed [7]" in err
    trace = out.split("Trace:", 1)[1]
    assert [line.split()[1] for line in trace.strip().splitlines()] == \
        ["retrieve", "prompt", "answer_line", "generate", "cite"]


def test_agent_turn_is_traced(env: dict[str, str]) -> None:
    env = {**env, "LITLAB_AGENT_MAX_STEPS": "2"}
    question = "How is the RLHF policy optimised?"
    answer = ask(env, "--agent", question)
    tools = [s for s in answer["trace"] if s["kind"] == "tool"]
    assert tools[0]["tool"] == "search_library" and tools[0]["args"]["query"] == question
    assert "Policy Optimisation" in tools[0]["result"]  # the passage that answers it was found
    models = [s for s in answer["trace"] if s["kind"] == "model"]
    assert 1 <= len(models) <= 2 and all(s["text"] for s in models)  # the step limit holds
    assert answer["answer"].strip()
    stopped = [s for s in answer["trace"] if s["kind"] == "stop"]
    if stopped:  # no final answer within 2 steps: the assistant answers from what was found
        assert answer["trace"][-1]["kind"] == "end"
        shown = answer["citations"] + answer["closest"]  # cited, or the closest when abstained
        assert any(c["section"] == "Policy Optimisation" for c in shown), shown


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


def test_citation_grammar_makes_the_model_end_every_sentence_with_a_marker(
        env: dict[str, str]) -> None:
    # Without the grammar the 135M model writes no [n] here (the README's measurements); with
    # it, vLLM's structured outputs only let it write sentences that end in a marker over the
    # sources it was given, and litlab then verifies each marker like any other.
    import re

    from agentlab.attribution import split_sentences
    from agentlab.citations import citation_regex

    answer = ask({**env, "LITLAB_CITATION_GRAMMAR": "true", "LITLAB_ANSWER_LINE": "false"},
                 "How does Mamba scale with sequence length?")
    numbers = [s["n"] for s in next(
        s for s in answer["trace"] if s["kind"] == "retrieve")["sources"]]
    # the model's own words (kept apart when no sentence of them is supported and litlab
    # abstains); every marker resolved: none is dropped
    raw = answer["model_text"] if answer["abstained"] else answer["answer"]
    assert answer["dropped_citations"] == []
    sentences = split_sentences(raw)
    assert sentences
    finished = sentences if raw.rstrip().endswith((".", "!", "?")) else sentences[:-1]
    for sentence in finished:  # the last may be cut by max_tokens
        assert re.search(r"\[(\d+)\]\W*$", sentence), (sentence, raw)
        assert all(int(n) in numbers for n in re.findall(r"\[(\d+)\]", sentence))
    assert re.fullmatch(citation_regex(numbers), raw) or not raw.rstrip().endswith(".")
    # each marker is verified: kept as a citation, or (no claim supported) reported unverified
    assert any(c["origin"] == "model" for c in answer["citations"]) or \
        (answer["abstained"] and answer["unverified_citations"]), answer
