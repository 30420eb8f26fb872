"""The litlab terminal app: chat and library screens, help, and the server's state always on
screen. Start-up paints first and loads everything heavy in workers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from tui.screens.chat import ChatScreen
from tui.services import Services

if TYPE_CHECKING:
    from agentlab.settings import LoadedSettings, Settings


def _opened_later(name: str) -> Callable[[], Screen[None]]:
    """Only the chat is on screen at start-up; the other screens (and what they import:
    charts, the evaluation runner) load the first time a person opens them."""
    def make() -> Screen[None]:
        from importlib import import_module

        module = import_module(f"tui.screens.{name.lower()}")
        return getattr(module, f"{name}Screen")()

    return make


class _Notes(logging.Handler):
    """litlab's notes (the embedder being prepared, say) as notifications: on a terminal the
    app owns, a line on stderr would land in the middle of the screen."""

    def __init__(self, app: App[None]) -> None:
        super().__init__(logging.WARNING)
        self.app = app

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().removeprefix("note: ")
        try:
            self.app.call_from_thread(self.app.notify, text, timeout=10)
        except RuntimeError:  # on the app's own thread
            self.app.notify(text, timeout=10)


class LitlabApp(App[None]):
    TITLE = "litlab"
    SCREENS = {"chat-screen": ChatScreen,  # noqa: RUF012
               "library-screen": _opened_later("Library"), "evals-screen": _opened_later("Evals"),
               "models-screen": _opened_later("Models"), "check-screen": _opened_later("Check"),
               "help": _opened_later("Help")}
    MODES = {"chat": "chat-screen", "library": "library-screen",  # noqa: RUF012
             "evals": "evals-screen", "models": "models-screen", "check": "check-screen"}
    BINDINGS = [  # noqa: RUF012 - Textual's API
        Binding("ctrl+q", "quit", "Quit"),
        Binding("ctrl+r", "retry_server", "Retry server", show=False),
    ]
    HEALTH_EVERY_S = 15.0

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self._server_up: bool | None = None
        self.startup_error: Exception | None = None  # settings that could not be loaded
        self._notes = _Notes(self)

    @property
    def chat(self) -> ChatScreen:
        return self.get_screen("chat-screen")  # type: ignore[return-value]

    async def on_mount(self) -> None:
        logging.getLogger("litlab").addHandler(self._notes)
        if self.services.settings_loaded:  # given loaded (tests, embedding the app)
            await self.switch_mode("chat")
            self._settings_loaded()
        else:  # the chat is on screen first; then the settings load
            self.switch_mode("chat")
            self.call_after_refresh(self.load_settings)

    @work(thread=True, group="settings", exclusive=True)
    def load_settings(self) -> None:
        """Settings (and through them the chats, the server, the library) load after the
        first paint: a person sees the app at once and can start typing."""
        from litcore.errors import UserError

        try:
            self.services.settings  # noqa: B018 - loading them is the point
        except UserError as e:  # a bad litlab.toml or LITLAB_* value: one line, after the app
            self.startup_error = e
            self.call_from_thread(self.exit)
            return
        self.call_from_thread(self._settings_loaded)

    def _settings_loaded(self) -> None:
        for warning in self.services.settings_warnings:
            self.notify(warning, title="settings", severity="warning", timeout=10)
        self.chat.settings_loaded()
        self.start_server()
        self.set_timer(0.5, self.warm_up)
        self.set_interval(self.HEALTH_EVERY_S, self.check_server)

    @work(thread=True, group="warm", exclusive=True)
    def warm_up(self) -> None:
        """Load the embedder and the vector index while the person types the first question
        (importing sentence-transformers alone takes seconds)."""
        try:
            library = self.services.library
            if not library.catalog.is_empty():
                library.embedder.embed_query("warm-up")
                library.store  # noqa: B018 - opening it is the point
        except Exception as e:  # noqa: BLE001 - the first question will report it properly
            log = self.services.log_bug(e)
            self.call_from_thread(self.notify, f"the library could not be loaded: {e} "
                                               f"(details in {log})", severity="warning")

    @work(thread=True, group="server", exclusive=True)
    def start_server(self) -> None:
        from litcore.errors import UserError

        say = self.call_from_thread
        try:
            url = self.services.start_server(lambda m: say(self.chat.server_status, m))
            models = self.services.served
        except UserError as e:
            self._server_up = False
            say(self.chat.server_status, f"down: {e.message} (ctrl+r retries)", False)
            say(self.notify, str(e), title="model server", severity="error", timeout=10)
            return
        self._server_up = True
        say(self.chat.set_models, models)
        say(self.chat.server_status, f"ready · {url}", True)

    @work(thread=True, group="health", exclusive=True)
    def check_server(self) -> None:
        """Notice a server that went away or came back; never raise."""
        if not self.services.server_ready.is_set():
            return
        try:
            self.services.hold_server()  # an open app keeps its server from idling out
            self.services.models()
            up = True
        except Exception:  # noqa: BLE001 - any failure means "down" here
            up = False
        if up != self._server_up:
            self._server_up = up
            say = self.call_from_thread
            if up:
                say(self.chat.server_status, "ready again", True)
                say(self.notify, "the model server is back")
            else:
                say(self.chat.server_status, "down (ctrl+r restarts it)", False)
                say(self.notify, "the model server stopped answering; press ctrl+r to restart it",
                    severity="error", timeout=10)

    def on_unmount(self) -> None:
        logging.getLogger("litlab").removeHandler(self._notes)
        self.services.release_server()

    def action_retry_server(self) -> None:
        if not self._server_up:
            self.services.forget_server()
        self.chat.server_status("starting…")
        self.start_server()


def run(settings: Settings | Callable[[], LoadedSettings]) -> None:
    """Open the app; ``settings`` may be a function that loads them (after the first paint).
    Settings that fail to load close the app and raise their one-line error here."""
    app = LitlabApp(Services(settings))
    app.run()
    if app.startup_error is not None:
        raise app.startup_error
