"""Several model servers as one client.

``api_base`` (and ``teacher_api_base``) may list several OpenAI-compatible servers separated by
commas. :class:`ModelPool` then stands where a :class:`~agentlab.client.ModelClient` would: each
whole-answer request goes to the live server with the fewest requests in flight (ties to the one
that has served fewest), so an evaluation suite's jobs, the judge and the teacher spread over
every server. A server that cannot be reached, or that drops an answer mid-way (it was stopped,
it crashed), leaves the pool with a note, and the request goes to another: a request sent to a
dead server was never answered, so sending it again answers it once. A server error (HTTP 5xx)
moves the request only when the server's health check fails too (vLLM's engine died, or the
server is shutting down); from a healthy server it is the request's own error. A request that
merely took too long is not sent again (it may still be generating).

A streamed answer goes to one server and is not moved mid-stream; loading an adapter loads it
into every live server; ``models()`` lists what all of them serve.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from agentlab.client import ChatResult, ChatStream, Message, ModelClient
from agentlab.errors import ServerFailed, ServerGone, ServerUnavailable
from litcore.errors import UserError

Note = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


def split_urls(value: str | None) -> list[str]:
    """The servers a setting names: one URL, or several separated by commas."""
    return [u.strip().rstrip("/") for u in (value or "").split(",") if u.strip()]


class ModelPool:
    """Spreads requests over several servers; see the module's docstring."""

    def __init__(self, clients: Sequence[ModelClient], note: Note = _quiet) -> None:
        if not clients:
            raise ValueError("a pool needs at least one server")
        self.clients = list(clients)
        self.live = list(clients)
        self.note = note
        self.notes: list[str] = []
        self.served: Counter[str] = Counter()  # answers per server URL
        self._busy: Counter[str] = Counter()
        self._lock = threading.Lock()
        first = self.clients[0]
        self.base_url = ",".join(c.base_url for c in self.clients)
        self.api_key, self.timeout = first.api_key, first.timeout
        self.connect_retries = first.connect_retries

    # -- choosing a server -----------------------------------------------------------------
    def _take(self) -> ModelClient:
        with self._lock:
            if not self.live:
                raise ServerUnavailable(
                    f"none of the model servers answers ({self.base_url})",
                    "start them again, or set api_base to servers that run")
            c = min(self.live, key=lambda c: (self._busy[c.base_url], self.served[c.base_url]))
            self._busy[c.base_url] += 1
            return c

    def _give_back(self, c: ModelClient, answered: bool) -> None:
        with self._lock:
            self._busy[c.base_url] -= 1
            if answered:
                self.served[c.base_url] += 1

    def _drop(self, c: ModelClient, error: UserError) -> None:
        with self._lock:
            if c not in self.live:
                return
            self.live.remove(c)
            left = len(self.live)
        text = (f"model server {c.base_url} left the run ({error.message}); "
                f"its requests go to the {left} other(s)" if left else
                f"model server {c.base_url} left the run ({error.message}); none is left")
        self.notes.append(text)
        self.note(text)

    def _each(self, fn: Callable[[ModelClient], Any]) -> Any:
        """``fn`` on one server, moved to another while servers leave."""
        while True:
            c = self._take()
            answered = False
            try:
                result = fn(c)
                answered = True
                return result
            except ServerGone as e:
                self._drop(c, e)
            except ServerFailed as e:
                if c.healthy():
                    raise  # the server is fine: the request's own failure
                self._drop(c, e)
            finally:
                self._give_back(c, answered)

    # -- the ModelClient API ---------------------------------------------------------------
    def chat(self, messages: list[Message], *, model: str, **kwargs: Any) -> ChatResult:
        return self._each(lambda c: c.chat(messages, model=model, **kwargs))

    def stream(self, messages: list[Message], *, model: str, **kwargs: Any) -> ChatStream:
        return self._each(lambda c: c.stream(messages, model=model, **kwargs))

    def models(self) -> list[str]:
        """What every live server serves (a name one of them lacks would fail there)."""
        lists = [self._on(c, c.models) for c in list(self.live)]
        common = set.intersection(*(set(m) for m in lists if m is not None)) \
            if any(m is not None for m in lists) else set()
        if not self.live:
            self._take()  # raises: no server left
        return sorted(common)

    def load_adapter(self, name: str, path: str) -> None:
        for c in list(self.live):
            if (served := self._on(c, c.models)) is not None and name not in served:
                self._on(c, lambda c=c: c.load_adapter(name, path))  # type: ignore[misc]

    def unload_adapter(self, name: str) -> None:
        for c in list(self.live):
            self._on(c, lambda c=c: c.unload_adapter(name))  # type: ignore[misc]

    def _on(self, c: ModelClient, fn: Callable[[], Any]) -> Any:
        """``fn`` on this very server; None when it has gone (and leaves the pool)."""
        try:
            return fn()
        except ServerGone as e:
            self._drop(c, e)
            return None

    def langchain(self, model: str, **kwargs: Any) -> Any:
        c = self._take()
        self._give_back(c, True)
        return c.langchain(model, **kwargs)

    def convert_error(self, e: Exception, model: str) -> UserError:
        return self.clients[0].convert_error(e, model)

    def close(self) -> None:
        for c in self.clients:
            c.close()

    def spread(self) -> dict[str, int]:
        """Answers per server so far, every server listed."""
        return {c.base_url: self.served[c.base_url] for c in self.clients}
