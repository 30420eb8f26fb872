"""Claim verification on hand-made sources: what a claim asserts decides, not how close it
sounds. Numbers are bound to what they count, labels and markers are no evidence, names and
swapped words are caught, a changed number is contradicted with the source's value."""

from __future__ import annotations

import pytest

from agentlab.attribution import attribute
from agentlab.citations import Source
from agentlab.verify import CONTRADICTED, NOT_FOUND, SUPPORTED, abbreviates, check, read

HEADS = ("Instead of performing a single attention function, we employ h = 8 parallel "
         "attention layers, or heads. For each of these we use dk = dv = 64.")
PAPERS = "The resulting corpus consists of 81.1M papers and 380.5M resolved citation links."


def verdict(claim: str, source: str, context: str = "") -> str:
    return check(read(claim), read(source), context).verdict


def test_a_number_must_be_the_sources_value_for_the_same_thing() -> None:
    assert verdict("The Transformer uses 8 parallel attention heads.", HEADS,
                   "the transformer") == SUPPORTED
    result = check(read("The Transformer uses 2 parallel attention heads."), read(HEADS),
                   "the transformer")
    assert result.verdict == CONTRADICTED and result.value == "8"
    assert verdict("The corpus consists of 81.1M papers.", PAPERS) == SUPPORTED
    assert verdict("The corpus consists of 18.1M papers.", PAPERS) == CONTRADICTED
    # the same value counting something else is not evidence: two weeks are not two hours
    assert verdict("Writing a summary takes two weeks.",
                   "Writing a summary typically takes one to two hours.") != SUPPORTED


def test_labels_markers_and_pages_are_not_evidence_for_a_number() -> None:
    claim = "The model uses 3 encoder layers."
    for source in ("Section 3 describes the encoder layers of the model.",
                   "The model's encoder layers are shown in Figure 3.",
                   "The encoder layers follow earlier work [3].",
                   "Encoder layers are discussed in Table 3 of the model card."):
        assert verdict(claim, source) != SUPPORTED, source


def test_spelled_out_numbers_scales_and_ranges_are_read_as_values() -> None:
    assert verdict("The study had ten participants.", "The study recruited 10 participants.") \
        == SUPPORTED
    assert verdict("The study had forty participants.",
                   "The study recruited 10 participants.") == CONTRADICTED
    assert verdict("The corpus holds 81.1 million papers.", PAPERS) == SUPPORTED
    assert verdict("The data has been curated over its fifteen-year history.",
                   "The data has been curated over its 15 year history.") == SUPPORTED
    assert verdict("A summary takes an expert 1-4 hours.",
                   "For a typical summary, this process takes an expert 1-4 hours.") \
        == SUPPORTED


def test_a_swapped_name_or_word_is_not_supported() -> None:
    source = "We process PDFs with ScienceParse and GROBID to extract full text."
    assert verdict("S2ORC processes PDFs with ScienceParse and GROBID.", source, "s2orc") \
        == SUPPORTED
    assert verdict("S2ORC processes PDFs with Tesseract OCR and pdfminer.", source, "s2orc") \
        != SUPPORTED
    mamba = "Selective state space models such as Mamba scale linearly with sequence length."
    assert verdict("Mamba scales linearly with sequence length.", mamba) == SUPPORTED
    assert verdict("Mamba scales quadratically with sequence length.", mamba) == CONTRADICTED
    highlight = "The interface highlights in red the passages an answer cites."
    assert verdict("The interface highlights in blue the passages an answer cites.",
                   highlight) != SUPPORTED


def test_a_reversed_relation_is_not_supported() -> None:
    source = ("The Transformer is the first model relying entirely on self-attention, "
              "dispensing with recurrence and convolutions entirely.")
    assert verdict("The Transformer relies on recurrence to encode positions.", source) \
        != SUPPORTED
    assert verdict("Generative models never fabricate information.",
                   "Generative models might fabricate incorrect information.") != SUPPORTED


def test_an_acronym_stands_for_its_expansion() -> None:
    source = read("Low-rank adaptation freezes the pretrained weights.")
    assert abbreviates("LoRA", source) and not abbreviates("GPU", source)
    assert check(read("LoRA freezes the pretrained weights."), source).verdict == SUPPORTED


@pytest.fixture(scope="module")
def embed():
    from retrievers.index.embeddings import get_embedder

    return get_embedder().embed_few


def test_attribution_quotes_the_evidence_and_the_contradicting_value(embed) -> None:
    source = Source(1, 11, "1706.03762", "Attention Is All You Need", "3.2.2 Multi-Head Attention",
                    "5", "Multi-head attention is central to the Transformer. " + HEADS)
    right, wrong, outside = attribute(
        "The Transformer employs 8 parallel attention heads. The Transformer employs 2 "
        "parallel attention heads. GPT-4 was pre-trained with a learning rate of 1e-5.",
        [source], embed)
    assert right.supported and right.verdict == SUPPORTED
    assert "h = 8 parallel attention layers" in right.evidence[0].quote
    assert not wrong.supported and wrong.verdict == CONTRADICTED
    assert wrong.evidence[0].value == "8" and "8" in wrong.to_dict()["evidence"][0]["reason"]
    assert not outside.supported and outside.verdict == NOT_FOUND
