"""Evaluation runs on disk: ``LITLAB_HOME/runs/evals/runs.sqlite`` (runs, one row per case
result, and the cache of completions and judge verdicts) and, for people,
``runs/evals/RUN/cases.jsonl`` with one line per result.

A result is written in one transaction when its case finishes, so a run killed at any point
keeps every finished case and a rerun resumes with the rest.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litcore.errors import UserError
from litcore.sqlite import connect, transaction

MIGRATIONS = [
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        suite TEXT NOT NULL,
        digest TEXT NOT NULL,
        config TEXT NOT NULL,
        created_at REAL NOT NULL,
        finished_at REAL
    );
    CREATE TABLE results (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        case_id TEXT NOT NULL,
        target TEXT NOT NULL,
        prompt TEXT NOT NULL,
        repeat INTEGER NOT NULL,
        tags TEXT NOT NULL,
        output TEXT NOT NULL,
        scores TEXT NOT NULL,
        passed INTEGER NOT NULL,
        score REAL NOT NULL,
        PRIMARY KEY (run_id, case_id, target, prompt, repeat)
    );
    CREATE TABLE cache (key TEXT PRIMARY KEY, value TEXT NOT NULL, created_at REAL NOT NULL)
    """,
]


@dataclass
class Result:
    """One case's outcome on one target and prompt."""

    case_id: str
    target: str
    prompt: str
    repeat: int
    tags: list[str]
    output: dict[str, Any]
    scores: dict[str, dict[str, Any]]  # assertion label -> {passed, score, reason, weight}
    passed: bool
    score: float

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.case_id, self.target, self.prompt, self.repeat)

    def to_dict(self) -> dict[str, Any]:
        return {"case": self.case_id, "target": self.target, "prompt": self.prompt,
                "repeat": self.repeat, "tags": self.tags, "passed": self.passed,
                "score": self.score, "scores": self.scores, "output": self.output}


@dataclass
class RunInfo:
    id: str
    suite: str
    digest: str
    config: dict[str, Any]
    created_at: float
    finished_at: float | None


class RunStore:
    def __init__(self, home: Path) -> None:
        self.folder = home / "runs" / "evals"
        self.db = connect(self.folder / "runs.sqlite", MIGRATIONS)
        self._lock = threading.Lock()  # runner threads write through one connection

    def close(self) -> None:
        self.db.close()

    # -- runs ------------------------------------------------------------------------------
    def unfinished(self, digest: str, config: dict[str, Any]) -> str | None:
        """An interrupted run of the same suite text and settings, to resume."""
        row = self.db.execute(
            "SELECT id FROM runs WHERE digest = ? AND config = ? AND finished_at IS NULL "
            "ORDER BY created_at DESC LIMIT 1", (digest, json.dumps(config, sort_keys=True))
        ).fetchone()
        return str(row[0]) if row else None

    def start(self, run_id: str, suite: str, digest: str, config: dict[str, Any]) -> None:
        with self._lock, transaction(self.db):
            self.db.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, NULL)",
                            (run_id, suite, digest, json.dumps(config, sort_keys=True),
                             time.time()))
        (self.folder / run_id).mkdir(parents=True, exist_ok=True)

    def finish(self, run_id: str) -> None:
        with self._lock, transaction(self.db):
            self.db.execute("UPDATE runs SET finished_at = ? WHERE id = ?", (time.time(), run_id))
        # a kill between a result's commit and its line lost the line: the finished run's
        # cases.jsonl is written again from the database, one line a result
        path = self.folder / run_id / "cases.jsonl"
        tmp = path.with_name(path.name + ".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in self.results(run_id)))
        tmp.replace(path)

    def runs(self) -> list[RunInfo]:
        return [self._info(r) for r in
                self.db.execute("SELECT * FROM runs ORDER BY created_at DESC")]

    def run(self, ref: str) -> RunInfo:
        """A run by id, or ``last`` / ``last~1`` for the newest ones."""
        if ref.startswith("last"):
            back = int(ref.partition("~")[2] or 0)
            runs = self.runs()
            if back < len(runs):
                return runs[back]
        else:
            row = self.db.execute("SELECT * FROM runs WHERE id = ?", (ref,)).fetchone()
            if row:
                return self._info(row)
        raise UserError(f"no evaluation run '{ref}'", "see `litlab eval list`")

    @staticmethod
    def _info(r: Any) -> RunInfo:
        return RunInfo(r["id"], r["suite"], r["digest"], json.loads(r["config"]),
                       r["created_at"], r["finished_at"])

    # -- results -----------------------------------------------------------------------------
    def done(self, run_id: str) -> set[tuple[str, str, str, int]]:
        return {(r[0], r[1], r[2], r[3]) for r in self.db.execute(
            "SELECT case_id, target, prompt, repeat FROM results WHERE run_id = ?", (run_id,))}

    def add(self, run_id: str, r: Result) -> None:
        with self._lock:
            with transaction(self.db):
                self.db.execute(
                    "INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (run_id, r.case_id, r.target, r.prompt, r.repeat, json.dumps(r.tags),
                     json.dumps(r.output), json.dumps(r.scores), int(r.passed), r.score))
            with (self.folder / run_id / "cases.jsonl").open("a") as f:
                f.write(json.dumps(r.to_dict()) + "\n")

    def results(self, run_id: str) -> list[Result]:
        rows = self.db.execute("SELECT * FROM results WHERE run_id = ? ORDER BY case_id, "
                               "target, prompt, repeat", (run_id,))
        return [Result(r["case_id"], r["target"], r["prompt"], r["repeat"],
                       json.loads(r["tags"]), json.loads(r["output"]), json.loads(r["scores"]),
                       bool(r["passed"]), r["score"]) for r in rows]

    # -- cache -------------------------------------------------------------------------------
    def cached(self, key: str) -> Any:
        row = self.db.execute("SELECT value FROM cache WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def cache(self, key: str, value: Any) -> None:
        with self._lock, transaction(self.db):
            self.db.execute("INSERT OR REPLACE INTO cache VALUES (?, ?, ?)",
                            (key, json.dumps(value), time.time()))
