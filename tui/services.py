"""What the screens need from the rest of litlab, created lazily and off the UI thread.

Nothing here is imported at start-up beyond settings: the server, the embedder, FAISS and the
agent load inside workers the first time a screen needs them. Tests pass a fake model client
(and, for the library screen, a recorded arXiv) instead of the real ones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # loading settings imports pydantic: after the first paint, not before
    from agentlab.settings import LoadedSettings, Settings


class Services:
    def __init__(self, settings: Settings | Callable[[], LoadedSettings], client: Any = None,
                 arxiv: Callable[[], Any] | None = None) -> None:
        """``settings``, or a function that loads them (called once, on first use: the app
        paints before it asks; their warnings land in ``settings_warnings``)."""
        self._settings: Settings | None = None if callable(settings) else settings
        self._load_settings = settings if callable(settings) else None
        self._settings_lock = threading.Lock()
        self.settings_warnings: list[str] = []
        self.client = client  # None: litlab's own server, started by start_server()
        self._given_client = client is not None
        self.arxiv = arxiv
        self.server_ready = threading.Event()
        self.server_error: Exception | None = None
        self.served: list[str] = []  # what the server listed when it came up
        self.started_server = False  # this app started litlab's server (not reused it)
        self._library: Any = None
        self._chats: Any = None
        self._lock = threading.Lock()

    @property
    def settings_loaded(self) -> bool:
        return self._settings is not None

    @property
    def settings(self) -> Settings:
        with self._settings_lock:
            if self._settings is None:
                assert self._load_settings is not None
                loaded = self._load_settings()
                self.settings_warnings = list(loaded.warnings)
                self._settings = loaded.settings
            return self._settings

    def start_server(self, progress: Callable[[str], None]) -> str:
        """Start (or reuse) the model server; blocking, so call it from a worker."""
        self.server_error = None
        if self.client is None:
            from agentlab.server import LocalServer, connect

            try:
                if not self.settings.api_base:
                    self.started_server = not LocalServer(self.settings).process_running()
                self.client = connect(self.settings, progress)
            except Exception as e:
                self.server_error = e  # a question waiting for the server fails with it
                raise
        try:
            self.served = self.models()
        except Exception as e:
            self.server_error = e
            raise
        self.server_ready.set()
        return str(getattr(self.client, "base_url", "test"))

    def forget_server(self) -> None:
        """After the server died: the next start_server() asks for it again (and restarts it).
        A client given by a test stays."""
        if not self._given_client:
            self.client = None
            self.server_ready.clear()

    def wait_for_server(self, stop: threading.Event) -> None:
        """Block until the server is up; raise its start-up error, or Stopped-like ``stop``."""
        while not self.server_ready.wait(0.2):
            if self.server_error is not None:
                raise self.server_error
            if stop.is_set():
                raise InterruptedError

    def models(self) -> list[str]:
        return list(self.client.models()) if self.client is not None else []

    def default_model(self, served: list[str] | None = None) -> str:
        """The model to answer with when the person picked none: the configured one when the
        server serves it, else the first one it serves."""
        served = self.served if served is None else served
        wanted = self.settings.model
        return wanted if wanted in served or not served else served[0]

    def hold_server(self) -> None:
        """Keep litlab's own server from stopping for idleness while the app is open."""
        if not self._given_client and not self.settings.api_base:
            from agentlab.server import LocalServer

            LocalServer(self.settings).hold()

    def release_server(self) -> None:
        """At quit: let go of the server (its keep-alive counts from now), and stop it when
        this app started it and the settings say the app owns it."""
        if not self.settings_loaded:  # closed before (or because) they loaded: no server
            return
        if self._given_client or self.settings.api_base:
            return
        from agentlab.server import LocalServer

        server = LocalServer(self.settings)
        server.hold_path.unlink(missing_ok=True)
        if self.started_server and self.settings.app_server == "stop":
            server.stop()

    def log_bug(self, error: BaseException) -> Path:
        """Append ``error``'s traceback to LITLAB_HOME/logs/app.log; return the log's path."""
        import time
        import traceback

        log = self.settings.home_dir / "logs" / "app.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as f:
            f.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
            f.write("".join(traceback.format_exception(error)))
        return log

    def open_library(self) -> Any:
        """A Library of its own, for a worker that writes (index, remove): a catalog connection
        and a vector store are not shared between threads that change them."""
        from retrievers.library import Library

        return Library.from_settings(self.settings)

    @property
    def library(self) -> Any:
        """The Library answers and screens read from."""
        with self._lock:
            if self._library is None:
                self._library = self.open_library()
            return self._library

    def library_changed(self) -> None:
        """After a write: the next reader opens the library again (the embedder is cached, so
        this costs the index file's load only). A search already running keeps its instance."""
        with self._lock:
            self._library = None

    def embedder_changed(self, model: str) -> None:
        """After a fine-tuned retriever was adopted (``embed_model`` saved): searches from now
        on embed with ``model`` and read the store made with it."""
        with self._settings_lock:
            self._settings = self.settings.model_copy(update={"embed_model": model})
        self.library_changed()

    @property
    def chats(self) -> Any:
        with self._lock:
            if self._chats is None:
                from agentlab.chats import ChatStore

                self._chats = ChatStore(self.settings.home_dir / "chats.sqlite")
            return self._chats

    def assistant(self, model: str) -> Any:
        from agentlab.assistant import Assistant

        return Assistant.from_settings(self.settings, self.client, self.library, model)

    def agent(self, model: str) -> Any:
        from agentlab.agent import ResearchAgent

        return ResearchAgent.from_settings(self.settings, self.client, self.library, model,
                                           arxiv=self.arxiv)
