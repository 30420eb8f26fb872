"""The evaluation gate: an adapter is only as good as a suite says it is.

The suite runs twice over the same cases, once on the base model and once on the adapter (its
first model target, copied for each), through the evaluation runner; compare pairs the results
case by case (exact McNemar test, paired bootstrap interval). The adapter *passes* when no check
got significantly worse and its pass rate is at least the base's. The verdict and the
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


def run_gate(settings: Any, client: Any, adapter: str, suite_ref: str, *, jobs: int = 4,
             progress: Callable[[int, int, int], None] | None = None,
             stop: threading.Event | None = None) -> dict[str, Any]:
    """Evaluate base and adapter on the suite; store and return the verdict."""
    from evals.compare import CASE, compare
    from evals.runner import run_suite
    from evals.suite import load_suite
    from finetune.adapters import AdapterStore

    store = AdapterStore(settings)
    info = store.get(adapter)
    path = find_suite(suite_ref)
    suite = load_suite(path)
    model_targets = [t for t in suite.targets if t.kind != "search"]
    if not model_targets:
        raise UserError(f"suite {path} asks no model (search targets only)",
                        "a gate needs a suite with an ask, prompt or agent target")
    t = model_targets[0]
    targets = [t.model_copy(update={"name": "base", "model": info.base}),
               t.model_copy(update={"name": "adapter", "model": adapter})]
    suite = suite.model_copy(update={"targets": targets})
    summary = run_suite(suite, settings, client, jobs=jobs, progress=progress, stop=stop)
    if summary.stopped:
        raise UserError("the gate was stopped before the suite finished",
                        "run it again: finished cases are kept")
    base = [r for r in summary.results if r.target == "base"]
    mine = [r for r in summary.results if r.target == "adapter"]
    comparison = compare(base, mine, a_name=info.base, b_name=adapter)
    case = next((d for d in comparison.deltas if d.assertion == CASE), None)
    regressions = [d.assertion for d in comparison.regressions()]
    passed = case is not None and not regressions and case.pass_b >= case.pass_a
    gate = {
        "suite": str(path), "run": summary.run_id, "when": time.time(), "passed": passed,
        "pass_base": case.pass_a if case else 0.0, "pass_adapter": case.pass_b if case else 0.0,
        "p_value": case.p_value if case else 1.0, "regressions": regressions,
        "comparison": comparison.to_dict(),
    }
    store.set_gate(adapter, gate)
    return gate
