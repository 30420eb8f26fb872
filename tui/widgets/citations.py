"""The citations of the selected answer; selecting one shows its passage and paper, and a
figure's image (Enter opens it full-size)."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Label, ListItem, ListView, Static

from agentlab.citations import header as _header
from tui.widgets.figure import FigureScreen, FigureView


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
        yield Label("[b]Sources[/b]", id="citations-title")
        yield ListView(id="citation-list")
        with VerticalScroll(id="citation-detail"):
            yield Static("Select a citation to read its passage.", id="citation-text", markup=False)
            yield FigureView(id="citation-figure")

    def show(self, citations: list[dict[str, Any]],
             retrieved: list[dict[str, Any]] | None = None) -> None:
        """The answer's citations; when it cites none, the passages it was given, said so."""
        shown = citations or retrieved or []
        self.citations = shown
        self.query_one("#citations-title", Label).update(
            "[b]Sources[/b]" if citations or not shown
            else "[b]Retrieved[/b] (the answer cites none of them)")
        lv = self.query_one(ListView)
        lv.clear()
        for c in shown:
            lv.append(ListItem(Label(_header(c), markup=False)))
        self.query_one("#citation-text", Static).update(
            "Select a source to read its passage." if shown else "No sources for this answer.")
        self.query_one(FigureView).show(None)

    def on_list_view_highlighted(self, event: ListView.Highlighted) -> None:
        index = event.list_view.index
        if index is not None and 0 <= index < len(self.citations):
            c = self.citations[index]
            figures = "".join(f"\n{f}" for f in c.get("figures") or [])
            opens = "\n\nEnter: the figure full-size" if c.get("image_path") else ""
            self.query_one("#citation-text", Static).update(
                f"{_header(c)}\n\n{c.get('text', '')}{figures}{opens}")
            self.query_one(FigureView).show(c.get("image_path"))

    def on_list_view_selected(self, event: ListView.Selected) -> None:
        index = event.list_view.index
        if index is not None and 0 <= index < len(self.citations) \
                and self.citations[index].get("figure_id") is not None:
            self.app.push_screen(FigureScreen(self.citations[index]))
