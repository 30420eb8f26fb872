"""What `litlab serve --api` costs over answering in-process, on the embedded model.

The same questions, in one run against the same vLLM server, alternately:
  (a) the baseline: litlab's Assistant in this process (`ask` without its process start),
      streamed, timed to its first words and to the end;
  (b) the same questions through `litlab serve --api` (a real process on this library) with
      the OpenAI client, streamed, timed the same way on the client's side.
Both do the same work (retrieval, the answer line, the model, verification); the difference is
the API's own cost: HTTP, server-sent events, JSON. Target: at most 10% of an answer's time.
Prints answers per second and time to first words for both; writes bench/results/api.json.

    .venv/bin/python bench/api.py [--questions 8] [--tokens 64] [--smoke]
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from common import question_arguments, settings, test_papers_library, write

QUESTIONS = [
    "How does Mamba scale with sequence length?",
    "What does low-rank adaptation freeze?",
    "How is the RLHF policy optimised?",
    "What is the reward model trained on?",
    "What loss aligns images and text?",
    "How many trainable parameters does LoRA save?",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"litlab serve --api exited: {proc.stderr.read().decode()[-2000:]}"
                             if proc.stderr else "litlab serve --api exited")
        try:
            urllib.request.urlopen(f"{base}/models", timeout=2)
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise SystemExit("litlab serve --api did not come up in 120 s")


def _in_process(bot: Any, question: str) -> dict[str, float]:
    first: list[float] = []

    def seen(_piece: str) -> None:
        if not first:
            first.append(time.perf_counter())

    t = time.perf_counter()
    answer = bot.answer(question, on_token=seen)
    end = time.perf_counter()
    r = answer.result
    return {"ttft_ms": 1000 * ((first[0] if first else end) - t), "total_ms": 1000 * (end - t),
            "tokens": r.completion_tokens if r else 0}


def _through_api(api: Any, question: str) -> dict[str, float]:
    first: float | None = None
    tokens = 0
    t = time.perf_counter()
    for chunk in api.chat.completions.create(
            model="litlab", stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": question}]):
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter()
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    end = time.perf_counter()
    return {"ttft_ms": 1000 * ((first or end) - t), "total_ms": 1000 * (end - t),
            "tokens": tokens}


def main() -> None:
    args = question_arguments(__doc__)

    import openai

    from agentlab.assistant import Assistant
    from agentlab.client import ModelClient
    from agentlab.server import ensure_server

    s = settings()
    url = ensure_server(s, print)
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.questions)]
    with tempfile.TemporaryDirectory() as tmp:
        home, lib = test_papers_library(Path(tmp))
        mine = s.model_copy(update={"home": home, "max_tokens": args.tokens, "temperature": 0})
        bot = Assistant.from_settings(mine, ModelClient(url, api_key=s.api_key), lib)

        port = _free_port()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("LITLAB_")},
               "LITLAB_HOME": str(home), "LITLAB_API_BASE": url,
               "LITLAB_MAX_TOKENS": str(args.tokens), "LITLAB_TEMPERATURE": "0"}
        proc = subprocess.Popen([sys.executable, "-m", "litlab", "serve", "--api", "--port",
                                 str(port)], env=env, stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}/v1"
        try:
            _wait(base, proc)
            api = openai.OpenAI(base_url=base, api_key="EMPTY", max_retries=0, timeout=600)
            _in_process(bot, questions[0])  # warm-up, both: the embedder, the caches
            _through_api(api, questions[0])
            rows: list[dict[str, Any]] = []
            for q in questions:
                a, b = _in_process(bot, q), _through_api(api, q)
                rows.append({"question": q, "in_process": a, "api": b,
                             "own_cost": (b["total_ms"] - a["total_ms"]) / a["total_ms"]})
                print(f"  in-process {a['total_ms']:7.1f} ms (first words {a['ttft_ms']:6.1f})"
                      f"  api {b['total_ms']:7.1f} ms (first words {b['ttft_ms']:6.1f})  "
                      f"tokens {a['tokens']}/{b['tokens']}  {q}")
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    def per_second(side: str) -> float:
        return len(rows) / (sum(r[side]["total_ms"] for r in rows) / 1000)

    def median(side: str, key: str) -> float:
        return round(statistics.median(r[side][key] for r in rows), 1)

    own = statistics.median(r["own_cost"] for r in rows)
    print(f"\nanswers per second: in-process {per_second('in_process'):.3f}, "
          f"api {per_second('api'):.3f}")
    print(f"first words (median): in-process {median('in_process', 'ttft_ms')} ms, "
          f"api {median('api', 'ttft_ms')} ms")
    print(f"the API's own cost (median, per answer): {100 * own:+.1f}%  (target <= 10%)")
    write("api", {"model": s.model, "questions": len(rows), "max_tokens": args.tokens,
                  "answers_per_s": {"in_process": round(per_second("in_process"), 4),
                                    "api": round(per_second("api"), 4)},
                  "ttft_ms_median": {"in_process": median("in_process", "ttft_ms"),
                                     "api": median("api", "ttft_ms")},
                  "total_ms_median": {"in_process": median("in_process", "total_ms"),
                                      "api": median("api", "total_ms")},
                  "api_own_cost_median": round(own, 4), "per_question": rows,
                  "targets": {"api_own_cost": "<= 0.10"}}, args.smoke)


if __name__ == "__main__":
    main()
