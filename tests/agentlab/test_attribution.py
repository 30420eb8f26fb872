"""Sentence-level attribution on hand-made answers and sources, with the real MiniLM embedder:
the right source for each sentence, a wrong marker caught, an unsupported sentence flagged,
numbers and names matched exactly."""

from __future__ import annotations

from agentlab.attribution import attribute, split_sentences
from agentlab.citations import Source
from agentlab.verify import CONTRADICTED, SUPPORTED, check, read

MAMBA = Source(1, 11, "2312.00752", "Mamba", "3 State Space Models", "2",
               "Selective state space models such as Mamba scale linearly with sequence length, "
               "unlike attention, whose cost grows quadratically.")
REWARD = Source(2, 12, "2203.02155", "InstructGPT", "Reward model", "4",
                "The reward model learns from human preference comparisons between pairs of "
                "answers. PPO with a KL penalty then optimises the policy.")
PASA = Source(3, 13, "2501.10120", "PaSa", "4 Experiments", "6",
              "We train the Crawler and the Selector on Qwen2.5-7b with 33,511 synthetic "
              "queries and evaluate on 45 million papers.")
SOURCES = [MAMBA, REWARD, PASA]


def test_each_sentence_gets_the_source_that_supports_it(embed) -> None:
    answer = ("Mamba scales linearly with sequence length. The reward model learns from "
              "human comparisons of pairs of answers.")
    first, second = attribute(answer, SOURCES, embed)
    assert first.sources == [1] and first.origin == "litlab"
    assert second.sources == [2] and second.origin == "litlab"


def test_a_marker_to_a_source_that_does_not_support_its_sentence_is_caught(embed) -> None:
    (sentence,) = attribute("Mamba scales linearly with sequence length [2].", SOURCES, embed)
    assert sentence.unverified == [2]  # the model's [2] is not evidence
    assert sentence.sources == [1] and sentence.origin == "litlab"
    (verified,) = attribute("Mamba scales linearly with sequence length [1].", SOURCES, embed)
    assert verified.sources == [1] and verified.origin == "model" and not verified.unverified


def test_an_unsupported_sentence_is_flagged(embed) -> None:
    answer = ("The reward model learns from human preference comparisons. It is a type of "
              "neural network that learns to learn.")
    supported, invented = attribute(answer, SOURCES, embed)
    assert supported.supported and not invented.supported and invented.sources == []


def test_numbers_and_names_are_matched_exactly(embed) -> None:
    right, wrong = attribute("PaSa trains on Qwen2.5-7b with 33,511 synthetic queries. "
                             "PaSa trains on Qwen2.5-7b with 45,000 synthetic queries.",
                             SOURCES, embed)
    assert right.sources == [3]
    assert wrong.sources == []  # 45,000 is not in the source: not supported
    assert check(read("33,511 queries on Qwen2.5-7B"), read(PASA.text)).verdict == SUPPORTED
    assert check(read("It used 33,512 queries"), read(PASA.text)).verdict == CONTRADICTED


def test_sentences_keep_their_markers_and_list_items_stay_apart() -> None:
    text = "Mamba is linear [1]. Attention is quadratic [1, 2].\n\n- first item\n- second item"
    assert split_sentences(text) == ["Mamba is linear [1].", "Attention is quadratic [1, 2].",
                                     "- first item", "- second item"]
    # an abbreviation's period ends no sentence: a claim about "Taylor et al. (2022)" is one
    text = "Galactica, by Taylor et al. (2022), is a model for science. See Fig. 2 for it.\n\nNo."
    assert split_sentences(text) == ["Galactica, by Taylor et al. (2022), is a model for science.",
                                     "See Fig. 2 for it.", "No."]


def test_a_marker_on_a_sentence_too_short_to_judge_stands(embed) -> None:
    short, = attribute("Mamba is linear [1].", SOURCES, embed)
    assert not short.claim and short.sources == [1] and short.origin == "model"
    see_also, = attribute("See also [2].", SOURCES, embed)
    assert not see_also.claim and see_also.sources == [2]


S2ORC_T5 = Source(4, 14, "s2orc", "S2ORC: The Semantic Scholar Open Research Corpus",
                  "4 Evaluation", "6", "Table 5: S2ORC-SciBERT test results are comparable "
                  "with reported SciBERT test results on the set of tasks and datasets.")
LEXSUM_T5 = Source(5, 15, "2206.10883", "Multi-LexSum: Real-World Summaries of Civil Rights "
                   "Lawsuits", "4.4 Multitask training", "9", "Table 5: Comparing BART "
                   "performance under multitask and single-task scenarios.")


def test_a_sentence_about_one_paper_is_not_supported_by_anothers_passage(embed) -> None:
    # what the 135M model wrote in the app, its sources both papers' Table 5 captions
    mixed = ("Table 5 of the Multi-LexSum paper compares the test results of S2ORC-SciBERT "
             "with reported SciBERT test results.")
    (wrong,) = attribute(mixed, [S2ORC_T5, LEXSUM_T5], embed)
    assert 4 not in wrong.sources  # another paper than it names
    (about_s2orc,) = attribute(mixed.replace("Multi-LexSum", "S2ORC"), [S2ORC_T5, LEXSUM_T5],
                               embed)
    assert about_s2orc.sources == [4]
    (right,) = attribute("Table 5 of the Multi-LexSum paper compares BART performance under "
                         "multitask and single-task scenarios.", [S2ORC_T5, LEXSUM_T5], embed)
    assert right.sources == [5]


def test_a_models_marker_on_a_wrong_number_is_not_confirmed(embed) -> None:
    (sentence,) = attribute("PaSa trains on Qwen2.5-7b with 45,000 synthetic queries [3].",
                            SOURCES, embed)
    assert sentence.unverified == [3] and not sentence.supported
