"""arXiv indexing against recorded Atom answers, replayed through a real httpx transport."""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
import pytest

from retrievers.library import Library
from retrievers.records import Paper
from retrievers.sources.arxiv import ArxivClient, ArxivError, parse_feed
from tests.papers import make_arxiv_pdf, make_latex_tarball, make_two_column_pdf

FIXTURES = Path(__file__).parent.parent / "fixtures" / "arxiv"


class RecordedArxiv:
    """Serves the recorded API answers, a PDF and an e-print; counts requests."""

    def __init__(self, tmp: Path, source: bytes | None, fail_first: int = 0,
                 source_status: int = 200, pdf_down: bool = False) -> None:
        self.pdf = make_two_column_pdf(tmp / "lora.pdf").read_bytes()
        self.source = source
        self.fail_first = fail_first
        self.source_status = source_status  # 503: the e-print endpoint is throttled
        self.pdf_down = pdf_down
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        import time

        self.requests.append(request)
        self.times.append(time.monotonic())
        if self.fail_first:
            self.fail_first -= 1
            return httpx.Response(503, text="busy")
        path = request.url.path
        if path == "/api/query":
            ids = request.url.params.get("id_list", "")
            name = "id_list_2106.09685.xml" if "2106.09685" in ids else "empty.xml"
            return httpx.Response(200, text=(FIXTURES / name).read_text())
        if path.startswith("/pdf/2106.09685"):
            if self.pdf_down:
                raise httpx.ConnectError("no route")
            return httpx.Response(200, content=self.pdf)
        if path.startswith("/e-print/2106.09685") and self.source_status != 200:
            return httpx.Response(self.source_status, text="busy")
        if path.startswith("/e-print/2106.09685") and self.source is not None:
            return httpx.Response(200, content=self.source)
        return httpx.Response(404)


def client(server: RecordedArxiv) -> ArxivClient:
    return ArxivClient(delay=0.0, transport=httpx.MockTransport(server))


def latex_source(tmp: Path) -> bytes:
    raw = make_latex_tarball(tmp / "src.tar.gz").read_bytes()
    return gzip.compress(gzip.decompress(raw))  # arXiv serves the tar gzipped


def test_index_by_id_uses_latex_source_and_arxiv_metadata(tmp_path: Path) -> None:
    server = RecordedArxiv(tmp_path, latex_source(tmp_path))
    lib = Library(tmp_path / "home")
    report = lib.index_arxiv(["arXiv:2106.09685", "https://arxiv.org/abs/9912.99999"],
                             client=client(server))
    assert report.added == ["2106.09685v2"]
    assert report.failed == [("9912.99999", "arXiv has no paper 9912.99999")]

    paper = lib.catalog.find("2106.09685")
    assert paper is not None and paper.version == 2
    assert paper.title == "LoRA: Low-Rank Adaptation of Large Language Models"
    assert paper.authors[0] == "Edward J. Hu" and "cs.LG" in paper.categories
    assert paper.year == 2021
    hit = lib.search("contrastive objective image text", k=1, paper="2106.09685")[0]
    assert hit.chunk.section in {"Abstract", "Method"}  # parsed from the LaTeX source
    assert lib.search("anything", k=3, year=2020) == []
    assert lib.search("anything", k=3, category="cs.LG")

    ua = server.requests[0].headers["user-agent"]
    assert ua.startswith("litlab/")

    again = lib.index_arxiv(["2106.09685v2"], client=client(server))
    assert again.unchanged == ["2106.09685"] and again.vectors_added == 0


def test_pdf_only_paper_is_read_from_the_pdf(tmp_path: Path) -> None:
    server = RecordedArxiv(tmp_path, source=None)
    lib = Library(tmp_path / "home")
    report = lib.index_arxiv(["2106.09685"], client=client(server))
    assert report.ok
    hit = lib.search("Mamba sequence length", k=1)[0]
    assert hit.chunk.pages == "2" and hit.paper.arxiv_id == "2106.09685"


def test_busy_arxiv_is_retried_with_backoff(tmp_path: Path) -> None:
    server = RecordedArxiv(tmp_path, source=None, fail_first=2)
    lib = Library(tmp_path / "home")
    polite = ArxivClient(delay=0.1, transport=httpx.MockTransport(server))
    assert lib.index_arxiv(["2106.09685"], client=polite).ok
    first, second, third = server.times[:3]  # two 503s, then the answer
    assert server.requests[2].url.path == "/api/query"  # the same request, asked again
    assert second - first >= 0.1 * 0.9 and third - second >= 0.2 * 0.9  # waits that double


def test_error_feed_and_throttling_are_clear_errors() -> None:
    with pytest.raises(ArxivError, match="incorrect id format"):
        parse_feed((FIXTURES / "error.xml").read_text())
    with pytest.raises(ArxivError, match="Rate exceeded"):
        parse_feed("Rate exceeded.")
    entries, total = parse_feed((FIXTURES / "empty.xml").read_text())
    assert entries == [] and total == 0


def test_network_failure_is_recorded_per_paper(tmp_path: Path) -> None:
    server = RecordedArxiv(tmp_path, source=None, pdf_down=True)
    lib = Library(tmp_path / "home")
    report = lib.index_arxiv(["2106.09685", "not-an-id"], client=ArxivClient(
        delay=0.0, retries=1, transport=httpx.MockTransport(server)))
    failed = dict(report.failed)  # the run finished; each paper has its own reason
    assert "cannot reach arXiv" in failed["2106.09685"] and "not-an-id" in failed
    paper = lib.catalog.get("arxiv:2106.09685")
    assert paper is not None and paper.state == "failed" and "cannot reach" in (paper.error or "")


def test_latex_lost_to_a_transient_error_is_said_and_retried_next_run(tmp_path: Path) -> None:
    server = RecordedArxiv(tmp_path, latex_source(tmp_path), source_status=503)
    lib = Library(tmp_path / "home")
    report = lib.index_arxiv(["2106.09685"], client=ArxivClient(
        delay=0.0, retries=1, transport=httpx.MockTransport(server)))
    assert report.added == ["2106.09685v2"]
    (note,) = report.notes
    assert "LaTeX source not fetched" in note[1] and "HTTP 503" in note[1]
    paper = lib.catalog.find("2106.09685")
    assert paper is not None and paper.indexed_from == "pdf" and paper.retry_source

    server.source_status = 200  # arXiv answers again: the same version is not "unchanged"
    again = lib.index_arxiv(["2106.09685"], client=client(server))
    assert again.replaced == ["2106.09685v2"] and not again.notes
    paper = lib.catalog.find("2106.09685")
    assert paper is not None and paper.indexed_from == "latex" and not paper.retry_source
    assert lib.index_arxiv(["2106.09685"], client=client(server)).unchanged == ["2106.09685"]


def test_a_broken_latex_source_falls_back_to_the_pdf_and_says_so(tmp_path: Path) -> None:
    broken = gzip.compress(b"% a source with nothing but a comment\n")
    server = RecordedArxiv(tmp_path, broken)
    lib = Library(tmp_path / "home")
    report = lib.index_arxiv(["2106.09685"], client=client(server))
    paper = lib.catalog.find("2106.09685")
    assert paper is not None and paper.indexed_from == "pdf" and not paper.retry_source
    assert "LaTeX source unreadable" in (paper.source_note or "")
    assert report.notes and report.notes[0][0] == "2106.09685v2"

    from click.testing import CliRunner

    from litlab.cli import main

    out = CliRunner().invoke(main, ["--home", str(tmp_path / "home"), "library", "show",
                                    "2106.09685"]).output
    assert "indexed from: pdf (LaTeX source unreadable" in out


def test_unparseable_ids_are_reported_not_fatal(tmp_path: Path) -> None:
    server = RecordedArxiv(tmp_path, source=None)
    report = Library(tmp_path / "home").index_arxiv(["not-an-id", "2106.09685"],
                                                     client=client(server))
    assert report.added == ["2106.09685v2"]
    assert report.failed[0][0] == "not-an-id"


def _file_paper(lib: Library, pdf: Path) -> Paper:
    paper = lib.catalog.get(f"file:{pdf.resolve()}")
    assert paper is not None
    return paper


def test_a_local_pdf_with_an_arxiv_stamp_gets_arxivs_metadata(tmp_path: Path) -> None:
    pdf = make_arxiv_pdf(tmp_path / "downloaded.pdf")
    server = RecordedArxiv(tmp_path, source=None)
    lib = Library(tmp_path / "home")
    assert lib.index_files([pdf], arxiv=client(server)).ok
    paper = _file_paper(lib, pdf)
    assert paper.arxiv_id == "2106.09685" and paper.version == 2
    assert paper.year == 2021 and "cs.LG" in paper.categories  # arXiv's, not the first page's
    # the recording lists three authors; the first page four
    assert paper.authors == ["Edward J. Hu", "Yelong Shen", "Phillip Wallis"]
    assert [r.url.params["id_list"] for r in server.requests] == ["2106.09685v2"]
    # the title the keyword index holds is arXiv's too
    assert lib.catalog.find("2106.09685") == paper
    assert lib.index_files([pdf], arxiv=client(server)).unchanged
    assert len(server.requests) == 1  # fetched once, not on every run


def test_offline_a_pdf_keeps_its_first_page_and_the_next_run_fetches(tmp_path: Path) -> None:
    def offline(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no route to host")

    pdf = make_arxiv_pdf(tmp_path / "downloaded.pdf")
    lib = Library(tmp_path / "home")
    report = lib.index_files([pdf], arxiv=ArxivClient(
        delay=0.0, retries=0, transport=httpx.MockTransport(offline)))
    assert report.added == [str(pdf.resolve())]  # indexed all the same
    (note,) = report.notes
    assert "not fetched (cannot reach arXiv" in note[1] and "when online" in note[1]
    paper = _file_paper(lib, pdf)
    assert paper.published is None
    assert paper.title == "LoRA: Low-Rank Adaptation of Large Language Models"  # first page
    assert paper.authors == ["Edward J. Hu", "Yelong Shen", "Phillip Wallis",
                             "Zeyuan Allen-Zhu"]

    online = lib.index_files([pdf], arxiv=client(RecordedArxiv(tmp_path, source=None)))
    assert online.unchanged and not online.notes
    assert _file_paper(lib, pdf).year == 2021


def test_an_id_that_names_another_paper_is_dropped(tmp_path: Path) -> None:
    # a file named like an arXiv id whose paper (LoRA, in the recording) is not this PDF
    pdf = make_two_column_pdf(tmp_path / "2106.09685.pdf")
    server = RecordedArxiv(tmp_path, source=None)
    lib = Library(tmp_path / "home")
    assert lib.index_files([pdf], arxiv=client(server)).ok
    paper = _file_paper(lib, pdf)
    assert paper.title == "Efficient Adaptation of Generative Models"
    assert paper.arxiv_id is None and paper.published is None
    lib.index_files([pdf], arxiv=client(server))
    assert len(server.requests) == 1  # not asked again


def test_table_words_broken_over_lines_or_drawn_in_pieces_read_whole(tmp_path: Path) -> None:
    lib = Library(tmp_path / "home")
    assert lib.index_files([make_arxiv_pdf(tmp_path / "a.pdf")], arxiv=False).ok
    (hit,) = lib.search("settlement initially approved", k=1)
    assert "settlement was\ninitially approved." in hit.chunk.text
