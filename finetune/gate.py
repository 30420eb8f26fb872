"""The evaluation gate: an adapter is only as good as a suite says it is.

The suite runs twice over the same cases, once on the base model and once on the adapter (its
first model target, or each target its ``gate`` names, copied for each), through the
evaluation runner; compare pairs the results case by case (exact McNemar test, paired
bootstrap interval). The adapter *passes* when, on every gated target, no check got
significantly worse and its pass rate is at least the base's. The verdict and the
comparison are stored with the adapter; ``litlab adapters use`` needs a pass (or ``--force``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from litcore.errors import UserError


def find_suite(ref: str) -> Path:
    """A suite by path, or by the name of one shipped with litlab (``citations``)."""
    from evals.runner import shipped_suites

    path = Path(ref)
    if path.is_file():
        return path
    for p in shipped_suites():
        if p.stem == ref:
            return p
    names = ", ".join(p.stem for p in shipped_suites())
    raise UserError(f"no suite '{ref}'", f"give a suite file, or one of: {names}")


def gated_targets(suite: Any, path: Path) -> list[Any]:
    """The targets the gate compares on: those the suite's ``gate`` names, in its order, or
    its first model target."""
    model_targets = [t for t in suite.targets if t.kind != "search"]
    if not model_targets:
        raise UserError(f"suite {path} asks no model (search targets only)",
                        "a gate needs a suite with an ask, prompt or agent target")
    if not suite.gate:
        return model_targets[:1]
    by_name = {t.name: t for t in model_targets}
    unknown = [n for n in suite.gate if n not in by_name]
    if unknown:
        raise UserError(f"suite {path}: gate names '{unknown[0]}', which is not a model target",
                        f"name some of: {', '.join(by_name)}")
    return [by_name[n] for n in suite.gate]


def run_gate(settings: Any, client: Any, adapter: str, suite_ref: str, *, jobs: int = 4,
             progress: Callable[[int, int, int], None] | None = None,
             stop: threading.Event | None = None) -> dict[str, Any]:
    """Evaluate base and adapter on the suite (each gated target); store and return the
    verdict. The adapter passes when, on every gated target, no check got significantly
    worse and its pass rate is at least the base's; the first target's figures head the
    verdict, every target's are under ``targets``."""
    from evals.compare import CASE, compare
    from evals.runner import run_suite
    from evals.suite import load_suite
    from finetune.adapters import AdapterStore

    store = AdapterStore(settings)
    info = store.get(adapter)
    path = find_suite(suite_ref)
    suite = load_suite(path)
    gated = gated_targets(suite, path)
    one = len(gated) == 1
    targets = []
    for t in gated:  # one target keeps the plain names "base" and "adapter"
        targets += [t.model_copy(update={"name": "base" if one else f"base/{t.name}",
                                         "model": info.base}),
                    t.model_copy(update={"name": "adapter" if one else f"adapter/{t.name}",
                                         "model": adapter})]
    suite = suite.model_copy(update={"targets": targets})
    summary = run_suite(suite, settings, client, jobs=jobs, progress=progress, stop=stop)
    if summary.stopped:
        raise UserError("the gate was stopped before the suite finished",
                        "run it again: finished cases are kept")
    verdicts: dict[str, dict[str, Any]] = {}
    for t in gated:
        a, b = ("base", "adapter") if one else (f"base/{t.name}", f"adapter/{t.name}")
        comparison = compare([r for r in summary.results if r.target == a],
                             [r for r in summary.results if r.target == b],
                             a_name=info.base, b_name=adapter)
        case = next((d for d in comparison.deltas if d.assertion == CASE), None)
        regressions = [d.assertion for d in comparison.regressions()]
        verdicts[t.name] = {
            "passed": case is not None and not regressions and case.pass_b >= case.pass_a,
            "pass_base": case.pass_a if case else 0.0,
            "pass_adapter": case.pass_b if case else 0.0,
            "p_value": case.p_value if case else 1.0, "regressions": regressions,
            "comparison": comparison.to_dict()}
    head = verdicts[gated[0].name]
    gate = {
        "suite": str(path), "run": summary.run_id, "when": time.time(),
        "passed": all(v["passed"] for v in verdicts.values()),
        "target": gated[0].name,
        **{k: head[k] for k in ("pass_base", "pass_adapter", "p_value", "comparison")},
        # a regression on another target is named with it ("model: key fact")
        "regressions": [r if name == gated[0].name else f"{name}: {r}"
                        for name, v in verdicts.items() for r in v["regressions"]],
        "targets": verdicts,
    }
    store.set_gate(adapter, gate)
    return gate
