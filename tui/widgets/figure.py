"""Figures in the app: an image in a panel and a screen that shows one figure full-size, both
drawn with half blocks (:mod:`retrievers.halfblocks`)."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from agentlab.citations import header
from retrievers.halfblocks import HalfBlocks


class FigureView(Static):
    """A figure image inside a panel; shows nothing for a figure without one."""

    DEFAULT_CSS = "FigureView { height: auto; margin: 1 0 0 0; display: none; }"

    def show(self, path: str | None, rows: int = 14) -> None:
        self.display = bool(path)
        self.update(HalfBlocks(path, rows) if path else "")


class FigureScreen(ModalScreen[None]):
    """One figure full-size: where it is from, its caption, the image; Esc closes."""

    DEFAULT_CSS = """
    FigureScreen { align: center middle; }
    FigureScreen > VerticalScroll { width: 90%; height: 90%; border: thick $primary;
                                    background: $surface; padding: 0 1; }
    FigureScreen #figure-title { text-style: bold; }
    """
    BINDINGS = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, figure: dict[str, Any]) -> None:
        super().__init__()
        self.figure = figure

    def compose(self) -> ComposeResult:
        f = self.figure
        with VerticalScroll():
            yield Label(header(f) if "n" in f else str(f.get("title", "")), id="figure-title",
                        markup=False)
            yield Static(str(f.get("text") or f.get("caption") or ""), id="figure-caption",
                         markup=False)
            path = f.get("image_path")
            yield Static(HalfBlocks(path, rows=max(8, self.app.size.height - 10)) if path
                         else "(this figure has no image file)", id="figure-image")
            if path:
                yield Label(str(path), id="figure-path", markup=False)
