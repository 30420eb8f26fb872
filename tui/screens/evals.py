"""Evaluations: suites and past runs; run a suite with live progress; a run's results as a table
with bars per assertion; two runs compared with regressions highlighted."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, ListItem, ListView, ProgressBar, Static

BAR = 20


def bar(rate: float) -> str:
    """A pass rate as a bar of BAR cells: ████████░░ 80%."""
    full = round(rate * BAR)
    return "█" * full + "░" * (BAR - full) + f" {rate:4.0%}"


class EvalsScreen(Screen[None]):
    BINDINGS = [
        Binding("f10", "app.switch_mode('chat')", "Chat"),
        Binding("r", "run_suite", "Run suite"),
        Binding("space", "mark", "Mark for compare"),
        Binding("c", "compare", "Compare with marked"),
        Binding("escape", "stop", "Stop run"),
        Binding("f1", "app.push_screen('help')", "Help"),
    ]
    DEFAULT_CSS = """
    #suites { width: 34; border-right: solid $primary; }
    #suites ListView { height: 1fr; }
    #runs { height: 12; }
    #running { height: 2; padding: 0 1; }
    #running ProgressBar { width: 30; }
    #result { height: 1fr; border-top: solid $primary; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._suites: list[Path] = []
        self._runs: list[Any] = []
        self._marked: str | None = None
        self._stop = threading.Event()
        self.running = False

    @property
    def services(self) -> Any:
        return self.app.services  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="suites"):
                yield Label("[b]Suites[/b]  (r runs the selected)")
                yield ListView(id="suite-list")
            with Vertical():
                yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
                with Horizontal(id="running"):
                    yield ProgressBar(id="progress", show_eta=False)
                    yield Label("", id="run-status")
                with VerticalScroll(id="result"):
                    yield Static("Select a run to see its results; space marks one, c compares "
                                 "the selected run with it.", id="run-details", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("run", "results", "passed", "state")
        self.query_one("#progress", ProgressBar).display = False
        self.load()

    def on_screen_resume(self) -> None:
        self.load()

    @work(thread=True, group="evals-list", exclusive=True)
    def load(self) -> None:
        from evals.runner import shipped_suites
        from evals.store import RunStore

        own = self.services.settings.home_dir / "suites"
        suites = shipped_suites() + (sorted(own.glob("*.yaml")) if own.is_dir() else [])
        store = RunStore(self.services.settings.home_dir)
        try:
            runs = [(info, store.results(info.id)) for info in store.runs()]
        finally:
            store.close()
        self.app.call_from_thread(self._show, suites, runs)

    def _show(self, suites: list[Path], runs: list[Any]) -> None:
        if suites != self._suites:
            self._suites = suites
            lv = self.query_one("#suite-list", ListView)
            lv.clear()
            for path in suites:
                lv.append(ListItem(Label(path.stem, markup=False)))
            if suites:
                lv.index = 0  # r runs something at once; Tab and the arrows choose another
        self._runs = runs
        table = self.query_one(DataTable)
        table.clear()
        for info, results in runs:
            rate = sum(r.passed for r in results) / len(results) if results else 0.0
            mark = "● " if info.id == self._marked else ""
            state = "done" if info.finished_at else "interrupted"
            table.add_row(mark + info.id, str(len(results)), f"{rate:.0%}", state, key=info.id)

    def _selected_run(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return str(key) if key is not None else None

    @on(DataTable.RowHighlighted)
    def show_run(self, event: DataTable.RowHighlighted) -> None:
        from evals.report import summarise

        key = event.row_key.value if event.row_key else None
        found = next(((info, rs) for info, rs in self._runs if info.id == key), None)
        if found is None:
            return
        info, results = found
        summary = summarise(results)
        lines = [f"{info.id}: {summary['pass_rate']:.0%} of {summary['cases']} passed", ""]
        for g in summary["groups"]:
            lines.append(f"{g['target']} / {g['prompt']}  ({g['cases']} cases)")
            lines.append(f"  {'all checks':<14} {bar(g['pass_rate'])}")
            for label, a in g["assertions"].items():
                lines.append(f"  {label[:14]:<14} {bar(a['pass_rate'])}")
            lines.append("")
        for w in summary["worst"]:
            why = "; ".join(f"{k}: {v}" for k, v in w["failed"].items() if v)
            lines.append(f"✗ {w['case']} ({w['target']}/{w['prompt']}): {why or w['error']}")
        self.query_one("#run-details", Static).update("\n".join(lines))

    # -- running -----------------------------------------------------------------------------
    def action_run_suite(self) -> None:
        if self.running:
            self.notify("a suite is running: wait, or press Esc to stop it", severity="warning")
            return
        index = self.query_one("#suite-list", ListView).index
        if index is None or not self._suites:
            self.notify("select a suite first", severity="warning")
            return
        self._stop.clear()
        self.running = True
        self.query_one("#progress", ProgressBar).display = True
        self.query_one("#run-status", Label).update(f"running {self._suites[index].stem}…")
        self.run_suite(self._suites[index])

    @work(thread=True, group="evals-run", exclusive=True)
    def run_suite(self, path: Path) -> None:
        from evals.runner import run_suite
        from evals.suite import load_suite
        from litcore.errors import UserError

        call = self.app.call_from_thread

        def progress(done: int, total: int, passed: int) -> None:
            call(self._progress, done, total, passed)

        try:
            suite = load_suite(path)
            self.services.wait_for_server(self._stop)
            summary = run_suite(suite, self.services.settings, self.services.client,
                                progress=progress, stop=self._stop,
                                say=lambda m: call(self._status, m))
            if summary.switched:  # the server restarted for other base models, and back
                self.services.forget_server()
                self.services.start_server(lambda _m: None)
            text = f"{summary.run_id}: {summary.pass_rate:.0%} passed" + \
                (" (stopped: r resumes it)" if summary.stopped else "") + \
                "".join(f"; {note}" for note in summary.notes)
            call(self._ran, text, "warning" if summary.notes else "information")
        except InterruptedError:
            call(self._ran, "stopped before the server was ready", "warning")
        except UserError as e:
            call(self._ran, str(e), "error")
        except Exception as e:  # noqa: BLE001 - a notification, never a crash
            log = self.services.log_bug(e)
            call(self._ran, f"{type(e).__name__}: {e} (a bug: the traceback is in {log})",
                 "error")

    def _status(self, text: str) -> None:
        self.query_one("#run-status", Label).update(text)

    def _progress(self, done: int, total: int, passed: int) -> None:
        self.query_one("#progress", ProgressBar).update(total=total, progress=done)
        rate = f", {passed / done:.0%} passed" if done else ""
        self.query_one("#run-status", Label).update(f"{done}/{total} cases{rate}")

    def _ran(self, text: str, severity: str) -> None:
        self.running = False
        self.query_one("#progress", ProgressBar).display = False
        self.query_one("#run-status", Label).update(text)
        self.notify(text, severity=severity)  # type: ignore[arg-type]
        self.load()

    def action_stop(self) -> None:
        if self.running:
            self._stop.set()

    # -- compare -----------------------------------------------------------------------------
    def action_mark(self) -> None:
        run = self._selected_run()
        if run is not None:
            self._marked = run
            self.notify(f"marked {run}: select another run and press c to compare")
            self._show(self._suites, self._runs)

    def action_compare(self) -> None:
        from evals.compare import compare

        run = self._selected_run()
        if self._marked is None or run is None or run == self._marked:
            self.notify("mark a run with space, select another, then press c",
                        severity="warning")
            return
        a = next(rs for info, rs in self._runs if info.id == self._marked)
        b = next(rs for info, rs in self._runs if info.id == run)
        result = compare(a, b, a_name=self._marked, b_name=run)
        regressed = {d.assertion for d in result.regressions()}
        lines = [f"[b]{run}[/b] against [b]{self._marked}[/b]", ""]
        for d in result.deltas:
            style = "red" if d.assertion in regressed else \
                ("green" if len(d.improved) > len(d.regressed) else "")
            row = (f"{d.assertion[:14]:<14} {d.pass_a:4.0%} → {d.pass_b:4.0%}  "
                   f"worse {len(d.regressed)}, better {len(d.improved)}, p={d.p_value:.3g}")
            lines.append(f"[{style}]{row}[/{style}]" if style else row)
        case = next((d for d in result.deltas if d.assertion == "(case)"), None)
        if case and case.regressed:
            lines += ["", "[red]regressed:[/red] " + ", ".join(case.regressed[:15])]
        if not result.deltas:
            lines.append("no case in common")
        details = self.query_one("#run-details", Static)
        details.update("\n".join(lines))
