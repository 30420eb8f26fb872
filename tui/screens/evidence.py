"""The evidence of an answer: each of its sentences coloured by verdict; the selected one shows
the source sentence that supports it, or the source's value that contradicts it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label

from tui.widgets.verdicts import Row, VerdictList


class EvidenceScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,ctrl+o,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    EvidenceScreen { align: center middle; }
    EvidenceScreen > Vertical { width: 90%; height: 80%; border: thick $accent;
                                background: $surface; padding: 0 1; }
    """

    def __init__(self, rows: list[Row], question: str) -> None:
        super().__init__()
        self.rows, self.question = rows, question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"[b]Evidence[/b] for the answer to “{self.question[:80]}” "
                        "(↑↓ selects a sentence, Esc closes)")
            yield VerdictList(id="evidence")

    def on_mount(self) -> None:
        verdicts = self.query_one(VerdictList)
        verdicts.show(self.rows)
        verdicts.query_one("#verdict-list").focus()
