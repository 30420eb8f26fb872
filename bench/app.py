"""Terminal app responsiveness: litlab's app against an empty Textual app, in the same run.

  - start-up: from spawning the process to the app being ready (first paint), and to the first
    key landing in the question box (interactive), headless, median of several runs;
  - key latency while an answer streams: press a key, wait until the app has processed it and
    repainted; litlab with a fake model streaming 50 tokens/s, the empty app idle.

The model is fake here on purpose: this measures the UI, not the model. Writes
bench/results/app.json. Targets: first paint under 1 s; key latency close to the empty app's.

    .venv/bin/python bench/app.py [--runs 5] [--keys 40] [--smoke]
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, arguments, percentile, settings, write

START = """
import sys, time
sys.path.insert(0, {root!r})
kind = sys.argv[1]
from textual.app import App
from textual.widgets import Input
if kind == "litlab":
    from agentlab.settings import load_settings
    from tests.tui.fakes import FakeClient
    from tui.app import LitlabApp
    from tui.services import Services
    app = LitlabApp(Services(load_settings().settings, client=FakeClient()))
else:
    class Empty(App):
        def compose(self):
            yield Input()
    app = Empty()
marks = {{}}
async def auto_pilot(pilot):
    marks["ready"] = time.time()
    await pilot.press("x")
    box = pilot.app.screen.query_one(Input)
    while box.value != "x":
        await pilot.pause(0.001)
    marks["interactive"] = time.time()
    pilot.app.exit()
app.run(headless=True, size=(140, 40), auto_pilot=auto_pilot)
print(marks["ready"], marks["interactive"])
"""


def start_up(kind: str, home: Path) -> tuple[float, float]:
    env = {**os.environ, "LITLAB_HOME": str(home)}
    t = time.time()
    out = subprocess.run([sys.executable, "-c", START.format(root=str(ROOT)), kind], env=env,
                         check=True, capture_output=True, text=True).stdout.split()
    return float(out[-2]) - t, float(out[-1]) - t


async def key_latency(kind: str, keys: int) -> list[float]:
    from textual.app import App, ComposeResult
    from textual.widgets import Input

    from tests.tui.fakes import FakeClient
    from tui.app import LitlabApp
    from tui.services import Services

    class Empty(App[None]):
        def compose(self) -> ComposeResult:
            yield Input()

    app: App[None]
    if kind == "litlab":
        # 2000 different words: an answer that repeats itself would be stopped early
        client = FakeClient(answer=" ".join(f"token{i}" for i in range(2000)), delay=0.02)
        app = LitlabApp(Services(settings(), client=client))
    else:
        app = Empty()
    samples = []
    async with app.run_test(size=(140, 40)) as pilot:
        box = app.screen.query_one(Input)
        if kind == "litlab":
            await app.workers.wait_for_complete()
            box.value = "What does LoRA freeze?"
            await pilot.press("enter")
            await pilot.pause(0.5)  # the answer is streaming now
        box.value = ""
        for i in range(keys):
            t = time.perf_counter()
            await pilot.press("a")
            await pilot.wait_for_scheduled_animations()
            samples.append(time.perf_counter() - t)
            assert len(box.value) == i + 1
        if kind == "litlab":
            await pilot.press("escape")
    return samples


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keys", type=int, default=40)
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.keys = 1, 3

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LITLAB_HOME"] = tmp
        for kind in ("empty", "litlab"):
            starts = [start_up(kind, Path(tmp)) for _ in range(args.runs)]
            keys = asyncio.run(key_latency(kind, args.keys))
            results[kind] = {
                "first_paint_s": round(statistics.median(s[0] for s in starts), 3),
                "interactive_s": round(statistics.median(s[1] for s in starts), 3),
                "key_p50_ms": round(1000 * percentile(keys, 50), 2),
                "key_p99_ms": round(1000 * percentile(keys, 99), 2),
            }
            print(f"{kind:7s} {json.dumps(results[kind])}")
    ours, base = results["litlab"], results["empty"]
    ratios = {
        "first_paint": round(ours["first_paint_s"] / base["first_paint_s"], 2),
        "interactive": round(ours["interactive_s"] / base["interactive_s"], 2),
        "key_p50_while_streaming": round(ours["key_p50_ms"] / base["key_p50_ms"], 2),
    }
    print(f"\nlitlab / empty Textual app: {ratios}")
    print(f"litlab first paint {ours['first_paint_s']} s (target < 1 s), key latency while "
          f"streaming p50 {ours['key_p50_ms']} ms")
    write("app", {**results, "ratios": ratios,
                  "targets": {"first_paint_s": "< 1"}}, args.smoke)


if __name__ == "__main__":
    main()
