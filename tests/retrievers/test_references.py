"""Papers from where researchers keep them: a .bib file and a Zotero data directory (a real
SQLite file with the tables Zotero uses for items, fields, creators, attachments and
collections), indexed with their citation keys and collections; what cannot be read is named
one line each and the rest imported; a second run indexes nothing again."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from agentlab.check import bibtex
from retrievers.errors import LibraryError
from retrievers.library import Library
from retrievers.sources.references import read_bib, read_zotero
from tests.papers import MARKDOWN, make_two_column_pdf
from tests.retrievers.test_arxiv import RecordedArxiv, client

BIB = r"""
@article{hu2021lora,
  title = {{LoRA}: Low-Rank Adaptation of Large Language Models},
  author = {Hu, Edward J. and Shen, Yelong},
  year = {2021},
  eprint = {2106.09685},
  archivePrefix = {arXiv}
}

@inproceedings{gen2024adapt,
  title = {Efficient Adaptation of Generative Models},
  author = {Doe, Jane and Roe, Richard},
  booktitle = {Proceedings},
  year = {2024},
  file = {Full Text PDF:papers/adaptation.pdf:application/pdf}
}

@misc{broken2020,
  title = {A block whose brace never closes,
  author = {Nobody}

@article{lost2019,
  title = {A Paper Whose File Moved},
  author = {Smith, Ann},
  year = {2019},
  file = {/nowhere/lost.pdf}
}

@book{nofile2018,
  title = {Deep Learning},
  author = {Goodfellow, Ian},
  year = {2016}
}
"""


@pytest.fixture
def bibfile(tmp_path: Path) -> Path:
    (tmp_path / "papers").mkdir()
    make_two_column_pdf(tmp_path / "papers" / "adaptation.pdf")
    path = tmp_path / "refs.bib"
    path.write_text(BIB)
    return path


def test_a_bib_file_comes_in_with_its_keys_and_says_what_it_could_not(bibfile: Path,
                                                                      tmp_path: Path) -> None:
    refs, problems = read_bib(bibfile)
    assert [r.cite_key for r in refs] == ["hu2021lora", "gen2024adapt", "lost2019", "nofile2018"]
    (where, what), = problems
    assert where == "refs.bib line 18" and "syntax error" in what and "@misc{broken2020" in what  # the broken block, by line

    lib = Library(tmp_path / "home")
    server = RecordedArxiv(tmp_path, source=None)
    report = lib.index_references(refs, arxiv=client(server))
    assert set(report.added) == {"2106.09685v2", str(bibfile.parent / "papers" /
                                                     "adaptation.pdf")}
    assert report.failed == [("refs.bib line 22 (lost2019)",
                              "attachment not on disk: /nowhere/lost.pdf")]
    assert report.notes == [("refs.bib line 29 (nofile2018)",
                             "not indexed: no file attached and no arXiv id")]

    local = lib.catalog.find("gen2024adapt")
    assert local is not None and local.cite_key == "gen2024adapt"
    assert local.authors == ["Jane Doe", "Richard Roe"] and local.year == 2024
    hit = lib.search("Mamba sequence length", k=1, paper="gen2024adapt")[0]
    assert hit.chunk.section == "3 State Space Models"
    lora = lib.catalog.find("hu2021lora")
    assert lora is not None and lora.arxiv_id == "2106.09685"
    assert lora.title == "LoRA: Low-Rank Adaptation of Large Language Models"  # arXiv's own
    entries = bibtex([lora, local])
    assert entries.startswith("@article{hu2021lora,") and "@article{gen2024adapt," in entries

    again = lib.index_references(read_bib(bibfile)[0], arxiv=client(server))
    assert not again.added and again.vectors_added == 0
    assert len(again.unchanged) == 2


def test_a_bib_file_that_is_not_one_gets_one_line(tmp_path: Path) -> None:
    binary = tmp_path / "refs.bib"
    binary.write_bytes(b"\x00\x01PK" * 100)
    with pytest.raises(LibraryError, match="not a BibTeX file"):
        read_bib(binary)
    with pytest.raises(LibraryError, match="no such .bib file"):
        read_bib(tmp_path / "missing.bib")


# -- Zotero ------------------------------------------------------------------------------------
SCHEMA = """
CREATE TABLE itemTypes (itemTypeID INTEGER PRIMARY KEY, typeName TEXT);
CREATE TABLE items (itemID INTEGER PRIMARY KEY, itemTypeID INT, dateAdded TEXT,
                    libraryID INT, key TEXT);
CREATE TABLE fields (fieldID INTEGER PRIMARY KEY, fieldName TEXT);
CREATE TABLE itemDataValues (valueID INTEGER PRIMARY KEY, value UNIQUE);
CREATE TABLE itemData (itemID INT, fieldID INT, valueID INT, PRIMARY KEY (itemID, fieldID));
CREATE TABLE creators (creatorID INTEGER PRIMARY KEY, firstName TEXT, lastName TEXT,
                       fieldMode INT);
CREATE TABLE itemCreators (itemID INT, creatorID INT, creatorTypeID INT, orderIndex INT);
CREATE TABLE itemAttachments (itemID INTEGER PRIMARY KEY, parentItemID INT, linkMode INT,
                              contentType TEXT, charsetID INT, path TEXT);
CREATE TABLE collections (collectionID INTEGER PRIMARY KEY, collectionName TEXT,
                          parentCollectionID INT, key TEXT);
CREATE TABLE collectionItems (collectionID INT, itemID INT, orderIndex INT);
CREATE TABLE deletedItems (itemID INTEGER PRIMARY KEY, dateDeleted TEXT);
"""


def make_zotero(folder: Path) -> Path:
    """A Zotero data directory: an article with its PDF in storage/ (collection
    "Transformers", a Better BibTeX key in Extra), a Markdown note file attached to a report,
    a preprint with only an arXiv id, an item whose attachment is gone, a deleted item, a
    note and a web snapshot."""
    folder.mkdir(parents=True)
    db = sqlite3.connect(folder / "zotero.sqlite")
    db.executescript(SCHEMA)
    types = {"journalArticle": 1, "preprint": 2, "attachment": 3, "note": 4, "report": 5}
    db.executemany("INSERT INTO itemTypes VALUES (?, ?)", [(v, k) for k, v in types.items()])
    fields = {"title": 1, "date": 2, "extra": 3, "archiveID": 4, "url": 5}
    db.executemany("INSERT INTO fields VALUES (?, ?)", [(v, k) for k, v in fields.items()])
    values: dict[str, int] = {}

    def item(item_id: int, kind: str, key: str, **data: str) -> None:
        db.execute("INSERT INTO items VALUES (?, ?, '2024-01-01', 1, ?)",
                   (item_id, types[kind], key))
        for name, value in data.items():
            if value not in values:
                values[value] = len(values) + 1
                db.execute("INSERT INTO itemDataValues VALUES (?, ?)", (values[value], value))
            db.execute("INSERT INTO itemData VALUES (?, ?, ?)",
                       (item_id, fields[name], values[value]))

    item(1, "journalArticle", "ART00001", title="Efficient Adaptation of Generative Models",
         date="2024-03-01 2024-03-01", extra="Citation Key: doe2024efficient")
    item(2, "attachment", "ATT00002", title="Full Text PDF")
    item(3, "preprint", "PRE00003", title="LoRA", archiveID="arXiv:2106.09685",
         date="2021")
    item(4, "report", "REP00004", title="RLHF notes")
    item(5, "attachment", "ATT00005", title="notes")
    item(6, "journalArticle", "GON00006", title="Gone")
    item(7, "attachment", "ATT00007", title="gone.pdf")
    item(8, "journalArticle", "DEL00008", title="Deleted article")
    item(9, "note", "NOT00009")
    item(10, "attachment", "ATT00010", title="Snapshot")
    db.executemany("INSERT INTO itemAttachments VALUES (?, ?, ?, ?, NULL, ?)", [
        (2, 1, 0, "application/pdf", "storage:adaptation.pdf"),
        (5, 4, 0, "text/markdown", "storage:rlhf.md"),
        (7, 6, 0, "application/pdf", "storage:gone.pdf"),
        (10, 1, 1, "text/html", "storage:snapshot.html"),
    ])
    db.execute("INSERT INTO deletedItems VALUES (8, '2024-02-02')")
    db.executemany("INSERT INTO creators VALUES (?, ?, ?, 0)",
                   [(1, "Jane", "Doe"), (2, "Richard", "Roe")])
    db.executemany("INSERT INTO itemCreators VALUES (1, ?, 1, ?)", [(1, 0), (2, 1)])
    db.executemany("INSERT INTO collections VALUES (?, ?, NULL, ?)",
                   [(1, "Transformers", "COL1"), (2, "Reading group", "COL2")])
    db.executemany("INSERT INTO collectionItems VALUES (?, ?, 0)", [(1, 1), (2, 1), (2, 4)])
    db.commit()
    db.close()
    (folder / "storage" / "ATT00002").mkdir(parents=True)
    make_two_column_pdf(folder / "storage" / "ATT00002" / "adaptation.pdf")
    (folder / "storage" / "ATT00005").mkdir()
    (folder / "storage" / "ATT00005" / "rlhf.md").write_text(MARKDOWN)
    (folder / "storage" / "ATT00010").mkdir()
    (folder / "storage" / "ATT00010" / "snapshot.html").write_text("<html></html>")
    return folder


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITLAB_")}
    return subprocess.run([sys.executable, "-m", "litlab", *args], capture_output=True,
                          text=True, env={**env, "LITLAB_HOME": str(home)}, timeout=300)


def test_a_zotero_library_comes_in_with_collections_as_tags(tmp_path: Path) -> None:
    zotero = make_zotero(tmp_path / "Zotero")
    home = tmp_path / "home"
    run = _cli("index", "zotero", str(zotero), "--no-arxiv", "--json", home=home)
    assert run.returncode == 2, run.stderr  # the missing attachment
    report = json.loads(run.stdout)
    assert len(report["added"]) == 2
    assert report["failed"] == [["Zotero item GON00006", "attachment not on disk: "
                                 f"{zotero}/storage/ATT00007/gone.pdf"]]
    assert report["notes"] == [["Zotero item PRE00003",
                                "not indexed: no file attached and no arXiv id (arXiv is off)"]]

    lib = Library(home)
    article = lib.catalog.find("doe2024efficient")
    assert article is not None and article.tags == ["Reading group", "Transformers"]
    assert article.authors == ["Jane Doe", "Richard Roe"] and article.year == 2024
    notes = lib.catalog.find("REP00004")  # no key in Extra: Zotero's item key
    assert notes is not None and notes.title == "RLHF notes" and notes.tags == ["Reading group"]
    assert not lib.catalog.find("Deleted article", titles=True)
    lib.close()

    found = _cli("search", "Mamba sequence length", "--tag", "Transformers", "--json",
                 home=home)
    assert json.loads(found.stdout)[0]["title"] == "Efficient Adaptation of Generative Models"
    nothing = _cli("search", "reward model", "--tag", "Transformers", "--json", home=home)
    assert all(h["title"] != "RLHF notes" for h in json.loads(nothing.stdout))
    listed = _cli("library", "list", home=home)
    assert "doe2024efficient" in listed.stdout and "#Transformers" in listed.stdout

    again = _cli("index", "zotero", str(zotero), "--no-arxiv", "--json", home=home)
    assert json.loads(again.stdout)["added"] == [] and \
        len(json.loads(again.stdout)["unchanged"]) == 2


def test_a_folder_that_is_not_zotero_or_a_broken_database_gets_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    not_zotero = _cli("index", "zotero", str(tmp_path), home=home)
    assert not_zotero.returncode != 0 and "no zotero.sqlite" in not_zotero.stderr
    assert len(not_zotero.stderr.strip().splitlines()) == 1

    zotero = make_zotero(tmp_path / "Zotero")
    db = zotero / "zotero.sqlite"
    db.write_bytes(b"this is not a database" * 200)
    broken = _cli("index", "zotero", str(zotero), home=home)
    assert broken.returncode != 0 and "not a readable Zotero database" in broken.stderr
    assert "Traceback" not in broken.stderr

    shutil.rmtree(zotero)
    make_zotero(zotero)
    locked = sqlite3.connect(zotero / "zotero.sqlite")  # Zotero open: an exclusive lock
    locked.execute("PRAGMA locking_mode = EXCLUSIVE")
    locked.execute("BEGIN EXCLUSIVE")
    try:
        refs, _ = read_zotero(zotero)  # read from a copy: the lock does not stop it
    finally:
        locked.close()
    assert {r.cite_key for r in refs} >= {"doe2024efficient", "PRE00003"}
    assert next(r for r in refs if r.cite_key == "PRE00003").arxiv_id == "2106.09685"
