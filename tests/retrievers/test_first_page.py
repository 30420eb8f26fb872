"""A PDF's authors read from its first page, as real papers lay them out."""

from __future__ import annotations

from retrievers.parsing.first_page import arxiv_stamp, first_page_authors

ACL = """Proceedings of the 58th Annual Meeting, pages 4969–4983
S2ORC: The Semantic Scholar Open
Research Corpus
Kyle Lo†∗ Lucy Lu Wang†∗ Mark Neumann† Daniel S. Weld†‡
†Allen Institute for Artificial Intelligence
{kylel, lucyw}@allenai.org
Abstract
We introduce S2ORC, a large corpus of 81.1M English-language academic papers."""

GREEK = """PaperMage: A Unified Toolkit
Kyle Loα∗ Zejiang Shenα,τ∗ Joseph Chee Changα∗
Marti A. Hearstβ Vincent van Gogh
αAllen Institute for AI βUniversity of California Berkeley
Abstract
Despite growing interest"""


def test_authors_split_at_marks_and_affiliations_left_out() -> None:
    assert first_page_authors(ACL, "S2ORC: The Semantic Scholar Open Research Corpus") == [
        "Kyle Lo", "Lucy Lu Wang", "Mark Neumann", "Daniel S. Weld"]
    assert first_page_authors(GREEK, "PaperMage: A Unified Toolkit") == [
        "Kyle Lo", "Zejiang Shen", "Joseph Chee Chang", "Marti A. Hearst", "Vincent van Gogh"]


def test_no_title_on_the_page_no_authors_guessed() -> None:
    assert first_page_authors(ACL, "A Title That Is Not There") == []


def test_only_arxivs_stamp_or_a_file_named_by_its_id_count() -> None:
    assert arxiv_stamp("text\narXiv:2206.10883v3 [cs.CL] 22 Jul 2022\n") == ("2206.10883", 3)
    assert arxiv_stamp("as shown by Hu et al. (arXiv:2106.09685)") == (None, None)  # a citation
    assert arxiv_stamp("no stamp", "2106.09685v2") == ("2106.09685", 2)
    assert arxiv_stamp("no stamp", "my-notes") == (None, None)
