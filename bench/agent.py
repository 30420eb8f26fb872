"""The research agent against plain `ask` on questions of several parts, on the embedded model.

In one run, against the same vLLM server and the same library, every case is answered twice:
  (a) the agent (`litlab ask --agent`: steps held to a schema, plans, the calculator, an answer
      every time);
  (b) plain `ask` (one retrieval, the answer line, the model), the baseline;
each checked by the case's key-fact regex. Per question set: key-fact accuracy of each, McNemar's
exact p on the cases where they differ (as `litlab eval compare` computes it), seconds per
question, and the share of agent turns that end with an answer (goal 100%: no "without a final
answer", no error). Sets:
  - evals/suites/agent.yaml (10 multi-hop questions on the three dev papers: the set the
    agent's plans were designed on);
  - bench/data/agent_heldout.yaml (19 more, other facts and phrasings, written before the agent
    ran on them; its misses then shaped later changes, so it is design data now);
  - bench/data/agent_heldout2.yaml (18 more, written 2026-12-07 before that session's changes:
    the held-out reading of them).
The dev papers come from ../shared (--shared); --smoke runs two questions on the papers the
tests make instead (no ../shared needed) and writes nothing. Writes bench/results/agent.json.

    .venv/bin/python bench/agent.py [--shared ../shared] [--smoke] [--sets "held-out 2"]

--sets runs only the named sets (comma-separated) and writes nothing.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from common import ROOT, arguments, settings, test_papers_library, write

SETS = {"design": ROOT / "evals" / "suites" / "agent.yaml",
        "held-out": ROOT / "bench" / "data" / "agent_heldout.yaml",
        "held-out 2": ROOT / "bench" / "data" / "agent_heldout2.yaml"}

SMOKE = """\
description: two questions of two parts on the tests' papers
targets:
  - {name: agent, kind: agent, temperature: 0, max_tokens: 4}
  - {name: ask, kind: ask, temperature: 0, max_tokens: 4}
prompts: [rag]
cases:
  - id: compare
    question: "Which is trained on human preference comparisons: the reward model or Mamba?"
    assert: [{type: regex, value: "(?i)reward"}]
  - id: parts
    question: "What does LoRA freeze, and how is the RLHF policy optimised?"
    assert: [{type: regex, value: "(?is)(?=.*frozen|.*freez)(?=.*PPO)"}]
"""


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--sets", help="only these sets (comma-separated names); writes nothing")
    args = parser.parse_args()
    chosen = SETS
    if args.sets:
        chosen = {n: SETS[n] for n in args.sets.split(",") if n in SETS}
        if len(chosen) != len(args.sets.split(",")):
            raise SystemExit(f"unknown set in --sets {args.sets!r}: the sets are "
                             + ", ".join(SETS))

    from agentlab.client import ModelClient
    from agentlab.server import ensure_server
    from evals.suite import load_suite

    s = settings()
    url = ensure_server(s, print)
    client = ModelClient(url, api_key=s.api_key)
    with tempfile.TemporaryDirectory() as tmp:
        if args.smoke:
            home, _ = test_papers_library(Path(tmp))
            path = Path(tmp) / "smoke.yaml"
            path.write_text(SMOKE)
            sets = {"smoke": path}
        else:
            dev = sorted((args.shared / "papers" / "dev").glob("*.pdf"))
            if not dev:
                raise SystemExit(f"no dev papers under {args.shared}/papers/dev: give --shared "
                                 "the folder that holds papers/dev")
            home = Path(tmp) / "home"
            from common import library

            print(f"indexing {len(dev)} dev papers ...")
            assert library(home).index_files(dev).ok
            sets = chosen
        mine = s.model_copy(update={"home": home, **({"agent_max_steps": 2} if args.smoke
                                                      else {})})
        results = {name: measure(load_suite(path), mine, client) for name, path in sets.items()}
    for name, r in results.items():
        print(f"{name}: key fact agent {r['agent']['key_fact']:.0%} vs ask "
              f"{r['ask']['key_fact']:.0%} (p={r['p_value']:.3f}, {r['pairs']} pairs); "
              f"s/question agent {r['agent']['s_per_question']:.1f} vs ask "
              f"{r['ask']['s_per_question']:.1f}; agent turns ending with an answer "
              f"{r['agent']['answered']:.0%} (goal 100%)")
    write("agent", {"sets": results, "model": s.model}, smoke=args.smoke or bool(args.sets))


def measure(suite: Any, s: Any, client: Any) -> dict[str, Any]:
    """Both targets on every case of ``suite``, one at a time (the timings are per question)."""
    from evals.compare import mcnemar
    from evals.runner import run_suite

    out: dict[str, Any] = {}
    by_target: dict[str, dict[str, bool]] = {}
    for target in ("agent", "ask"):
        t = time.perf_counter()
        summary = run_suite(suite, s, client, jobs=1, targets=[target], use_cache=False)
        wall = time.perf_counter() - t
        rows = summary.results
        facts = {r.case_id: all(v["passed"] for k, v in r.scores.items()
                                if k.startswith("regex")) for r in rows}
        by_target[target] = facts
        answered = [not r.output.get("error") and "without a final answer"
                    not in r.output.get("text", "") for r in rows]
        out[target] = {
            "key_fact": sum(facts.values()) / len(facts),
            "s_per_question": wall / len(rows),
            "latency_s_median": statistics.median(r.output.get("latency_s", 0) for r in rows),
            "answered": sum(answered) / len(answered),
            "requests": summary.requests,
            "cases": {r.case_id: {"key_fact": facts[r.case_id],
                                  "text": r.output.get("text", "")[:300]} for r in rows},
        }
    improved = sum(by_target["agent"][c] and not by_target["ask"][c] for c in by_target["ask"])
    regressed = sum(by_target["ask"][c] and not by_target["agent"][c] for c in by_target["ask"])
    out.update(pairs=len(by_target["ask"]), improved=improved, regressed=regressed,
               p_value=mcnemar(regressed, improved))
    return out


if __name__ == "__main__":
    main()
