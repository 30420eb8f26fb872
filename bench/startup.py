"""Start-up: what a person waits for before litlab does anything, each against its floor
measured in the same run.

1. Cold commands, each a new process (median of ``--repeat`` runs after one that warms the
   file cache), against `python -c pass`: `litlab --help`, `litlab config show`, a cold
   `litlab search` with the ONNX embedder (what every home uses once the machine has the
   export) and with sentence-transformers (a cache where the export failed), on a fresh home
   holding litlab's shipped suite notes (your home's models/ linked in). Goals: 0.3, 0.3 and
   1.5 s.
2. The app's first paint: the real `litlab` in a pseudo-terminal until the chat's question box
   is on screen, against an empty Textual app with one input box. Goal: 0.5 s.
3. The model server (skip with --no-server): ready time on a first start (empty compile cache)
   and a second start, and tokens/s (one stream of 128 tokens; 16 concurrent streams of 64),
   for vLLM with its defaults (`python -m vllm.entrypoints.openai.api_server`, the floor; the
   KV cache set to litlab's 1 GiB, as vLLM's default 92% of memory cannot start here), and
   litlab's server with its defaults and with each of its start-up choices turned back
   (fork_engine, compile_model, worker_process). Goals: second start 20 s, first 45 s, tokens/s within 10%
   of vLLM's defaults.
4. A cold `litlab ask` to its first answer token, the server up. Goal: 3 s.

Writes bench/results/startup.json.

    .venv/bin/python bench/startup.py [--repeat 5] [--no-server] [--smoke]

The embedder's ONNX export is made in the machine's cache first if it is not there (as
`litlab models prepare` does). The server part takes about 10 minutes on a 2-core CPU;
nothing else should run meanwhile. --smoke: one repeat, no server part.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import RESULTS, ROOT, arguments, settings, write

LITLAB = str(Path(sys.executable).with_name("litlab"))
EMPTY_APP = """
from textual.app import App
from textual.widgets import Input
class Empty(App):
    def compose(self):
        yield Input(placeholder="Ask about the papers")
Empty().run()
"""


def timed(cmd: list[str], repeat: int) -> float:
    subprocess.run(cmd, capture_output=True, check=True)  # warm the file cache
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def cold_commands(work: Path, embed_model: str, repeat: int, query: str) -> dict[str, Any]:
    floor = timed([sys.executable, "-c", "pass"], repeat)
    rows = {
        "help": (timed([LITLAB, "--help"], repeat), 0.3),
        "config_show": (timed([LITLAB, "config", "show"], repeat), 0.3),
        "search_onnx": (timed([LITLAB, "search", query], repeat), 1.5),
    }
    # sentence-transformers: a cache of its own where the export is recorded as failed
    from retrievers.index.embeddings import _record_failure
    from retrievers.index.onnx_embedder import export_dir

    no_onnx = work / "cache-without-onnx"
    _record_failure(export_dir(no_onnx, embed_model), "left out by bench/startup.py")
    os.environ["LITLAB_CACHE_DIR"] = str(no_onnx)
    try:
        rows["search_torch"] = (timed([LITLAB, "search", query], max(1, repeat // 2)), 1.5)
    finally:
        del os.environ["LITLAB_CACHE_DIR"]
    print(f"  {'python -c pass':22s} {floor:6.2f} s  (the floor)")
    for name, (seconds, goal) in rows.items():
        verdict = "met" if seconds <= goal else "missed"
        print(f"  {name:22s} {seconds:6.2f} s  goal {goal} s ({verdict}), {seconds / floor:5.1f}x "
              "the floor")
    speedup = rows["search_torch"][0] / rows["search_onnx"][0]
    print(f"  cold search: ONNX embedder {speedup:.1f}x faster than sentence-transformers")
    return {
        "floor_python_s": round(floor, 3),
        "commands": {k: {"seconds": round(v, 3), "goal_s": g, "met": v <= g,
                         "ratio_to_floor": round(v / floor, 2)} for k, (v, g) in rows.items()},
        "ratio_search_torch_vs_onnx": round(speedup, 2),
    }


def first_paint(home: Path, repeat: int) -> dict[str, Any]:
    from tests.terminal import Terminal, env_for

    def once(kind: str) -> float:
        # A server that is not there: the paint must not wait for one.
        env = env_for(home, LITLAB_API_BASE="http://127.0.0.1:9/v1")
        started = time.perf_counter()
        term = (Terminal([sys.executable, "-c", EMPTY_APP], env) if kind == "empty"
                else Terminal.litlab(env=env))
        try:
            term.wait_for(lambda t: "Ask about the papers" in t, 30, "the first paint")
            return time.perf_counter() - started
        finally:
            term.close()

    once("litlab")  # warm the file cache
    empty = statistics.median(once("empty") for _ in range(repeat))
    ours = statistics.median(once("litlab") for _ in range(repeat))
    print(f"  app first paint {ours:.2f} s (goal 0.5 s: {'met' if ours <= 0.5 else 'missed'}), "
          f"empty Textual app {empty:.2f} s, {ours / empty:.2f}x")
    return {"litlab_s": round(ours, 3), "empty_textual_s": round(empty, 3),
            "ratio": round(ours / empty, 2), "goal_s": 0.5, "met": ours <= 0.5}


class Started:
    """One server process, started and timed until /v1/models answers."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path, api_key: str) -> None:
        import httpx

        self.port = int(cmd[cmd.index("--port") + 1])
        self.base = f"http://127.0.0.1:{self.port}/v1"
        self.headers = {"Authorization": f"Bearer {api_key}"}
        started = time.perf_counter()
        with log.open("w") as out:
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        while True:
            if self.proc.poll() is not None:
                tail = "\n".join(log.read_text().splitlines()[-15:])
                sys.exit(f"the server exited while starting:\n{tail}")
            try:
                if httpx.get(self.base + "/models", headers=self.headers,
                             timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.ready_s = time.perf_counter() - started
        self.model = httpx.get(self.base + "/models", headers=self.headers).json()["data"][0]["id"]

    def tokens_per_s(self, streams: int, tokens: int) -> float:
        import httpx

        async def one(client: httpx.AsyncClient, i: int, n: int) -> int:
            r = await client.post(self.base + "/completions", headers=self.headers, timeout=600,
                                  json={"model": self.model, "max_tokens": n, "min_tokens": n,
                                        "prompt": f"Explain attention to a student ({i}).",
                                        "temperature": 0})
            return int(r.json()["usage"]["completion_tokens"])

        async def run() -> float:
            async with httpx.AsyncClient() as client:
                await one(client, -1, 8)  # warm-up
                started = time.perf_counter()
                done = await asyncio.gather(*(one(client, i, tokens) for i in range(streams)))
                return sum(done) / (time.perf_counter() - started)

        return asyncio.run(run())

    def stop(self) -> None:
        import signal

        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def servers(home: Path, work: Path) -> dict[str, Any]:
    from agentlab.server import LocalServer
    from agentlab.settings import load_settings

    base = load_settings(home=home).settings
    results: dict[str, Any] = {}
    variants: dict[str, dict[str, Any] | None] = {
        "vllm_defaults": None,
        "litlab": {},
        "litlab_spawned_engine": {"fork_engine": False},
        "litlab_compile_model": {"compile_model": True},
        "litlab_worker_process": {"worker_process": True},
    }
    for name, change in variants.items():
        server = LocalServer(base.model_copy(update=change or {}))
        env = server.environment()
        if change is None:  # vLLM as its documentation starts it, on the same checkpoint; the
            # KV cache is litlab's size (vLLM's default asks for 92% of memory and fails here)
            cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
                   "--model", str(server.checkpoint), "--port", "8790"]
            env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1",
                   "VLLM_CPU_KVCACHE_SPACE": env["VLLM_CPU_KVCACHE_SPACE"]}
        else:
            cmd = server.command(8790)
        env["VLLM_CACHE_ROOT"] = str(work / f"vllm-cache-{name}")  # first start: empty cache
        times = []
        for attempt in ("first", "second"):
            s = Started(cmd, env, work / f"{name}-{attempt}.log", base.api_key)
            times.append(s.ready_s)
            if attempt == "second":
                single = s.tokens_per_s(1, 128)
                many = s.tokens_per_s(16, 64)
            s.stop()
        results[name] = {"first_start_s": round(times[0], 1), "second_start_s": round(times[1], 1),
                         "tok_s_1_stream": round(single, 1), "tok_s_16_streams": round(many, 1)}
        print(f"  {name:22s} ready {times[0]:6.1f} s first, {times[1]:6.1f} s second; "
              f"{single:6.1f} tok/s one stream, {many:6.1f} tok/s 16 streams", flush=True)
    floor, ours = results["vllm_defaults"], results["litlab"]
    results["litlab_vs_vllm_defaults"] = {
        "second_start": round(ours["second_start_s"] / floor["second_start_s"], 2),
        "first_start": round(ours["first_start_s"] / floor["first_start_s"], 2),
        "tok_s_1_stream": round(ours["tok_s_1_stream"] / floor["tok_s_1_stream"], 2),
        "tok_s_16_streams": round(ours["tok_s_16_streams"] / floor["tok_s_16_streams"], 2),
    }
    results["goals"] = {"second_start_s": 20, "first_start_s": 45,
                        "tok_s_vs_vllm_defaults": ">= 0.9"}
    r = results["litlab_vs_vllm_defaults"]
    print(f"  litlab/vLLM defaults: start {r['second_start']}x (second), {r['first_start']}x "
          f"(first); tokens/s {r['tok_s_1_stream']}x (1 stream), {r['tok_s_16_streams']}x (16)")
    return results


def cold_ask(home: Path, query: str, repeat: int) -> dict[str, Any]:
    """From spawning `litlab ask` to the first byte of its answer on stdout."""
    from agentlab.server import LocalServer
    from agentlab.settings import load_settings

    LocalServer(load_settings(home=home).settings).ensure()
    env = {**os.environ, "LITLAB_HOME": str(home), "PYTHONUNBUFFERED": "1"}

    def once() -> float:
        started = time.perf_counter()
        proc = subprocess.Popen([LITLAB, "ask", "--max-tokens", "16", query], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        proc.stdout.read(1)
        first = time.perf_counter() - started
        proc.wait()
        return first

    once()
    seconds = statistics.median(once() for _ in range(repeat))
    print(f"  cold ask to its first token {seconds:.2f} s (goal 3 s: "
          f"{'met' if seconds <= 3 else 'missed'})")
    LocalServer(load_settings(home=home).settings).stop()
    return {"first_token_s": round(seconds, 3), "goal_s": 3, "met": seconds <= 3}


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--query", default="How does Mamba scale with sequence length?")
    parser.add_argument("--no-server", action="store_true",
                        help="skip the server start-ups and the cold ask (about 10 minutes)")
    args = parser.parse_args()
    if args.smoke:
        args.repeat, args.no_server = 1, True

    from retrievers.index.onnx_embedder import export, export_dir, is_exported

    mine = settings()
    if not is_exported(export_dir(mine.cache_path, mine.embed_model)):
        print(f"exporting {mine.embed_model} to ONNX into {mine.cache_path} (once a machine)")
        export(mine.embed_model, mine.cache_path)
    work = Path(tempfile.mkdtemp(prefix="litlab-startup-"))
    home = work / "home"
    home.mkdir()
    mine.models_dir.mkdir(parents=True, exist_ok=True)
    (home / "models").symlink_to(mine.models_dir, target_is_directory=True)
    os.environ["LITLAB_HOME"] = str(home)
    notes = ROOT / "evals" / "suites" / "library"
    subprocess.run([LITLAB, "index", "files", str(notes)], capture_output=True, check=True)
    try:
        print("cold commands:")
        results: dict[str, Any] = cold_commands(work, mine.embed_model, args.repeat,
                                                args.query)
        print("the app:")
        results["app_first_paint"] = first_paint(home, args.repeat)
        if not args.no_server:
            print("the model server (about 10 minutes):")
            results["server"] = servers(home, work)
            results["cold_ask"] = cold_ask(home, args.query, args.repeat)
        elif (RESULTS / "startup.json").exists():  # the last server figures, said to be older
            earlier = json.loads((RESULTS / "startup.json").read_text())
            for key in ("server", "cold_ask"):
                if key in earlier:
                    results[key] = {**earlier[key], "from_an_earlier_run": True,
                                    "measured_at": earlier[key].get("measured_at")
                                    or earlier.get("measured_at")}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write("startup", {**results, "repeat": args.repeat}, args.smoke)


if __name__ == "__main__":
    main()
