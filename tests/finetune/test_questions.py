"""Questions the way people ask them, written from a paper's sentence without a model
(finetune.questions): the fine-tuning data asks for a fact and its answer states it."""

from __future__ import annotations

import pytest

from finetune.questions import ask_about


@pytest.mark.parametrize(("sentence", "question", "key"), [
    ("S2ORC contains 81.1M English-language academic papers spanning many disciplines.",
     "How many English-language academic papers does S2ORC contain?",
     "81.1M"),
    ("We use GROBID to parse the PDFs of every paper.",
     "What do the authors use to parse the PDFs of every paper?", "GROBID"),
    ("The Jaccard index between the two vocabularies is 0.536.",
     "What is the Jaccard index between the two vocabularies?", "0.536"),
    ("We trained the reranker on 8 GPUs for three days.",
     "The authors trained the reranker on how many GPUs for three days?", "8"),
    ("The dataset will be uploaded to an Amazon S3 bucket on AWS.",
     "The dataset will be uploaded to which bucket on AWS?", "Amazon S3"),
])
def test_a_sentence_becomes_a_question_for_its_fact(sentence: str, question: str,
                                                     key: str) -> None:
    asked = ask_about(sentence)
    assert asked is not None
    assert (asked.question, asked.key) == (question, key)
    assert key in asked.answer and asked.answer.endswith(".")  # the answer states the fact
    assert key not in asked.question


@pytest.mark.parametrize("sentence", [
    "Iz Beltagy, Kyle Lo, and Arman Cohan.",  # a reference's authors
    "We follow a similar setup to Beltagy et al. in every experiment.",  # a cited author
    "Given that we released the dataset under the Creative Commons license, anyone may use it.",
    "This is a sentence with nothing in it to ask about at all.",
])
def test_no_question_where_there_is_no_fact(sentence: str) -> None:
    assert ask_about(sentence) is None


def test_a_name_every_question_would_say_is_not_the_key() -> None:
    asked = ask_about("We release Multi-LexSum and evaluate BART on it.", {"multi-lexsum"})
    assert asked is None or asked.key != "Multi-LexSum"
