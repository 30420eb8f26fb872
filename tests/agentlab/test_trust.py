"""What a person sees of trust: an answer that loops is stopped where the loop began, an answer
none of whose claims is supported is replaced by a clear abstention (the model's words kept
apart), and `litlab check` verifies a draft against a library built here."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentlab.assistant import Assistant
from agentlab.citations import ABSTAINED_MESSAGE
from agentlab.repetition import RepetitionGuard
from litlab.cli import main
from retrievers.library import Library
from tests.tui.fakes import FakeClient

LOOP = ("Low-rank adaptation freezes the pretrained weights. It injects trainable matrices. "
        + "It injects trainable matrices. " * 60)


def test_the_guard_finds_a_repeated_sentence_and_a_run_of_words() -> None:
    guard = RepetitionGuard()
    assert not any(guard.feed(w + " ") for w in ["Mamba", "scales", "linearly.", "Attention", "does", "not."])
    guard = RepetitionGuard()
    for piece in LOOP.split(" "):
        if guard.feed(piece + " "):
            break
    assert guard.answer == ("Low-rank adaptation freezes the pretrained weights. It injects "
                            "trainable matrices.")
    guard = RepetitionGuard()
    looped = any(guard.feed(p) for p in ["The model is ALE-", *["LSTM-RNN-"] * 40])
    assert looped and guard.answer.startswith("The model is ALE-LSTM-RNN-")
    assert guard.answer.count("LSTM") <= 2


@pytest.fixture
def library(papers_dir: Path) -> Library:
    lib = Library(Path(os.environ["LITLAB_HOME"]))
    assert lib.index_files([papers_dir]).ok
    return lib


def test_an_answer_that_loops_is_stopped_on_the_stream(library: Library) -> None:
    client = FakeClient(answer=LOOP)
    answer = Assistant(client=client, model="m", library=library, min_relevance=0.05).answer(
        "What does low-rank adaptation freeze?")
    assert answer.result.finish_reason == "repetition"
    assert answer.raw.count("It injects trainable matrices.") == 1
    assert client.requests and answer.result.completion_tokens < 20  # stopped, not 180 words


def test_an_answer_with_no_supported_claim_is_replaced_by_an_abstention(
        library: Library) -> None:
    client = FakeClient(answer="Low-rank adaptation was invented in 1850 by telegraph clerks "
                               "to compress messages.")
    answer = Assistant(client=client, model="m", library=library, min_relevance=0.05).answer(
        "What does low-rank adaptation freeze?")
    assert answer.abstained and answer.text == ABSTAINED_MESSAGE
    assert answer.model_text.startswith("Low-rank adaptation was invented")
    assert answer.citations == [] and answer.sources  # the closest passages stay
    data = answer.to_dict()
    assert data["abstained"] and data["closest"] and data["model_text"]
    right = Assistant(client=FakeClient(answer="Low-rank adaptation freezes the pretrained "
                                               "weights [1]."),
                      model="m", library=library, min_relevance=0.05).answer(
        "What does low-rank adaptation freeze?")
    assert not right.abstained and right.citations


DRAFT = """# What we know

Low-rank adaptation freezes the pretrained weights.
It reduces the number of trainable parameters by one thousand times.

Quantum annealers factor large semiprimes in polynomial time.
"""


def _check(*args: str, stdin: str | None = None) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["check", *args], input=stdin)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.output


def test_check_reports_each_sentence_with_its_evidence(library: Library,
                                                       tmp_path: Path) -> None:
    draft = tmp_path / "draft.md"
    draft.write_text(DRAFT)
    db = Path(os.environ["LITLAB_HOME"]) / "library.sqlite"
    papers_before = len(library.catalog.papers())
    code, out = _check(str(draft), "--all")
    assert code == 1  # something is contradicted
    lines = out.splitlines()
    assert any("line 3: ✓ supported" in x and "freezes the pretrained weights" in x for x in lines)
    assert any("line 4: ✗ contradicted" in x for x in lines)
    assert "the source gives ten thousand" in out  # the source's value, quoted
    assert any("line 6: ? not found" in x for x in lines)
    assert "1 supported, 1 contradicted, 1 not found" in out

    code, out = _check(str(draft), "--json")
    rows = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    assert [r["verdict"] for r in rows] == ["supported", "contradicted", "not_found"]
    assert rows[0]["evidence"][0]["quote"].startswith("Low-rank adaptation freezes")
    assert rows[0]["evidence"][0]["title"] == "Efficient Adaptation of Generative Models"

    code, out = _check("Low-rank adaptation freezes the pretrained weights.", "--bib")
    assert code == 0 and "@article{" in out and "Efficient Adaptation" in out
    code, out = _check("-", stdin="Low-rank adaptation freezes the pretrained weights.\n")
    assert code == 0 and "1 supported" in out
    assert len(library.catalog.papers()) == papers_before and db.exists()


@pytest.mark.parametrize("name, content, says", [
    ("empty.md", b"", "no sentence to check"),
    ("figure.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00binary", "binary"),
    ("draft.docx", b"PK\x03\x04", "unknown format"),
    ("missing.md", None, "no such file"),
])
def test_a_draft_that_cannot_be_read_says_so_in_one_line(
        library: Library, tmp_path: Path, name: str, content: bytes | None, says: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    code, out = _check(str(path))
    assert code == 2 and says in out and len(out.strip().splitlines()) == 1


def test_check_against_an_empty_library_says_so_and_creates_nothing(tmp_path: Path) -> None:
    code, out = _check("Low-rank adaptation freezes the pretrained weights.")
    assert code == 2 and "library" in out and "empty" in out
    assert not (Path(os.environ["LITLAB_HOME"]) / "library.sqlite").exists()


def test_the_answer_leads_with_the_sources_sentence_that_answers(library: Library) -> None:
    streamed: list[str] = []
    bot = Assistant(client=FakeClient(answer="It reduces them a lot [1]."), model="m",
                    library=library, min_relevance=0.05, answer_line=True)
    answer = bot.answer("By how many times does low-rank adaptation reduce the number of "
                        "trainable parameters?", on_token=streamed.append)
    assert answer.text.startswith("“Low-rank adaptation freezes the pretrained weights and "
                                  "injects trainable rank decomposition matrices into each layer "
                                  "of the transformer, which reduces the number of trainable "
                                  "parameters by ten thousand times.” [1]")
    assert streamed[0].startswith("“Low-rank")  # on screen before the model's words
    assert answer.sentences[0].supported and answer.citations
    # its marker is litlab's, never counted as one the model wrote
    assert answer.sentences[0].origin == "answer_line"
    assert all(c.origin != "model" for c in answer.citations)
    refusal = Assistant(client=FakeClient(answer="NOT_IN_LIBRARY"), model="m", library=library,
                        min_relevance=0.05, answer_line=True).answer(
        "By how many times does low-rank adaptation reduce the trainable parameters?")
    assert refusal.not_in_library and "“" not in refusal.text


def test_a_suite_reads_a_looping_reply_as_ask_shows_it(papers_dir: Path, tmp_path: Path) -> None:
    """A suite's replies are not streamed; each is still cut where it began to loop, so a
    suite scores what `ask` would have shown, and the penalty reaches the server."""
    from agentlab.settings import load_settings
    from evals.runner import run_suite
    from evals.suite import load_suite

    suite_file = tmp_path / "loop.yaml"
    suite_file.write_text(f"""\
library: [{papers_dir}]
targets:
  - {{name: base, kind: ask, temperature: 0, max_tokens: 200, answer_line: false,
     repetition_penalty: 1.2}}
prompts: [rag]
cases:
  - id: lora
    question: What does low-rank adaptation freeze?
    assert: [{{type: not_contains, value: "It injects trainable matrices. It injects"}}]
""")
    sent: list[dict] = []

    class Recording(FakeClient):
        def chat(self, messages: list[dict], **kw: object) -> object:
            sent.append(kw)
            return super().chat(messages, **kw)

    client = Recording(answer=LOOP)
    run = run_suite(load_suite(suite_file), load_settings().settings, client, jobs=1)
    (result,) = run.results
    assert result.passed, result.output["text"]
    assert result.output["text"].count("It injects trainable matrices.") == 1
    assert sent[0]["extra_body"]["repetition_penalty"] == 1.2


def test_for_a_number_question_the_line_is_the_sentence_whose_number_counts_the_thing_asked() -> None:
    from agentlab.answer_line import best_sentence
    from agentlab.citations import Source

    text = ("The corpus has documents of over 75,000 words on average and expert-authored "
            "summaries written for the public. Lawyers wrote 9,280 expert-authored summaries "
            "for the corpus.")
    sources = [Source(n=1, chunk_id=1, paper="p", title="T", section="1", pages="1", text=text)]
    n, sentence = best_sentence("How many expert-authored summaries does the corpus hold?",
                                sources) or (0, "")
    assert n == 1 and "9,280" in sentence


def test_no_answer_line_from_a_passage_about_something_the_question_does_not_name() -> None:
    from agentlab.answer_line import best_sentence
    from agentlab.citations import Source

    text = ("SciBERT is fine-tuned with a learning rate of 2e-5 and a linear learning rate "
            "decay with warm-up.")
    sources = [Source(n=1, chunk_id=1, paper="p", title="S2ORC", section="5", pages="6",
                      text=text)]
    assert best_sentence("What learning rate was GPT-4 pre-trained with?", sources) is None
    line = best_sentence("What learning rate was SciBERT fine-tuned with?", sources)
    assert line is not None and "2e-5" in line[1]


def test_a_table_row_can_be_the_answer_line_and_wrapped_prose_cannot() -> None:
    """"How many S2ORC papers have DOIs?" is answered by a row of the statistics table, which
    sentence splitting had run together with every other row into one long run; a line of
    wrapped prose (a sentence's end inside, function words all along) is no row."""
    from agentlab.answer_line import best_sentence
    from agentlab.citations import Source

    def line(title: str, text: str, question: str) -> tuple[int, str] | None:
        return best_sentence(question, [Source(n=1, chunk_id=1, paper="p", title=title,
                                               section="3", pages="5", text=text)])

    table = ("Our PDF coverage is 35.6%, or 28.9M papers. The statistics follow.\n"
             "Total papers 81.1M\nPapers w/ PDF 28.9M (35.6%)\nPapers w/ DOIs 52.2M (64.3%)\n"
             "Papers w/ ACL IDs 42k (0.1%)\nTable 3: Statistics on paper provenance.")
    assert line("S2ORC", table, "In S2ORC, how many papers have DOIs?") == \
        (1, "Papers w/ DOIs 52.2M (64.3%)")
    prose = ("Writing a summary means reading the case documents and tracing\n"
             "each case's timeline. For a typical summary, this process takes an expert 1-4 "
             "hours. And it needs to\nbe reviewed by a second expert.")
    assert line("Multi-LexSum", prose, "How many hours does a typical summary take an "
                "expert?") == (1, "For a typical summary, this process takes an expert 1-4 hours.")
    # a row of several values: the cell under the asked column, with its row and caption
    splits = ("Table 8: Dataset train-dev-test splits.\nSource D Long L Short S Tiny T Total\n"
              "Train (70%) 28,557 3,177 2,210 1,130 6,517\nTest (20%) 7,428 908 616 312 1,836\n"
              "Dev (10%) 4,134 454 312 161 927\n")
    assert line("Multi-LexSum", splits, "How many tiny summaries are in the test split?") == \
        (1, "Test (20%), Tiny T is 312 (Table 8: Dataset train-dev-test splits)")


def test_an_answer_stopped_early_still_counts_the_tokens_it_got() -> None:
    """A loop cut on the stream closes it before vLLM's usage chunk; the app's status line
    said '0 tokens'. Each streamed chunk is a token."""
    import time
    from types import SimpleNamespace

    from agentlab.client import _StreamAccumulator

    acc = _StreamAccumulator("m", time.perf_counter())
    for piece in ["It", " injects", " trainable", " matrices", "."]:
        acc.add(SimpleNamespace(usage=None, model="m", choices=[SimpleNamespace(
            finish_reason=None, delta=SimpleNamespace(content=piece, tool_calls=None))]))
    result = acc.finish()
    assert result.text == "It injects trainable matrices." and result.completion_tokens == 5


def test_a_draft_is_cut_into_the_sentences_a_person_wrote() -> None:
    """A line that ends a sentence ends it, whatever the next line starts with; "et al." and
    "Fig." end none; each sentence keeps its line number."""
    from agentlab.check import sentences

    text = ("Galactica, by Taylor et al. (2022), is a model for science.\n"
            "papermage wraps models like Contriever for snippet retrieval.\n"
            "A claim that runs over\ntwo lines, as in Fig. 2 of the paper.\n\n"
            "A new paragraph says one more thing.")
    assert list(sentences(text)) == [
        (1, "Galactica, by Taylor et al. (2022), is a model for science."),
        (2, "papermage wraps models like Contriever for snippet retrieval."),
        (3, "A claim that runs over two lines, as in Fig. 2 of the paper."),
        (6, "A new paragraph says one more thing.")]


def test_a_long_source_is_quoted_around_the_value_that_contradicts() -> None:
    """A table row read as one long sentence is shown where its value is, not its first
    cells."""
    from agentlab.cli import _around

    row = "Corpus Papers w/ body text " * 8 + "AlphaCorp (PDF-parse) 8.1M full text yes"
    shown = _around(row, "8.1M for PDF-parse", 80)
    assert "8.1M" in shown and len(shown) <= 80 and shown.startswith("...")
    assert _around("Short source says 8.", "8", 80) == "Short source says 8."


def test_a_sentence_two_overlapping_chunks_hold_is_quoted_once(embed) -> None:
    """Chunks overlap, so two search hits of one paper can hold the same sentence: `check`
    shows it once, not once a chunk."""
    from types import SimpleNamespace

    from agentlab.check import check_draft

    sentence = "In cases where the metadata is incomplete, we use majority voting to select values."
    paper = SimpleNamespace(arxiv_id=None, key="s2orc", title="S2ORC: A Corpus")
    hits = [SimpleNamespace(paper=paper, chunk=SimpleNamespace(
        id=i, text=text, section="2.3 Metadata", pages="3")) for i, text in
        enumerate([f"Clusters hold several PDFs. {sentence}", f"{sentence} Ties are broken."],
                  start=1)]
    library = SimpleNamespace(search=lambda _claim, _k: hits,
                              embedder=SimpleNamespace(embed_few=embed),
                              idf=lambda _w: 1.0, holds=lambda _w: True)
    (row,) = check_draft("Where the metadata is incomplete, majority voting selects the "
                         "values.", "text", library)
    assert row.verdict == "supported"
    assert len(row.evidence) == 1 and row.evidence[0]["quote"] == sentence
