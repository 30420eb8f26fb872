"""A PDF's authors read from its first page, as real papers lay them out."""

from __future__ import annotations

from pathlib import Path

import pytest

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


# Titles as real typesetting draws them: each piece drawn by itself, next to the previous one.
BOLD = "Helvetica-Bold"
TITLES = {
    # letters and syllables drawn one by one (kerning): the largest font reads "Pa per S e a rch"
    "letters": ([[("PaSa: An LLM Agent for Comprehensive Academic ", BOLD, 17)],
                 [(t, BOLD, 17) for t in ["Pa", "per", " ", "S", "e", "a", "rch"]]],
                "PaSa: An LLM Agent for Comprehensive Academic Paper Search"),
    # small capitals: the capitals larger than the rest of the word
    "small-caps": ([[("L", BOLD, 20), ("ONG", BOLD, 15), ("E", BOLD, 20), ("VAL", BOLD, 15),
                     (": Guidelines for Human Evaluation of", BOLD, 20)],
                    [("Faithfulness in Long-form Summarization", BOLD, 20)]],
                   "LONGEVAL: Guidelines for Human Evaluation of Faithfulness in Long-form "
                   "Summarization"),
    # a whole title in small capitals, over two lines
    "all-small-caps": ([[("O", BOLD, 20), ("PEN", BOLD, 15), ("S", BOLD, 20), ("CHOLAR", BOLD, 15),
                         (": S", BOLD, 20), ("YNTHESIZING ", BOLD, 15), ("L", BOLD, 20),
                         ("ITERATURE", BOLD, 15)],
                        [("WITH ", BOLD, 15), ("R", BOLD, 20), ("ETRIEVAL", BOLD, 15),
                         ("-", BOLD, 20), ("AUGMENTED ", BOLD, 15), ("LM", BOLD, 20),
                         ("S", BOLD, 15)]],
                       "OPENSCHOLAR: SYNTHESIZING LITERATURE WITH RETRIEVAL-AUGMENTED LMS"),
    # a running header above the title (an ACL proceedings line), in a smaller font
    "header": ([[("Scaling Laws for Neural", BOLD, 17)], [("Language Models", BOLD, 17)]],
               "Scaling Laws for Neural Language Models"),
}


def _title_pdf(path: Path, lines: list, header: str | None = None) -> Path:
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=letter)  # no metadata title
    _, height = letter
    if header:
        c.setFont("Helvetica", 9)
        c.drawString(72, height - 40, header)
    y = height - 80
    for parts in lines:
        x = 72
        for text, font, size in parts:
            c.setFont(font, size)
            c.drawString(x, y, text)
            x += stringWidth(text, font, size)
        y -= 26
    c.setFont("Helvetica", 10)
    c.drawString(72, y - 20, "Ada Lovelace, Alan Turing")
    c.drawString(72, y - 50, "Abstract")
    c.drawString(72, y - 65, "We study how language models scale with data and compute.")
    c.save()
    return path


@pytest.mark.parametrize("kind", sorted(TITLES))
def test_titles_hold_on_real_typesetting(kind: str, tmp_path: Path) -> None:
    from retrievers.parsing.pdf import parse_pdf

    lines, title = TITLES[kind]
    header = "Proceedings of the 58th Annual Meeting of the Association for Computational " \
             "Linguistics, pages 4969-4983" if kind == "header" else None
    doc = parse_pdf(_title_pdf(tmp_path / f"{kind}.pdf", lines, header))
    assert doc.title == title
    assert doc.authors == ["Ada Lovelace", "Alan Turing"]  # found after the title, whole


def test_a_broken_title_is_recognised_and_matched_only_whole() -> None:
    from retrievers.parsing.first_page import looks_broken, whole_title

    assert looks_broken("L E : Guidelines for Human Evaluation") and looks_broken("Pa per S e a rch")
    assert not looks_broken("A Survey of Large Language Models")
    page = "arXiv:2401.00001v1 [cs.CL]\nLONGEVAL: Guidelines for Human\nEvaluation\nAda Lovelace"
    assert whole_title("L E : Guidelines for Human Evaluation", page) == \
        "LONGEVAL: Guidelines for Human Evaluation"
    assert whole_title("Q R : Something else", page) == ""  # no such lines: keep what it has
