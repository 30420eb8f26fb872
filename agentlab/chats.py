"""``chats.sqlite``: conversations, each turn's trace (retrieval, prompt, tool calls, model
timings) and the person's feedback on answers (thumbs, corrected text).

A turn (the question, the answer and its trace) is written in one transaction: a crash keeps
either all of it or none.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from agentlab.citations import header
from litcore.sqlite import connect, transaction

T = TypeVar("T")

MIGRATIONS: list[str] = [
    """
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        content TEXT NOT NULL,
        reasoning TEXT NOT NULL DEFAULT '',
        citations TEXT NOT NULL DEFAULT '[]',
        model TEXT,
        prompt TEXT,
        created_at REAL NOT NULL
    );
    CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
    CREATE TABLE steps (
        id INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        ord INTEGER NOT NULL,
        kind TEXT NOT NULL,
        ms REAL NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX steps_by_message ON steps(message_id, ord);
    CREATE TABLE feedback (
        message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
        rating INTEGER CHECK (rating IN (-1, 0, 1)),
        preferred TEXT,
        updated_at REAL NOT NULL
    )
    """,
]


@dataclass
class Step:
    """One traced step of a turn: retrieve, prompt, generate, tool, ..."""

    kind: str
    ms: float
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "ms": round(self.ms, 2), **self.data}


@dataclass
class Message:
    id: int
    conversation_id: int
    role: str
    content: str
    reasoning: str = ""
    citations: list[dict[str, Any]] = field(default_factory=list)
    model: str | None = None
    prompt: str | None = None


@dataclass
class RatedTurn:
    """An answer with the person's feedback on it."""

    message_id: int
    question: str
    answer: str
    rating: int | None  # +1, -1, or None (only corrected)
    preferred: str | None  # the person's corrected answer
    model: str | None
    prompt: str | None  # the template it was asked with
    chunk_ids: list[int]  # its sources, numbered from 1 in this order; a figure as -its id


@dataclass
class Conversation:
    id: int
    title: str
    updated_at: float


def _serialised(method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def run(self: ChatStore, *args: Any, **kwargs: Any) -> T:
        with self._lock:
            return method(self, *args, **kwargs)

    return run


class ChatStore:
    def __init__(self, path: Path) -> None:
        self.db = connect(path, MIGRATIONS)
        # The app reads on its UI thread while a worker writes a turn: one connection, taken
        # in turns.
        self._lock = threading.RLock()

    def close(self) -> None:
        self.db.close()

    # -- conversations -------------------------------------------------------------------------
    @_serialised
    def new_conversation(self, title: str) -> int:
        now = time.time()
        with transaction(self.db):
            cur = self.db.execute(
                "INSERT INTO conversations (title, created_at, updated_at) VALUES (?, ?, ?)",
                (title.strip()[:120] or "Untitled", now, now))
        return int(cur.lastrowid or 0)

    @_serialised
    def conversations(self) -> list[Conversation]:
        rows = self.db.execute(
            "SELECT id, title, updated_at FROM conversations ORDER BY updated_at DESC, id DESC")
        return [Conversation(r["id"], r["title"], r["updated_at"]) for r in rows]

    @_serialised
    def rename(self, conversation_id: int, title: str) -> None:
        with transaction(self.db):
            self.db.execute("UPDATE conversations SET title = ? WHERE id = ?",
                            (title.strip()[:120] or "Untitled", conversation_id))

    @_serialised
    def delete(self, conversation_id: int) -> None:
        with transaction(self.db):
            self.db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    @_serialised
    def messages(self, conversation_id: int) -> list[Message]:
        rows = self.db.execute("SELECT * FROM messages WHERE conversation_id = ? ORDER BY id",
                               (conversation_id,))
        return [Message(r["id"], r["conversation_id"], r["role"], r["content"], r["reasoning"],
                        json.loads(r["citations"]), r["model"], r["prompt"]) for r in rows]

    # -- turns ---------------------------------------------------------------------------------
    def save_answer(self, conversation_id: int | None, answer: Any) -> tuple[int, int]:
        """Store an :class:`~agentlab.assistant.Answer` as a turn, in a new conversation named
        after its question when ``conversation_id`` is None. Returns (conversation, message)."""
        if conversation_id is None:
            conversation_id = self.new_conversation(answer.question)
        message_id = self.add_turn(
            conversation_id, answer.question, answer.text, reasoning=answer.reasoning,
            citations=[c.to_dict() for c in answer.citations], model=answer.model,
            prompt=answer.prompt, steps=answer.steps)
        return conversation_id, message_id

    @_serialised
    def add_turn(self, conversation_id: int, question: str, answer: str, *,
                 reasoning: str = "", citations: list[dict[str, Any]] | None = None,
                 model: str | None = None, prompt: str | None = None,
                 steps: list[Step] | None = None) -> int:
        """Store a question, its answer and the answer's trace; returns the answer's id."""
        now = time.time()
        with transaction(self.db):
            self.db.execute(
                "INSERT INTO messages (conversation_id, role, content, created_at) "
                "VALUES (?, 'user', ?, ?)", (conversation_id, question, now))
            cur = self.db.execute(
                "INSERT INTO messages (conversation_id, role, content, reasoning, citations, "
                "model, prompt, created_at) VALUES (?, 'assistant', ?, ?, ?, ?, ?, ?)",
                (conversation_id, answer, reasoning, json.dumps(citations or []), model, prompt,
                 now))
            message_id = int(cur.lastrowid or 0)
            self.db.executemany(
                "INSERT INTO steps (message_id, ord, kind, ms, data) VALUES (?, ?, ?, ?, ?)",
                [(message_id, i, s.kind, s.ms, json.dumps(s.data, default=str))
                 for i, s in enumerate(steps or [])])
            self.db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?",
                            (now, conversation_id))
        return message_id

    @_serialised
    def trace(self, message_id: int) -> list[Step]:
        rows = self.db.execute("SELECT kind, ms, data FROM steps WHERE message_id = ? ORDER BY ord",
                               (message_id,))
        return [Step(r["kind"], r["ms"], json.loads(r["data"])) for r in rows]

    # -- feedback ------------------------------------------------------------------------------
    @_serialised
    def set_feedback(self, message_id: int, *, rating: int | None = None,
                     preferred: str | None = None) -> None:
        """Thumbs (+1/-1, 0 clears) and/or a corrected answer the person prefers."""
        with transaction(self.db):
            self.db.execute(
                "INSERT INTO feedback (message_id, rating, preferred, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (message_id) DO UPDATE SET "
                "rating = COALESCE(excluded.rating, rating), "
                "preferred = COALESCE(excluded.preferred, preferred), "
                "updated_at = excluded.updated_at",
                (message_id, rating, preferred, time.time()))

    @_serialised
    def feedback(self, message_id: int) -> tuple[int | None, str | None]:
        row = self.db.execute("SELECT rating, preferred FROM feedback WHERE message_id = ?",
                              (message_id,)).fetchone()
        return (row["rating"], row["preferred"]) if row else (None, None)

    @_serialised
    def rated_turns(self) -> list[RatedTurn]:
        """Every answer the person rated or corrected, with its question and the chunks its
        sources came from (what fine-tuning rebuilds the prompt from)."""
        rows = self.db.execute(
            "SELECT a.id, a.content, a.model, a.prompt, f.rating, f.preferred, "
            "(SELECT q.content FROM messages q WHERE q.conversation_id = a.conversation_id "
            " AND q.role = 'user' AND q.id < a.id ORDER BY q.id DESC LIMIT 1) AS question, "
            "(SELECT s.data FROM steps s WHERE s.message_id = a.id AND s.kind = 'retrieve' "
            " ORDER BY s.ord DESC LIMIT 1) AS retrieved "
            "FROM feedback f JOIN messages a ON a.id = f.message_id "
            "WHERE a.role = 'assistant' AND (f.rating IN (-1, 1) OR f.preferred IS NOT NULL) "
            "ORDER BY a.id")
        out = []
        for r in rows:
            retrieved = json.loads(r["retrieved"]) if r["retrieved"] else {}
            out.append(RatedTurn(
                int(r["id"]), str(r["question"] or ""), r["content"], r["rating"],
                r["preferred"] if r["preferred"] and r["preferred"].strip() else None,
                r["model"], r["prompt"],
                [-int(s["figure_id"]) if s.get("figure_id") else int(s["chunk_id"])
                 for s in retrieved.get("sources", [])]))
        return out

    def preference_counts(self) -> dict[str, int]:
        """What feedback has collected for fine-tuning: SFT examples and DPO pairs."""
        from collections import defaultdict

        turns = self.rated_turns()
        by_question: dict[str, list[RatedTurn]] = defaultdict(list)
        for t in turns:
            by_question[t.question.strip().lower()].append(t)
        pairs = sum(1 for t in turns if t.preferred and t.preferred.strip() != t.answer.strip())
        for group in by_question.values():
            up = sum(1 for t in group if t.rating == 1)
            down = sum(1 for t in group if t.rating == -1)
            pairs += up * down
        good = sum(1 for t in turns if t.rating == 1 or t.preferred)
        return {"rated": len(turns), "sft": good, "pairs": pairs}

    @_serialised
    def export_markdown(self, conversation_id: int) -> str:
        title = self.db.execute("SELECT title FROM conversations WHERE id = ?",
                                (conversation_id,)).fetchone()
        out = [f"# {title['title'] if title else 'Conversation'}", ""]
        for m in self.messages(conversation_id):
            out += [f"**{'You' if m.role == 'user' else 'litlab'}:** {m.content}", ""]
            for c in m.citations:
                out.append(f"- {header(c)}")
            if m.citations:
                out.append("")
        return "\n".join(out)
