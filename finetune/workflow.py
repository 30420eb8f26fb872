"""The one fine-tuning workflow the CLI (`litlab finetune sft|dpo|grpo`) and the app's Models
screen both run: a run spec, or an interrupted run to resume → train → load the adapter into
the server → gate it with a suite. :func:`recipe` (`litlab finetune run`) chains methods, each
stage going on training the adapter the stage before made, and gates the last.

Each step reports through the callbacks it is given and never prints; a run stopped early (Esc
in the app, a stop event) returns with ``stopped`` set and nothing loaded or gated, ready to
resume.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from finetune.config import METHODS, Method, RunSpec
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
                 stop: threading.Event | None = None, client: Any = None) -> dict[str, Any]:
    """Run the evaluation gate of ``adapter`` on ``suite`` against the server (started or
    reused, serving the adapter; or ``client``'s); the verdict is stored with the adapter and
    returned."""
    from agentlab.server import connect, for_many_answers, server_for
    from finetune.gate import run_gate

    if client is None:
        # a server that serves the adapter; where the suite serves it merged (a CPU), the
        # base's server, which the suite asks first (no restart for a LoRA server first)
        many = for_many_answers(settings)
        first = adapter if server_for(many, adapter) != adapter else settings.model
        client = connect(many.model_copy(update={"model": first}), say or (lambda _m: None))
    return run_gate(settings, client, adapter, suite, progress=progress, stop=stop)


# The default recipe, chosen by measurement: SFT alone on the library's grounded examples.
# bench/finetune_quality.py (2026-12-07) trained SFT and SFT then GRPO (rewards checked against
# the library: finetune.rewards) on the same data and gated both on the hand-written keyfacts
# questions about two papers training never saw: both passed with the same key fact (6% ->
# 19% in the model's own words), refusal right 36% -> 91% after SFT and 82% after GRPO, and
# GRPO's 10 steps added 853 s, taking the loop past 30 minutes (docs/finetuning.md).
# `--recipe sft,grpo` runs GRPO after it.
RECIPE: tuple[Method, ...] = ("sft",)


@dataclass
class Recipe:
    """What :func:`recipe` did: each stage's run (in order), then loading and the gate of
    the last stage's adapter."""

    name: str
    stages: list[RunResult]
    loaded: str | None = None
    gate: dict[str, Any] | None = None

    @property
    def stopped(self) -> bool:
        return bool(self.stages) and self.stages[-1].stopped

    @property
    def adapter(self) -> str | None:
        return self.stages[-1].adapter if self.stages else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "adapter": self.adapter,
                               "stopped": self.stopped,
                               "stages": [r.to_dict() for r in self.stages]}
        if self.loaded is not None:
            out["loaded"] = self.loaded
        if self.gate is not None:
            out["gate"] = self.gate
        return out


def parse_recipe(text: str) -> tuple[Method, ...]:
    """``"sft,grpo"`` as methods; one line for anything else."""
    stages = tuple(x.strip() for x in text.split(",") if x.strip())
    bad = [x for x in stages if x not in METHODS]
    if not stages or bad:
        raise UserError(f"unknown recipe stage '{bad[0] if bad else text}'",
                        f"a recipe is methods separated by commas, e.g. "
                        f"{','.join(RECIPE)} (methods: {', '.join(METHODS)})")
    return stages  # type: ignore[return-value]


def recipe(settings: Any, data: str, *, stages: tuple[Method, ...] = RECIPE,
           name: str | None = None, base: str | None = None,
           training: dict[Method, dict[str, Any]] | None = None,
           load: bool = True, gate: str | None = None, on_log: OnLog | None = None,
           stop: threading.Event | None = None, say: Say | None = None,
           on_gate: GateProgress | None = None, client: Any = None) -> Recipe:
    """Train ``stages`` in turn on dataset ``data`` (run NAME-METHOD each, every stage
    starting from the adapter of the one before), then load and gate the last adapter
    (``client``: the server to gate on; default litlab's own, started if need be).

    Run again with the same ``name`` after an interruption: finished stages are kept, an
    interrupted one resumes from its checkpoint. DPO needs a dataset of pairs, so a recipe
    with DPO takes its pairs from ``data`` as well."""
    import time

    from finetune import train
    from finetune.config import spec as make_spec

    say = say or (lambda _m: None)
    if gate:
        from finetune.gate import find_suite

        find_suite(gate)  # a mistyped suite is one line now, not after the training
    name = name or time.strftime(f"recipe-{data}-%Y%m%d-%H%M%S")
    out = Recipe(name, [])
    start: str | None = None
    for i, method in enumerate(stages):
        run_name = f"{name}-{method}"
        folder = train.runs_dir(settings.home_dir) / run_name
        info = train.read_run(folder) if folder.is_dir() else None
        where = f"stage {i + 1} of {len(stages)}: {method}" + (f" from {start}" if start else "")
        if info is not None and info.error is None and info.state == "finished" and info.adapter:
            say(f"{where}: done before (adapter {info.adapter})")
            out.stages.append(train.RunResult(run_name, folder, info.adapter, 0, 0, 0.0))
            start = info.adapter
            continue
        resume = run_name if info is not None and info.error is None else None
        spec = None
        if resume is None:
            spec = make_spec(method, None, data=data, base=base, name=run_name, start=start)
            spec.training.update((training or {}).get(method, {}))
        say(f"{where}" + (" (continuing)" if resume else ""))
        result = train.run(spec, settings, resume=resume, on_log=on_log, stop=stop)
        out.stages.append(result)
        if result.stopped or not result.adapter:
            return out
        start = result.adapter
    if load and out.adapter:
        from finetune.adapters import load_into_server

        try:
            out.loaded = load_into_server(settings, out.adapter, progress=say)
        except UserError as e:
            out.loaded = str(e)
    if gate and out.adapter:
        out.gate = gate_adapter(settings, out.adapter, gate, say=say, progress=on_gate,
                                stop=stop, client=client)
    return out
