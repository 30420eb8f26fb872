"""The library: index files into the catalog and a vector store, and search it.

An index run is: lock the library → for each file: hash, skip if unchanged, parse, chunk, write
the paper in one catalog transaction → reconcile the vector store with the catalog (embed what
it lacks, drop what the catalog no longer has) → save. Killed at any point, the next run ends in
the same state as an uninterrupted one: papers are all-or-nothing in the catalog, and vectors
are keyed by chunk id, so nothing is added twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrievers.catalog import Catalog, Chunk, FileRecord, Paper
from retrievers.errors import LibraryBusy, LibraryError
from retrievers.parsing import Document, ParseError, parse_latex, parse_pdf, parse_text

if TYPE_CHECKING:
    from retrievers.embeddings import TextEmbedder
    from retrievers.stores import VectorStore

Progress = Callable[[str], None]
SUFFIXES = {".pdf", ".tex", ".md", ".markdown", ".txt", ".gz", ".tgz", ".tar"}
MAX_ARCHIVE_BYTES = 200 * 1024 * 1024


def _quiet(_msg: str) -> None:
    pass


@dataclass
class IndexReport:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    vectors_added: int = 0
    vectors_removed: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class Hit:
    """A ranked chunk with the paper it belongs to."""

    chunk: Chunk
    paper: Paper
    score: float
    dense_rank: int | None = None
    keyword_rank: int | None = None
    dense_score: float | None = None  # cosine similarity to the query, when dense search ran

    def to_dict(self) -> dict[str, object]:
        return {
            "chunk_id": self.chunk.id, "text": self.chunk.text, "score": round(self.score, 6),
            "paper": self.paper.arxiv_id or self.paper.key, "title": self.paper.title,
            "section": self.chunk.section, "pages": self.chunk.pages,
            "char_start": self.chunk.char_start, "char_end": self.chunk.char_end,
        }


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def safe_extract(archive: Path, dest: Path, max_bytes: int = MAX_ARCHIVE_BYTES) -> None:
    """Extract an untrusted tarball: regular files and folders only, inside ``dest``, bounded."""
    try:
        with tarfile.open(archive) as tar:
            total = 0
            members = []
            for m in tar.getmembers():
                if not (m.isfile() or m.isdir()):
                    raise ParseError(f"{archive.name}: refuses link or device '{m.name}'")
                target = (dest / m.name).resolve()
                if m.name.startswith("/") or ".." in Path(m.name).parts or \
                        dest.resolve() not in (target, *target.parents):
                    raise ParseError(f"{archive.name}: refuses path '{m.name}' outside the archive")
                total += m.size
                if total > max_bytes:
                    raise ParseError(f"{archive.name}: more than {max_bytes >> 20} MiB unpacked")
                members.append(m)
            tar.extractall(dest, members=members, filter="data")
    except tarfile.TarError as e:
        raise ParseError(f"{archive.name} is not a readable tar archive ({e})") from e


def parse_file(path: Path, unpack_to: Path | None = None) -> Document:
    """Parse one local file by its kind. Archives unpack into ``unpack_to`` (kept, so figure
    image paths stay valid) or a temporary folder."""
    name = path.name.lower()
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        if unpack_to is None:
            with tempfile.TemporaryDirectory() as tmp:
                safe_extract(path, Path(tmp))
                return parse_latex(Path(tmp))
        if unpack_to.exists():
            shutil.rmtree(unpack_to)
        unpack_to.mkdir(parents=True)
        safe_extract(path, unpack_to)
        return parse_latex(unpack_to)
    if name.endswith(".pdf"):
        return parse_pdf(path, unpack_to / "images" if unpack_to else None)
    if name.endswith(".tex"):
        return parse_latex(path)
    if name.endswith((".md", ".markdown", ".txt")):
        return parse_text(path)
    raise ParseError(f"{path.name}: unsupported file type (PDF, .tex, LaTeX tarball, .md, .txt)")


def expand(paths: Sequence[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES)
        elif p.exists():
            out.append(p)
        else:
            raise LibraryError(f"no such file or folder: {p}", "check the path")
    return out


class Library:
    """The catalog plus one vector store, under ``home``."""

    def __init__(self, home: Path, store: str = "faiss", chroma_url: str | None = None,
                 embed_model: str = "all-MiniLM-L6-v2") -> None:
        self.home = home
        self.store_kind = store
        self.chroma_url = chroma_url
        self.embed_model = embed_model
        self.catalog = Catalog(home / "library.sqlite")
        self._store: VectorStore | None = None
        self._embedder: TextEmbedder | None = None

    @classmethod
    def from_settings(cls, s: Any) -> Library:
        """The library a settings object describes (``home_dir``, ``store``, ``chroma_url``,
        ``embed_model``: duck-typed, so this package needs none of the others)."""
        return cls(s.home_dir, store=s.store, chroma_url=s.chroma_url, embed_model=s.embed_model)

    @property
    def embedder(self) -> TextEmbedder:
        if self._embedder is None:
            from retrievers.embeddings import get_embedder

            self._embedder = get_embedder(self.embed_model)
        return self._embedder

    @property
    def store(self) -> VectorStore:
        if self._store is None:
            from retrievers.stores import open_store

            built_with = self._recorded_model()
            if built_with not in (None, self.embed_model):
                raise LibraryError(
                    f"the {self.store_kind} index was built with embedding model "
                    f"'{built_with}', but embed_model is '{self.embed_model}'",
                    "run `litlab library rebuild` to embed the library again, "
                    "or set embed_model back")
            self._store = open_store(self.store_kind, self.home / "indexes",
                                     lambda: self.embedder.dim, self.chroma_url)
        return self._store

    @property
    def _meta_path(self) -> Path:
        return self.home / "indexes" / f"{self.store_kind}.json"

    def _recorded_model(self) -> str | None:
        """The embedding model the vectors in this store were made with, if recorded."""
        import json

        try:
            return str(json.loads(self._meta_path.read_text())["embed_model"])
        except (FileNotFoundError, KeyError, ValueError):
            return None

    def _record_model(self) -> None:
        import json
        import os

        if self._recorded_model() == self.embed_model:
            return
        self._meta_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"embed_model": self.embed_model}))
        os.replace(tmp, self._meta_path)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One index run per home; a second one is told, not blocked."""
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / "library.lock", "w") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LibraryBusy(f"another index run is using {self.home}",
                                  "wait for it to finish, then run this again") from None
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # -- indexing ------------------------------------------------------------------------------
    def index_files(self, paths: Sequence[Path], progress: Progress = _quiet) -> IndexReport:
        report = IndexReport()
        with self.locked():
            for path in expand(paths):
                self._index_file(path.resolve(), report, progress)
            self._sync_vectors(report, progress)
        return report

    def _index_file(self, path: Path, report: IndexReport, progress: Progress) -> None:
        key = f"file:{path}"
        digest = sha256_file(path)
        old = self.catalog.get(key)
        if old and old.state == "indexed" and old.content_hash == digest:
            report.unchanged.append(str(path))
            return
        progress(f"parsing {path.name}")
        try:
            doc = parse_file(path, self.home / "sources" / digest[:16])
        except ParseError as e:
            self.catalog.record_failure(key, str(path), str(e))
            report.failed.append((str(path), str(e)))
            return
        self.put_document(
            Paper(key=key, title=doc.title, abstract=doc.abstract, source=str(path),
                  content_hash=digest),
            doc, [FileRecord(doc.kind, str(path), digest, path.stat().st_size)],
        )
        (report.replaced if old and old.state == "indexed" else report.added).append(str(path))

    def index_arxiv(self, refs: Sequence[str] = (), query: str | None = None,
                    max_results: int = 10, client: Any = None,
                    progress: Progress = _quiet) -> IndexReport:
        """Index arXiv papers by id (any pasted form) or by an arXiv search query."""
        from retrievers.arxiv import ArxivClient, ArxivError
        from retrievers.arxiv_ids import BadArxivId, parse_arxiv_id

        report = IndexReport()
        own = client is None
        client = client or ArxivClient()
        try:
            with self.locked():
                entries = []
                if query:
                    progress(f"searching arXiv for {query!r}")
                    entries = client.search(query, max_results)
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
                            self.catalog.record_failure(f"arxiv:{aid.id}", str(aid), reason)
                            report.failed.append((str(aid), reason))
                for entry in entries:
                    try:
                        self._index_arxiv_entry(entry, client, report, progress)
                    except (ArxivError, ParseError) as e:
                        self.catalog.record_failure(f"arxiv:{entry.id}", entry.id, str(e))
                        report.failed.append((entry.id, str(e)))
                self._sync_vectors(report, progress)
        finally:
            if own:
                client.close()
        return report

    def _index_arxiv_entry(self, entry: Any, client: Any, report: IndexReport,
                           progress: Progress) -> None:
        key = f"arxiv:{entry.id}"
        old = self.catalog.get(key)
        if old and old.state == "indexed" and old.version == entry.version:
            report.unchanged.append(entry.id)
            return
        versioned = f"{entry.id}v{entry.version}" if entry.version else entry.id
        folder = self.home / "sources" / "arxiv" / versioned.replace("/", "_")
        progress(f"downloading {versioned}")
        pdf = client.download(entry.pdf_url or f"https://arxiv.org/pdf/{versioned}",
                              folder / "paper.pdf")
        source = client.source(entry, folder)
        doc: Document | None = None
        files = [FileRecord("pdf", str(pdf), sha256_file(pdf), pdf.stat().st_size)]
        if source is not None:
            try:
                doc = parse_file(source, folder / "src") if source.suffix == ".tar" \
                    else parse_latex(source)
                files.append(FileRecord("latex", str(source), sha256_file(source),
                                        source.stat().st_size))
            except ParseError:
                doc = None  # a broken source: the PDF still tells the paper
        if doc is None:
            doc = parse_pdf(pdf, folder / "images")
        self.put_document(
            Paper(key=key, arxiv_id=entry.id, version=entry.version, title=entry.title,
                  authors=entry.authors, abstract=entry.abstract, categories=entry.categories,
                  published=entry.published, updated=entry.updated, license=entry.license,
                  source=f"https://arxiv.org/abs/{versioned}", content_hash=files[0].sha256),
            doc, files,
        )
        (report.replaced if old and old.state == "indexed" else report.added).append(versioned)

    def put_document(self, paper: Paper, doc: Document, files: Sequence[FileRecord]) -> int:
        from retrievers.chunking import chunk_document

        return self.catalog.put_paper(paper, files, chunk_document(doc), doc.figures)

    def _sync_vectors(self, report: IndexReport, progress: Progress) -> None:
        """Make the vector store hold exactly the catalog's chunks."""
        store = self.store
        have, want = store.ids(), self.catalog.all_chunk_ids()
        stale = have - want
        if stale:
            store.remove(stale)
            report.vectors_removed += len(stale)
        missing = want - have
        done = 0
        for batch in self.catalog.iter_chunks(missing, batch=128):
            vectors = self.embedder.embed([c.text for c in batch])
            store.add([int(c.id or 0) for c in batch], vectors)
            done += len(batch)
            report.vectors_added += len(batch)
            progress(f"embedded {done}/{len(missing)} chunks")
            if done % 2048 < len(batch):
                store.save()  # bound what a crash can lose
        store.save()
        if want:
            self._record_model()

    def sync(self, progress: Progress = _quiet) -> IndexReport:
        report = IndexReport()
        with self.locked():
            self._sync_vectors(report, progress)
        return report

    def remove(self, ref: str) -> Paper:
        with self.locked():
            paper = self.catalog.find(ref)
            if paper is None or paper.id is None:
                raise LibraryError(f"no paper '{ref}' in the library", "see `litlab library list`")
            self.catalog.remove(paper.id)
            self._sync_vectors(IndexReport(), _quiet)
        return paper

    def rebuild(self, progress: Progress = _quiet) -> IndexReport:
        """Drop the vector store and embed every chunk again from the catalog."""
        with self.locked():
            folder = self.home / "indexes"
            if self.store_kind == "faiss":
                (folder / "faiss.index").unlink(missing_ok=True)
            self._meta_path.unlink(missing_ok=True)  # the old model no longer matters
            self._store = None
            if self.store_kind == "chroma":
                self.store.remove(self.store.ids())
            report = IndexReport()
            self._sync_vectors(report, progress)
        return report

    # -- search --------------------------------------------------------------------------------
    def search(self, query: str, k: int = 5, *, paper: str | None = None,
               year: int | None = None, category: str | None = None,
               mode: str = "hybrid") -> list[Hit]:
        """Hybrid search: BM25 and dense rankings fused by reciprocal rank (k=60)."""
        if not query.strip():
            raise LibraryError("empty query", "say what to search for")
        pool = max(k * 8, 50)
        dense: list[tuple[int, float]] = []
        keyword: list[tuple[int, float]] = []
        if mode in ("hybrid", "dense"):
            dense = self.store.search(self.embedder.embed_query(query), pool)
        if mode in ("hybrid", "keyword"):
            keyword = self.catalog.keyword_search(query, pool)
        fused: dict[int, float] = {}
        ranks: dict[int, dict[str, int]] = {}
        cosine = dict(dense)
        for name, ranking in (("dense", dense), ("keyword", keyword)):
            for rank, (cid, _score) in enumerate(ranking, start=1):
                fused[cid] = fused.get(cid, 0.0) + 1.0 / (60 + rank)
                ranks.setdefault(cid, {})[name] = rank
        order = sorted(fused, key=lambda c: -fused[c])
        papers: dict[int, Paper] = {}
        hits: list[Hit] = []
        step = max(2 * k, 10)  # look up only as many chunks as the filters need
        for start in range(0, len(order), step):
            batch = order[start:start + step]
            chunks = self.catalog.chunks_by_id(batch)
            papers.update(self.catalog.papers_by_id(
                {int(c.paper_id or 0) for c in chunks.values()} - set(papers)))
            for cid in batch:
                chunk = chunks.get(cid)
                if chunk is None:
                    continue  # a vector the catalog no longer has; the next sync drops it
                p = papers.get(int(chunk.paper_id or 0))
                if p is None or not _matches(p, paper, year, category):
                    continue
                hits.append(Hit(chunk, p, fused[cid], ranks[cid].get("dense"),
                                ranks[cid].get("keyword"), cosine.get(cid)))
                if len(hits) == k:
                    return hits
        return hits

    def close(self) -> None:
        self.catalog.close()


def _matches(p: Paper, paper: str | None, year: int | None, category: str | None) -> bool:
    if paper and paper not in (p.key, p.arxiv_id, str(p.id)):
        return False
    if year and p.year != year:
        return False
    return not (category and category not in p.categories)

