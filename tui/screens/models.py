"""Models: the base model and every adapter with its data, loss and evaluation gate; start a
fine-tuning run (SFT from the library, DPO from your feedback) with a live loss curve, stop it
cleanly with Esc (a checkpoint is kept: the same key continues it), pick an adapter for the
chat; fine-tune the retriever on the library (gated by its search, adopted when it passes)."""

from __future__ import annotations

import threading
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, ProgressBar, Static
from textual_plotext import PlotextPlot

LIBRARY_DATA = "library"  # the dataset the screen builds from the library
FEEDBACK_DATA = "feedback-pairs"
RECIPE_GATE = "citations"  # a shipped suite with its own library: the app's recipe gates on it


class ModelsScreen(Screen[None]):
    BINDINGS = [
        Binding("f12", "app.switch_mode('chat')", "Chat"),
        Binding("s", "train('sft')", "SFT from library"),
        Binding("d", "train('dpo')", "DPO from feedback"),
        Binding("f", "recipe", "Recipe: SFT, gate"),
        Binding("r", "retriever", "Retriever from library"),
        Binding("u", "use", "Use in chat"),
        Binding("escape", "stop", "Stop run"),
        Binding("f1", "app.push_screen('help')", "Help"),
    ]
    DEFAULT_CSS = """
    #models { height: 12; }
    #running { height: 2; padding: 0 1; }
    #running ProgressBar { width: 30; }
    #curve { height: 1fr; min-height: 10; }
    #model-details { height: auto; max-height: 14; border-top: solid $primary; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._rows: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self.running = False
        self._live: list[tuple[int, float]] = []
        self._live_evals: list[tuple[int, float]] = []

    @property
    def services(self) -> Any:
        return self.app.services  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Models[/b]  s: SFT from the library · d: DPO from your feedback · "
                        "r: fine-tune the retriever · u: answer with the selected one · "
                        "Esc: stop a run")
            yield DataTable(id="models", cursor_type="row", zebra_stripes=True)
            with Horizontal(id="running"):
                yield ProgressBar(id="train-progress", show_eta=True)
                yield Label("", id="train-status")
            yield PlotextPlot(id="curve")
            with VerticalScroll(id="model-details"):
                yield Static("Select a model to see its run and gate.", id="details",
                             markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("model", "base", "method", "data", "loss", "gate")
        self.query_one("#train-progress", ProgressBar).display = False
        self.load()

    def on_screen_resume(self) -> None:
        self.load()

    @work(thread=True, group="models-list", exclusive=True)
    def load(self) -> None:
        from agentlab.models import PACKAGED
        from finetune.adapters import AdapterStore

        rows: list[dict[str, Any]] = [
            {"name": name, "base": "—", "method": "base", "data": "", "loss": None,
             "gate": "", "adapter": None} for name in PACKAGED]
        for info in AdapterStore(self.services.settings).list():
            rows.append({"name": info.name, "base": info.base, "method": info.method,
                         "data": info.dataset or "", "loss": info.metrics.get("last_loss"),
                         "gate": info.gate_state, "adapter": info})
        self.app.call_from_thread(self._show, rows)

    def _show(self, rows: list[dict[str, Any]]) -> None:
        self._rows = rows
        table = self.query_one(DataTable)
        table.clear()
        current = self.services.settings.model
        for r in rows:
            loss = f"{r['loss']:.3f}" if r["loss"] is not None else ""
            mark = "● " if r["name"] == current else ""
            table.add_row(mark + r["name"], r["base"], r["method"], r["data"], loss, r["gate"],
                          key=r["name"])

    def _selected(self) -> dict[str, Any] | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((r for r in self._rows if r["name"] == key), None)

    @on(DataTable.RowHighlighted)
    def show_model(self, event: DataTable.RowHighlighted) -> None:
        row = next((r for r in self._rows if r["name"] == (event.row_key.value
                                                           if event.row_key else None)), None)
        if row is None or self.running:
            return
        info = row["adapter"]
        if info is None:
            self.query_one("#details", Static).update(
                f"{row['name']}: a packaged base model (served by vLLM; fine-tuned with LoRA)")
            self._plot([], row["name"])
            return
        if info.error:
            self.query_one("#details", Static).update(f"{info.name}: {info.error}")
            self._plot([], info.name)
            return
        from finetune.train import losses, read_metrics, runs_dir

        lines = [f"{info.name}: {info.method} on {info.dataset} ({info.base}, LoRA rank "
                 f"{info.rank})",
                 "  " + ", ".join(f"{k.replace('_', ' ')} {v:.3g}" if isinstance(v, float)
                                  else f"{k.replace('_', ' ')} {v}"
                                  for k, v in info.metrics.items() if v is not None)]
        gate = info.gate
        if gate:
            lines.append(f"  gate: {info.gate_state} on {gate['suite'].rsplit('/', 1)[-1]}")
            targets = gate.get("targets") or {"": gate}
            for name, v in targets.items():
                lines.append(f"   {' ' + name + ':' if len(targets) > 1 else ''} "
                             f"{v['pass_base']:.0%} (base) → {v['pass_adapter']:.0%}, "
                             f"p = {v['p_value']:.3g}")
                pad = "      " if len(targets) > 1 else "    "
                for d in v["comparison"]["deltas"]:
                    lines.append(f"{pad}{d['assertion'][:16]:<16} {d['pass_a']:4.0%} → "
                                 f"{d['pass_b']:4.0%}  p={d['p_value']:.3g}")
        else:
            lines.append(f"  gate: not evaluated (`litlab adapters eval {info.name} citations`)")
        self.query_one("#details", Static).update("\n".join(lines))
        folder = runs_dir(self.services.settings.home_dir) / (info.run or info.name)
        metrics = read_metrics(folder)
        self._plot(losses(metrics), info.name, losses(metrics, "eval_loss"))

    def _plot(self, points: list[tuple[int, float]], title: str,
              evals: list[tuple[int, float]] | None = None) -> None:
        """The training loss, and the eval loss on the held-out split beside it (where it
        rises while training loss falls, the run has overfit)."""
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(f"loss · {title}" if points else f"{title}: no training run")
        if points:
            plt.plot([p[0] for p in points], [p[1] for p in points], marker="braille",
                     label="train")
            if evals:
                plt.plot([p[0] for p in evals], [p[1] for p in evals], marker="dot",
                         label="eval")
            plt.xlabel("step")
        plot.refresh()

    # -- using -------------------------------------------------------------------------------
    def action_use(self) -> None:
        row = self._selected()
        if row is None:
            return
        chat = self.app.chat  # type: ignore[attr-defined]
        self.use(row["name"], chat)

    @work(thread=True, group="models-use", exclusive=True)
    def use(self, name: str, chat: Any) -> None:
        from agentlab.models import PACKAGED
        from finetune.adapters import load_into_server
        from litcore.errors import UserError

        call = self.app.call_from_thread
        try:
            if name not in PACKAGED:
                call(self.notify, load_into_server(self.services.settings, name))
            served = self.services.models()
            self.services.served = served
        except UserError as e:
            call(self.notify, str(e), severity="error")
            return
        call(chat.set_models, served)
        call(chat.pick_model, name)
        call(self.notify, f"the chat now answers with {name}")

    # -- training ----------------------------------------------------------------------------
    def _start(self, status: str) -> bool:
        if self.running:
            self.notify("a run is going: wait, or press Esc to stop it", severity="warning")
            return False
        self._stop.clear()
        self.running = True
        self._live, self._live_evals = [], []
        self.query_one("#train-progress", ProgressBar).display = True
        self.query_one("#train-status", Label).update(status)
        return True

    def action_train(self, method: str) -> None:
        if self._start(f"{method}: preparing data…"):
            self.train(method)

    def action_recipe(self) -> None:
        if self._start("recipe: preparing data…"):
            self.train_recipe()

    @work(thread=True, group="models-train", exclusive=True)
    def train_recipe(self) -> None:
        """What `litlab finetune run --data library --eval citations` does: the default
        recipe's stages (SFT), then load and gate. Pressed again after a stop, it continues the
        same recipe."""
        from finetune.workflow import RECIPE, recipe

        call = self.app.call_from_thread
        s = self.services.settings
        stage: dict[str, str] = {"name": RECIPE[0]}

        def say(msg: str) -> None:
            if msg.startswith("stage "):
                stage["name"] = msg.split(":")[1].split()[0]
                self._live, self._live_evals = [], []
            call(self.query_one("#train-status", Label).update, f"recipe: {msg}")

        def on_log(step: int, total: int, entry: dict[str, Any]) -> None:
            if "loss" in entry:
                self._live.append((step, float(entry["loss"])))
            if "eval_loss" in entry:
                self._live_evals.append((step, float(entry["eval_loss"])))
            call(self._progress, stage["name"], step, total, entry.get("loss"))

        def on_gate(done: int, total: int, passed: int) -> None:
            call(self._progress, "gate", done, total, None)

        try:
            data = self._data("sft")
            name = self._recipe_name()
            self.services.wait_for_server(self._stop)  # the gate asks the app's server
            out = recipe(s, data, name=name, gate=RECIPE_GATE, on_log=on_log,
                         stop=self._stop, say=say, on_gate=on_gate, client=self.services.client)
            if out.stopped:
                call(self._done, f"recipe stopped in {out.stages[-1].name}; press f to "
                                 "continue it", "warning")
                return
            gate = out.gate or {}
            verdict = "passed" if gate.get("passed") else "failed"
            call(self._done, f"adapter {out.adapter} ready; gate ({RECIPE_GATE}) {verdict}: "
                             f"{gate.get('pass_base', 0):.0%} → {gate.get('pass_adapter', 0):.0%}",
                 "information" if gate.get("passed") else "warning")
        except Exception as e:  # noqa: BLE001 - a notification, never a crash
            call(self._failed, e)

    def _recipe_name(self) -> str:
        """The recipe to continue (one with an unfinished stage), else a new name."""
        import time

        from finetune.train import list_runs
        from finetune.workflow import RECIPE

        runs = [r for r in list_runs(self.services.settings.home_dir)
                if r.error is None and r.name.startswith(f"recipe-{LIBRARY_DATA}-")]
        if runs:  # the newest recipe, unless its last stage finished
            prefix = runs[0].name.rsplit("-", 1)[0]
            last = next((r for r in runs if r.name == f"{prefix}-{RECIPE[-1]}"), None)
            if last is None or last.state != "finished":
                return prefix
        return time.strftime(f"recipe-{LIBRARY_DATA}-%Y%m%d-%H%M%S")

    def action_retriever(self) -> None:
        if self._start("retriever: making pairs from the library…"):
            self.train_retriever()

    @work(thread=True, group="models-train", exclusive=True)
    def train_retriever(self) -> None:
        """What `litlab finetune retriever train` does: a candidate made beside the library,
        gated by its search, adopted (and used by the chat at once) when it passes."""
        import time

        from finetune.retriever import TrainConfig, adopt, make

        call = self.app.call_from_thread
        status = self.query_one("#train-status", Label)
        said = {"at": 0.0}

        def say(msg: str) -> None:
            if time.monotonic() - said["at"] >= 0.5:
                said["at"] = time.monotonic()
                call(status.update, f"retriever: {msg}")

        def on_step(step: int, total: int, loss: float | None) -> None:
            if loss is not None:
                self._live.append((step, loss))
            call(self._progress, "retriever", step, total, loss)

        library = self.services.open_library()
        name = time.strftime("retriever-%Y%m%d-%H%M%S")
        try:
            cand = make(library, name, TrainConfig(), progress=say, on_step=on_step,
                        stop=self._stop)
            gate = cand.info()["gate"]
            found = "; ".join(f"recall@{gate.get('k', 5)} on {n} {r['base']:.2f} → "
                              f"{r['tuned']:.2f}" for n, r in gate["sets"].items())
            found += f" (p = {gate['p_value']:.3g})"
            if not gate["passed"]:
                call(self._done, f"{name} not adopted, search keeps its embedder: {found}",
                     "warning")
                return
            adopt(library, cand, progress=say)
            self.services.embedder_changed(str(cand.model))
            call(self._done, f"{name} adopted, search now uses it: {found}", "information")
        except Exception as e:  # noqa: BLE001 - a notification, never a crash
            call(self._failed, e)

    @work(thread=True, group="models-train", exclusive=True)
    def train(self, method: str) -> None:
        """The fine-tuning workflow the CLI runs (finetune.workflow): continue this method's
        interrupted run if there is one, else train on the screen's dataset; then load."""
        from finetune.config import spec
        from finetune.train import latest_unfinished
        from finetune.workflow import finetune

        call = self.app.call_from_thread
        s = self.services.settings

        def on_log(step: int, total: int, entry: dict[str, Any]) -> None:
            if "loss" in entry:
                self._live.append((step, float(entry["loss"])))
            if "eval_loss" in entry:
                self._live_evals.append((step, float(entry["eval_loss"])))
            call(self._progress, method, step, total, entry.get("loss"))

        try:
            resume = latest_unfinished(s.home_dir, method)
            if resume:
                call(self.query_one("#train-status", Label).update, f"continuing {resume}…")
            run_spec = None if resume else spec(method, data=self._data(method))  # type: ignore[arg-type]
            out = finetune(s, method, run_spec, resume=resume, on_log=on_log,  # type: ignore[arg-type]
                           stop=self._stop)
            result = out.run
            if result.stopped:
                call(self._done, f"stopped at step {result.steps}/{result.max_steps}; press "
                                 f"{method[0]} to continue it", "warning")
                return
            call(self._done, f"adapter {result.adapter} ready ({result.steps} steps, loss "
                             f"{result.losses[-1][1]:.3f}); {out.loaded}", "information")
        except Exception as e:  # noqa: BLE001 - a notification, never a crash
            call(self._failed, e)

    def _failed(self, error: Exception) -> None:
        """A run's error as one line: a person's mistake as it says, a bug with where its
        traceback went."""
        from litcore.errors import UserError

        if isinstance(error, UserError):
            self._done(str(error), "error")
            return
        log = self.services.log_bug(error)
        self._done(f"{type(error).__name__}: {error} (a bug: the traceback is in {log})",
                   "error")

    def _data(self, method: str) -> str:
        """The dataset a run from this screen trains on, built now (the library's is built
        once and reused; feedback pairs are rebuilt, as feedback grows)."""
        from finetune.data import DatasetStore

        s = self.services.settings
        store = DatasetStore(s.home_dir)
        library = self.services.open_library()  # its own: this worker reads beside the chat
        if method == "dpo":
            store.from_feedback(FEEDBACK_DATA, self.services.chats, library, "dpo",
                                home=s.home_dir)
            return FEEDBACK_DATA
        if not store.exists(LIBRARY_DATA):
            from finetune.grounded import Builder

            builder = Builder(library, threshold=s.attribution_threshold, home=s.home_dir)
            call = self.app.call_from_thread
            store.from_library(LIBRARY_DATA, builder, examples=60, stop=self._stop,
                               progress=lambda have, want, _q: call(
                                   self._progress, "examples", have, want, None))
        return LIBRARY_DATA

    def _progress(self, what: str, step: int, total: int, loss: float | None) -> None:
        self.query_one("#train-progress", ProgressBar).update(total=total, progress=step)
        tail = f", loss {loss:.3f}" if loss is not None else ""
        self.query_one("#train-status", Label).update(f"{what}: {step}/{total}{tail}")
        if self._live:
            self._plot(self._live, f"{what} (running)", self._live_evals)

    def _done(self, text: str, severity: str) -> None:
        self.running = False
        self.query_one("#train-progress", ProgressBar).display = False
        self.query_one("#train-status", Label).update(text)
        self.notify(text, severity=severity, timeout=10)  # type: ignore[arg-type]
        self.load()

    def action_stop(self) -> None:
        if self.running:
            self._stop.set()
            self.query_one("#train-status", Label).update("stopping at the end of this step…")
