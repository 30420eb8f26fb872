"""Keep-alive: the background server stops itself after ``keep_alive`` seconds without work.

A vLLM server on a laptop holds its memory, and its CPU workers spin after each request;
like Ollama's keep-alive, litlab's background server gives both back when nobody uses it,
and the next command that needs it starts it again. A small watcher process, started beside
the server, reads vLLM's Prometheus counters (``/metrics``) every few seconds: tokens
processed and requests running or waiting. When none of them moved for ``keep_alive``
seconds it stops the server (the same stop as ``litlab serve --stop``, under the same lock)
and exits. It also exits when the server it watches is gone or replaced. A program that
keeps the server in use without sending requests (the app, open and idle) touches
``run/server.hold`` now and then; a recent touch counts as work.

    python -m agentlab.keepalive HOME PID      (started by LocalServer.ensure)
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

_COUNTERS = ("vllm:prompt_tokens_total", "vllm:generation_tokens_total",
             "vllm:num_requests_running", "vllm:num_requests_waiting")
_LINE = re.compile(r"^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})?\s+([0-9.eE+-]+)\s*$")


def activity(metrics_text: str) -> tuple[float, float]:
    """(tokens processed so far, requests running or waiting now) from vLLM's metrics."""
    totals = dict.fromkeys(_COUNTERS, 0.0)
    for line in metrics_text.splitlines():
        m = _LINE.match(line)
        if m and m.group(1) in totals:
            totals[m.group(1)] += float(m.group(2))
    tokens = totals["vllm:prompt_tokens_total"] + totals["vllm:generation_tokens_total"]
    busy = totals["vllm:num_requests_running"] + totals["vllm:num_requests_waiting"]
    return tokens, busy


def read_activity(api_base: str) -> tuple[float, float] | None:
    root = api_base.rstrip("/").removesuffix("/v1")
    try:
        r = httpx.get(f"{root}/metrics", timeout=5.0)
        r.raise_for_status()
    except httpx.HTTPError:
        return None
    return activity(r.text)


HOLD_S = 60.0  # a hold touched this recently keeps the server up


def held(path: Path, now: float | None = None) -> bool:
    try:
        return (now or time.time()) - path.stat().st_mtime < HOLD_S
    except OSError:
        return False


def watch(settings: object, pid: int, *, poll: float | None = None,
          clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> str:
    """Watch the server ``pid``; stop it once idle for ``settings.keep_alive`` seconds.
    Returns why it ended."""
    from agentlab.server import LocalServer

    server = LocalServer(settings)  # type: ignore[arg-type]
    keep = float(settings.keep_alive)  # type: ignore[attr-defined]
    poll = poll or max(0.5, min(15.0, keep / 4))
    last_seen: tuple[float, float] | None = None
    idle_since = clock()
    failures = 0
    while True:
        state = server.read_state()
        if state is None or state.pid != pid:
            return "the server it watched is gone"
        seen = read_activity(state.api_base)
        if seen is None:
            failures += 1
            if failures >= 4:
                return "the server stopped answering"
        else:
            failures = 0
            tokens, busy = seen
            if busy or last_seen is None or tokens != last_seen[0] or \
                    held(server.hold_path):
                idle_since = clock()
            last_seen = seen
        if seen is not None and clock() - idle_since >= keep:
            with server._lock():
                current = server.read_state()
                if current is None or current.pid != pid:
                    return "the server it watched is gone"
                server.stop()
            return f"stopped after {keep:.0f} s idle"
        sleep(poll)


def main() -> None:
    from agentlab.settings import load_settings

    home, pid = Path(sys.argv[1]), int(sys.argv[2])
    settings = load_settings(home=str(home)).settings
    if settings.keep_alive <= 0:
        return
    why = watch(settings, pid)
    print(f"keep-alive: {why}", flush=True)


if __name__ == "__main__":
    main()
