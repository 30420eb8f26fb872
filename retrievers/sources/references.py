"""Where researchers keep their papers: a BibTeX file or a Zotero data directory, read into
:class:`Reference` records (citation key, title, authors, date, attached files, arXiv id,
collections as tags). Reading changes nothing: a Zotero database is copied and opened
read-only, so a running Zotero (which holds it locked) is no obstacle.

What cannot be read is said per entry as ``(where, what)`` problems; the rest is returned.
"""

from __future__ import annotations

import logging
import re
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from retrievers.errors import LibraryError
from retrievers.sources.arxiv_ids import BadArxivId, parse_arxiv_id

Problem = tuple[str, str]  # (where: "refs.bib line 12" / "Zotero item ABCD1234", what)

_ARXIV_IN_TEXT = re.compile(
    r"(?:arxiv\.org/(?:abs|pdf)/|arXiv[:\s]\s*|10\.48550/arXiv\.)"
    r"((?:\d{4}\.\d{4,5}|[a-z-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?)", re.IGNORECASE)
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")


@dataclass
class Reference:
    """One entry of a reference manager."""

    cite_key: str
    where: str  # how a message names it: "refs.bib line 12", "Zotero item ABCD1234"
    title: str = ""
    authors: list[str] = field(default_factory=list)
    year: str | None = None
    arxiv_id: str | None = None
    files: list[Path] = field(default_factory=list)  # attachments on disk
    missing: list[str] = field(default_factory=list)  # attachments named but not on disk
    tags: list[str] = field(default_factory=list)

    @property
    def published(self) -> str | None:
        return f"{self.year}-01-01" if self.year else None


def arxiv_id_in(*texts: str | None) -> str | None:
    """The arXiv id a field carries (an abs/pdf URL, "arXiv:1706.03762", an arXiv DOI)."""
    for text in texts:
        if not text:
            continue
        for candidate in [text.strip(), *(m.group(1) for m in _ARXIV_IN_TEXT.finditer(text))]:
            try:
                return parse_arxiv_id(candidate).id
            except BadArxivId:
                continue
    return None


_DOCUMENT_TYPES = ("application/pdf", "text/plain", "text/markdown", "text/x-tex",
                   "application/x-tex", "application/x-latex")


def _document(content_type: str | None, path: Path) -> bool:
    """A Zotero attachment litlab may read (not a web snapshot or an image)."""
    return (content_type or "").lower() in _DOCUMENT_TYPES or path.suffix.lower() == ".pdf"


def _delatex(text: str) -> str:
    """A BibTeX value as words: braces and simple accents commands dropped, space folded."""
    text = re.sub(r"\\[a-zA-Z]+\s*\{([^{}]*)\}", r"\1", text)
    text = re.sub(r"\\[`'^\"~=.uvHtcdb]\{?([a-zA-Z])\}?", r"\1", text)
    return " ".join(text.replace("{", "").replace("}", "").split())


def _bib_authors(value: str) -> list[str]:
    """"Vaswani, Ashish and Shazeer, Noam" as ["Ashish Vaswani", "Noam Shazeer"]."""
    out = []
    for name in re.split(r"\s+and\s+", _delatex(value)):
        parts = [p.strip() for p in name.split(",")]
        if len(parts) >= 2 and parts[1]:
            name = f"{parts[-1]} {parts[0]}"
        if name.strip() and name.strip().lower() != "others":
            out.append(name.strip())
    return out


def _bib_files(value: str, base: Path) -> list[str]:
    """The paths a ``file`` field names, ``;``-separated: plain paths (Zotero's export) or
    ``description:path:type`` triples (JabRef, Mendeley), relative ones to the .bib's
    folder."""
    out = []
    for part in re.split(r"(?<!\\);", value):
        bits = re.split(r"(?<!\\):", part.strip())
        name = (bits[1] if len(bits) == 3 else part.strip()).replace("\\:", ":") \
            .replace("\\;", ";")
        if name:
            path = Path(name).expanduser()
            out.append(str(path if path.is_absolute() else base / path))
    return out


def read_bib(path: Path) -> tuple[list[Reference], list[Problem]]:
    """The entries of a ``.bib`` file; a block with a syntax error is named by its line and
    skipped, the rest read."""
    import bibtexparser

    if not path.is_file():
        raise LibraryError(f"no such .bib file: {path}", "check the path")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise LibraryError(f"cannot read {path} ({e.strerror})", "check its permissions") from None
    if "\x00" in text[:4096]:
        raise LibraryError(f"{path.name} is not a BibTeX file (it is binary)",
                           "export your references as BibTeX (.bib) and pass that file")
    logging.getLogger("bibtexparser").setLevel(logging.ERROR)  # its warnings are ours to say
    parsed = bibtexparser.parse_string(text)
    problems: list[Problem] = []
    for block in parsed.failed_blocks:
        first = str(getattr(block, "raw", "")).strip().splitlines()[:1]
        error = getattr(block, "error", None)
        why = " ".join(str(getattr(error, "abort_reason", "") or error or "").split())[:160]
        problems.append((f"{path.name} line {(block.start_line or 0) + 1}",
                         f"not read: a syntax error{f' ({why})' if why else ''} in "
                         f"{first[0][:60] if first else 'this block'}"))
    refs: list[Reference] = []
    for entry in parsed.entries:
        f = {k.lower(): str(v.value) for k, v in entry.fields_dict.items()}
        where = f"{path.name} line {(entry.start_line or 0) + 1} ({entry.key})"
        ref = Reference(cite_key=entry.key, where=where, title=_delatex(f.get("title", "")),
                        authors=_bib_authors(f.get("author", "")))
        year = _YEAR.search(f.get("year", "") or f.get("date", ""))
        ref.year = year.group(1) if year else None
        prefix = f.get("archiveprefix", "") or f.get("eprinttype", "")
        ref.arxiv_id = arxiv_id_in(f.get("eprint") if "arxiv" in prefix.lower() or not prefix
                                   else None, f.get("arxiv"), f.get("url"), f.get("doi"),
                                   f.get("journal"), f.get("note"), f.get("howpublished"))
        for name in _bib_files(f.get("file", ""), path.parent) if f.get("file") else []:
            file = Path(name)
            if file.is_file():
                ref.files.append(file)
            else:
                ref.missing.append(name)
        ref.tags = [t.strip() for t in f.get("groups", "").split(",") if t.strip()]  # JabRef
        refs.append(ref)
    return refs, problems


# -- Zotero -----------------------------------------------------------------------------------
_SKIPPED_TYPES = ("attachment", "note", "annotation")


def default_zotero_dir() -> Path:
    return Path.home() / "Zotero"


def read_zotero(folder: Path) -> tuple[list[Reference], list[Problem]]:
    """The items of a Zotero data directory (``zotero.sqlite`` and ``storage/``): regular
    items with their readable attachments (PDF, text), top-level PDFs as items of their own,
    collections as tags; citation keys from Zotero's ``citationKey`` field or a "Citation
    Key:" line in Extra (Better BibTeX), else the item's key."""
    db_path = folder / "zotero.sqlite"
    if not folder.is_dir():
        raise LibraryError(f"no such Zotero data directory: {folder}",
                           "pass the folder holding zotero.sqlite (Zotero: Settings > "
                           "Advanced > Files and Folders > Data Directory Location)")
    if not db_path.is_file():
        raise LibraryError(f"{folder} is not a Zotero data directory (no zotero.sqlite in it)",
                           "pass the folder holding zotero.sqlite, e.g. ~/Zotero")
    with tempfile.TemporaryDirectory(prefix="litlab-zotero-") as tmp:
        copy = Path(tmp) / "zotero.sqlite"
        try:
            shutil.copyfile(db_path, copy)
            for suffix in ("-wal",):  # a running Zotero's last writes
                if (folder / f"zotero.sqlite{suffix}").is_file():
                    shutil.copyfile(folder / f"zotero.sqlite{suffix}", Path(tmp) /
                                    f"zotero.sqlite{suffix}")
        except OSError as e:
            raise LibraryError(f"cannot read {db_path} ({e.strerror})",
                               "check its permissions") from None
        try:
            db = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
            try:
                db.row_factory = sqlite3.Row
                return _zotero_items(db, folder), []  # what it cannot use, it skips
            finally:
                db.close()
        except sqlite3.DatabaseError as e:
            raise LibraryError(f"{db_path} is not a readable Zotero database ({e})",
                               "close Zotero and try again, or pass a copy made from "
                               "zotero.sqlite.bak") from None


def _zotero_items(db: sqlite3.Connection, folder: Path) -> list[Reference]:
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    needed = {"items", "itemTypes", "itemData", "itemDataValues", "fields", "itemAttachments"}
    if not needed <= tables:
        raise sqlite3.DatabaseError(f"tables missing: {', '.join(sorted(needed - tables))}")
    deleted = {r[0] for r in db.execute("SELECT itemID FROM deletedItems")} \
        if "deletedItems" in tables else set()
    items = {r["itemID"]: (r["key"], r["typeName"]) for r in db.execute(
        "SELECT i.itemID, i.key, t.typeName FROM items i JOIN itemTypes t "
        "ON t.itemTypeID = i.itemTypeID") if r["itemID"] not in deleted}
    values: dict[int, dict[str, str]] = {}
    for r in db.execute("SELECT d.itemID, f.fieldName, v.value FROM itemData d "
                        "JOIN fields f ON f.fieldID = d.fieldID "
                        "JOIN itemDataValues v ON v.valueID = d.valueID"):
        values.setdefault(r[0], {})[r[1]] = str(r[2])
    creators: dict[int, list[str]] = {}
    if {"creators", "itemCreators"} <= tables:
        for r in db.execute("SELECT ic.itemID, c.firstName, c.lastName FROM itemCreators ic "
                            "JOIN creators c ON c.creatorID = ic.creatorID "
                            "ORDER BY ic.itemID, ic.orderIndex"):
            name = " ".join(x for x in (r[1], r[2]) if x)
            if name:
                creators.setdefault(r[0], []).append(name)
    tags: dict[int, list[str]] = {}
    if {"collections", "collectionItems"} <= tables:
        for r in db.execute("SELECT ci.itemID, c.collectionName FROM collectionItems ci "
                            "JOIN collections c ON c.collectionID = ci.collectionID "
                            "ORDER BY c.collectionName"):
            tags.setdefault(r[0], []).append(str(r[1]))
    refs: dict[int, Reference] = {}
    for item_id, (key, kind) in items.items():
        if kind in _SKIPPED_TYPES:
            continue
        v = values.get(item_id, {})
        refs[item_id] = _zotero_reference(key, v, creators.get(item_id, []),
                                          tags.get(item_id, []))
    for r in db.execute("SELECT itemID, parentItemID, linkMode, contentType, path "
                        "FROM itemAttachments"):
        att_id, parent = r["itemID"], r["parentItemID"]
        if att_id not in items or (parent is not None and parent not in refs):
            continue
        stored = str(r["path"] or "")
        if not stored:
            continue  # a link to a web page
        att_key = items[att_id][0]
        if stored.startswith("storage:"):
            file = folder / "storage" / att_key / stored[len("storage:"):]
        elif stored.startswith("attachments:"):
            file = Path(stored[len("attachments:"):])  # relative to a base directory we lack
        else:
            file = Path(stored)
        if not _document(r["contentType"], file):
            continue  # a web snapshot or an image: nothing litlab indexes
        if parent is None:  # a PDF dropped into Zotero on its own
            v = values.get(att_id, {})
            ref = refs[att_id] = _zotero_reference(att_key, v, [], tags.get(att_id, []))
            ref.title = ref.title if ref.title and ref.title != file.name else ""
        else:
            ref = refs[parent]
        if file.is_file():
            ref.files.append(file)
        else:
            ref.missing.append(str(file) if not stored.startswith("attachments:")
                               else f"{stored} (relative to Zotero's linked-attachment base "
                                    "directory, which litlab cannot see)")
    return list(refs.values())


def _zotero_reference(key: str, v: dict[str, str], creators: list[str],
                      tags: list[str]) -> Reference:
    extra = v.get("extra", "")
    cite = v.get("citationKey") or next(
        (m.group(1) for m in re.finditer(r"(?im)^\s*citation key:\s*(\S+)", extra)), None)
    year = _YEAR.search(v.get("date", ""))
    return Reference(cite_key=cite or key, where=f"Zotero item {key}",
                     title=v.get("title", ""), authors=creators,
                     year=year.group(1) if year else None,
                     arxiv_id=arxiv_id_in(v.get("archiveID"), v.get("url"), v.get("DOI"),
                                          extra, v.get("publicationTitle")),
                     tags=tags)
