"""The citations of the selected answer; selecting one shows its passage and paper."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Label, ListItem, ListView, Static


class CitationsPanel(Vertical):
    DEFAULT_CSS = """
    CitationsPanel { width: 42; border-left: solid $primary; padding: 0 1; }
    CitationsPanel ListView { height: auto; max-height: 50%; }
    CitationsPanel #citation-detail { height: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__(id="citations")
        self.citations: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield Label("[b]Sources[/b]")
        yield ListView(id="citation-list")
        with VerticalScroll(id="citation-detail"):
            yield Static("Select a citation to read its passage.", id="citation-text", markup=False)

    def show(self, citations: list[dict[str, Any]]) -> None:
        self.citations = citations
        lv = self.query_one(ListView)
        lv.clear()
        for c in citations:
            lv.append(ListItem(Label(_header(c), markup=False)))
        self.query_one("#citation-text", Static).update(
            "Select a citation to read its passage." if citations else "No sources for this answer.")

    def on_list_view_highlighted(self, event: ListView.Highlighted) -> None:
        index = event.list_view.index
        if index is not None and 0 <= index < len(self.citations):
            c = self.citations[index]
            figures = "".join(f"\n{f}" for f in c.get("figures") or [])
            self.query_one("#citation-text", Static).update(
                f"{_header(c)}\n\n{c.get('text', '')}{figures}")


def _header(c: dict[str, Any]) -> str:
    where = ", ".join(x for x in (c.get("section"), c.get("pages") and f"p. {c['pages']}") if x)
    paper = "" if str(c.get("paper", "")).startswith("file:") else f" ({c.get('paper')})"
    return f"[{c['n']}] {c.get('title') or 'Untitled'}{paper}" + (f", {where}" if where else "")
