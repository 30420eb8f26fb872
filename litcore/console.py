"""Console output the command groups share: a one-line spinner, a progress bar and JSON.

On a terminal they draw with Rich on stderr; on a pipe or in CI they print plain lines, so a
log shows where a long run got to.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click


@contextmanager
def progress_line() -> Iterator[Callable[[str], None]]:
    """A one-line spinner on a terminal; plain lines on stderr otherwise."""
    if sys.stderr.isatty():
        from rich.console import Console

        console = Console(stderr=True)
        with console.status("") as status:
            yield lambda msg: status.update(f"[dim]{msg}[/]")
    else:
        yield lambda msg: click.echo(msg, err=True)


class progress_bar:
    """A progress bar for long work: done/total, a note (loss, pass rate...) and the time
    left; on a pipe or in CI, a plain line every ``every`` steps and at the end. :meth:`say`
    prints a line above the bar (a stage that begins, a note), never on the bar's own line.
    ``console``: where to draw (a Rich console; stderr by default)."""

    def __init__(self, label: str, every: int = 10, console: Any = None) -> None:
        self.label, self.every, self.console = label, every, console

    def __enter__(self) -> Callable[[int, int, str], None]:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        console = self.console or Console(stderr=True)
        self.tty = tty = console.is_terminal
        self.progress = Progress(TextColumn(f"[b]{self.label}[/b]"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[note]}"),
                                 TimeRemainingColumn(), transient=True, disable=not tty,
                                 console=console)
        self.progress.start()
        task = self.progress.add_task(self.label, total=None, note="")
        last = [-1]

        def update(done: int, total: int, note: str = "") -> None:
            self.progress.update(task, completed=done, total=total or None, note=note)
            if not tty and (done == total or done - last[0] >= self.every):
                last[0] = done
                click.echo(f"{self.label}: {done}/{total} {note}".rstrip(), err=True)

        return update

    def say(self, msg: str) -> None:
        """``msg`` on a line of its own: above the live bar on a terminal, plain otherwise."""
        if getattr(self, "tty", False):
            self.progress.console.print(msg, markup=False, highlight=False, soft_wrap=True)
        else:
            click.echo(msg, err=True)

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def echo_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (paths, dates and other objects as strings)."""
    click.echo(json.dumps(data, indent=2, default=str))
