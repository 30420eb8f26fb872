"""A modal editor: rename a conversation, or correct an answer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, TextArea


class EditScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Save")]
    DEFAULT_CSS = """
    EditScreen { align: center middle; }
    EditScreen > Vertical { width: 80%; height: auto; max-height: 80%; border: thick $accent;
                            background: $surface; padding: 1 2; }
    EditScreen TextArea { height: 16; }
    """

    def __init__(self, title: str, text: str, single_line: bool = False) -> None:
        super().__init__()
        self.title_text, self.text, self.single_line = title, text, single_line

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"[b]{self.title_text}[/b]  (ctrl+s saves, Esc cancels)")
            if self.single_line:
                yield Input(self.text, id="edit")
            else:
                yield TextArea(self.text, id="edit")

    def on_mount(self) -> None:
        self.query_one("#edit").focus()

    def on_input_submitted(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        widget = self.query_one("#edit")
        self.dismiss(widget.value if isinstance(widget, Input) else widget.text)  # type: ignore[attr-defined]

    def action_cancel(self) -> None:
        self.dismiss(None)
