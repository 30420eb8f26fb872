"""Files on disk: hashing, safe tarball extraction, parsing one file by its kind, and expanding
folders into the files litlab can index."""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from retrievers.errors import LibraryError
from retrievers.parsing.document import Document, ParseError
from retrievers.parsing.latex import parse_latex
from retrievers.parsing.pdf import parse_pdf
from retrievers.parsing.plain import parse_text

SUFFIXES = {".pdf", ".tex", ".md", ".markdown", ".txt", ".gz", ".tgz", ".tar"}
MAX_ARCHIVE_BYTES = 200 * 1024 * 1024


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
