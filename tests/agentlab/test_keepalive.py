"""Keep-alive: the background server stops itself when idle, not while it works or while an
app holds it. The watcher reads vLLM's Prometheus counters; here a small HTTP server plays
them (the real server's counters are read in the last test) and a sleeping process plays the
server, so the test takes seconds instead of a vLLM start."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from agentlab.keepalive import activity, read_activity, watch
from agentlab.server import LocalServer, _alive
from agentlab.settings import Settings

METRICS = """# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
vllm:prompt_tokens_total{{engine="0",model_name="m"}} {prompt}
vllm:generation_tokens_total{{engine="0",model_name="m"}} {gen}
vllm:num_requests_running{{engine="0",model_name="m"}} {running}
vllm:num_requests_waiting{{engine="0",model_name="m"}} 0.0
"""


class FakeVllm:
    def __init__(self) -> None:
        self.prompt, self.running = 0.0, 0.0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = METRICS.format(prompt=fake.prompt, gen=2 * fake.prompt,
                                      running=fake.running).encode()
                self.send_response(200)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.http = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.port = self.http.server_address[1]


@pytest.fixture
def served(tmp_path: Path):
    fake = FakeVllm()
    settings = Settings(home=tmp_path / "home", keep_alive=1.5)
    proc = subprocess.Popen(["sleep", "600"], start_new_session=True)
    run = settings.run_dir
    run.mkdir(parents=True)
    (run / "server.json").write_text(json.dumps({
        "pid": proc.pid, "host": "127.0.0.1", "port": fake.port, "model": "m",
        "checkpoint": "x", "log": "-", "started_at": time.time(), "lora": False}))
    yield settings, proc, fake
    proc.kill()
    fake.http.shutdown()


def test_counters_are_read_from_prometheus_text() -> None:
    text = METRICS.format(prompt=10.0, gen=5.0, running=2.0)
    assert activity(text) == (15.0, 2.0)
    assert activity("") == (0.0, 0.0)


def test_an_idle_server_is_stopped(served) -> None:
    settings, proc, _ = served
    started = time.monotonic()
    why = watch(settings, proc.pid, poll=0.2)
    assert why == "stopped after 2 s idle"
    assert 1.5 <= time.monotonic() - started < 5
    proc.wait(timeout=5)
    assert not _alive(proc.pid) and LocalServer(settings).read_state() is None


def test_work_and_an_open_app_keep_it_running(served) -> None:
    settings, proc, fake = served
    stop_feeding = threading.Event()

    def feed() -> None:  # a request every half second for three seconds
        for _ in range(6):
            fake.prompt += 7
            time.sleep(0.5)
        fake.running = 1.0  # then one long request for two seconds
        time.sleep(2)
        fake.running = 0.0
        LocalServer(settings).hold()  # then an app holds it
        stop_feeding.set()

    threading.Thread(target=feed, daemon=True).start()
    result: list[str] = []
    watcher = threading.Thread(target=lambda: result.append(watch(settings, proc.pid, poll=0.2)),
                               daemon=True)
    watcher.start()
    stop_feeding.wait(10)
    time.sleep(2)
    assert _alive(proc.pid) and not result  # busy, then held: still serving
    (settings.run_dir / "server.hold").unlink()
    watcher.join(10)
    assert result == ["stopped after 2 s idle"]


def test_the_real_server_counts_its_work(vllm_server) -> None:
    before = read_activity(vllm_server.api_base)
    assert before is not None
    vllm_server.client().chat([{"role": "user", "content": "Hi"}],
                              model="smollm2-135m-instruct", max_tokens=4)
    after = read_activity(vllm_server.api_base)
    assert after is not None and after[0] > before[0]


def test_quitting_the_app_lets_go_and_stops_only_what_it_owns(served) -> None:
    from tui.services import Services

    settings, proc, _ = served
    server = LocalServer(settings)
    app = Services(settings)
    app.hold_server()
    assert server.hold_path.exists()
    app.release_server()  # app_server = "keep": the hold goes, the server stays
    assert not server.hold_path.exists() and _alive(proc.pid)
    owner = Services(settings.model_copy(update={"app_server": "stop"}))
    owner.started_server = False  # it found the server running: not its own
    owner.release_server()
    assert _alive(proc.pid)
    owner.started_server = True
    owner.release_server()
    proc.wait(timeout=10)
    assert server.read_state() is None
