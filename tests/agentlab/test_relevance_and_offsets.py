"""Two promises of the answer path, on a real library (real SQLite, FAISS and MiniLM): a question
the library cannot answer never reaches the model, whichever ranking found a passage; and every
chunk's offsets select its own text in the paper's stored text."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from agentlab.assistant import Assistant
from agentlab.citations import NOT_IN_LIBRARY_MESSAGE
from retrievers.library import Library
from tests.tui.fakes import FakeClient

QUESTION = "Which animals live on Rottnest Island?"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Library:
    """About 200 chunks (more than the dense ranking's pool of 50), one of which shares a single
    rare word with the question but says nothing about it."""
    rng = random.Random(0)
    parts = ["# Checkpoint Registry\n"]
    for i in range(200):
        parts.append(f"## Shard {i}\n\n"
                     + " ".join(f"{rng.getrandbits(40):010x}" for _ in range(40)) + "\n")
    parts.insert(100, "## Notes\n\nIn experiment 7, dropout slows convergence; the runs were "
                      "planned at the Rottnest workshop.\n")
    folder = tmp_path_factory.mktemp("registry")
    (folder / "registry.md").write_text("\n".join(parts))
    lib = Library(tmp_path_factory.mktemp("home"))
    assert lib.index_files([folder]).ok
    return lib


def test_a_passage_found_only_by_a_shared_word_does_not_reach_the_model(registry: Library) -> None:
    hits = registry.search(QUESTION, 5)
    keyword_only = [h for h in hits if h.dense_rank is None]
    assert keyword_only and "Rottnest" in keyword_only[0].chunk.text  # the case under test
    assert all(h.dense_score is not None for h in hits)  # every hit has a relevance

    client = FakeClient()
    answer = Assistant(client=client, model="m", library=registry).answer(QUESTION)
    assert answer.not_in_library and answer.text == NOT_IN_LIBRARY_MESSAGE
    assert client.requests == []  # the model was not asked


def test_a_relevant_passage_still_reaches_the_model(registry: Library) -> None:
    client = FakeClient(answer="Dropout slows convergence [1].")
    answer = Assistant(client=client, model="m", library=registry, min_relevance=0.05).answer(
        "Does dropout slow convergence in experiment 7?")
    assert not answer.not_in_library and len(client.requests) == 1
    assert "dropout" in answer.citations[0].text


def test_chunk_offsets_select_the_chunk_in_the_stored_paper_text(tmp_path: Path,
                                                                 papers_dir: Path) -> None:
    lib = Library(tmp_path / "home")
    assert lib.index_files([papers_dir]).ok
    checked = 0
    for paper in lib.catalog.papers("indexed"):
        assert paper.id is not None
        text = lib.catalog.paper_text(paper.id)
        assert text, paper.title
        for chunk in lib.catalog.chunks_of(paper.id):
            assert text[chunk.char_start:chunk.char_end] == chunk.text
            checked += 1
    assert checked >= 6
    kinds = {p.title: p.indexed_from for p in lib.catalog.papers("indexed")}
    assert kinds["Efficient Adaptation of Generative Models"] == "pdf"
    assert kinds["Contrastive Language-Image Pretraining at Small Scale"] == "latex"
