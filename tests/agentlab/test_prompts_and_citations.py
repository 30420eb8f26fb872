"""The template loader, the citation resolver and the conversation store, on their own."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from agentlab.chats import ChatStore, Step
from agentlab.citations import (
    NOT_IN_LIBRARY,
    NOT_IN_LIBRARY_MESSAGE,
    Source,
    resolve,
    split_reasoning,
)
from agentlab.prompts import PromptError, list_templates, load_template
from litlab.cli import main

SOURCES = [Source(1, 11, "2106.09685", "LoRA", "4 Method", "4", "LoRA freezes W."),
           Source(2, 12, "1706.03762", "Attention Is All You Need", "3.2 Attention", "4", "QK^T")]


def test_shipped_templates_cover_the_patterns() -> None:
    names = {t.name for t in list_templates()}
    assert {"zero_shot", "few_shot", "cot", "tutor", "reviewer", "rag", "rewrite",
            "judge"} <= names
    few = load_template("few_shot").render(question="q", sources="[1] s", not_in_library="N")
    assert "What does LoRA train?" in few[0]["content"]  # examples come from the file


def test_missing_and_unknown_variables_are_named() -> None:
    rag = load_template("rag")
    with pytest.raises(PromptError, match="needs variable 'sources'"):
        rag.render(question="q", not_in_library="N")
    with pytest.raises(PromptError, match="has no variable 'topic'"):
        rag.render(question="q", sources="s", not_in_library="N", topic="x")
    with pytest.raises(PromptError, match="no prompt template 'nope'.*rag"):
        load_template("nope")


def test_home_templates_override_and_are_checked(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "rag.toml").write_text(
        'description = "mine"\nvariables = ["question", "sources", "not_in_library"]\n'
        'system = "Only: {{ sources }}"\nuser = "Q: {{ question }}"\n')
    mine = load_template("rag", tmp_path)
    assert mine.render(question="why", sources="S", not_in_library="N") == [
        {"role": "system", "content": "Only: S"}, {"role": "user", "content": "Q: why"}]
    (tmp_path / "prompts" / "bad.toml").write_text(
        'variables = ["question"]\nuser = "{{ question }} {{ context }}"\n')
    with pytest.raises(PromptError, match="undeclared variable 'context'"):
        load_template("bad", tmp_path)


def test_prompts_cli_renders_and_reports_a_missing_variable() -> None:
    ok = CliRunner().invoke(main, ["prompts", "render", "rewrite", "--var", "question=why LoRA"])
    assert ok.exit_code == 0 and "why LoRA" in ok.output
    bad = CliRunner().invoke(main, ["prompts", "render", "rewrite"])
    assert bad.exit_code == 1 and "needs variable 'question'" in bad.output


def test_resolver_keeps_real_markers_and_drops_the_rest() -> None:
    r = resolve("LoRA freezes W [1]. Attention scales [2, 5]. Made up [9].", SOURCES)
    assert r.text == "LoRA freezes W [1]. Attention scales [2]. Made up."
    assert [c.n for c in r.citations] == [1, 2] and r.dropped == [5, 9]
    assert r.supported


def test_resolver_recognises_the_sentinel() -> None:
    r = resolve(f"  {NOT_IN_LIBRARY}", SOURCES)
    assert r.not_in_library and r.text == NOT_IN_LIBRARY_MESSAGE and not r.citations


def test_reasoning_is_kept_apart_from_the_answer() -> None:
    assert split_reasoning("<think>LoRA is low rank [1]</think>\nAnswer: It trains BA [1].") == \
        ("LoRA is low rank [1]", "It trains BA [1].")
    assert split_reasoning("Step 1: look.\nAnswer: yes") == ("Step 1: look.", "yes")
    assert split_reasoning("plain answer [1]") == ("", "plain answer [1]")


def test_turns_traces_and_feedback_survive_reopening(tmp_path: Path) -> None:
    store = ChatStore(tmp_path / "chats.sqlite")
    conv = store.new_conversation("LoRA questions")
    mid = store.add_turn(conv, "What does LoRA train?", "BA [1].",
                         citations=[SOURCES[0].to_dict()], model="m", prompt="rag",
                         steps=[Step("retrieve", 3.5, {"query": "LoRA"})])
    store.set_feedback(mid, rating=-1)
    store.set_feedback(mid, preferred="Only the low-rank matrices B and A [1].")
    store.close()

    again = ChatStore(tmp_path / "chats.sqlite")
    assert [m.role for m in again.messages(conv)] == ["user", "assistant"]
    assert again.trace(mid)[0].data == {"query": "LoRA"}
    assert again.feedback(mid) == (-1, "Only the low-rank matrices B and A [1].")
    assert "[1] LoRA (2106.09685), 4 Method, p. 4" in again.export_markdown(conv)
    again.delete(conv)
    assert again.conversations() == [] and again.trace(mid) == []


def test_prompts_list_names_a_broken_file_and_lists_the_rest() -> None:
    import os

    folder = Path(os.environ["LITLAB_HOME"]) / "prompts"
    folder.mkdir(parents=True)
    (folder / "mine.toml").write_text('variables = ["question"\nuser = "x"\n')
    result = CliRunner().invoke(main, ["prompts", "list"])
    assert result.exit_code == 1
    assert "mine       error: cannot read prompt" in result.output
    assert "rag        (question, sources, not_in_library)" in result.output


def test_citation_grammar_admits_only_sentences_ending_in_a_given_marker() -> None:
    import re

    from agentlab.citations import citation_regex

    grammar = re.compile(citation_regex([1, 2, 3]))
    for good in ["NOT_IN_LIBRARY", "LoRA freezes the pretrained weights [1].",
                 "It builds on Qwen2.5-7B for search [2][3]. It is 45.5% faster [1]!"]:
        assert grammar.fullmatch(good), good
    for bad in ["LoRA freezes the pretrained weights.",       # no marker
                "LoRA freezes the weights [4].",               # a source it was not given
                "LoRA freezes them [1]. Then it trains."]:     # a later sentence uncited
        assert not grammar.fullmatch(bad), bad
