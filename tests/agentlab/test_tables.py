"""Tables in a passage, read cell by cell: a value is said of its row and its column, not of
every label the table holds. Sentence splitting ran a table's rows into one "sentence" where a
value moved to another row or column read as said."""

from __future__ import annotations

import pytest

from agentlab.attribution import attribute
from agentlab.citations import Source
from agentlab.tables import split_row, tables
from agentlab.verify import CONTRADICTED, NOT_FOUND, SUPPORTED

SPLITS = """Despite these efforts, a mean rating of 0.43 for model output can be improved.

Table 8: Dataset train-dev-test splits.
Source D Long L Short S Tiny T Total
Train (70%) 28,557 3,177 2,210 1,130 6,517
Test (20%) 7,428 908 616 312 1,836
Dev (10%) 4,134 454 312 161 927
Table 9: The average and standard deviation of BART models' performance on different test splits.
"""

SCORES = """See §4 for how these two can be combined.
Table 1: Types of Predictors implemented in the toolkit.
Model Full Grobid Subset
P R F1 P R F1
GrobidCRF 40.6 38.3 39.1 81.2 76.7 78.9
RoBERTa 75.9 80.0 76.8 82.6 83.9 83.2
Table 2: Evaluating performance of CoreRecipe for
logical structure recovery on S2-VL (Shen et al., 2022).
"""

SPANS = """Table 3: Performance of baseline models on different tasks.
D → L D → S
Models R-1 Words R-1 Words
Lead 30.41 813.7 21.97 120.5
BART 45.12 650.2 40.01 98.4
"""


def test_a_row_splits_into_its_label_and_values() -> None:
    assert split_row("Train (70%) 28,557 3,177") == ("Train (70%)", ["28,557", "3,177"])
    assert split_row("Papers w/ PDF 28.9M (35.6%)") == ("Papers w/ PDF", ["28.9M (35.6%)"])
    assert split_row("Over 50 pages 2.27M") == ("Over 50 pages", ["2.27M"])


def test_each_value_is_read_with_its_row_its_column_and_its_own_caption() -> None:
    (cells,) = tables(SPLITS)
    test_tiny = next(c for c in cells if c.label == "Test (20%)" and c.value == "312")
    assert test_tiny.column == "Tiny T"
    assert test_tiny.caption.startswith("Table 8")  # not the next table's caption
    dev = [c.column for c in cells if c.label == "Dev (10%)"]
    assert dev == ["Source D", "Long L", "Short S", "Tiny T", "Total"]


def test_metric_columns_the_labels_own_column_and_spanning_groups() -> None:
    (cells,) = tables(SCORES)
    crf = [c for c in cells if c.label == "GrobidCRF"]
    assert [c.column for c in crf][:3] == ["P (precision)", "R (recall)", "F1"]
    assert crf[3].value == "81.2" and "Grobid Subset" in crf[3].text
    assert "Table 2" in crf[0].caption  # its own words ("Grobid"), not Table 1's
    (cells,) = tables(SPANS)
    bart = {c.column: c.value for c in cells if c.label == "BART"}
    assert bart == {"D → L R-1": "45.12", "D → L Words": "650.2", "D → S R-1": "40.01",
                    "D → S Words": "98.4"}


def test_a_table_whose_header_does_not_line_up_is_read_row_by_row() -> None:
    text = "Table 4: Statistics.\nTotal papers 81.1M\nPapers w/ PDF 28.9M (35.6%)\n"
    cells = [c for t in tables(text) for c in t]
    assert [(c.label, c.column, c.value) for c in cells] == [
        ("Total papers", "", "81.1M"), ("Papers w/ PDF", "", "28.9M (35.6%)")]
    # words among the values: the row read whole, with its header (wrapped over lines)
    text = ("Corpus Papers w/\nbody text\nS2ORC (PDF-parse) 8.1M full text yes\n"
            "PubMed Central (OA) 2.6M full text yes\n")
    assert [c.text for c in tables(text)[0]] == [
        "Corpus Papers w/ body text: S2ORC (PDF-parse) 8.1M full text yes",
        "Corpus Papers w/ body text: PubMed Central (OA) 2.6M full text yes"]
    # wrapped prose with a number is no table
    assert tables("For a typical summary, this process takes an expert 1-4 hours.\n"
                  "And it needs to be done for every case in the 2021 release.") == []


@pytest.fixture(scope="module")
def embed():
    from retrievers.index.embeddings import get_embedder

    return get_embedder().embed_few


def verdict(claim: str, text: str, embed) -> str:
    (sentence,) = attribute(claim, [Source(1, 1, "p", "Multi-LexSum", "C Splits", "9", text)],
                            embed)
    return sentence.verdict


def test_a_value_moved_to_another_row_or_column_is_not_supported(embed) -> None:
    assert verdict("The test split contains 312 tiny summaries.", SPLITS, embed) == SUPPORTED
    # 312 is the dev split's short count, and the test split's tiny one
    assert verdict("The dev split contains 312 tiny summaries.", SPLITS, embed) != SUPPORTED
    assert verdict("The training split has 3,177 long summaries.", SPLITS, embed) == SUPPORTED
    assert verdict("The training split has 3,177 short summaries.", SPLITS, embed) != SUPPORTED
    assert verdict("GrobidCRF has a precision of 81.2 on the Grobid subset.", SCORES,
                   embed) == SUPPORTED
    assert verdict("GrobidCRF has a recall of 81.2 on the Grobid subset.", SCORES,
                   embed) in (CONTRADICTED, NOT_FOUND)


def test_a_name_in_a_tables_row_is_not_lent_to_the_passages_sentences(embed) -> None:
    text = ("We release full text extracted from PDFs for 8.1M papers.\n\n"
            "Table 3: Statistics on paper provenance.\n"
            "Papers w/ GROBID full text 8.1M (10.0%)\nPapers w/ LaTeX full text 1.5M (1.8%)\n")
    assert verdict("8.1M papers have LaTeX full text.", text, embed) != SUPPORTED
    assert verdict("8.1M papers have GROBID full text.", text, embed) == SUPPORTED
