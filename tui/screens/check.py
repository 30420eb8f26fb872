"""Check a draft against the library (ctrl+t from the chat): paste it (or open a file), ctrl+r
checks it; every sentence comes back coloured by verdict, and the selected one shows the
source's words behind it. Nothing is written to the library."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, TextArea

from tui.widgets.verdicts import Row, VerdictList


class CheckScreen(Screen[None]):
    BINDINGS = [
        Binding("ctrl+r", "check", "Check the draft"),
        Binding("ctrl+t,escape", "app.switch_mode('chat')", "Chat"),
        Binding("f1", "app.push_screen('help')", "Help"),
    ]
    DEFAULT_CSS = """
    CheckScreen #draft { height: 12; }
    CheckScreen #verdicts { height: 1fr; }
    CheckScreen #check-status { height: 1; padding: 0 1; color: $text-muted; }
    """

    @property
    def services(self) -> Any:
        return self.app.services  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Check a draft[/b]: paste it below or open a file (Markdown, LaTeX, "
                        "text); ctrl+r checks every sentence against the library")
            yield Input(placeholder="a file to open (Enter), e.g. ~/paper/intro.md", id="path")
            yield TextArea("", id="draft")
            yield Label("", id="check-status")
            yield VerdictList(id="verdicts")
        yield Footer()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        from pathlib import Path

        from agentlab.check import read_draft
        from litcore.errors import UserError

        try:
            text, _kind = read_draft(str(Path(event.value.strip()).expanduser()))
        except UserError as e:
            self.notify(str(e), severity="error")
            return
        self.query_one("#draft", TextArea).text = text
        self.query_one("#check-status", Label).update(f"opened {event.value.strip()}")

    def action_check(self) -> None:
        text = self.query_one("#draft", TextArea).text
        path = self.query_one("#path", Input).value.strip()
        kind = "latex" if path.endswith(".tex") else "markdown" if path.endswith(".md") \
            else "text"
        self.query_one("#check-status", Label).update("checking…")
        self.check(text, kind)

    @work(thread=True, group="check", exclusive=True)
    def check(self, text: str, kind: str) -> None:
        from agentlab.check import check_draft
        from litcore.errors import UserError

        call = self.app.call_from_thread
        status = self.query_one("#check-status", Label)
        try:
            library = self.services.open_library()  # its own: this worker reads beside the chat
            if library.catalog.is_empty():
                raise UserError("the library is empty: nothing to check against",
                                "add papers on the library screen (F2)")
            checked = check_draft(text, kind, library, progress=lambda done, total: call(
                status.update, f"checking {done}/{total} sentences…"))
        except UserError as e:
            call(status.update, str(e))
            call(self.notify, str(e), severity="error")
            return
        rows = [Row(c.text, c.verdict, c.evidence, c.line) for c in checked]
        call(self.query_one(VerdictList).show, rows)
        call(status.update, "↑↓ selects a sentence; its evidence shows below")
