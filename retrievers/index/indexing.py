"""Index runs: files and arXiv papers into the catalog, then the vector store brought in step.

A run is: (the library locks itself) → for each paper: hash, skip if unchanged, parse, chunk, write the
paper in one catalog transaction → reconcile the vector store with the catalog (embed what it
lacks, drop what the catalog no longer has) → save. Killed at any point, the next run ends in the
same state as an uninterrupted one: papers are all-or-nothing in the catalog, and vectors are
keyed by chunk id, so nothing is added twice.

Each paper records what it was parsed from (``latex``, ``pdf``, ``markdown``, ``text``) and, when
an arXiv paper fell back from its LaTeX source to its PDF, why. A fallback caused by a transient
error (arXiv throttling, a network failure) is retried on the next run of the same paper.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrievers.parsing.document import Document, ParseError
from retrievers.parsing.files import SUFFIXES, expand, parse_file, sha256_file
from retrievers.parsing.latex import parse_latex
from retrievers.parsing.pdf import parse_pdf
from retrievers.records import Chunk, FileRecord, Paper

if TYPE_CHECKING:
    from retrievers.index.catalog import Catalog
    from retrievers.index.cluster import RayCluster
    from retrievers.index.figures import FigureIndex
    from retrievers.index.vectors import ChunkVectors
    from retrievers.sources.references import Reference

Progress = Callable[[str], None]


def quiet(_msg: str) -> None:
    pass


@dataclass
class IndexReport:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)  # indexed, with a caveat
    vectors_added: int = 0
    vectors_removed: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed


def index_files(catalog: Catalog, vectors: ChunkVectors, figures: FigureIndex, home: Path,
                paths: Sequence[Path], progress: Progress = quiet,
                arxiv: Any = None, cluster: RayCluster | None = None) -> IndexReport:
    """Index files (``home``: where sources are unpacked and figure images rendered).
    ``arxiv``: the client that looks up arXiv's metadata for PDFs carrying an arXiv id (None: a
    default one, made when a PDF needs it; False: no look-up). ``cluster``: parse, chunk and
    embed on a Ray cluster; this process still writes everything, in the same order."""
    report = IndexReport()
    if cluster is None:
        keys = [key for path in expand(paths)
                if (key := _index_file(catalog, figures, home, path.resolve(), report, progress))]
    else:
        keys = _index_files_on(cluster, catalog, figures, home,
                               [p.resolve() for p in expand(paths)], report, progress)
    if arxiv is not False:
        arxiv_metadata(catalog, keys, arxiv, report, progress)
    sync(catalog, vectors, figures, report, progress, cluster)
    return report


def _index_file(catalog: Catalog, figures: FigureIndex, home: Path, path: Path,
                report: IndexReport, progress: Progress) -> str | None:
    """Index one file; its catalog key, None when it failed."""
    digest = sha256_file(path)
    if _unchanged(catalog, path, digest, report):
        return f"file:{path}"
    progress(f"parsing {path.name}")
    try:
        doc = parse_file(path, home / "sources" / digest[:16])
    except ParseError as e:
        return _put_file(catalog, figures, home, path, digest, str(e), report)
    return _put_file(catalog, figures, home, path, digest, doc, report)


def _index_files_on(cluster: RayCluster, catalog: Catalog, figures: FigureIndex, home: Path,
                    paths: Sequence[Path], report: IndexReport, progress: Progress) -> list[str]:
    """:func:`_index_file` for many files, parsed and chunked on the cluster."""
    keys, todo = [], []
    for path in paths:
        digest = sha256_file(path)
        if _unchanged(catalog, path, digest, report):
            keys.append(f"file:{path}")
        else:
            todo.append((path, digest))
    if todo:
        progress(f"parsing {len(todo)} file(s) on the {cluster.describe()}")
    digests = dict(todo)
    parsed = cluster.parse([(p, home / "sources" / d[:16]) for p, d in todo])
    for i, (path, result, error) in enumerate(parsed, start=1):
        doc, chunks = result if result is not None else (error, None)
        if key := _put_file(catalog, figures, home, path, digests[path], doc, report, chunks):
            keys.append(key)
        progress(f"parsed {path.name} ({i}/{len(todo)})")
    return keys


def _unchanged(catalog: Catalog, path: Path, digest: str, report: IndexReport) -> bool:
    old = catalog.get(f"file:{path}")
    if old and old.state == "indexed" and old.content_hash == digest:
        report.unchanged.append(str(path))
        return True
    return False


def _put_file(catalog: Catalog, figures: FigureIndex, home: Path, path: Path, digest: str,
              doc: Document | str, report: IndexReport,
              chunks: list[Chunk] | None = None) -> str | None:
    """Write a parsed file to the catalog (``doc``: the error's text when it failed); its
    key, None when it failed."""
    key = f"file:{path}"
    if isinstance(doc, str):
        catalog.record_failure(key, str(path), doc)
        report.failed.append((str(path), doc))
        return None
    old = catalog.get(key)
    put_document(catalog, figures, home,
                 Paper(key=key, title=doc.title, authors=doc.authors, abstract=doc.abstract,
                       arxiv_id=doc.arxiv_id, version=doc.version, source=str(path),
                       content_hash=digest, indexed_from=doc.kind),
                 doc, [FileRecord(doc.kind, str(path), digest, path.stat().st_size)], chunks)
    (report.replaced if old and old.state == "indexed" else report.added).append(str(path))
    return key


def arxiv_metadata(catalog: Catalog, keys: Sequence[str], client: Any, report: IndexReport,
                   progress: Progress) -> None:
    """arXiv's title, authors, abstract, dates and categories for the local PDFs among
    ``keys`` that carry an arXiv id and have none yet, in one request. Offline, the first
    page's title and authors stay and the next run of the same files tries again; an id whose
    arXiv paper does not match the PDF's first page is dropped."""
    from retrievers.sources.arxiv import ArxivClient, ArxivError
    from retrievers.sources.arxiv_ids import ArxivId

    papers = [p for k in keys if (p := catalog.get(k)) is not None
              and p.state == "indexed" and p.arxiv_id and not p.published]
    if not papers:
        return
    progress(f"looking up {len(papers)} paper(s) on arXiv")
    own = client is None
    if own:  # one try, soon given up: a person waits on it, and offline is normal
        client = ArxivClient(delay=0.0, retries=0, timeout=10.0)
    try:
        found = client.fetch([ArxivId(str(p.arxiv_id), p.version) for p in papers])
    except ArxivError as e:
        for p in papers:
            report.notes.append((p.source, f"arXiv metadata for {p.arxiv_id} not fetched "
                                 f"({e.message}); the title from its first page is kept, and "
                                 "indexing it again when online fetches it"))
        return
    finally:
        if own:
            client.close()
    for p in papers:
        entry = found.get(str(p.arxiv_id))
        assert p.id is not None
        if entry is None or not _same_paper(entry.title, catalog.paper_text(p.id) or ""):
            catalog.forget_arxiv_id(p.id)
            continue
        catalog.set_metadata(
            p.id, title=entry.title, authors=entry.authors, abstract=entry.abstract,
            categories=entry.categories, published=entry.published, updated=entry.updated,
            license=entry.license, version=entry.version)


def _same_paper(arxiv_title: str, text: str) -> bool:
    """Most of the arXiv title's words are on the PDF's first page (about its first 5,000
    characters): the id is the PDF's own, not one it cites or a mis-named file's."""
    words = set(re.findall(r"[a-z0-9]{3,}", arxiv_title.lower()))
    seen = set(re.findall(r"[a-z0-9]{3,}", text[:5000].lower()))
    return bool(words) and len(words & seen) >= 0.7 * len(words)


def index_arxiv(catalog: Catalog, vectors: ChunkVectors, figures: FigureIndex, home: Path,
                refs: Sequence[str] = (), query: str | None = None, max_results: int = 10,
                client: Any = None, progress: Progress = quiet,
                cluster: RayCluster | None = None) -> IndexReport:
    """Index arXiv papers by id (any pasted form) or by an arXiv search query; downloads one
    at a time, as arXiv asks (``cluster``: the chunks embedded there)."""
    from retrievers.sources.arxiv import ArxivClient

    report = IndexReport()
    own = client is None
    client = client or ArxivClient()
    try:
        entries = []
        if query:
            progress(f"searching arXiv for {query!r}")
            entries = client.search(query, max_results)
        _index_arxiv_ids(catalog, figures, home, refs, entries, client, report, progress)
        sync(catalog, vectors, figures, report, progress, cluster)
    finally:
        if own:
            client.close()
    return report


def _index_arxiv_ids(catalog: Catalog, figures: FigureIndex, home: Path, refs: Sequence[str],
                     entries: list[Any], client: Any, report: IndexReport,
                     progress: Progress) -> None:
    """Index the papers ``refs`` name (any pasted form of an id) and the arXiv ``entries``
    already found, into the catalog (vectors follow at the next sync)."""
    from retrievers.sources.arxiv import ArxivError
    from retrievers.sources.arxiv_ids import BadArxivId, parse_arxiv_id

    ids = []
    for ref in refs:
        try:
            ids.append(parse_arxiv_id(ref))
        except BadArxivId as e:
            report.failed.append((ref, str(e)))
    if ids:
        progress(f"asking arXiv about {len(ids)} paper(s)")
        found = client.fetch(ids)
        for aid in ids:
            if aid.id in found:
                entries.append(found[aid.id])
            else:
                reason = f"arXiv has no paper {aid}"
                catalog.record_failure(f"arxiv:{aid.id}", str(aid), reason)
                report.failed.append((str(aid), reason))
    for entry in entries:
        try:
            _index_arxiv_entry(catalog, figures, home, entry, client, report, progress)
        except (ArxivError, ParseError) as e:
            catalog.record_failure(f"arxiv:{entry.id}", entry.id, str(e))
            report.failed.append((entry.id, str(e)))


def index_references(catalog: Catalog, vectors: ChunkVectors, figures: FigureIndex,
                     home: Path, refs: Sequence[Reference], progress: Progress = quiet,
                     arxiv: Any = None) -> IndexReport:
    """Index what a reference manager holds: each entry's attached file (a PDF first), or,
    with none on disk, its arXiv paper; its citation key and tags kept, and its title,
    authors and year preferred to the first page's. An entry with neither is listed in the
    report's notes; an attachment missing on disk is a failure unless arXiv stood in.
    ``arxiv``: the arXiv client (None: a default one; False: no arXiv at all)."""
    from retrievers.sources.arxiv import ArxivClient, ArxivError

    report = IndexReport()
    placed: list[tuple[str, Reference]] = []
    from_arxiv: list[Reference] = []
    for i, ref in enumerate(refs, start=1):
        progress(f"{ref.cite_key} ({i}/{len(refs)})")
        readable = [f for f in ref.files if f.suffix.lower() in SUFFIXES]
        for f in ref.files:
            if f not in readable:
                report.notes.append((ref.where, f"{f.name} is not a format litlab reads (PDF, "
                                                 "LaTeX, Markdown, text): skipped"))
        if readable:
            for name in ref.missing:
                report.notes.append((ref.where, f"attachment not on disk: {name}"))
            file = min(readable, key=lambda f: f.suffix.lower() != ".pdf")
            if key := _index_file(catalog, figures, home, file.resolve(), report, progress):
                placed.append((key, ref))
        elif ref.arxiv_id and arxiv is not False:
            from_arxiv.append(ref)
            for name in ref.missing:
                report.notes.append((ref.where, f"attachment not on disk: {name}; "
                                                f"arXiv {ref.arxiv_id} indexed instead"))
        elif ref.missing:
            for name in ref.missing:
                report.failed.append((ref.where, f"attachment not on disk: {name}"))
        else:
            report.notes.append((ref.where, "not indexed: no file attached and no arXiv id"
                                 + (" (arXiv is off)" if ref.arxiv_id else "")))
    if arxiv is not False:
        arxiv_metadata(catalog, [k for k, _ in placed], arxiv, report, progress)
    if from_arxiv:
        own = arxiv is None
        client = ArxivClient() if own else arxiv
        try:
            _index_arxiv_ids(catalog, figures, home, [str(r.arxiv_id) for r in from_arxiv],
                             [], client, report, progress)
            placed += [(f"arxiv:{r.arxiv_id}", r) for r in from_arxiv]
        except ArxivError as e:
            for r in from_arxiv:
                report.failed.append((r.where, f"arXiv {r.arxiv_id} not fetched ({e.message});"
                                               " run this again when online"))
        finally:
            if own:
                client.close()
    for key, ref in placed:
        paper = catalog.get(key)
        if paper is None or paper.id is None or paper.state != "indexed":
            continue
        ours = key.startswith("file:")  # arXiv's own metadata beats a reference's
        catalog.set_reference(paper.id, cite_key=ref.cite_key, tags=ref.tags,
                              title=ref.title if ours else "",
                              authors=ref.authors if ours else (),
                              published=ref.published)
    sync(catalog, vectors, figures, report, progress)
    return report


def _index_arxiv_entry(catalog: Catalog, figures: FigureIndex, home: Path, entry: Any,
                       client: Any, report: IndexReport, progress: Progress) -> None:
    from retrievers.sources.arxiv import TransientArxivError

    key = f"arxiv:{entry.id}"
    old = catalog.get(key)
    if old and old.state == "indexed" and old.version == entry.version and not old.retry_source:
        report.unchanged.append(entry.id)
        return
    versioned = f"{entry.id}v{entry.version}" if entry.version else entry.id
    folder = home / "sources" / "arxiv" / versioned.replace("/", "_")
    progress(f"downloading {versioned}")
    pdf = client.download(entry.pdf_url or f"https://arxiv.org/pdf/{versioned}",
                          folder / "paper.pdf")
    files = [FileRecord("pdf", str(pdf), sha256_file(pdf), pdf.stat().st_size)]
    doc: Document | None = None
    note: str | None = None
    retry = False
    try:
        source = client.source(entry, folder)
    except TransientArxivError as e:
        source, retry = None, True
        note = f"LaTeX source not fetched ({e}); indexed from the PDF, the next run tries again"
    if source is None and note is None:
        note = "arXiv has no LaTeX source for it; indexed from the PDF"
    if source is not None:
        try:
            doc = parse_file(source, folder / "src") if source.suffix == ".tar" \
                else parse_latex(source)
            files.append(FileRecord("latex", str(source), sha256_file(source),
                                    source.stat().st_size))
        except ParseError as e:
            note = f"LaTeX source unreadable ({e}); indexed from the PDF"
    if doc is None:
        doc = parse_pdf(pdf, folder / "images")
    put_document(catalog, figures, home, Paper(
        key=key, arxiv_id=entry.id, version=entry.version, title=entry.title,
        authors=entry.authors, abstract=entry.abstract, categories=entry.categories,
        published=entry.published, updated=entry.updated, license=entry.license,
        source=f"https://arxiv.org/abs/{versioned}", content_hash=files[0].sha256,
        indexed_from=doc.kind, source_note=note, retry_source=retry), doc, files)
    (report.replaced if old and old.state == "indexed" else report.added).append(versioned)
    if note and (retry or "unreadable" in note):
        report.notes.append((versioned, note))


def put_document(catalog: Catalog, figures: FigureIndex, home: Path, paper: Paper,
                 doc: Document, files: Sequence[FileRecord],
                 chunks: list[Chunk] | None = None) -> int:
    """Write a parsed paper to the catalog, its figure images prepared first (PDF and EPS
    figures rendered, odd formats converted, broken images given their reason). ``chunks``:
    already made (on a cluster), else made here."""
    import hashlib

    from retrievers.index.chunking import chunk_document
    from retrievers.parsing.images import prepare_figures

    prepare_figures(doc.figures, home / "figures" /
                    hashlib.sha256(paper.key.encode()).hexdigest()[:16], figures.thumbs)
    return catalog.put_paper(paper, files, chunk_document(doc) if chunks is None else chunks,
                             doc.figures, text=doc.text)


def sync(catalog: Catalog, vectors: ChunkVectors, figures: FigureIndex, report: IndexReport,
         progress: Progress, cluster: RayCluster | None = None) -> None:
    """Make the chunk store and the figure stores hold exactly the catalog's chunks and
    figures (the chunks embedded on ``cluster`` when given)."""
    sync_vectors(catalog, vectors, report, progress, cluster)
    figures.sync(report.notes, progress)


def sync_vectors(catalog: Catalog, vectors: ChunkVectors, report: IndexReport,
                 progress: Progress, cluster: RayCluster | None = None) -> None:
    """Make the chunk store hold exactly the catalog's chunks."""
    import numpy as np

    store = vectors.store
    # sorted id arrays, not sets of Python ints: at tens of millions of chunks the sets alone
    # would take gigabytes (docs/scale.md)
    have, want = store.id_array(), catalog.chunk_id_array()
    stale = np.setdiff1d(have, want, assume_unique=True)
    if stale.size:
        store.remove(stale.tolist())
        report.vectors_removed += int(stale.size)
    missing_ids = np.setdiff1d(want, have, assume_unique=True)
    missing = None if missing_ids.size == want.size else set(missing_ids.tolist())
    done, todo = 0, int(missing_ids.size)
    batches = _passages(catalog, vectors, missing) if todo else iter(())
    embedded = cluster.embed(batches, vectors.embed_model, vectors.cache_dir) if cluster \
        else ((ids, vectors.embedder.embed(texts)) for ids, texts in batches)
    for ids, vecs in embedded:
        store.add(ids, vecs)
        done += len(ids)
        report.vectors_added += len(ids)
        progress(f"embedded {done}/{todo} chunks")
        if done % 2048 < len(ids):
            store.save()  # bound what a crash can lose
    store.save()
    if want.size:
        vectors.record_model()


def _passages(catalog: Catalog, vectors: ChunkVectors,
              ids: set[int] | None) -> Iterator[tuple[list[int], list[str]]]:
    """The text each chunk of ``ids`` (None: every chunk) is embedded as, 128 a batch."""
    papers: dict[int, Paper] = {}
    for batch in catalog.iter_chunks(ids, batch=128):
        papers.update(catalog.papers_by_id({int(c.paper_id or 0) for c in batch} - set(papers)))
        yield ([int(c.id or 0) for c in batch],
               [vectors.passage(c, papers.get(int(c.paper_id or 0))) for c in batch])


def remove(catalog: Catalog, vectors: ChunkVectors, figures: FigureIndex, ref: str) -> Paper:
    """Remove a paper with its chunks, keyword rows, figures and vectors."""
    from retrievers.errors import LibraryError

    paper = catalog.find(ref)
    if paper is None or paper.id is None:
        raise LibraryError(f"no paper '{ref}' in the library", "see `litlab library list`")
    catalog.remove(paper.id)
    sync(catalog, vectors, figures, IndexReport(), quiet)
    return paper


def rebuild(catalog: Catalog, vectors: ChunkVectors, figures: FigureIndex,
            progress: Progress = quiet, *, figures_only: bool = False,
            cluster: RayCluster | None = None) -> IndexReport:
    """Drop the chunk store and embed every chunk again from the catalog; with
    ``figures_only``, drop and embed the figure stores instead."""
    from retrievers.index.figures import CAPTIONS, IMAGES

    report = IndexReport()
    if figures_only:
        figures.drop(CAPTIONS)
        figures.drop(IMAGES)
        figures.sync(report.notes, progress)
    else:
        vectors.drop()
        sync(catalog, vectors, figures, report, progress, cluster)
    return report
