"""The one way litlab talks to a model: vLLM's OpenAI-compatible API.

:class:`ModelClient` (blocking, for the CLI) and :class:`AsyncModelClient` (for concurrent
work such as evaluation suites and benchmarks) share request building and result parsing.
Both retry a request that could not *connect*, and nothing else: a slow or failed generation
is never silently sent twice. Errors become :mod:`agentlab.errors` with a next step.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai

from agentlab.errors import ModelNotFound, ServerFailed, ServerGone, ServerUnavailable
from litcore.errors import UserError

Message = dict[str, Any]


@dataclass
class ChatResult:
    """One finished answer with its accounting."""

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    ttft_s: float | None = None  # time to first token, streamed answers only
    total_s: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.total_s if self.total_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.text,
            "model": self.model,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "finish_reason": self.finish_reason,
            "tool_calls": self.tool_calls,
            "ttft_s": self.ttft_s,
            "total_s": self.total_s,
        }


def _request(
    messages: list[Message],
    model: str,
    max_tokens: int | None,
    temperature: float | None,
    tools: list[dict[str, Any]] | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    req: dict[str, Any] = {"model": model, "messages": messages, **extra}
    if max_tokens is not None:
        req["max_tokens"] = max_tokens
    if temperature is not None:
        req["temperature"] = temperature
    if tools:
        req["tools"] = tools
    return req


def _from_completion(resp: Any, elapsed: float) -> ChatResult:
    choice = resp.choices[0]
    calls = [c.model_dump() for c in (choice.message.tool_calls or [])]
    usage = resp.usage
    return ChatResult(
        text=choice.message.content or "",
        model=resp.model,
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
        finish_reason=choice.finish_reason,
        tool_calls=calls,
        total_s=elapsed,
    )


class _StreamAccumulator:
    """Builds a ChatResult from streamed chunks, including tool-call fragments."""

    def __init__(self, model: str, started: float) -> None:
        self.started = started
        self.result = ChatResult(text="", model=model)
        self._parts: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}

    def add(self, chunk: Any) -> str:
        """Take one chunk; return the new answer text in it (may be empty)."""
        if chunk.usage is not None:
            self.result.prompt_tokens = chunk.usage.prompt_tokens
            self.result.completion_tokens = chunk.usage.completion_tokens
        if chunk.model:
            self.result.model = chunk.model
        if not chunk.choices:
            return ""
        choice = chunk.choices[0]
        if choice.finish_reason:
            self.result.finish_reason = choice.finish_reason
        delta = choice.delta
        for tc in delta.tool_calls or []:
            call = self._calls.setdefault(
                tc.index, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
            )
            if tc.id:
                call["id"] = tc.id
            if tc.function and tc.function.name:
                call["function"]["name"] += tc.function.name
            if tc.function and tc.function.arguments:
                call["function"]["arguments"] += tc.function.arguments
        text = delta.content or ""
        if text:
            if self.result.ttft_s is None:
                self.result.ttft_s = time.perf_counter() - self.started
            self._parts.append(text)
        return text

    def finish(self) -> ChatResult:
        self.result.text = "".join(self._parts)
        if not self.result.completion_tokens:
            # stopped before the server's usage chunk (a loop cut, Ctrl-C): vLLM streams a
            # token a chunk, so the chunks received are the tokens generated
            self.result.completion_tokens = len(self._parts)
        self.result.tool_calls = [self._calls[i] for i in sorted(self._calls)]
        self.result.total_s = time.perf_counter() - self.started
        return self.result


class _Errors:
    """Turns openai exceptions into litlab errors that name the URL and the next step."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def convert(self, e: Exception, model: str) -> UserError:
        url = self.base_url
        if isinstance(e, openai.APITimeoutError):
            return ServerUnavailable(
                f"the model server at {url} {TIMED_OUT}",
                "raise request_timeout, or check the server log",
            )
        if isinstance(e, openai.APIConnectionError):
            return ServerGone(
                f"cannot reach the model server at {url}",
                "start it with `litlab serve`, or check api_base",
            )
        if isinstance(e, openai.NotFoundError):
            return ModelNotFound(
                f"the server at {url} does not serve '{model}'",
                "see `litlab models list` for what it serves",
            )
        if isinstance(e, openai.AuthenticationError):
            return UserError(f"the server at {url} refused the API key", "set api_key")
        if isinstance(e, openai.APIStatusError):
            detail = getattr(e, "message", "") or str(e)
            if e.status_code >= 500:
                return ServerFailed(f"the model server at {url} failed: {detail}",
                                    "check its log; `litlab serve --stop` restarts litlab's own")
            return UserError(f"the model server rejected the request: {detail}")
        return UserError(f"model request failed: {e}")


TIMED_OUT = "did not answer in time"  # how a request that ran past request_timeout is named


def _retryable(e: Exception) -> bool:
    return isinstance(e, openai.APIConnectionError) and not isinstance(e, openai.APITimeoutError)


class ModelClient:
    """Blocking client for chat completions, streamed or not."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str = "EMPTY",
        timeout: float = 120.0,
        connect_retries: int = 2,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.connect_retries = connect_retries
        self.api_key, self.timeout = api_key, timeout
        self._errors = _Errors(self.base_url)
        self._client = openai.OpenAI(
            base_url=self.base_url, api_key=api_key, timeout=timeout, max_retries=0
        )

    def _call(self, fn: Any, model: str, /, **kwargs: Any) -> Any:
        for attempt in range(self.connect_retries + 1):
            try:
                return fn(**kwargs)
            except openai.OpenAIError as e:
                if _retryable(e) and attempt < self.connect_retries:
                    time.sleep(0.5 * 2**attempt)
                    continue
                raise self._errors.convert(e, model) from e
        raise AssertionError("unreachable")

    def langchain(self, model: str, *, max_tokens: int | None = None,
                  temperature: float | None = None) -> Any:
        """The same server as a LangChain chat model (for LangGraph agents)."""
        from langchain_openai import ChatOpenAI
        from pydantic import SecretStr

        # max_tokens is a pydantic field that mypy sees only by its alias.
        return ChatOpenAI(
            model=model, base_url=self.base_url, api_key=SecretStr(self.api_key),
            timeout=self.timeout, max_retries=self.connect_retries,
            max_tokens=max_tokens, temperature=temperature)

    def convert_error(self, e: Exception, model: str) -> UserError:
        """An OpenAI SDK error from this server as a litlab error with a next step."""
        return self._errors.convert(e, model)

    def healthy(self, timeout: float = 3.0) -> bool:
        """The server's ``/health`` answers 200 (vLLM: its engine can still generate)."""
        root = self.base_url.removesuffix("/v1")
        try:
            return httpx.get(f"{root}/health", timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    def models(self) -> list[str]:
        """Names the server serves: base models and loaded adapters."""
        page = self._call(self._client.models.list, "")
        return [m.id for m in page.data]

    def chat(
        self,
        messages: list[Message],
        *,
        model: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        tools: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> ChatResult:
        """One whole answer. ``extra`` passes through (``stop``, ``seed``, ``tool_choice``...)."""
        req = _request(messages, model, max_tokens, temperature, tools, extra)
        started = time.perf_counter()
        resp = self._call(self._client.chat.completions.create, model, **req)
        return _from_completion(resp, time.perf_counter() - started)

    def stream(
        self,
        messages: list[Message],
        *,
        model: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        tools: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> ChatStream:
        """Stream an answer: iterate for text pieces, then read ``.result``.

        Closing the stream (or leaving its ``with`` block early) aborts the request on the
        server, which frees its slot at once.
        """
        req = _request(messages, model, max_tokens, temperature, tools, extra)
        req["stream"] = True
        req["stream_options"] = {"include_usage": True}
        started = time.perf_counter()
        raw = self._call(self._client.chat.completions.create, model, **req)
        return ChatStream(raw, _StreamAccumulator(model, started), self._errors, model)

    def load_adapter(self, name: str, path: str) -> None:
        """Load a LoRA adapter into the running server under ``name``."""
        self._post_admin("/load_lora_adapter", {"lora_name": name, "lora_path": path})

    def unload_adapter(self, name: str) -> None:
        self._post_admin("/unload_lora_adapter", {"lora_name": name})

    def _post_admin(self, path: str, body: dict[str, Any]) -> None:
        try:
            r = httpx.post(
                f"{self.base_url}{path}",
                json=body,
                headers={"Authorization": f"Bearer {self._client.api_key}"},
                timeout=60.0,
            )
        except httpx.HTTPError as e:
            raise ServerGone(
                f"cannot reach the model server at {self.base_url}", "start it with `litlab serve`"
            ) from e
        if r.status_code >= 400:
            raise UserError(f"the server refused {path}: {r.text.strip()[:300]}")

    def close(self) -> None:
        self._client.close()


class ChatStream:
    """An answer arriving piece by piece."""

    def __init__(self, raw: Any, acc: _StreamAccumulator, errors: _Errors, model: str) -> None:
        self._raw = raw
        self._acc = acc
        self._errors = errors
        self._model = model
        self.result: ChatResult | None = None

    def __iter__(self) -> Iterator[str]:
        try:
            for chunk in self._raw:
                text = self._acc.add(chunk)
                if text:
                    yield text
        except openai.OpenAIError as e:
            raise self._errors.convert(e, self._model) from e
        except httpx.HTTPError as e:
            raise ServerGone(
                f"the model server at {self._errors.base_url} dropped the answer",
                "check that it is still running (`litlab serve --status`)",
            ) from e
        finally:
            self.result = self._acc.finish()

    def close(self) -> None:
        """Stop generating: the server aborts the request when the connection closes."""
        self._raw.close()
        if self.result is None:
            self.result = self._acc.finish()

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncModelClient:
    """The same API for asyncio code: many requests in flight at once."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str = "EMPTY",
        timeout: float = 120.0,
        connect_retries: int = 2,
        max_connections: int = 256,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.connect_retries = connect_retries
        self._errors = _Errors(self.base_url)
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._client = openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=api_key,
            timeout=timeout,
            max_retries=0,
            # openai 3 bundles httpx2, which takes httpx's Limits as they are (the pool is sized
            # as asked: checked); its stubs want httpx2's own class.
            http_client=openai.DefaultAsyncHttpxClient(limits=limits,  # type: ignore[arg-type]
                                                       timeout=timeout),
        )

    async def _call(self, fn: Any, model: str, /, **kwargs: Any) -> Any:
        for attempt in range(self.connect_retries + 1):
            try:
                return await fn(**kwargs)
            except openai.OpenAIError as e:
                if _retryable(e) and attempt < self.connect_retries:
                    await asyncio.sleep(0.5 * 2**attempt)
                    continue
                raise self._errors.convert(e, model) from e
        raise AssertionError("unreachable")

    async def chat(
        self,
        messages: list[Message],
        *,
        model: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        tools: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> ChatResult:
        req = _request(messages, model, max_tokens, temperature, tools, extra)
        started = time.perf_counter()
        resp = await self._call(self._client.chat.completions.create, model, **req)
        return _from_completion(resp, time.perf_counter() - started)

    async def stream(
        self,
        messages: list[Message],
        *,
        model: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        tools: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> AsyncIterator[str | ChatResult]:
        """Yield text pieces, then the finished :class:`ChatResult` last."""
        req = _request(messages, model, max_tokens, temperature, tools, extra)
        req["stream"] = True
        req["stream_options"] = {"include_usage": True}
        started = time.perf_counter()
        raw = await self._call(self._client.chat.completions.create, model, **req)
        acc = _StreamAccumulator(model, started)
        try:
            async for chunk in raw:
                text = acc.add(chunk)
                if text:
                    yield text
        except openai.OpenAIError as e:
            raise self._errors.convert(e, model) from e
        finally:
            await raw.close()
        yield acc.finish()

    async def close(self) -> None:
        await self._client.close()
