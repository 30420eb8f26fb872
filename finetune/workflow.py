"""The one fine-tuning workflow the CLI (`litlab finetune sft|dpo|grpo`) and the app's Models
screen both run: a run spec, or an interrupted run to resume → train → load the adapter into
the server → gate it with a suite.

Each step reports through the callbacks it is given and never prints; a run stopped early (Esc
in the app, a stop event) returns with ``stopped`` set and nothing loaded or gated, ready to
resume.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from finetune.config import Method, RunSpec
from finetune.train import OnLog, RunResult
from litcore.errors import UserError

Say = Callable[[str], None]
GateProgress = Callable[[int, int, int], None]  # cases done, cases in all, cases passed


@dataclass
class Finetuned:
    """What the workflow did: the run, what loading its adapter said, and the gate's verdict
    (None when not asked for)."""

    run: RunResult
    loaded: str | None = None
    gate: dict[str, Any] | None = None

    @property
    def stopped(self) -> bool:
        return self.run.stopped

    def to_dict(self) -> dict[str, Any]:
        out = self.run.to_dict()
        if self.loaded is not None:
            out["loaded"] = self.loaded
        if self.gate is not None:
            out["gate"] = self.gate
        return out


def resolve_resume(settings: Any, method: Method, resume: str | None) -> str | None:
    """``"last"`` as the newest interrupted run of ``method``; any other name as given."""
    from finetune.train import latest_unfinished

    if resume != "last":
        return resume
    found = latest_unfinished(settings.home_dir, method)
    if found is None:
        raise UserError(f"no interrupted {method} run to resume",
                        "`litlab finetune runs` lists runs")
    return found


def finetune(settings: Any, method: Method, spec: RunSpec | None = None, *,
             resume: str | None = None, load: bool = True, gate: str | None = None,
             on_log: OnLog | None = None, stop: threading.Event | None = None,
             say: Say | None = None, on_gate: GateProgress | None = None,
             processes: int = 1) -> Finetuned:
    """Train from ``spec`` (or continue run ``resume``; ``"last"``: the newest interrupted
    one), load the adapter into the server unless ``load`` is false, and gate it with suite
    ``gate`` (or the one the run's spec names). A failure to load is reported in ``loaded``,
    not raised: the adapter is trained and registered either way. ``processes``: train as
    that many data-parallel processes (:mod:`finetune.distributed`)."""
    from finetune import train

    resume = resolve_resume(settings, method, resume)
    if spec is None and resume is None:
        raise UserError(f"nothing to train: no {method} run spec and no run to resume",
                        f"`litlab finetune {method} --data NAME`")
    if processes > 1:
        from finetune.distributed import launch

        result = launch(spec, settings, processes, resume=resume, on_log=on_log, stop=stop)
    else:
        result = train.run(spec, settings, resume=resume, on_log=on_log, stop=stop)
    out = Finetuned(result)
    if result.stopped or not result.adapter:
        return out
    if load:
        from finetune.adapters import load_into_server

        try:
            out.loaded = load_into_server(settings, result.adapter,
                                          progress=say or (lambda _m: None))
        except UserError as e:
            out.loaded = str(e)
    suite = gate or (result.spec.eval if result.spec else None)
    if suite:
        out.gate = gate_adapter(settings, result.adapter, suite, say=say, progress=on_gate,
                                stop=stop)
    return out


def gate_adapter(settings: Any, adapter: str, suite: str, *, say: Say | None = None,
                 progress: GateProgress | None = None,
                 stop: threading.Event | None = None) -> dict[str, Any]:
    """Run the evaluation gate of ``adapter`` on ``suite`` against the server (started or
    reused, serving the adapter); the verdict is stored with the adapter and returned."""
    from agentlab.server import connect
    from finetune.gate import run_gate

    client = connect(settings.model_copy(update={"model": adapter}), say or (lambda _m: None))
    return run_gate(settings, client, adapter, suite, progress=progress, stop=stop)
