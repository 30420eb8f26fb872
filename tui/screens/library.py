"""The library: papers with a filter, details, removal, and adding papers from arXiv while you
keep chatting (indexing runs in a worker, can be cancelled, and reports failures per paper)."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import (
    DataTable,
    Footer,
    Input,
    Label,
    ListItem,
    ListView,
    ProgressBar,
    Static,
)

from tui.widgets.figure import FigureScreen


class Cancelled(Exception):
    """The person cancelled the index run (between two steps: nothing half-written)."""


class LibraryScreen(Screen[None]):
    BINDINGS = [
        Binding("f2", "app.switch_mode('chat')", "Chat"),
        Binding("a", "focus_add", "Add papers"),
        Binding("slash", "focus_filter", "Filter"),
        Binding("delete", "remove", "Remove"),
        Binding("f", "focus_figures", "Figures"),
        Binding("escape", "cancel", "Cancel indexing"),
        Binding("f1", "app.push_screen('help')", "Help"),
    ]
    DEFAULT_CSS = """
    #inputs { height: 3; }
    #inputs Input { width: 1fr; }
    #papers { height: 1fr; }
    #bottom { height: 12; border-top: solid $primary; }
    #details { width: 1fr; padding: 0 1; }
    #paper-figures { width: 48; border-left: solid $primary; }
    #indexing { height: 2; padding: 0 1; }
    #indexing ProgressBar { width: 30; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._cancel = threading.Event()
        self._papers: list[Any] = []
        self._figures: list[tuple[Any, Any]] = []  # the selected paper's (paper, figure)
        self.indexing = False

    @property
    def services(self) -> Any:
        return self.app.services  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        with Vertical():
            with Horizontal(id="inputs"):
                yield Input(placeholder="/ filter by title, id or category", id="filter")
                yield Input(placeholder="a: add arXiv ids (1706.03762 …), ?search query or a path",
                            id="add")
            yield DataTable(id="papers", cursor_type="row", zebra_stripes=True)
            with Horizontal(id="indexing"):
                yield ProgressBar(id="progress", show_eta=False)
                yield Label("", id="index-status")
            with Horizontal(id="bottom"):
                with VerticalScroll(id="details"):
                    yield Static("Select a paper to see its abstract, sections and figures.",
                                 id="paper-details", markup=False)
                yield ListView(id="paper-figures")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("paper", "title", "year", "state")
        self.query_one("#progress", ProgressBar).display = False
        table.focus()  # so "a", "/" and delete work at once
        self.refresh_papers()

    def on_screen_resume(self) -> None:
        self.refresh_papers()

    @work(thread=True, group="papers", exclusive=True)
    def refresh_papers(self) -> None:
        papers = self.services.library.catalog.papers()
        self.app.call_from_thread(self._show_papers, papers)

    def _show_papers(self, papers: list[Any]) -> None:
        self._papers = papers
        words = self.query_one("#filter", Input).value.lower().split()
        table = self.query_one(DataTable)
        table.clear()
        for p in papers:
            ident = p.arxiv_id or p.key.removeprefix("file:").rsplit("/", 1)[-1]
            hay = " ".join([ident, p.title, *p.categories]).lower()
            if all(w in hay for w in words):
                table.add_row(ident, p.title[:70], str(p.year or ""), p.state, key=p.key)

    @on(Input.Changed, "#filter")
    def filter_changed(self) -> None:
        self._show_papers(self._papers)

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_focus_add(self) -> None:
        self.query_one("#add", Input).focus()

    @on(DataTable.RowHighlighted)
    def show_details(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value if event.row_key else None
        paper = next((p for p in self._papers if p.key == key), None)
        if paper is None:
            return
        lib = self.services.library
        sections = list(dict.fromkeys(c.section for c in lib.catalog.chunks_of(paper.id)
                                      if c.section))
        figures = lib.catalog.figures_of(paper.id)
        source = paper.source if "://" in paper.source else f"file {Path(paper.source).name}"
        lines = [paper.title, ", ".join(paper.authors[:6]), source, "",
                 paper.abstract or "(no abstract)", "",
                 "Sections: " + ("; ".join(sections) or "none")]
        lines += [f"{f.name}: {f.caption}" for f in figures]
        if paper.error:
            lines.append(f"Last failure: {paper.error}")
        self.query_one("#paper-details", Static).update("\n".join(lines))
        self._figures = [(paper, f) for f in figures]
        shown = self.query_one("#paper-figures", ListView)
        shown.clear()
        for _p, f in self._figures:
            page = f", p. {f.page}" if f.page else ""
            mark = "▣" if f.image_path and not f.skipped else "□"
            shown.append(ListItem(Label(f"{mark} {f.name}{page}: {f.caption[:60]}",
                                        markup=False)))
        shown.border_title = f"Figures ({len(figures)}) · f, Enter opens"

    def action_focus_figures(self) -> None:
        figures = self.query_one("#paper-figures", ListView)
        if figures.index is None and len(figures):
            figures.index = 0
        figures.focus()

    @on(ListView.Selected, "#paper-figures")
    def open_figure(self, event: ListView.Selected) -> None:
        index = event.list_view.index
        if index is None or not 0 <= index < len(self._figures):
            return
        paper, f = self._figures[index]
        where = ", ".join(x for x in (f.name, f.section, f"p. {f.page}" if f.page else "") if x)
        self.app.push_screen(FigureScreen({
            "title": f"{paper.title} · {where}", "caption": f.caption or "(no caption)",
            "image_path": None if f.skipped else f.image_path,
            "text": f"{f.caption or '(no caption)'}"
                    + (f"\n(image skipped: {f.skipped})" if f.skipped else "")}))

    def action_remove(self) -> None:
        table = self.query_one(DataTable)
        if self.indexing or table.row_count == 0:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        self._remove(str(key))

    @work(thread=True, group="papers")
    def _remove(self, key: str) -> None:
        from litcore.errors import UserError

        library = self.services.open_library()
        try:
            paper = library.remove(key)
            self.app.call_from_thread(self.notify, f"removed {paper.title or key}")
        except UserError as e:
            self.app.call_from_thread(self.notify, str(e), severity="error")
        finally:
            library.close()
            self.services.library_changed()
        self.refresh_papers()

    # -- adding ------------------------------------------------------------------------------
    @on(Input.Submitted, "#add")
    def add(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        if self.indexing:
            self.notify("an index run is going: wait, or press Esc to cancel it",
                        severity="warning")
            return
        event.input.value = ""
        query = text[1:].strip() if text.startswith("?") else None
        refs = [] if query else text.replace(",", " ").split()
        paths = [Path(r).expanduser() for r in refs if _is_path(r)]
        self.indexing = True
        self._cancel.clear()
        bar = self.query_one("#progress", ProgressBar)
        bar.display = True
        bar.update(total=None, progress=0)
        self.query_one("#index-status", Label).update(f"indexing {text} …")
        self.index([r for r in refs if not _is_path(r)], query, paths)

    @work(thread=True, group="index")
    def index(self, refs: list[str], query: str | None, paths: list[Path]) -> None:
        from litcore.errors import UserError
        from retrievers.library import IndexReport

        call = self.app.call_from_thread

        def progress(message: str) -> None:
            if self._cancel.is_set():
                raise Cancelled
            call(self._progress, message)

        arxiv = self.services.arxiv
        library = self.services.open_library()
        report = IndexReport()
        try:
            runs = []
            managed = [p for p in paths if _reference_manager(p)]
            for source in managed:  # a .bib file, a Zotero data directory
                runs.append(self._import(library, source, progress))
            if files := [p for p in paths if p not in managed]:
                runs.append(library.index_files(files, progress=progress))
            if refs or query:
                runs.append(library.index_arxiv(refs, query=query, max_results=10,
                                                client=arxiv() if arxiv else None,
                                                progress=progress))
            for run in runs:
                for name in ("added", "replaced", "unchanged", "failed", "notes"):
                    getattr(report, name).extend(getattr(run, name))
        except Cancelled:
            call(self._indexed, "indexing cancelled; what finished is kept", "warning")
            return
        except UserError as e:
            call(self._indexed, str(e), "error")
            return
        except Exception as e:  # noqa: BLE001 - a notification, never a crash
            log = self.services.log_bug(e)
            call(self._indexed, f"indexing failed: {type(e).__name__}: {e} (a bug: the "
                                f"traceback is in {log})", "error")
            return
        finally:
            library.close()
            self.services.library_changed()
        done = len(report.added) + len(report.replaced)
        summary = f"indexed {done}, unchanged {len(report.unchanged)}"
        if report.failed:
            summary += "; failed: " + "; ".join(f"{r}: {why}" for r, why in report.failed)
        if report.notes:
            summary += "; note: " + "; ".join(f"{r}: {why}" for r, why in report.notes)
        call(self._indexed, summary, "error" if report.failed else "information")

    def _import(self, library: Any, source: Path, progress: Any) -> Any:
        from retrievers.sources.references import read_bib, read_zotero

        refs, problems = read_bib(source) if source.suffix.lower() == ".bib" \
            else read_zotero(source)
        arxiv = self.services.arxiv
        run = library.index_references(refs, progress, arxiv() if arxiv else None)
        run.failed[:0] = problems
        return run

    def _progress(self, message: str) -> None:
        self.query_one("#index-status", Label).update(message)
        counted = re.match(r"embedded (\d+)/(\d+)", message)  # chunks, captions, images
        if counted:
            self.query_one("#progress", ProgressBar).update(total=int(counted.group(2)),
                                                            progress=int(counted.group(1)))

    def _indexed(self, summary: str, severity: str) -> None:
        self.indexing = False
        self.query_one("#progress", ProgressBar).display = False
        self.query_one("#index-status", Label).update(summary)
        self.notify(summary, severity=severity)  # type: ignore[arg-type]
        self.refresh_papers()

    def action_cancel(self) -> None:
        if self.indexing:
            self._cancel.set()
            self.query_one("#index-status", Label).update("cancelling after this step …")



def _is_path(ref: str) -> bool:
    """A local file or folder (what exists, or what is written as a path), not an arXiv id."""
    return ref.startswith(("/", "~", "./", "../")) or Path(ref).expanduser().exists()


def _reference_manager(path: Path) -> bool:
    """A .bib file or a Zotero data directory: imported with its citation keys and tags."""
    return path.suffix.lower() == ".bib" or (path / "zotero.sqlite").is_file()
