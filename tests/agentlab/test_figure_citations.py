"""An answer can cite a figure: figures whose captions meet the relevance bar join the numbered
sources, and a marker on one resolves to the figure (paper, page, caption, image file). The
model is scripted here (what it writes is not under test); retrieval, numbering, citation
checking and attribution are the real ones over a real library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentlab.agent import ResearchAgent
from agentlab.assistant import Assistant
from agentlab.client import ChatResult
from retrievers.library import Library
from tests.agentlab.fakes import ScriptedChatModel
from tests.papers import figure_image, make_figures_pdf, make_latex_figures_tarball, png_bytes


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    folder = tmp_path_factory.mktemp("papers")
    make_figures_pdf(folder / "attention.pdf")
    make_latex_figures_tarball(folder / "diffusion.tar.gz", png_bytes(figure_image((9, 9, 9))))
    lib = Library(tmp_path_factory.mktemp("home"))
    assert lib.index_files([folder]).ok
    return lib


def test_ask_numbers_a_relevant_figure_and_resolves_its_citation(library: Library) -> None:
    bot = Assistant(client=None, model="m", library=library, figure_k=2)
    seen: list[Any] = []

    def generate(messages: list[dict[str, str]], **_: Any) -> ChatResult:
        seen.append(messages)
        return ChatResult(text="The U-Net architecture has skip connections [{n}].", model="m")

    sources = bot.retrieve("What does the U-Net architecture diagram show?")
    figure = next(s for s in sources if s.figure_id is not None)
    assert figure.figure == "Figure 2" and figure.text.startswith("Figure 2: The U-Net")
    assert figure.image_path and Path(figure.image_path).is_file()
    assert figure.header().startswith("[") and "Figure 2" in figure.header()

    def cite(messages: list[dict[str, str]], **kw: Any) -> ChatResult:
        r = generate(messages, **kw)
        r.text = r.text.format(n=figure.n)
        return r

    answer = bot.answer("What does the U-Net architecture diagram show?", generate=cite)
    assert f"{figure.header()}" in seen[0][0]["content"] + seen[0][-1]["content"]
    (cited,) = answer.citations
    assert cited.figure_id == figure.figure_id and cited.image_path == figure.image_path
    assert answer.to_dict()["citations"][0]["figure"] == "Figure 2"
    (sentence,) = answer.sentences
    assert sentence.supported and sentence.origin == "model"  # the caption supports it


def test_figures_stay_out_when_off_or_unrelated(library: Library) -> None:
    off = Assistant(client=None, model="m", library=library, figure_k=0)
    assert all(s.figure_id is None for s in off.retrieve("the U-Net architecture diagram"))
    on = Assistant(client=None, model="m", library=library, figure_k=2, min_relevance=0.3)
    assert all(s.figure_id is None for s in on.retrieve("bananas and tropical fruit farming"))


def test_agent_searches_figures_and_cites_one(library: Library) -> None:
    script = [
        'Thought: a figure shows this.\nAction: search_figures\n'
        'Action Input: {"query": "training loss curve", "k": 2}',
        "Thought: source 1 is the curve.\nFinal Answer: The training loss falls over the "
        "steps [1].",
    ]
    model = ScriptedChatModel(script=script)
    agent = ResearchAgent(chat_model=model, model="scripted", library=library)
    result = agent.run("Show me the training loss curve.")
    figure = next(s for s in result.sources if s.figure_id is not None)
    assert figure.text.startswith("Figure 3: Training loss") and figure.image_path
    tool = next(s for s in result.steps if s.kind == "tool" and
                s.data["tool"] == "search_figures")
    assert f"[{figure.n}]" in tool.data["result"]  # numbered with the passages, citable


def test_feedback_on_an_answer_with_a_figure_source_rebuilds_its_prompt(
        library: Library, tmp_path: Path) -> None:
    """A thumbs-up on an answer whose sources included a figure becomes an SFT example whose
    prompt is the one the model was sent (a figure has no chunk id; it must not make the turn
    look as if its sources had left the library)."""
    from agentlab.chats import ChatStore
    from finetune.feedback import build

    bot = Assistant(client=None, model="m", library=library, figure_k=2)
    sent: list[Any] = []

    def generate(messages: list[dict[str, str]], **_: Any) -> ChatResult:
        sent.append(messages)
        return ChatResult(text="The U-Net has skip connections.", model="m")

    answer = bot.answer("What does the U-Net architecture diagram show?", generate=generate)
    assert any(s.figure_id for s in answer.sources)
    chats = ChatStore(tmp_path / "chats.sqlite")
    _conv, message = chats.save_answer(None, answer)
    chats.set_feedback(message, rating=1)
    out = build(chats, library)
    assert not out.skipped
    (example,) = out.sft
    assert example["prompt"] == sent[0]
