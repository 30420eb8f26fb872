"""`litlab serve --api`: the `openai` client against the real API process, which answers from
a library built here through the session's vLLM server; streamed and not, citations as
markers, a Sources list and a structured field; bad requests get JSON errors."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from retrievers.library import Library
from tests.agentlab.test_server import litlab_cli
from tests.conftest import RunningServer, free_port

QUESTION = "How does Mamba scale with sequence length?"


def _env(home: Path, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITLAB_")}
    return {**env, "LITLAB_HOME": str(home), **more}


@pytest.fixture
def api(papers_dir: Path, vllm_server: RunningServer) -> Iterator[str]:
    """The API process over a library of the test papers; its base URL."""
    home = Path(os.environ["LITLAB_HOME"])
    lib = Library(home)
    assert lib.index_files([papers_dir]).ok
    lib.close()
    port = free_port()
    proc = litlab_cli("serve", "--api", "--port", str(port),
                      env=_env(home, LITLAB_API_BASE=vllm_server.api_base,
                               LITLAB_MAX_TOKENS="48", LITLAB_TEMPERATURE="0",
                               LITLAB_ACCESS_TOKEN="s3cret"))
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 90
    try:
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                urllib.request.urlopen(f"{base}/models", timeout=2)
            except urllib.error.HTTPError:
                break  # it answers (without the token, 401)
            except OSError:
                assert time.monotonic() < deadline, "the API did not come up"
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        err = proc.stderr.read() if proc.stderr else ""
        assert "Traceback" not in err, err


def test_an_openai_client_gets_cited_answers_streamed_and_not(api: str) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=api, api_key="s3cret", max_retries=0, timeout=300)
    assert "litlab" in [m.id for m in client.models.list().data]

    reply = client.chat.completions.create(
        model="litlab", messages=[{"role": "user", "content": QUESTION}])
    text = reply.choices[0].message.content or ""
    extra: dict[str, Any] = reply.model_extra or {}
    first = extra["citations"][0]
    assert first["section"] == "3 State Space Models" and "Mamba" in first["text"]
    assert f"[{first['n']}]" in text  # the marker in the text ...
    assert "\n\nSources:\n[" in text and "3 State Space Models" in text  # ... and its source
    verdicts = {s["verdict"] for s in extra["litlab"]["sentences"]}
    assert "supported" in verdicts
    assert reply.usage is not None and reply.usage.completion_tokens > 0

    pieces, last = [], None
    for chunk in client.chat.completions.create(
            model="litlab", stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": QUESTION}]):
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        last = chunk
    assert len(pieces) > 3  # words as they came, not one block
    streamed = "".join(pieces)
    assert "Sources:" in streamed and "3 State Space Models" in streamed
    assert last is not None and last.choices[0].finish_reason in ("stop", "length")
    assert (last.model_extra or {})["citations"][0]["section"] == "3 State Space Models"
    assert last.usage is not None and last.usage.completion_tokens > 0


def _post(url: str, body: bytes, token: str | None = "s3cret") -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_bad_requests_get_one_json_error_each(api: str) -> None:
    url = f"{api}/chat/completions"
    cases = {
        b"not json": (400, "not JSON"),
        b'{"messages": []}': (400, "non-empty"),
        b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": -3}': (400, "max_tokens"),
        b'{"messages": [{"role": "assistant", "content": "hi"}]}': (400, "user's question"),
        b'{"messages": [{"role": "user", "content": "' + b"x" * 8_000_000 + b'"}]}':
            (413, "bytes"),
    }
    for body, (status, words) in cases.items():
        got, payload = _post(url, body)
        assert got == status and words in payload["error"]["message"], (body[:40], payload)
    status, payload = _post(url, b'{"messages": [{"role": "user", "content": "hi"}]}', None)
    assert status == 401 and "access_token" in payload["error"]["message"]
    status, payload = _post(f"{api}/completions", b"{}")
    assert status == 404 and "/v1/chat/completions" in payload["error"]["message"]


def test_the_api_beyond_this_machine_needs_a_token(tmp_path: Path) -> None:
    proc = litlab_cli("serve", "--api", "--host", "0.0.0.0", "--port", str(free_port()),
                      env=_env(tmp_path))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "access_token" in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2
