"""Loading an adapter into a running server that cannot take it: one line each, nothing
restarted without consent. A small HTTP server plays vLLM's /v1/models (the real server is
used in test_serving.py); a sleeping process plays its pid."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from agentlab.settings import Settings
from finetune.adapters import AdapterStore, load_into_server
from litcore.errors import UserError
from tests.finetune.tiny import tiny_model


@pytest.fixture
def running(tmp_path: Path):
    home = Path(os.environ["LITLAB_HOME"])
    checkpoint = tiny_model(home)

    class Models(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = json.dumps({"data": [{"id": "smollm2-135m-instruct",
                                         "root": str(checkpoint)}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    http = HTTPServer(("127.0.0.1", 0), Models)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    proc = subprocess.Popen(["sleep", "600"], start_new_session=True)
    settings = Settings(home=home)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    (settings.run_dir / "server.json").write_text(json.dumps({
        "pid": proc.pid, "host": "127.0.0.1", "port": http.server_address[1],
        "model": "smollm2-135m-instruct", "checkpoint": str(checkpoint), "log": "-",
        "started_at": time.time(), "lora": False}))
    yield settings, home
    proc.kill()
    http.shutdown()


def adapter(home: Path, name: str, base: Path, rank: int = 8) -> None:
    folder = home / "adapters" / name
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps(
        {"base_model_name_or_path": str(base), "r": rank, "peft_type": "LORA"}))


def test_a_server_with_lora_off_is_not_restarted_without_consent(running) -> None:
    settings, home = running
    adapter(home, "mine", home / "models" / "smollm2-135m-instruct")
    with pytest.raises(UserError) as e:
        load_into_server(settings, "mine")
    assert "has LoRA off" in str(e.value) and "--restart" in str(e.value)
    assert json.loads((settings.run_dir / "server.json").read_text())["lora"] is False


def test_an_adapter_for_another_base_or_too_high_a_rank_is_refused(running) -> None:
    settings, home = running
    adapter(home, "gemma-one", home / "models" / "gemma-3-270m")
    with pytest.raises(UserError, match="gemma-one was trained on gemma-3-270m; the running "
                                        "server serves smollm2-135m-instruct"):
        load_into_server(settings, "gemma-one")
    adapter(home, "wide", home / "models" / "smollm2-135m-instruct", rank=64)
    with pytest.raises(UserError, match="rank 64; the server accepts up to 16"):
        load_into_server(settings, "wide")
    assert AdapterStore(settings).get("wide").base == "smollm2-135m-instruct"


def test_with_adapter_serving_merged_loading_serves_the_merge(
        running, monkeypatch: pytest.MonkeyPatch) -> None:
    """``adapter_serving = "merged"``: loading an adapter makes litlab's server serve it merged
    into its base (a server of its own), not LoRA beside a base that has LoRA off."""
    from agentlab.server import LocalServer

    settings, home = running
    adapter(home, "mine", home / "models" / "smollm2-135m-instruct")
    started: list[tuple[str | None, str]] = []
    def ensure(self: LocalServer, progress: object = None) -> str:
        started.append((self.merged, str(self.checkpoint)))
        return "http://127.0.0.1:1/v1"

    monkeypatch.setattr(LocalServer, "ensure", ensure)
    said = load_into_server(settings.model_copy(update={"adapter_serving": "merged"}), "mine")
    assert "serves mine merged into smollm2-135m-instruct" in said
    assert started == [("mine", str(home / "models" / "merged" / "mine"))]
