"""The installed `litlab` in a real pseudo-terminal against the session's real vLLM server: what a
person does after `make run`. The pilot tests cover the screens' details; this one covers the
wiring between the process, the terminal, the server and the widgets."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrievers.library import Library
from tests.conftest import RunningServer
from tests.terminal import SlowStart, Terminal, env_for

pytestmark = [pytest.mark.server, pytest.mark.slow]

QUESTION = "How does Mamba scale with sequence length?"
PAPER = "Efficient Adaptation of Generative Models"  # the test PDF holding the Mamba passage


@pytest.fixture
def home(papers_dir: Path, tmp_path: Path) -> Path:
    home = tmp_path / "person"
    lib = Library(home)
    assert lib.index_files([papers_dir]).ok
    lib.close()
    return home


def _answered(text: str) -> bool:
    # The answer's status line names the model and its token count once it has finished.
    return "tokens" in text and "smollm2-135m-instruct ·" in text


@pytest.mark.parametrize("when", ["before the server is ready", "after the server is ready"])
def test_first_question_in_a_real_terminal_is_answered(home: Path, vllm_server: RunningServer,
                                                       when: str) -> None:
    # The server answers nothing for its first 8 s, as when the app has just started it: a
    # person types while it comes up (or waits for "ready" first).
    proxy = SlowStart(vllm_server.api_base, delay=8)
    env = env_for(home, LITLAB_API_BASE=proxy.api_base, LITLAB_MAX_TOKENS="48",
                  LITLAB_TEMPERATURE="0")
    term = Terminal.litlab(env=env)
    try:
        term.wait_for(lambda t: "Ask about the papers" in t, 60, "the app's first paint")
        if when.startswith("after"):
            term.wait_for(lambda t: "server: ready" in t, 120, "the server to be ready")
        else:
            assert "server: ready" not in term.text()
        term.type(QUESTION)
        term.press("enter")
        screen = term.wait_for(lambda t: _answered(t) or "error" in t, 240, "the answer")
        assert "error" not in screen and "Select." not in screen, screen
        assert QUESTION in screen  # the question, and under it the streamed answer
        answer_lines = screen.split(QUESTION, 1)[1].split("smollm2-135m-instruct ·")[0]
        assert any(ch.isalpha() for ch in answer_lines.replace("…", "")), screen
        # The sources panel lists where the answer came from: the paper that holds the passage.
        term.wait_for(lambda t: "[1] " + PAPER[:25] in t, 10, "the sources panel")
        term.press("ctrl+q")
        code = term.exit_code()
    finally:
        term.close()
        proxy.close()
    output = bytes(term.raw).decode(errors="replace")
    assert code == 0, output[-3000:]
    assert "Traceback" not in output
