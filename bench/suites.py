"""The evaluation runner on the embedded model: concurrent against one request at a time, and a
fully cached re-run, in one run against the same vLLM server.

A suite of N cases (a prompt target: the template rendered and sent to the model, short
answers, two deterministic checks) runs three times on a fresh store:
  (a) one request at a time (-j 1), cache off;
  (b) N at a time (-j 8, so vLLM batches them), cache off;
  (c) again with -j 8, everything from the cache (b) filled.
Prints a/b (target at least 4) and c/b (target under 5%); writes bench/results/suites.json.

    .venv/bin/python bench/suites.py [--cases 200] [--tokens 16] [--jobs 8] [--smoke]

The server is litlab's own, started or reused (the model prepared if need be).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from common import TOPICS, arguments, settings, write


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=8)
    args = parser.parse_args()
    if args.smoke:
        args.cases, args.tokens, args.jobs = 4, 4, 2

    from agentlab.client import ModelClient
    from agentlab.server import ensure_server
    from evals.runner import Runner
    from evals.store import RunStore
    from evals.suite import load_suite

    s = settings()
    url = ensure_server(s, print)
    client = ModelClient(url, api_key=s.api_key)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cases = [{"id": f"q{i}", "question": f"In one sentence, what is {TOPICS[i % 20]}? "
                                             f"(variant {i // 20})"} for i in range(args.cases)]
        (folder / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))
        (folder / "suite.yaml").write_text(
            "description: bench\n"
            f"targets: [{{name: base, kind: prompt, temperature: 0, max_tokens: {args.tokens}}}]\n"
            "prompts: [zero_shot]\n"
            "assert: [{type: no_refusal}, {type: max_tokens, value: 64}]\n"
            "cases: [{file: cases.jsonl}]\n")
        suite = load_suite(folder / "suite.yaml")
        timings = {}
        for name, jobs, cache in (("one_at_a_time", 1, False), ("concurrent", args.jobs, False),
                                  ("cached", args.jobs, True)):
            # (c) uses the store (b) filled: a new run, every completion from the cache
            store = RunStore(folder / ("concurrent" if name == "cached" else name))
            runner = Runner(suite, s, client, store=store, use_cache=cache)
            summary = runner.run(jobs=jobs)
            timings[name] = {"seconds": round(summary.seconds, 2), "requests": summary.requests,
                             "cache_hits": summary.cache_hits,
                             "pass_rate": round(summary.pass_rate, 3)}
            print(f"  {name:14s} {summary.seconds:7.1f} s  {summary.requests} requests, "
                  f"{summary.cache_hits} from cache")
            store.close()
    speedup = timings["one_at_a_time"]["seconds"] / timings["concurrent"]["seconds"]
    cached = timings["cached"]["seconds"] / timings["concurrent"]["seconds"]
    print(f"\na/b (one at a time / concurrent) = {speedup:.2f}  (target >= 4)")
    print(f"c/b (cached re-run / first run)   = {100 * cached:.1f}%  (target < 5%)")
    write("suites", {"model": s.model, "cases": args.cases, "max_tokens": args.tokens,
                    "jobs": args.jobs, "runs": timings,
                    "ratio_concurrent_speedup": round(speedup, 2),
                    "ratio_cached_vs_first": round(cached, 4),
                    "targets": {"ratio_concurrent_speedup": ">= 4",
                                "ratio_cached_vs_first": "< 0.05"}}, args.smoke)


if __name__ == "__main__":
    main()
