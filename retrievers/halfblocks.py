"""Images drawn with coloured half blocks: two pixels a character cell (upper in the foreground,
lower in the background), in any terminal with true colour or 256 colours, tmux included. A Rich
renderable, so `litlab search --figures --show` and the app draw figures the same way.

Half blocks rather than a graphics protocol (Sixel, Kitty's): detecting one means querying the
terminal before an app starts, which costs the first paint, and several terminals claim a
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

    from retrievers.parsing.images import MAX_PIXELS

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
