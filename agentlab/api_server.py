"""litlab's answers for any OpenAI client or chat UI: ``litlab serve --api``.

``POST /v1/chat/completions`` answers the last user message as ``litlab ask`` does (retrieval
from the library, the model, the answer line, every sentence verified) and returns an
OpenAI chat completion, streamed or not. The citations come twice: as ``[n]`` markers in the
text followed by a ``Sources:`` list (what a chat UI shows), and structured, in a ``citations``
field beside ``choices`` (``n``, paper, title, section, pages, the passage) with a ``litlab``
field holding each sentence's verdict and evidence. ``GET /v1/models`` lists ``litlab``
(answers with the configured model) and every model or adapter the model server offers.

A stream carries the model's words as they come; when verification then withholds them (no
sentence supported) or litlab abstains, the last content chunk says so before the sources,
and the structured fields tell a script exactly which sentences stand.

Listens on 127.0.0.1 unless told otherwise; another interface needs the ``access_token``
setting, which clients send as their API key. Bodies are bounded; a bad request gets an
OpenAI-style JSON error, never a traceback. Requests are answered one at a time (the library
is one SQLite catalog and the model server batches nothing useful for one person).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from agentlab.settings import Settings
from litcore.errors import UserError

MODEL_ID = "litlab"
MAX_BODY = 1_000_000  # bytes a request may carry
DRAIN_LIMIT = 32 * MAX_BODY  # bytes of an oversized request read (and dropped) before the 413
MAX_QUESTION = 8_000  # characters of the question answered


class Cancelled(Exception):
    """The client went away: stop generating."""


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error",
                 param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param = status, message, kind, param

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param,
                          "code": None}}


def sources_footer(answer: Any) -> str:
    """The cited sources under an answer, as a chat UI shows them (after an abstention, the
    closest passages)."""
    if answer.abstained:
        return "\n\nClosest passages:\n" + "\n".join(s.header() for s in answer.sources[:3])
    if not answer.citations:
        return ""
    return "\n\nSources:\n" + "\n".join(c.header() for c in answer.citations)


def structured(answer: Any) -> dict[str, Any]:
    """The fields an OpenAI response gains: ``citations`` and ``litlab`` (verdicts)."""
    d = answer.to_dict()
    return {
        "citations": [{k: c.get(k) for k in ("n", "paper", "title", "section", "pages",
                                             "figure", "text", "origin")}
                      for c in d["citations"]],
        "litlab": {"not_in_library": d["not_in_library"], "abstained": d["abstained"],
                   "withheld": d["withheld"], "model_text": d["model_text"],
                   "sentences": [{"text": s["text"], "verdict": s["verdict"],
                                  "sources": s.get("sources", []),
                                  "evidence": s["evidence"]} for s in d["sentences"]]},
    }


class Answerer:
    """The library, the model client and the assistant, shared by requests one at a time."""

    def __init__(self, settings: Settings, client: Any = None, library: Any = None) -> None:
        self.settings, self._client, self._library = settings, client, library
        self.lock = threading.Lock()

    @property
    def library(self) -> Any:
        if self._library is None:
            from retrievers.library import Library

            self._library = Library.from_settings(self.settings)
        return self._library

    @property
    def client(self) -> Any:
        if self._client is None:
            from agentlab.server import connect

            self._client = connect(self.settings, lambda _msg: None)
        return self._client

    def models(self) -> list[str]:
        try:
            served = list(self.client.models())
        except Exception:  # the model server is down: litlab itself is still offered
            served = []
        return [MODEL_ID, *[m for m in served if m != MODEL_ID]]

    def answer(self, question: str, history: list[dict[str, str]], model: str | None,
               max_tokens: int | None, temperature: float | None, on_token: Any) -> Any:
        from agentlab.assistant import Assistant

        with self.lock:
            s = self.settings.model_copy(update={
                k: v for k, v in (("max_tokens", max_tokens), ("temperature", temperature))
                if v is not None})
            bot = Assistant.from_settings(s, self.client, self.library,
                                          model=None if model in (None, MODEL_ID) else model)
            return bot.answer(question, history=history, on_token=on_token)


def parse_request(raw: bytes) -> dict[str, Any]:
    """The fields of a chat completion request litlab uses, checked."""
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the request body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object with 'messages'")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list", param="messages")
    turns: list[dict[str, str]] = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant",
                                                            "developer", "tool"):
            raise ApiError(400, "each message needs a role (system, user or assistant)",
                           param="messages")
        content = m.get("content")
        if isinstance(content, list):  # content parts: the text ones
            content = "".join(p.get("text", "") for p in content
                              if isinstance(p, dict) and p.get("type") == "text")
        if not isinstance(content, str):
            raise ApiError(400, "a message's content must be text", param="messages")
        turns.append({"role": str(m["role"]), "content": content})
    if turns[-1]["role"] != "user" or not turns[-1]["content"].strip():
        raise ApiError(400, "the last message must be the user's question", param="messages")
    question = turns[-1]["content"].strip()
    if len(question) > MAX_QUESTION:
        raise ApiError(400, f"the question is {len(question)} characters; at most "
                            f"{MAX_QUESTION}", param="messages")
    history = [t for t in turns[:-1] if t["role"] in ("user", "assistant")][-6:]
    for name in ("max_tokens", "max_completion_tokens"):
        v = body.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise ApiError(400, f"'{name}' must be a positive integer", param=name)
    t = body.get("temperature")
    if t is not None and (not isinstance(t, (int, float)) or isinstance(t, bool) or t < 0):
        raise ApiError(400, "'temperature' must be a number >= 0", param="temperature")
    model = body.get("model")
    return {"question": question, "history": history, "stream": bool(body.get("stream")),
            "model": model if isinstance(model, str) and model else None,
            "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens"),
            "temperature": float(t) if t is not None else None,
            "usage": bool((body.get("stream_options") or {}).get("include_usage"))}


def _usage(answer: Any) -> dict[str, int]:
    r = answer.result
    p, c = (r.prompt_tokens, r.completion_tokens) if r is not None else (0, 0)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _finish(answer: Any) -> str:
    r = answer.result
    return "length" if r is not None and r.finish_reason == "length" else "stop"


def build_app(answerer: Answerer, *, token: str | None = None) -> Any:
    """The Starlette app serving ``/v1/models`` and ``/v1/chat/completions``."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    def refused(e: ApiError) -> Response:
        return JSONResponse(e.body(), status_code=e.status)

    def authorised(request: Request) -> bool:
        if not token:
            return True
        return hmac.compare_digest(request.headers.get("authorization", ""), f"Bearer {token}")

    async def body_of(request: Request) -> bytes:
        # An oversized body is still read (and dropped, up to DRAIN_LIMIT) before the 413:
        # a server that answers while the client is still sending closes on it, and the
        # client sees a broken pipe instead of the reason.
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > DRAIN_LIMIT:
            raise ApiError(413, f"the request is over {MAX_BODY} bytes")
        raw, seen = bytearray(), 0
        async for part in request.stream():
            seen += len(part)
            if seen <= MAX_BODY:
                raw += part
            elif seen > DRAIN_LIMIT:
                break
        if seen > MAX_BODY:
            raise ApiError(413, f"the request is over {MAX_BODY} bytes")
        return bytes(raw)

    async def models(request: Request) -> Response:
        if not authorised(request):
            return refused(_unauthorised())
        names = await asyncio.to_thread(answerer.models)
        now = int(time.time())
        return JSONResponse({"object": "list", "data": [
            {"id": n, "object": "model", "created": now, "owned_by": "litlab"} for n in names]})

    async def completions(request: Request) -> Response:
        if not authorised(request):
            return refused(_unauthorised())
        try:
            req = parse_request(await body_of(request))
        except ApiError as e:
            return refused(e)
        rid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        model_name = req["model"] or MODEL_ID
        if req["stream"]:
            return StreamingResponse(_stream(answerer, req, rid, created, model_name),
                                     media_type="text/event-stream")
        try:
            answer = await asyncio.to_thread(
                answerer.answer, req["question"], req["history"], req["model"],
                req["max_tokens"], req["temperature"], None)
        except UserError as e:
            return refused(_from_user_error(e))
        d = structured(answer)
        return JSONResponse({
            "id": rid, "object": "chat.completion", "created": created, "model": model_name,
            "choices": [{"index": 0, "finish_reason": _finish(answer),
                         "message": {"role": "assistant",
                                     "content": answer.text + sources_footer(answer)}}],
            "usage": _usage(answer), **d})

    async def not_found(request: Request, exc: Exception) -> Response:
        return refused(ApiError(404, f"no route {request.url.path}: litlab serves /v1/models "
                                     "and /v1/chat/completions", kind="not_found_error"))

    async def failed(request: Request, exc: Exception) -> Response:
        return refused(ApiError(500, f"litlab could not answer: {type(exc).__name__}: {exc}",
                                kind="server_error"))

    return Starlette(routes=[Route("/v1/models", models, methods=["GET"]),
                             Route("/v1/chat/completions", completions, methods=["POST"])],
                     exception_handlers={404: not_found, 405: not_found, Exception: failed})


def _unauthorised() -> ApiError:
    return ApiError(401, "missing or wrong API key: send the access_token setting as the "
                         "client's api_key", kind="authentication_error")


def _from_user_error(e: UserError) -> ApiError:
    return ApiError(503 if "server" in e.message else 400,
                    f"{e.message} ({e.hint})" if e.hint else e.message,
                    kind="server_error" if "server" in e.message else "invalid_request_error")


def _chunk(rid: str, created: int, model: str, delta: dict[str, Any],
           finish: str | None = None, **more: Any) -> str:
    return "data: " + json.dumps({
        "id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **more}) + "\n\n"


async def _stream(answerer: Answerer, req: dict[str, Any], rid: str, created: int,
                  model: str) -> AsyncIterator[str]:
    """Server-sent chunks: the role, the words as they come, then what verification says,
    the sources, and a last chunk with ``citations``, ``litlab`` and (asked for) ``usage``."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    gone = threading.Event()

    def on_token(piece: str) -> None:
        if gone.is_set():
            raise Cancelled  # the assistant closes the model's stream on its way out
        loop.call_soon_threadsafe(queue.put_nowait, ("token", piece))

    def work() -> None:
        try:
            answer = answerer.answer(req["question"], req["history"], req["model"],
                                     req["max_tokens"], req["temperature"], on_token)
            loop.call_soon_threadsafe(queue.put_nowait, ("done", answer))
        except Cancelled:
            pass
        except UserError as e:
            loop.call_soon_threadsafe(queue.put_nowait, ("error", _from_user_error(e)))
        except Exception as e:  # noqa: BLE001 - reported to the client as a JSON error
            loop.call_soon_threadsafe(queue.put_nowait, ("error", ApiError(
                500, f"litlab could not answer: {type(e).__name__}: {e}", "server_error")))

    worker = threading.Thread(target=work, name="litlab-api-answer", daemon=True)
    worker.start()
    sent = ""
    try:
        yield _chunk(rid, created, model, {"role": "assistant", "content": ""})
        while True:
            kind, value = await queue.get()
            if kind == "token":
                sent += value
                yield _chunk(rid, created, model, {"content": value})
                continue
            if kind == "error":
                yield "data: " + json.dumps(value.body()) + "\n\n"
                break
            answer = value
            d = structured(answer)
            tail = answer.text if not sent else ""
            if sent and (answer.abstained or answer.withheld):
                tail = "\n\n" + _verdict_note(answer)  # what stands, said under the words
            yield _chunk(rid, created, model, {"content": tail + sources_footer(answer)})
            more = {"usage": _usage(answer)} if req["usage"] else {}
            yield _chunk(rid, created, model, {}, _finish(answer), **d, **more)
            break
        yield "data: [DONE]\n\n"
    finally:
        gone.set()


def _verdict_note(answer: Any) -> str:
    """What verification decided about words already streamed."""
    from agentlab.citations import ABSTAINED_MESSAGE, WITHHELD_MESSAGE

    if answer.abstained:
        return f"litlab: {ABSTAINED_MESSAGE}"
    return f"litlab: {WITHHELD_MESSAGE.strip('()')}"
