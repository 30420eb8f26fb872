"""Questions that ask for a number (issue 12): the passage holding the question's words next
to a number is found, though dense search and BM25 rank a passage that only talks about the
same things ahead of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from litcore.text import stem
from retrievers.records import Chunk, Paper
from retrievers.search import hybrid as search
from retrievers.search.proximity import asks_quantity, proximity_ranking

SPLIT = "How many samples are in the training split of the corpus?"
ANSWER = ("Models We experiment with summarizers that are representative of the state of the "
          "art and compare their outputs with the human summaries of each case in the corpus. "
          "We split all cases into train (70%, 3177 samples), dev and test.")
# Talks about the training split at length, with every word of the question but no count.
ABOUT = ("The training split of the corpus is drawn at random. Samples in the training split "
         "come from the same corpus as the other splits, and each training sample of the corpus "
         "is a case; the training split is how samples of the corpus are split.")
APART = ("Training is done once. Over many pages we describe the corpus in full detail, its "
         "sources, its writers and its licence, and only much later do we give the 5 splits "
         "and their samples.")


@pytest.mark.parametrize(("question", "quantity"), [
    (SPLIT, True), ("What F1 does S2ORC-SciBERT reach on BC5CDR?", True),
    ("How long, on average, are the source documents?", True),
    ("What ROUGE-1 score did PRIMERA reach?", True),
    ("Which two tools does S2ORC use to process PDFs?", False),
    ("What does papermage call its unified model interface?", False),
])
def test_questions_asking_for_a_number_are_told_apart(question: str, quantity: bool) -> None:
    assert asks_quantity(question) is quantity


def test_the_stretch_holding_the_terms_next_to_a_number_ranks_first() -> None:
    ranked = proximity_ranking(SPLIT, ["many", "samples", "training", "split", "corpus"],
                               {1: ABOUT, 2: APART, 3: ANSWER}, lambda _w: 1.0)
    assert [cid for cid, _ in ranked] == [3, 1, 2]
    assert ranked[0][1] == 1.0  # every term ("many" asks, it is not looked for) and a number


def test_reference_markers_are_not_numbers() -> None:
    cited = "The training split holds the samples of the corpus [14, 16, 39]."
    counted = "The training split holds the samples of the corpus, 39 of them."
    ranked = dict(proximity_ranking(SPLIT, ["samples", "training", "split", "corpus"],
                                    {1: cited, 2: counted}, lambda _w: 1.0))
    assert ranked[2] > ranked[1]


def test_suffixes_meet_in_one_stem() -> None:
    assert stem("summaries") == stem("summary")
    assert stem("training") == stem("trained") == stem("train")
    assert stem("samples") == stem("sampled") == stem("sample")


# More passages about the split, each with the question's words and no count.
ABOUT_MORE = [
    ABOUT,
    ABOUT.replace("corpus", "dataset"),
    "Samples of the training split are cases of the corpus; the training split holds most of "
    "its samples, and the training samples are drawn from every court of the corpus.",
    "How the corpus is split matters: the training split and its samples decide what the "
    "models learn, so the training samples of the corpus are chosen with care.",
    "Each split of the corpus keeps whole cases together, so no training sample shares a case "
    "with a test sample, and the training split samples every kind of case in the corpus.",
    "We describe the training split of the corpus: its samples, where the training samples "
    "come from, and how the split of the corpus was made.",
]


def test_search_finds_the_count_that_dense_and_keyword_search_rank_below_others(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from retrievers.library import Library

    lib = Library(tmp_path / "home")
    texts = [*ABOUT_MORE, APART, ANSWER]
    lib.catalog.put_paper(Paper(key="lexsum", title="A Corpus of Case Summaries",
                                content_hash="1"), [],
                          [Chunk(text=t, section="4 Experiments", char_start=0,
                                 char_end=len(t)) for t in texts])
    lib.sync()

    def top5(weights: dict[str, float]) -> list[str]:
        monkeypatch.setattr(search, "QUANTITY_WEIGHTS", weights)
        return [h.chunk.text for h in lib.search(SPLIT, k=5)]

    quantity = search.QUANTITY_WEIGHTS
    assert ANSWER not in top5(search.WEIGHTS)  # dense and keyword search alone: 8th of 8
    assert ANSWER in top5(quantity)

    # a question that asks for no number is ranked as before, whatever the proximity says
    other = "Where do the samples of the training split come from?"
    plain = [h.chunk.id for h in lib.search(other, k=8)]
    monkeypatch.setattr(search, "QUANTITY_WEIGHTS", {**quantity, "near": 100.0})
    assert [h.chunk.id for h in lib.search(other, k=8)] == plain
    assert lib.search(SPLIT, k=1)[0].chunk.text == ANSWER  # the same weights do move a count
