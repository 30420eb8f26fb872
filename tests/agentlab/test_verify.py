"""Claim verification on hand-made sources: what a claim asserts decides, not how close it
sounds. Numbers are bound to what they count, labels and markers are no evidence, names and
swapped words are caught, a changed number is contradicted with the source's value."""

from __future__ import annotations

import pytest

from agentlab.attribution import attribute
from agentlab.citations import Source
from agentlab.verify import (
    CONTRADICTED,
    NOT_FOUND,
    SUPPORTED,
    Check,
    abbreviates,
    check,
    read,
)

HEADS = ("Instead of performing a single attention function, we employ h = 8 parallel "
         "attention layers, or heads. For each of these we use dk = dv = 64.")
PAPERS = "The resulting corpus consists of 81.1M papers and 380.5M resolved citation links."


def checked(claim: str, source: str, context: str = "") -> Check:
    return check(read(claim), read(source), context)


def verdict(claim: str, source: str, context: str = "") -> str:
    return checked(claim, source, context).verdict


def attributed(claim: str, text: str, embed) -> str:
    """The verdict on ``claim`` attributed, as an answer's sentence is, against one source."""
    (sentence,) = attribute(claim, [Source(1, 1, "p", "A paper", "1 Intro", "1", text)], embed)
    return sentence.verdict


def test_a_number_must_be_the_sources_value_for_the_same_thing() -> None:
    assert verdict("The Transformer uses 8 parallel attention heads.", HEADS,
                   "the transformer") == SUPPORTED
    result = checked("The Transformer uses 2 parallel attention heads.", HEADS,
                     "the transformer")
    assert result.verdict == CONTRADICTED and result.value == "8"
    assert verdict("The corpus consists of 81.1M papers.", PAPERS) == SUPPORTED
    assert verdict("The corpus consists of 18.1M papers.", PAPERS) == CONTRADICTED
    # what a number counts, named again after it ("8 parallel attention layers, or heads"):
    # "8 heads" is the source's, not a contradiction by the 64 of the next clause
    width = "In the base model we employ h = 8 parallel attention layers, or heads, each of " \
            "width 64."
    assert verdict("The base model uses 8 heads.", width) == SUPPORTED
    assert verdict("The base model uses 2 heads.", width) == CONTRADICTED
    # the same value counting something else is not evidence: two weeks are not two hours
    assert verdict("Writing a summary takes two weeks.",
                   "Writing a summary typically takes one to two hours.") != SUPPORTED


def test_values_exchanged_between_the_terms_of_a_list_are_contradicted() -> None:
    lengths = "Summaries come at three levels: tiny (25 words, on average), short (130 words)."
    result = checked("Tiny summaries have 130 words and short summaries 25 words.",
                     lengths)
    assert result.verdict == CONTRADICTED and result.value == "25"
    assert verdict("Tiny summaries have 25 words and short summaries 130 words.", lengths) \
        == SUPPORTED
    mix = "The corpus consists of 82% biomedical and 18% computer science papers."
    assert verdict("The corpus consists of 18% biomedical and 82% computer science papers.",
                   mix) == CONTRADICTED


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


def test_terms_in_each_others_roles_are_contradicted() -> None:
    source = ("First, she converts a user's highlighted passage from a visual selection to "
              "text, then runs the model on it.")
    result = checked("She converts a user's highlighted passage from text to a visual "
                     "selection.", source)
    assert result.verdict == CONTRADICTED and "the other way round" in result.reason
    assert verdict("She converts a user's highlighted passage from a visual selection to text.",
                   source) == SUPPORTED
    layers = ("Adding Layers grants users the ability to iterate through Entities and "
              "cross-reference intersecting Entities across Layers.")
    assert verdict("Users iterate through Layers and cross-reference Layers across Entities.",
                   layers) == CONTRADICTED
    assert verdict("Users iterate through Entities and cross-reference Entities across Layers.",
                   layers) == SUPPORTED


def test_one_term_moved_into_the_others_role_is_contradicted() -> None:
    source = "LaTeX source files preserve line breaks rather than paragraph breaks."
    assert verdict("LaTeX source files preserve paragraph breaks rather than line breaks.",
                   source) == CONTRADICTED
    assert verdict("LaTeX source files preserve line breaks rather than paragraph breaks.",
                   source) == SUPPORTED
    more = "S2ORC contains three times more full text papers than PubMed Central (OA)."
    assert verdict("PubMed Central contains three times more full text papers than S2ORC.",
                   more) == CONTRADICTED


def test_of_alone_is_no_role_taken() -> None:
    """ "of" marks nearly every noun: a claim that puts a term after "of" where the source put
    another there is not a swap (seen on held-out claims: "the source documents of a case"
    against "the length of the source documents, ... pages per case")."""
    source = ("The task is hard given the length of the source documents, often exceeding two "
              "hundred pages per case.")
    assert verdict("The source documents of a case often exceed two hundred pages.",
                   source) == SUPPORTED


def test_a_number_in_parentheses_counts_what_they_follow() -> None:
    source = ("The summary writer selects a small subset of documents (on average, eight) that "
              "provide information about major events.")
    assert verdict("The summary writer selects on average eight documents.", source) == SUPPORTED
    assert verdict("The summary writer selects on average eighteen documents.",
                   source) != SUPPORTED


def test_the_same_word_in_another_form_is_no_swap() -> None:
    source = ("Our current default combines the pdfplumber PDF parsing utility with the I-VILA "
              "research model.")
    assert verdict("The default combines the pdfplumber PDF parser with the I-VILA research "
                   "model.", source) == SUPPORTED
    assert verdict("The default combines the pdfplumber PDF renderer with the I-VILA research "
                   "model.", source) != SUPPORTED


def test_a_count_written_with_its_word_counts_that_word_whatever_follows() -> None:
    """"a 4-point scale" and "a 4-point rating" count points both; a footnote's mark after a
    full stop ("scale.5") is no part of the word."""
    source = "Each writer gives the selected summary a 4-point rating, and we report the mean."
    assert verdict("Each writer rates the selected summary on a 4-point scale.",
                   source) == SUPPORTED
    result = checked("Each writer rates the selected summary on a 10-point scale.",
                     source)
    assert result.verdict == CONTRADICTED and result.value == "4-point"
    noted = "We asked writers to rate each generation on a 4-point scale.5 Writers then edit it."
    assert verdict("Writers rate each generation on a 4-point scale.", noted) == SUPPORTED


def test_a_paper_calling_itself_this_project_does_not_swap_its_own_name(embed) -> None:
    """papermage's acknowledgements say "This project was supported by ...": a claim naming
    papermage is supported there, not contradicted as if "project" stood in its place; a
    name that is not the paper's is still swapped."""
    text = ("This project was supported in part by NSF Grant OIA-2033558 and NSF Grant "
            "CNS-2213656. All authors contributed to the implementation of papermage.")
    source = Source(1, 1, "p", "PaperMage: A Unified Toolkit for Scientific Documents",
                    "Acknowledgements", "9", text)
    (ok,) = attribute("papermage was supported in part by NSF Grant OIA-2033558.", [source],
                      embed)
    assert ok.verdict == SUPPORTED
    (other,) = attribute("scispacy was supported in part by NSF Grant OIA-2033558.", [source],
                         embed)
    assert other.verdict != SUPPORTED


def test_a_term_with_its_short_form_after_it_is_still_in_its_place() -> None:
    """"*Long* (L) summaries" against a claim about "*Tiny* summaries": the letter in
    parentheses is Long's short form, and Long is the word in Tiny's place."""
    source = ("The summaries come in three different lengths: Long (L) summaries typically "
              "contain multiple paragraphs, covering the case background and proceedings.")
    result = checked("Tiny summaries typically contain multiple paragraphs, covering the "
                     "case background and proceedings.", source)
    assert result.verdict == CONTRADICTED and "Long" in result.reason
    assert verdict("Long summaries typically contain multiple paragraphs, covering the case "
                   "background and proceedings.", source) == SUPPORTED


def test_accents_and_contractions_read_as_written_out() -> None:
    """A PDF's "Farber ¨" is the claim's "Färber"; "haven't" is "have not"."""
    source = "Saier and Farber \u00a8 (2019) introduce a corpus built using 1.0M arXiv publications."
    assert verdict("Saier and Färber introduce a corpus built from 1.0M arXiv publications.",
                   source) == SUPPORTED
    errata = "Currently we haven't found any errors in the version to be released."
    assert verdict("The authors have not found any errors in the version.", errata) == SUPPORTED
    assert verdict("The authors have found errors in the version.", errata) != SUPPORTED


def test_a_comparison_must_go_the_sources_way() -> None:
    stable = "Table 9 shows that the increased test split size leads to more stable test results."
    result = checked("The increased test split size leads to less stable test results.",
                     stable)
    assert result.verdict == CONTRADICTED and result.value == "more"
    assert verdict("The increased test split size leads to more stable test results.",
                   stable) == SUPPORTED
    # the source compares after the term: "the quality of ... is worse than"
    quality = ("The quality of metadata extracted from LaTeX documents is worse than those "
               "extracted from PDF.")
    assert verdict("Metadata extracted from LaTeX is of worse quality than metadata extracted "
                   "from PDF.",
                   quality) == SUPPORTED
    assert verdict("Metadata extracted from LaTeX is of better quality than metadata extracted "
                   "from PDF.",
                   quality) == CONTRADICTED
    # a bound on a number: "fewer than 100" is not "more than 100"
    short = "We remove papers with fewer than 100 characters of abstract and body text."
    assert verdict("Papers with more than 100 characters of abstract and body text are "
                   "removed.", short) == CONTRADICTED
    # what is compared is not in the source: the word before the comparing one ("take")
    assert verdict("The experts said correcting errors would take less time than writing the "
                   "summary.", "The experts stated it would take longer to correct errors than "
                   "to write the summary.") == CONTRADICTED
    worthy = "They summarize court judgments by selecting the most summary-worthy sentences."
    assert verdict("They select the least summary-worthy sentences of court judgments.",
                   worthy) == CONTRADICTED


def test_a_comparison_the_source_does_not_make_is_not_supported() -> None:
    result = checked("The dataset with more expert-written summaries is Multi-LexSum.",
                     "Multi-LexSum contains expert-written summaries of up to three "
                     "different granularities for the same source.")
    assert result.verdict == NOT_FOUND and "no comparison" in result.reason


def test_names_on_the_wrong_sides_of_a_comparison_are_contradicted() -> None:
    source = "The results show that S2ORCSCIBERT outperforms SCIBERT on many tasks."
    result = checked("SciBERT outperforms S2ORC-SciBERT on many tasks.", source)
    assert result.verdict == CONTRADICTED and "the other way round" in result.reason
    assert verdict("S2ORC-SciBERT outperforms SciBERT on many tasks.", source) == SUPPORTED
    assert verdict("LED and PRIMERA perform better than BART and PEGASUS.",
                   "Models that allow long inputs (LED and PRIMERA) perform better than BART "
                   "and PEGASUS on all three tasks.") == SUPPORTED


def test_a_value_read_with_respectively_belongs_to_its_own_term() -> None:
    scores = ("Comparing the generations to post-edited summaries, Rouge-1, Rouge-2, Rouge-L and "
              "BERT-Scores were 45.6, 30.0, 35.4 and 38.0, respectively.")
    assert verdict("The generations had a Rouge-2 of 30.0.", scores) == SUPPORTED
    assert verdict("The generations had a BERT-Score of 38.0.", scores) == SUPPORTED
    result = checked("The generations had a Rouge-2 of 45.6.", scores)
    assert result.verdict == CONTRADICTED and result.value == "30.0"
    gains = ("Models trained on the L → S, L → T, and S → T task improve: the Rouge-2 of "
             "PEGASUS is improved by 79%, 104%, and 128%, respectively.")
    result = checked("PEGASUS trained on S to T improves Rouge-2 by 79%.", gains)
    assert result.verdict == CONTRADICTED and result.value == "128%"
    lengths = ("LED and PRIMERA handle longer inputs (16384 and 4096 tokens, respectively).")
    assert verdict("PRIMERA handles inputs of 16384 tokens.", lengths) == CONTRADICTED
    assert verdict("LED and PRIMERA handle inputs of 16384 and 4096 tokens.",
                   lengths) == SUPPORTED
    # a term the claim does not name: the source does not say which value is this one
    assert verdict("The heuristics select k = 35 sentences for short summaries.",
                   "The heuristics select the first k sentences (k = 35, 6, 2 for L, S, T, "
                   "respectively).") == NOT_FOUND


def test_a_modifier_replaced_before_the_same_term_is_contradicted() -> None:
    source = "Long summaries typically cover the case background and the parties involved."
    result = checked("Tiny summaries cover the case background and the parties involved.",
                     source)
    assert result.verdict == CONTRADICTED and (result.value or "").lower() == "long"
    assert verdict("Long summaries cover the case background and the parties involved.",
                   source) == SUPPORTED


def test_two_sentences_support_together_only_when_the_second_refers_back(embed) -> None:
    def judged(text: str, claim: str) -> str:
        (sentence,) = attribute(claim, [Source(1, 1, "s2orc", "S2ORC", "1 Intro", "1", text)],
                                embed)
        return sentence.verdict

    claim = "The parser reads bibliography entries and resolves citation contexts with heuristics."
    apart = ("The parser reads bibliography entries of each paper. Citation contexts are "
             "resolved with heuristics over layout tokens.")
    assert judged(apart, claim) != SUPPORTED  # each sentence says its own thing
    together = ("The parser reads bibliography entries of each paper. It also resolves citation "
                "contexts with heuristics over layout tokens.")
    assert judged(together, claim) == SUPPORTED  # the second goes on about the first


def test_another_name_of_the_same_kind_in_its_place_is_contradicted() -> None:
    # the passage names SentencePredictor too, but this sentence says WordPredictor
    source = "WordPredictor is a custom scikit-learn model to identify broken words."
    result = checked("SentencePredictor is a custom scikit-learn model to identify broken "
                     "words.", source, "sentencepredictor wraps scispacy")
    assert result.verdict == CONTRADICTED and result.value == "WordPredictor"


def test_a_rate_is_its_number_per_its_unit() -> None:
    source = ("Law students are paid $15/hour; some states require several dozen hours of "
              "volunteer time.")
    assert verdict("Law students are paid $15 per hour.", source) == SUPPORTED
    assert verdict("Law students are paid $25 per hour.", source) == CONTRADICTED


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


def test_a_number_counts_the_words_before_of_as_well() -> None:
    """"a user rating of 0.43" and "a 0.43 user rating" give the same value to the same
    thing; another value for it is contradicted."""
    source = "Yet, the system generations received a 0.43 user rating in the study."
    assert verdict("The system generations received a user rating of 0.43 in the study.",
                   source) == SUPPORTED
    result = checked("The system generations received a user rating of 0.63 in the study.",
                     source)
    assert result.verdict == CONTRADICTED and result.value == "0.43"


def test_an_attribution_frame_and_an_author_are_read_as_such() -> None:
    """"The authors warn that X" claims X; a name before "et al." is an author's name, even
    when it is also a word ("See et al.")."""
    source = ("Developers should be vigilant: such applications typically rely on generative "
              "models, which might fabricate incorrect information or misstate claims.")
    assert verdict("The authors warn that applications relying on generative models might "
                   "fabricate incorrect information or misstate claims.", source) == SUPPORTED
    grusky = "We follow Grusky et al.'s approach that analyzes the coverage and density."
    assert verdict("The paper follows Grusky et al.'s approach to analyze coverage and "
                   "density.", grusky) == SUPPORTED
    assert verdict("The paper follows See et al.'s approach to analyze coverage and density.",
                   grusky) != SUPPORTED


def test_a_question_and_its_answer_support_together(embed) -> None:
    """A datasheet's question and the answer after it are one statement."""
    text = ("Who was involved in the data collection process (e.g., students, crowdworkers)? "
            "Legal experts from the University of Michigan, including legal scholars and "
            "attorneys.")
    assert attributed("Legal experts from the University of Michigan were involved in the "
                      "data collection process.", text, embed) == SUPPORTED


def test_a_clause_after_a_semicolon_says_its_own_thing(embed) -> None:
    """"Model A is trained on X; model B is evaluated on Y" does not train model B on X; a
    clause that goes on about the one before still counts."""
    def judged(text: str, claim: str) -> str:
        (sentence,) = attribute(claim, [Source(1, 1, "p", "A corpus", "Figures", "1", text)],
                                embed)
        return sentence.verdict

    models = "Model A is trained on court filings; model B is evaluated on news articles."
    assert judged(models, "Model A is trained on court filings.") == SUPPORTED
    assert judged(models, "Model B is trained on court filings.") != SUPPORTED
    pay = ("Law students at the University of Michigan are paid $15/hour; the rate was a "
           "little lower in prior years.")
    assert judged(pay, "Law students were paid a little lower rate in prior years than the "
                       "current $15/hour.") == SUPPORTED


def test_a_label_is_looked_up_where_the_claim_is_and_an_arrow_reads_to() -> None:
    """A one-letter label ("task T") must be in the evidence itself, not anywhere in the
    passage; "D → L" is "D to L"."""
    source = "We scoped to only the D → L setting, which is the most effort-intensive one."
    assert verdict("The D to L setting is the most effort-intensive one.", source) == SUPPORTED
    assert verdict("The D to T setting is the most effort-intensive one.", source,
                   "the tasks are d to l, l to s and l to t.") != SUPPORTED


def test_a_value_given_to_another_name_is_contradicted() -> None:
    """A table row's value belongs to the row's label; "1.0M arXiv publications" are not
    PubMed's."""
    table = ("Corpus Papers w/ body text Citation contexts AlphaCorp (PDF-parse) 8.1M full text yes "
             "BetaBank (OA) 2.6M full text yes")
    result = checked("BetaBank (OA) has 8.1M papers with full text.", table)
    assert result.verdict == CONTRADICTED and "8.1M" in (result.value or "")
    assert verdict("BetaBank (OA) has 2.6M papers with full text.", table) == SUPPORTED
    prose = "More recently, Saier and Farber introduce a corpus built using 1.0M arXiv publications."
    assert verdict("Saier and Farber built a corpus from 1.0M PubMed publications.",
                   prose, "pubmed central") == CONTRADICTED
    assert verdict("Saier and Farber built a corpus from 1.0M arXiv publications.",
                   prose) == SUPPORTED


def test_a_name_or_word_in_the_same_place_is_contradicted() -> None:
    """The passage names GPT-3 elsewhere, but this sentence wraps Contriever; a model *for
    science* is not one for medicine; the state courts are not the federal ones; captions are
    not the citations linked to bibliography entries."""
    snippet = ("We also implement SnippetRetrievalPredictor which wraps models like Contriever "
               "to perform top-k within-document snippet retrieval.")
    claim = ("SnippetRetrievalPredictor wraps models like {} to perform top-k "
             "within-document snippet retrieval.")
    result = check(read(claim.format("GPT-3")), read(snippet), "apipredictor calls gpt-3")
    assert result.verdict == CONTRADICTED and result.value == "Contriever"
    assert verdict(claim.format("Contriever"), snippet) == SUPPORTED
    for source, wrong, right in [
            ("Galactica: A large language model for science.",
             "Galactica is a large language model for medicine.",
             "Galactica is a large language model for science."),
            ("All the source documents are posted (albeit some behind a paywall) by the "
             "federal courts.", "The source documents are posted by the state courts.",
             "The source documents are posted by the federal courts."),
            ("Citations are linked to bibliography entries, which are linked to other papers "
             "in S2ORC.", "In S2ORC, captions are linked to bibliography entries.",
             "In S2ORC, citations are linked to bibliography entries.")]:
        assert verdict(wrong, source) == CONTRADICTED, wrong
        assert verdict(right, source) == SUPPORTED, right


def test_one_item_of_an_enumeration_says_its_own_thing(embed) -> None:
    text = ("Its contributions include (1) magelib, a library of primitives for documents, "
            "(2) Predictors, a set of implementations that integrate analysis models, and (3) "
            "Recipes, which provide turn-key access to well-tested combinations of modules.")
    assert attributed("The toolkit's Recipes provide turn-key access to well-tested "
                      "combinations of modules.", text, embed) == SUPPORTED
    assert attributed("The toolkit's Predictors provide turn-key access to well-tested "
                      "combinations of modules.", text, embed) != SUPPORTED


def test_a_word_the_stemmer_cuts_short_is_still_the_same_word(embed) -> None:
    """"proceed" and "proceeding" are one word; a semicolon between citations in parentheses
    does not cut a sentence into clauses."""
    assert verdict("Proceeding by pseudonym is limited to cases involving minors.",
                   "Parties can request to proceed by pseudonym, which is limited to cases "
                   "involving minors.") == SUPPORTED
    text = ("Extracting clean text from PDF documents (Lo et al., 2020; Wang et al., 2020) forms "
            "a first step in pretraining language models of science (Beltagy et al., 2019; Lee "
            "et al., 2019).")
    assert attributed("Extracting clean text from PDF documents is a first step in "
                      "pretraining language models of science.", text, embed) == SUPPORTED


def test_a_citation_year_after_names_is_no_number_to_verify() -> None:
    """"Kingma and Ba (2014)" cites; the source need not give 2014 as a value (nor may it
    support a claimed 2014 by its year); "Ba" is a surname, not a label."""
    claim = "Kingma and Ba (2014) introduced Adam, a method for stochastic optimization."
    assert not read(claim).numbers
    assert verdict(claim, "Adam: A method for stochastic optimization.",
                   "diederik kingma and jimmy ba. 2014.") == SUPPORTED
    assert read("The corpus was released in 2014.").numbers  # a year as a value still counts


def test_how_many_said_in_words_must_be_the_sources() -> None:
    source = ("Long (L) summaries typically contain multiple paragraphs, covering the case "
              "background, parties involved, and proceedings.")
    result = checked("Long summaries typically contain a single paragraph, covering the case "
                     "background, parties involved, and proceedings.", source)
    assert result.verdict == CONTRADICTED and result.value == "multiple paragraphs"
    # the same "how many" in other words is the source's
    assert verdict("Long summaries typically contain several paragraphs, covering the case "
                   "background.", source) == SUPPORTED


def test_a_modifier_is_read_before_every_place_of_its_term() -> None:
    # "summaries" stands twice in the source; the word in "tiny"'s place is before the second
    source = ("Finally, multi-task approaches that train on the multiple granularities of "
              "summaries in Multi-LexSum demonstrate promise for improving long summary quality.")
    claim = read("Multi-task approaches that train on the multiple granularities of summaries "
                 "demonstrate promise for improving tiny summary quality.")
    assert check(claim, read(source)).verdict == CONTRADICTED
    assert verdict("Multi-task approaches that train on the multiple granularities of summaries "
                   "demonstrate promise for improving long summary quality.", source) == SUPPORTED


def test_how_often_said_in_words_must_be_the_sources() -> None:
    source = ("While these research models are powerful and extensible for research purposes, "
              "it often requires significant glue code and stitching software tools to create "
              "robust processing pipelines.")
    result = checked("Research models for scientific documents rarely require glue code to "
                     "create robust processing pipelines.", source)
    assert result.verdict == CONTRADICTED and result.value == "often"
    # "often" is how often, not a term a role word ("for") binds: nothing traded places
    assert verdict("Research models for scientific documents often require significant glue "
                   "code to create robust processing pipelines.", source) == SUPPORTED


def test_an_adverb_does_not_stand_in_for_the_claims_word() -> None:
    # the paper says "We"; "strongly" in the place before "endorse" is not another subject
    source = ("We strongly endorse efforts to increase the transparency of the court system, "
              "including free release of court documents and case summaries for other types "
              "of lawsuits in the U.S.")
    assert verdict("The authors endorse the free release of court documents and case "
                   "summaries for other types of lawsuits.", source) == SUPPORTED
    # an adverb for an adverb still is a swap
    assert verdict("The cost scales linearly with sequence length.",
                   "The cost scales quadratically with sequence length.") == CONTRADICTED


def test_a_hyphenated_word_is_held_where_the_source_writes_its_parts_apart() -> None:
    source = "The filter for PDFs of over 50 pages removes most dissertations."
    assert verdict("The over-50-pages filter removes most dissertations.", source) == SUPPORTED
    assert verdict("The over-60-pages filter removes most dissertations.", source) != SUPPORTED
