"""Figures in the terminal: an image drawn with coloured half blocks (two pixels a cell, any
terminal with true colour, tmux included), and a screen that shows one figure full-size.

Half blocks rather than a graphics protocol (Sixel, Kitty's): detecting one means querying the
terminal before the app starts, which costs the first paint, and several terminals claim a
protocol they then draw wrongly. Half blocks look the same everywhere, snapshots included.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from rich.color import Color
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from agentlab.citations import header


class HalfBlocks:
    """A Rich renderable: the image at ``path`` fitted to the width (and at most ``rows``
    lines), each cell the upper pixel in the foreground and the lower in the background."""

    def __init__(self, path: str, rows: int | None = None) -> None:
        self.path, self.rows = path, rows

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(1, options.max_width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        try:
            pixels, width, height = _pixels(self.path, options.max_width, self.rows or 200)
        except (OSError, ValueError) as e:
            yield Segment(f"(cannot show {Path(self.path).name}: {e})")
            return
        for y in range(0, height, 2):
            for x in range(width):
                top = pixels[y * width + x]
                bottom = pixels[(y + 1) * width + x] if y + 1 < height else (0, 0, 0)
                yield Segment("▀", Style(color=Color.from_rgb(*top),
                                         bgcolor=Color.from_rgb(*bottom)))
            yield Segment.line()


@lru_cache(maxsize=32)
def _pixels(path: str, max_width: int, max_rows: int) -> tuple[list[Any], int, int]:
    """The image's RGB pixels resized to fit ``max_width`` cells and ``max_rows`` lines."""
    from PIL import Image

    from retrievers.images import MAX_PIXELS

    with Image.open(path) as im:
        if im.width * im.height > MAX_PIXELS:
            raise ValueError(f"{im.width}x{im.height} pixels is too large")
        im.draft("RGB", (max_width, 2 * max_rows))  # JPEG: decode at a reduced size
        image = im.convert("RGB")
    # a cell is about twice as tall as wide: one pixel across, two down keeps the aspect
    width = max(1, min(max_width, image.width, int(2 * max_rows * image.width / image.height)))
    height = max(2, round(width * image.height / image.width))
    small = image.resize((width, height), Image.Resampling.LANCZOS)
    return list(small.getdata()), width, height


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
