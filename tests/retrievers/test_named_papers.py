"""A question that names a paper by its short name ("In LongEval, ...") reaches that paper,
though another paper shares more of its words (issue 26)."""

from __future__ import annotations

import pytest

from retrievers.index.catalog import _short_name
from retrievers.library import Library

PAPERS = {
    "longeval.md": "# LONGEVAL: Guidelines for Human Evaluation of Faithfulness in Long-form "
                   "Summarization\n\n## Study design\nEach summary is rated by three annotators "
                   "who read the source document first.\n\n## Results\nFine-grained annotation "
                   "reduces variance between annotators.\n",
    "pasa.md": "# PaSa: An LLM Agent for Comprehensive Academic Paper Search\n\n## Method\nThe "
               "Crawler collects papers and the Selector reads each one.\n\n## Training\nWe "
               "train both agents with reinforcement learning on synthetic queries.\n",
    # shares more of the first question's words than LongEval does
    "other.md": "# Summaries of Long Documents at Scale\n\n## Evaluation\nSummaries are rated "
                "by annotators. Each annotator reads two summaries. Annotators rate each "
                "summary on a five point scale.\n",
}


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    from tests.papers import notes_library

    return notes_library(tmp_path_factory, "named", PAPERS)


def test_short_names_are_names_not_words() -> None:
    assert _short_name("PaSa: An LLM Agent") == "PaSa"
    assert _short_name("S2ORC: The Semantic Scholar Open Research Corpus") == "S2ORC"
    assert _short_name("Multi-LexSum: Real-World Summaries") == "Multi-LexSum"
    assert _short_name("Paper Plain: Making Medical Research Papers Approachable") == "Paper Plain"
    assert _short_name("Attention: a survey") == ""  # a plain word would match any question
    assert _short_name("Summaries of Long Documents at Scale") == ""


def test_a_question_naming_a_paper_reaches_it(library: Library) -> None:
    hits = library.search("In LongEval, how many annotators rate each summary?", 3)
    assert hits[0].paper.title.startswith("LONGEVAL")
    unnamed = library.search("How many annotators rate each summary?", 3)
    assert not unnamed[0].paper.title.startswith("LONGEVAL")  # the name made the difference
    assert library.search("How are PaSa's agents trained?", 1)[0].paper.title.startswith("PaSa")
    named = library.catalog.papers_named("Does prolongevaluation help the longevity of pasa?")
    assert len(named) == 1  # words that hold a name are not the name; "pasa" is, in any case
