"""The catalog: ``library.sqlite``, the source of truth for the library.

Papers, their files (with content hashes), chunks with section/page/offsets, figures with
captions, per-paper index state, and an FTS5 keyword index over the chunks. Vector indexes are
derived from it and can always be rebuilt from it.

A paper is written in one transaction (paper row, files, chunks, figures, keyword rows), so a
crash leaves either the whole paper or none of it. Schema changes are append-only migrations.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from litcore.sqlite import connect, transaction
from litcore.text import keywords, tokens
from retrievers.records import Chunk, Figure, FileRecord, Paper

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE papers (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL UNIQUE,          -- 'arxiv:1706.03762' or 'file:<sha256 prefix>'
        arxiv_id TEXT,
        version INTEGER,
        title TEXT NOT NULL DEFAULT '',
        authors TEXT NOT NULL DEFAULT '[]',    -- JSON list
        abstract TEXT NOT NULL DEFAULT '',
        categories TEXT NOT NULL DEFAULT '[]', -- JSON list
        published TEXT,
        updated TEXT,
        license TEXT,
        source TEXT NOT NULL DEFAULT '',       -- path or URL it came from
        content_hash TEXT,                     -- hash of the files it was parsed from
        state TEXT NOT NULL DEFAULT 'indexed', -- indexed | failed
        error TEXT,
        added_at REAL NOT NULL,
        indexed_at REAL
    );
    CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        paper_id INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,                    -- pdf | latex | markdown | text
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        bytes INTEGER NOT NULL
    );
    CREATE TABLE chunks (
        -- AUTOINCREMENT: ids are never reused, because vector stores key vectors by them
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        paper_id INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
        ord INTEGER NOT NULL,
        section TEXT NOT NULL DEFAULT '',
        page_start INTEGER,
        page_end INTEGER,
        char_start INTEGER NOT NULL,
        char_end INTEGER NOT NULL,
        text TEXT NOT NULL
    );
    CREATE INDEX chunks_paper ON chunks(paper_id);
    CREATE TABLE figures (
        id INTEGER PRIMARY KEY,
        paper_id INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
        label TEXT,
        caption TEXT NOT NULL DEFAULT '',
        image_path TEXT,
        page INTEGER,
        section TEXT NOT NULL DEFAULT ''
    );
    CREATE VIRTUAL TABLE chunks_fts USING fts5(
        text, section, title, tokenize = 'porter unicode61'
    );
    """,
    # 2: what each paper was parsed from (and why not its LaTeX), and the text chunk offsets
    # point into
    """
    ALTER TABLE papers ADD COLUMN indexed_from TEXT;
    ALTER TABLE papers ADD COLUMN source_note TEXT;
    ALTER TABLE papers ADD COLUMN retry_source INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE paper_texts (
        paper_id INTEGER PRIMARY KEY REFERENCES papers(id) ON DELETE CASCADE,
        text TEXT NOT NULL
    );
    """,
    # 3: figures get ids that are never reused (their vectors are keyed by them, as chunks'
    # are), the reason a figure's image was not used, and a keyword index over captions
    """
    CREATE TABLE figures_v3 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        paper_id INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
        label TEXT,
        caption TEXT NOT NULL DEFAULT '',
        image_path TEXT,
        page INTEGER,
        section TEXT NOT NULL DEFAULT '',
        skipped TEXT                           -- why image_path is not embedded, if it is not
    );
    INSERT INTO figures_v3 (id, paper_id, label, caption, image_path, page, section)
        SELECT id, paper_id, label, caption, image_path, page, section FROM figures;
    DROP TABLE figures;
    ALTER TABLE figures_v3 RENAME TO figures;
    CREATE INDEX figures_paper ON figures(paper_id);
    CREATE VIRTUAL TABLE figures_fts USING fts5(
        caption, label, title, tokenize = 'porter unicode61'
    );
    INSERT INTO figures_fts (rowid, caption, label, title)
        SELECT f.id, f.caption, coalesce(f.label, ''), p.title
        FROM figures f JOIN papers p ON p.id = f.paper_id;
    """,
    # 4: papers imported from a reference manager keep its citation key, and their
    # collections as tags
    """
    ALTER TABLE papers ADD COLUMN cite_key TEXT;
    ALTER TABLE papers ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';  -- JSON list
    CREATE INDEX papers_cite_key ON papers(cite_key);
    """,
]


def _paper_from_row(row: sqlite3.Row) -> Paper:
    d = dict(row)
    for k in ("added_at", "indexed_at"):
        d.pop(k, None)
    d["authors"] = json.loads(d["authors"])
    d["categories"] = json.loads(d["categories"])
    d["tags"] = json.loads(d.get("tags") or "[]")
    d["retry_source"] = bool(d.get("retry_source"))
    return Paper(**d)


class Catalog:
    """Access to ``library.sqlite``. One instance per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = connect(path, MIGRATIONS)
        self._short_names: tuple[tuple[Any, ...], dict[str, set[int]]] | None = None
        # (table, keyword) -> rows holding it (capped), and each table's row count: see
        # keyword_search
        self._counts: dict[tuple[str, str], int] = {}
        self._rows: dict[str, int] = {}
        self._counts_version = -1

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._forget_counts()
        with transaction(self.db) as db:
            yield db

    def close(self) -> None:
        self.db.close()

    # -- papers ----------------------------------------------------------------------------
    def get(self, key: str) -> Paper | None:
        row = self.db.execute("SELECT * FROM papers WHERE key = ?", (key,)).fetchone()
        return _paper_from_row(row) if row else None

    def papers_by_id(self, ids: set[int]) -> dict[int, Paper]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(f"SELECT * FROM papers WHERE id IN ({marks})", sorted(ids))
        return {int(r["id"]): _paper_from_row(r) for r in rows}

    def papers(self, state: str | None = None) -> list[Paper]:
        sql, args = "SELECT * FROM papers", tuple[str, ...]()
        if state:
            sql, args = sql + " WHERE state = ?", (state,)
        return [_paper_from_row(r) for r in self.db.execute(sql + " ORDER BY id", args)]

    def find(self, text: str, titles: bool = False) -> Paper | None:
        """A paper by key, arXiv id (any pasted form), catalog id or citation key; with
        ``titles``, also the first whose title contains ``text`` (not for anything that
        deletes)."""
        from retrievers.sources.arxiv_ids import BadArxivId, parse_arxiv_id

        try:
            arxiv_id = parse_arxiv_id(text).id
        except BadArxivId:
            arxiv_id = text
        for sql, arg in (
            ("SELECT * FROM papers WHERE key = ?", text),
            ("SELECT * FROM papers WHERE arxiv_id = ?", arxiv_id),
            ("SELECT * FROM papers WHERE id = ?", text if text.isdigit() else -1),
            ("SELECT * FROM papers WHERE cite_key = ? ORDER BY id", text),
            ("SELECT * FROM papers WHERE title LIKE ? ESCAPE '\\' ORDER BY id",
             "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"),
        )[: 5 if titles else 4]:
            row = self.db.execute(sql, (arg,)).fetchone()
            if row:
                return _paper_from_row(row)
        return None

    def put_paper(
        self,
        paper: Paper,
        files: Sequence[FileRecord],
        chunks: Sequence[Chunk],
        figures: Sequence[Figure] = (),
        text: str | None = None,
    ) -> int:
        """Write a paper with everything parsed from it (``text``: the parsed text that chunk
        offsets point into), replacing any earlier version of the same key, in one
        transaction. Returns the paper's catalog id."""
        now = time.time()
        with self.transaction() as db:
            old = db.execute("SELECT id, cite_key, tags FROM papers WHERE key = ?",
                             (paper.key,)).fetchone()
            if old:
                self._delete_rows(old["id"])
                # a new version of a paper a reference manager named keeps its key and tags
                paper.cite_key = paper.cite_key or old["cite_key"]
                paper.tags = paper.tags or json.loads(old["tags"] or "[]")
            cur = db.execute(
                """INSERT INTO papers (key, arxiv_id, version, title, authors, abstract,
                   categories, published, updated, license, source, content_hash, state, error,
                   indexed_from, source_note, retry_source, added_at, indexed_at, cite_key, tags)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
                (paper.key, paper.arxiv_id, paper.version, paper.title,
                 json.dumps(paper.authors), paper.abstract, json.dumps(paper.categories),
                 paper.published, paper.updated, paper.license, paper.source,
                 paper.content_hash, paper.state, paper.error, paper.indexed_from,
                 paper.source_note, int(paper.retry_source), now,
                 now if paper.state == "indexed" else None, paper.cite_key,
                 json.dumps(paper.tags)),
            )
            pid = int(cur.lastrowid or 0)
            if text is not None:
                db.execute("INSERT INTO paper_texts (paper_id, text) VALUES (?, ?)", (pid, text))
            db.executemany(
                "INSERT INTO files (paper_id, kind, path, sha256, bytes) VALUES (?,?,?,?,?)",
                [(pid, f.kind, f.path, f.sha256, f.bytes) for f in files],
            )
            for i, c in enumerate(chunks):
                cur = db.execute(
                    """INSERT INTO chunks (paper_id, ord, section, page_start, page_end,
                       char_start, char_end, text) VALUES (?,?,?,?,?,?,?,?)""",
                    (pid, i, c.section, c.page_start, c.page_end, c.char_start, c.char_end,
                     c.text),
                )
                db.execute(
                    "INSERT INTO chunks_fts (rowid, text, section, title) VALUES (?,?,?,?)",
                    (cur.lastrowid, c.text, c.section, paper.title),
                )
            for f in figures:
                cur = db.execute(
                    """INSERT INTO figures (paper_id, label, caption, image_path, page, section,
                       skipped) VALUES (?,?,?,?,?,?,?)""",
                    (pid, f.label, f.caption, f.image_path, f.page, f.section, f.skipped),
                )
                f.id, f.paper_id = int(cur.lastrowid or 0), pid
                db.execute(
                    "INSERT INTO figures_fts (rowid, caption, label, title) VALUES (?,?,?,?)",
                    (f.id, f.caption, f.label or "", paper.title),
                )
        paper.id = pid
        return pid

    def set_metadata(self, paper_id: int, *, title: str, authors: list[str], abstract: str,
                     categories: list[str], published: str | None, updated: str | None,
                     license: str | None, version: int | None) -> None:
        """Replace a paper's metadata (arXiv's, found for a local PDF), its title in the
        keyword indexes too."""
        with self.transaction() as db:
            db.execute(
                """UPDATE papers SET title = ?, authors = ?, abstract = ?, categories = ?,
                   published = ?, updated = ?, license = ?, version = ? WHERE id = ?""",
                (title, json.dumps(authors), abstract, json.dumps(categories), published,
                 updated, license, version, paper_id))
            db.execute("UPDATE chunks_fts SET title = ? WHERE rowid IN "
                       "(SELECT id FROM chunks WHERE paper_id = ?)", (title, paper_id))
            db.execute("UPDATE figures_fts SET title = ? WHERE rowid IN "
                       "(SELECT id FROM figures WHERE paper_id = ?)", (title, paper_id))
        self._forget_counts()

    def set_reference(self, paper_id: int, *, cite_key: str, tags: Sequence[str],
                      title: str = "", authors: Sequence[str] = (),
                      published: str | None = None) -> None:
        """What a reference manager says of a paper: its citation key and tags, and (when it
        has them) its title, authors and date, which win over the first page's guesses."""
        with self.transaction() as db:
            db.execute("UPDATE papers SET cite_key = ?, tags = ? WHERE id = ?",
                       (cite_key, json.dumps(list(tags)), paper_id))
            if title:
                db.execute("UPDATE papers SET title = ? WHERE id = ?", (title, paper_id))
                db.execute("UPDATE chunks_fts SET title = ? WHERE rowid IN "
                           "(SELECT id FROM chunks WHERE paper_id = ?)", (title, paper_id))
                db.execute("UPDATE figures_fts SET title = ? WHERE rowid IN "
                           "(SELECT id FROM figures WHERE paper_id = ?)", (title, paper_id))
            if authors:
                db.execute("UPDATE papers SET authors = ? WHERE id = ?",
                           (json.dumps(list(authors)), paper_id))
            if published:
                db.execute("UPDATE papers SET published = coalesce(published, ?) WHERE id = ?",
                           (published, paper_id))
        self._forget_counts()

    def forget_arxiv_id(self, paper_id: int) -> None:
        """The id a local PDF seemed to carry is not its own: stop looking it up."""
        with self.transaction() as db:
            db.execute("UPDATE papers SET arxiv_id = NULL, version = NULL WHERE id = ?",
                       (paper_id,))

    def record_failure(self, key: str, source: str, error: str) -> None:
        """Remember that a paper failed, unless an indexed version of it exists."""
        existing = self.get(key)
        if existing and existing.state == "indexed":
            return
        self.put_paper(Paper(key=key, source=source, state="failed", error=error), [], [])

    def _delete_rows(self, paper_id: int) -> None:
        self.db.execute(
            "DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE paper_id = ?)",
            (paper_id,),
        )
        self.db.execute(
            "DELETE FROM figures_fts WHERE rowid IN (SELECT id FROM figures WHERE paper_id = ?)",
            (paper_id,),
        )
        self.db.execute("DELETE FROM papers WHERE id = ?", (paper_id,))

    def remove(self, paper_id: int) -> None:
        with self.transaction():
            self._delete_rows(paper_id)

    def paper_text(self, paper_id: int) -> str | None:
        """The parsed text of a paper: ``text[chunk.char_start:chunk.char_end]`` is a chunk."""
        row = self.db.execute("SELECT text FROM paper_texts WHERE paper_id = ?",
                              (paper_id,)).fetchone()
        return str(row[0]) if row else None

    # -- chunks and figures -----------------------------------------------------------------
    def chunks_of(self, paper_id: int) -> list[Chunk]:
        rows = self.db.execute(
            "SELECT * FROM chunks WHERE paper_id = ? ORDER BY ord", (paper_id,)
        )
        return [Chunk(**dict(r)) for r in rows]

    def chunks_by_id(self, ids: Sequence[int]) -> dict[int, Chunk]:
        return {i: Chunk(**row) for i, row in self._rows_by_id("chunks", ids).items()}

    def _rows_by_id(self, table: str, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Rows of ``table`` by id, asked 500 ids at a time (SQLite's variable limit)."""
        out: dict[int, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):
            part = list(ids[start:start + 500])
            marks = ",".join("?" * len(part))
            for r in self.db.execute(f"SELECT * FROM {table} WHERE id IN ({marks})", part):
                out[r["id"]] = dict(r)
        return out

    def chunk_ids_where(self, paper: str | None = None, year: int | None = None,
                        category: str | None = None, tag: str | None = None) -> set[int]:
        """The chunks of the papers that pass the filters: ``paper`` (key, arXiv id, catalog
        id or citation key), the ``year`` published, an arXiv ``category``, a ``tag`` (a
        Zotero collection)."""
        sql = "SELECT c.id FROM chunks c JOIN papers p ON p.id = c.paper_id WHERE 1"
        args: list[Any] = []
        if paper:
            sql += (" AND (p.key = ? OR p.arxiv_id = ? OR CAST(p.id AS TEXT) = ?"
                    " OR p.cite_key = ?)")
            args += [paper, paper, paper, paper]
        if year:
            sql += " AND substr(p.published, 1, 4) = ?"
            args.append(f"{year:04d}")
        if category:
            sql += " AND EXISTS (SELECT 1 FROM json_each(p.categories) WHERE value = ?)"
            args.append(category)
        if tag:
            sql += " AND EXISTS (SELECT 1 FROM json_each(p.tags) WHERE value = ?)"
            args.append(tag)
        return {int(r[0]) for r in self.db.execute(sql, args)}

    def is_empty(self) -> bool:
        """True when no paper has any chunk (nothing to search)."""
        return self.db.execute("SELECT 1 FROM chunks LIMIT 1").fetchone() is None

    def all_chunk_ids(self) -> set[int]:
        return {r[0] for r in self.db.execute("SELECT id FROM chunks")}

    def chunk_id_array(self) -> Any:
        """Every chunk id, sorted, as an int64 numpy array (8 bytes an id: the ids of tens of
        millions of chunks, where a set of Python ints would take gigabytes)."""
        import numpy as np

        return np.fromiter((r[0] for r in self.db.execute("SELECT id FROM chunks ORDER BY id")),
                           dtype="int64")

    def iter_chunks(self, ids: set[int] | None = None, batch: int = 256) -> Iterator[list[Chunk]]:
        """Chunks in id order, in batches (optionally only ``ids``), without loading all.
        With ``ids``, only the id range they span is read: the chunks a run just added are
        the newest, so an incremental run reads its own, not the whole catalog."""
        if ids is not None and not ids:
            return
        last = min(ids) - 1 if ids else -1
        end = max(ids) if ids else None
        while True:
            rows = self.db.execute(
                "SELECT * FROM chunks WHERE id > ? ORDER BY id LIMIT ?", (last, batch * 4)
            ).fetchall()
            if not rows or (end is not None and rows[0]["id"] > end):
                return
            last = rows[-1]["id"]
            wanted = [Chunk(**dict(r)) for r in rows if ids is None or r["id"] in ids]
            for i in range(0, len(wanted), batch):
                yield wanted[i:i + batch]

    def figures_of(self, paper_id: int) -> list[Figure]:
        rows = self.db.execute("SELECT * FROM figures WHERE paper_id = ? ORDER BY id",
                               (paper_id,))
        return [Figure(**dict(r)) for r in rows]

    def figures_by_id(self, ids: Sequence[int]) -> dict[int, Figure]:
        return {i: Figure(**row) for i, row in self._rows_by_id("figures", ids).items()}

    def figure_ids(self, *, images: bool = False) -> set[int]:
        """Figures with a caption (what caption search holds) or, with ``images``, with an
        image file that was not skipped (what CLIP embeds)."""
        where = "image_path IS NOT NULL AND skipped IS NULL" if images else "caption != ''"
        return {r[0] for r in self.db.execute(f"SELECT id FROM figures WHERE {where}")}

    def skip_figure(self, figure_id: int, reason: str) -> None:
        """Record why a figure's image cannot be used (found when it is embedded)."""
        with self.transaction() as db:
            db.execute("UPDATE figures SET skipped = ? WHERE id = ?", (reason, figure_id))

    def figure_keyword_search(self, query: str, k: int,
                              within: set[int] | None = None) -> list[tuple[int, float]]:
        """(figure id, BM25 score over caption, label and paper title), best first; words
        left out as for chunks (:meth:`keyword_search`); only figures in ``within`` when it is
        given."""
        return self._bm25("figures", query, k, within)

    def figure_ids_where(self, paper: str) -> set[int]:
        """The figures of ``paper`` (key, arXiv id or catalog id)."""
        return {int(r[0]) for r in self.db.execute(
            "SELECT f.id FROM figures f JOIN papers p ON p.id = f.paper_id "
            "WHERE p.key = ? OR p.arxiv_id = ? OR CAST(p.id AS TEXT) = ?", (paper,) * 3)}

    def keyword_search(self, query: str, k: int,
                       within: set[int] | None = None) -> list[tuple[int, float]]:
        """(chunk id, BM25 score: higher is better), best first; only chunks in ``within``
        when it is given.

        Stop words, and words held by more than a tenth of a large library's chunks, are left
        out: they barely move BM25, yet scoring every chunk that holds them made this the
        slowest step of a search (bench/retrieval.py: 360 ms of 480 at 100k chunks; figure
        search at 100k figures spent 100 of 190 ms there, bench/figures.py).
        """
        return self._bm25("chunks", query, k, within)

    def papers_named(self, query: str) -> set[int]:
        """The papers ``query`` names by their short name, the part of the title before its
        colon ("PaSa", "S2ORC", "Multi-LexSum", "LONGEVAL", "Paper Plain"), as whole words in
        any case. A short name of one plain word ("Attention: ...") names nothing: it would
        match questions that only use the word."""
        names = self._short_name_ids()
        return {pid for name in self.short_names_in(query) for pid in names[name.lower()]}

    def short_names_in(self, query: str) -> list[str]:
        """The papers' short names ``query`` holds (see :meth:`papers_named`), as it writes
        them, in the order it does."""
        found = []
        for name in self._short_name_ids():
            m = re.search(rf"(?<![\w-]){re.escape(name)}(?!\w)", query, re.IGNORECASE)
            if m:
                found.append((m.start(), m.group(0)))
        return [text for _, text in sorted(found)]

    def _short_name_ids(self) -> dict[str, set[int]]:
        marker = self.db.execute("SELECT COUNT(*), MAX(id) FROM papers").fetchone()
        if self._short_names is None or self._short_names[0] != tuple(marker):
            names: dict[str, set[int]] = {}
            for pid, title in self.db.execute("SELECT id, title FROM papers"):
                name = _short_name(title or "")
                if name:
                    names.setdefault(name.lower(), set()).add(int(pid))
            self._short_names = (tuple(marker), names)
        return self._short_names[1]

    def paper_ids_of(self, chunk_ids: Sequence[int]) -> dict[int, int]:
        """chunk id -> its paper's id."""
        out: dict[int, int] = {}
        ids = list(chunk_ids)
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            marks = ",".join("?" * len(part))
            out.update((int(c), int(p)) for c, p in self.db.execute(
                f"SELECT id, paper_id FROM chunks WHERE id IN ({marks})", part))
        return out

    def labelled_chunks(self, query: str, k: int,
                        within: set[int] | None = None) -> list[tuple[int, float]]:
        """The caption chunks of the tables and figures a query names ("What does Table 2 of
        the S2ORC paper list?"): (chunk id, BM25 score of the rest of the query, which the
        chunk's paper title is part of), best first. Empty when the query names none.

        A caption is a chunk of its own as well as part of the body text around it; dense
        search ranks it low (a line of text against a question), keyword search finds every
        chunk that mentions "Table 2" alike."""
        labels = {(m.group(1).lower().startswith("t"), m.group(2))
                  for m in _LABEL.finditer(query)}
        if not labels:
            return []
        found: set[int] = set()
        for table, number in labels:
            phrases = [f'"table {number}"'] if table else [f'"figure {number}"', f'"fig {number}"']
            starts = ["table"] if table else ["figure", "fig.", "fig"]
            likes = [f"{w} {number}{end}%" for w in starts for end in (":", ".")]
            rows = self.db.execute(
                "SELECT c.id FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid "
                f"WHERE chunks_fts MATCH ? AND ({' OR '.join(['c.text LIKE ?'] * len(likes))})",
                ("text : (" + " OR ".join(phrases) + ")", *likes))
            found.update(int(r[0]) for r in rows)
        if within is not None:
            found &= within
        if not found:
            return []
        rest = _keywords(_LABEL.sub(" ", query))
        scored: dict[int, float] = {}
        if rest:
            marks = ",".join("?" * len(found))
            scored = {int(r[0]): -float(r[1]) for r in self.db.execute(
                f"SELECT rowid, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? "
                f"AND rowid IN ({marks})",
                (" OR ".join(f'"{w}"' for w in rest), *found))}
        return sorted(((c, scored.get(c, 0.0)) for c in found), key=lambda x: (-x[1], x[0]))[:k]

    def _bm25(self, table: str, query: str, k: int,
              within: set[int] | None = None) -> list[tuple[int, float]]:
        words = _keywords(query)
        if not words:
            return []
        cap = max(COMMON_TERM_MIN_CHUNKS, int(COMMON_TERM_SHARE * self._row_count(table)))
        terms = [w for w in words if self._holding(table, w, cap) <= cap]
        if not terms:
            return []
        match = " OR ".join(f'"{w}"' for w in terms)
        if within is None:
            rows = self.db.execute(
                f"SELECT rowid, bm25({table}_fts) AS s FROM {table}_fts WHERE {table}_fts "
                "MATCH ? ORDER BY s LIMIT ?", (match, k))
        else:  # the allowed ids as one JSON array: no limit on SQL variables
            rows = self.db.execute(
                f"SELECT rowid, bm25({table}_fts) AS s FROM {table}_fts WHERE {table}_fts "
                "MATCH ? AND rowid IN (SELECT value FROM json_each(?)) ORDER BY s LIMIT ?",
                (match, json.dumps(sorted(within)), k))
        return [(int(r[0]), -float(r[1])) for r in rows]

    def chunk_frequency(self, word: str) -> tuple[int, int]:
        """(how many chunks hold ``word``, how many chunks there are): BM25's IDF inputs.
        A word held by more than a tenth of a large library is counted only that far."""
        n = self._row_count("chunks")
        cap = max(COMMON_TERM_MIN_CHUNKS, int(COMMON_TERM_SHARE * n))
        return min(self._holding("chunks", word, cap), n), n

    def _forget_counts(self) -> None:
        self._counts.clear()
        self._rows.clear()

    def _fresh_counts(self) -> dict[tuple[str, str], int]:
        version = self.db.execute("PRAGMA data_version").fetchone()[0]  # others' commits
        if version != self._counts_version:
            self._forget_counts()
            self._counts_version = version
        return self._counts

    def _row_count(self, table: str) -> int:
        self._fresh_counts()
        if table not in self._rows:
            self._rows[table] = int(self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        return self._rows[table]

    def _holding(self, table: str, word: str, cap: int) -> int:
        """How many rows of ``table`` hold ``word`` (as FTS5 stems it), counted up to
        ``cap + 1``."""
        counts = self._fresh_counts()
        if (table, word) not in counts:
            counts[table, word] = int(self.db.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM {table}_fts WHERE {table}_fts MATCH ? "
                "LIMIT ?)", (f'"{word}"', cap + 1)).fetchone()[0])
        return counts[table, word]


COMMON_TERM_SHARE = 0.1
COMMON_TERM_MIN_CHUNKS = 5000  # below this, scoring every holder is cheap: keep the word
_LABEL = re.compile(r"(?i)\b(table|figure|fig\.?)\s*(\d{1,3})\b")


def _keywords(text: str) -> list[str]:
    """The query's words for FTS5, each later quoted (no FTS syntax from the user). A name or
    number written with separators ("Qwen2.5-7B", "33,511", "GPT-4o") also goes in whole, as
    the phrase of its tokens, so the chunk that holds it exactly outranks chunks that hold its
    pieces apart ("Qwen2-7B ... 5")."""
    phrases = [" ".join(tokens(c)) for c in _SEPARATED.findall(text.lower())]
    return list(dict.fromkeys(keywords(text) + phrases))


_SEPARATED = re.compile(r"\w+(?:[.,\-/:]\w+)+")


def _short_name(title: str) -> str:
    """A title's short name: what comes before its colon, when it is a name (a word with
    inner capitals, digits or a hyphen: "S2ORC", "PaperMage", "Multi-LexSum", "LONGEVAL"; or
    two or three capitalised words: "Paper Plain")."""
    if ":" not in title:
        return ""
    head = title.split(":", 1)[0].strip()
    words = head.split()
    if not 1 <= len(words) <= 3 or len(head) < 3:
        return ""
    if len(words) == 1:
        w = words[0]
        return head if any(c.isdigit() for c in w) or "-" in w or any(
            c.isupper() for c in w[1:]) else ""
    return head if all(w[:1].isupper() for w in words) else ""
