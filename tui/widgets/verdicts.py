"""Sentences coloured by verdict (supported, contradicted, not found); the selected one shows
the source's words behind its verdict: the sentence that supports it, or the value that
contradicts it, with the paper, section and page. The answer's evidence screen and the Check
screen both use it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Label, ListItem, ListView, Static

MARKS = {"supported": ("✓", "green"), "contradicted": ("✗", "red"),
         "not_found": ("?", "yellow")}


@dataclass
class Row:
    """A sentence with its verdict and evidence (each: quote, reason, and where it is)."""

    text: str
    verdict: str
    evidence: list[dict[str, Any]] = field(default_factory=list)
    line: int | None = None


def rows_of_answer(answer: Any) -> list[Row]:
    """The claims of an :class:`~agentlab.assistant.Answer`, with their sources' words."""
    by_n = {s.n: s for s in answer.sources}
    rows = []
    for s in answer.sentences:
        if not s.claim:
            continue
        evidence = []
        for e in s.evidence:
            src = by_n.get(e.n)
            evidence.append({**e.to_dict(), "title": src.title if src else "",
                             "section": src.section if src else "",
                             "pages": src.pages if src else "",
                             "paper": src.paper if src else ""})
        rows.append(Row(s.text, s.verdict, evidence))
    return rows


def describe(row: Row) -> str:
    """The evidence of a row, as the detail pane shows it."""
    if not row.evidence:
        return "No passage of the library bears on this sentence."
    lead = {"supported": "Supported by", "contradicted": "Contradicted by",
            "not_found": "Not found. The closest passage"}[row.verdict]
    parts = []
    for e in row.evidence:
        where = ", ".join(x for x in (e.get("section"), f"p. {e['pages']}" if e.get("pages")
                                      else "") if x)
        reason = f"\n({e['reason']})" if e.get("reason") else ""
        parts.append(f"{lead} [{e.get('source', '')}] {e.get('title', '')}"
                     f"{', ' + where if where else ''}:\n“{e['quote']}”{reason}")
    return "\n\n".join(parts)


class VerdictList(Vertical):
    DEFAULT_CSS = """
    VerdictList ListView { height: 1fr; }
    VerdictList #verdict-detail { height: 12; border-top: solid $primary; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.rows: list[Row] = []

    def compose(self) -> ComposeResult:
        yield Label("", id="verdict-summary")
        yield ListView(id="verdict-list")
        with VerticalScroll(id="verdict-detail"):
            yield Static("Select a sentence to see the source's words behind its verdict.",
                         id="verdict-evidence", markup=False)

    def show(self, rows: list[Row]) -> None:
        self.rows = rows
        counts = {v: sum(r.verdict == v for r in rows) for v in MARKS}
        self.query_one("#verdict-summary", Label).update(
            f"{len(rows)} sentences: {counts['supported']} supported, "
            f"{counts['contradicted']} contradicted, {counts['not_found']} not found")
        lv = self.query_one(ListView)
        lv.clear()
        for r in rows:
            mark, colour = MARKS[r.verdict]
            where = f"line {r.line}: " if r.line is not None else ""
            lv.append(ListItem(Label(Text(f"{mark} {where}{r.text}", style=colour))))
        if rows:
            lv.index = 0

    def on_list_view_highlighted(self, event: ListView.Highlighted) -> None:
        index = event.list_view.index
        if index is not None and 0 <= index < len(self.rows):
            self.query_one("#verdict-evidence", Static).update(describe(self.rows[index]))
