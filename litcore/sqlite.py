"""SQLite as every litlab database uses it: WAL, foreign keys, append-only migrations, and
transactions that take the write lock up front (so two writers queue instead of deadlocking)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def connect(path: Path, migrations: Sequence[str]) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA synchronous=NORMAL")
    migrate(db, migrations)
    return db


def migrate(db: sqlite3.Connection, migrations: Sequence[str]) -> None:
    """Apply the migrations not yet applied, each in its own transaction. Never edit one that
    shipped: append a new one."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL)"
    )
    done = {r[0] for r in db.execute("SELECT version FROM schema_migrations")}
    for version, sql in enumerate(migrations, start=1):
        if version in done:
            continue
        with transaction(db):
            # Another connection may have applied it since we looked: check under the lock.
            if db.execute("SELECT 1 FROM schema_migrations WHERE version = ?",
                          (version,)).fetchone():
                continue
            for statement in sql.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time()))


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
