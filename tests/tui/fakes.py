"""A fake model client for TUI tests that are not about the model: it streams a scripted answer
(slowly if asked) the way litlab's ModelClient does."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from agentlab.errors import ServerUnavailable


class FakeStream:
    def __init__(self, text: str, model: str, delay: float) -> None:
        self.pieces = [w + " " for w in text.split(" ")]
        self.pieces[-1] = self.pieces[-1].rstrip()
        self.model, self.delay = model, delay
        self.result: Any = None
        self.closed = False
        self.sent = 0

    def __iter__(self) -> Iterator[str]:
        for p in self.pieces:
            if self.closed:
                return
            time.sleep(self.delay)
            self.sent += 1
            yield p
        self._finish("stop")

    def _finish(self, reason: str | None) -> None:
        from agentlab.client import ChatResult  # openai: not on the app's start-up path

        self.result = ChatResult("".join(self.pieces[:self.sent]), self.model, 10, self.sent,
                                 reason, ttft_s=self.delay, total_s=self.delay * self.sent)

    def close(self) -> None:
        """As the real stream: the server stops, the result holds what was sent."""
        self.closed = True
        if self.result is None:
            self._finish(None)


class FakeClient:
    def __init__(self, answer: str = "LoRA freezes the pretrained weights [1]. See also [9].",
                 delay: float = 0.0, down: bool = False) -> None:
        self.answer, self.delay, self.down = answer, delay, down
        self.requests: list[list[dict[str, Any]]] = []
        self.adapters: list[str] = []  # loaded at runtime, as vLLM's LoRA endpoint does

    def models(self) -> list[str]:
        if self.down:
            raise ServerUnavailable("no model server at http://127.0.0.1:1/v1",
                                    "start it with `litlab serve`")
        return ["smollm2-135m-instruct", *self.adapters]

    def load_adapter(self, name: str, path: str) -> None:
        self.adapters.append(name)

    def stream(self, messages: list[dict[str, Any]], **_: Any) -> FakeStream:
        if self.down:
            self.models()
        self.requests.append(messages)
        return FakeStream(self.answer, "smollm2-135m-instruct", self.delay)

    def chat(self, messages: list[dict[str, Any]], **kw: Any) -> Any:
        stream = self.stream(messages, **kw)
        for _ in stream:
            pass
        return stream.result


class SlowChatModel(BaseChatModel):
    """A LangChain chat model that streams a long reply one word every ``delay`` seconds: an
    agent turn that would run for a long time if nothing stopped it."""

    delay: float = 0.1
    words: int = 400

    @property
    def _llm_type(self) -> str:
        return "slow"

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        text = "".join(c.message.content for c in self._stream(messages))  # type: ignore[misc]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])

    def _stream(self, messages: Any, stop: Any = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for _ in range(self.words):
            time.sleep(self.delay)
            yield ChatGenerationChunk(message=AIMessageChunk(content="thinking "))


class AgentClient(FakeClient):
    """A FakeClient whose agent model is slow (see SlowChatModel)."""

    def langchain(self, model: str, **_: Any) -> SlowChatModel:
        return SlowChatModel()

    def convert_error(self, e: Exception, model: str) -> Exception:
        return e


class BuggyClient(FakeClient):
    """A client with a bug in it: streaming raises something no litlab error explains."""

    def stream(self, messages: list[dict[str, Any]], **_: Any) -> FakeStream:
        raise RuntimeError("a bug in the client")
