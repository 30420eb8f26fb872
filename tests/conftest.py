"""Shared fixtures: an isolated LITLAB_HOME per test, one prepared model and one real vLLM
server per test session."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentlab.settings import Settings
from tests.papers import papers_dir  # noqa: F401 - a fixture for every package's tests

DEFAULT_MODEL = "smollm2-135m-instruct"

# Nothing in the tests may reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks follow what a test uses, so the quick run (`-m "not server and not slow"`) skips
    exactly the tests that need the vLLM server or the model conversion, and no other."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "vllm_server" in names:
            item.add_marker(pytest.mark.server)
        if "prepared_models" in names or "vllm_server" in names:
            item.add_marker(pytest.mark.slow)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's ~/.litlab or LITLAB_* variables."""
    for key in list(os.environ):
        if key.startswith("LITLAB_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("LITLAB_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def embed():
    """The packaged MiniLM's ``embed``, loaded once a test module."""
    from retrievers.index.embeddings import get_embedder

    return get_embedder().embed


@pytest.fixture(scope="session")
def prepared_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models/ folder with the default model prepared once for the whole session."""
    from agentlab.models import prepare

    models_dir = tmp_path_factory.mktemp("models")
    prepare(DEFAULT_MODEL, models_dir)
    return models_dir


def home_with_models(home: Path, models_dir: Path) -> Path:
    """A LITLAB_HOME whose models/ is the session's prepared one (linked, not copied)."""
    home.mkdir(parents=True, exist_ok=True)
    link = home / "models"
    if not link.exists():
        link.symlink_to(models_dir, target_is_directory=True)
    return home


class RunningServer:
    def __init__(self, settings: Settings, api_base: str) -> None:
        self.settings = settings
        self.api_base = api_base

    def client(self):
        from agentlab.client import ModelClient

        return ModelClient(self.api_base, timeout=120)

    def env(self) -> dict[str, str]:
        """Environment for a `litlab` subprocess that should reuse this server."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LITLAB_")}
        env["LITLAB_HOME"] = str(self.settings.home)
        env["LITLAB_PORT"] = str(self.settings.port)
        return env


@pytest.fixture(scope="session")
def vllm_server(
    tmp_path_factory: pytest.TempPathFactory, prepared_models: Path
) -> Iterator[RunningServer]:
    """One real vLLM server (CPU) on the embedded model, started by litlab itself."""
    from agentlab.server import LocalServer

    home = home_with_models(tmp_path_factory.mktemp("server-home"), prepared_models)
    settings = Settings(home=home, port=free_port(), max_model_len=2048, temperature=0.0, lora="on",
                        keep_alive=0)  # the session's server: no idle stop between tests
    server = LocalServer(settings)
    try:
        url = server.ensure()
    except Exception:
        log = settings.run_dir / "server.log"
        if log.exists():
            print(log.read_text()[-5000:])
        raise
    yield RunningServer(settings, url)
    server.stop()
    shutil.rmtree(home / "run", ignore_errors=True)
