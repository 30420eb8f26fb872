"""Where the time of `litlab ask` goes, on the embedded model.

For each question, in one run against the same vLLM server:
  (a) litlab's Assistant: retrieve (embed + hybrid search), build the prompt, stream the answer,
      check citations; each step timed from its trace;
  (b) the same final messages, built before the timer starts, sent straight to vLLM as the same
      streamed request with the OpenAI client: the model's time alone, the baseline;
and, for reference, the wall time of the `litlab ask` command (a fresh process: imports and
model loading included).

Prints litlab's own share of a warm answer (everything except waiting for the model; target at
most 10%) and the ratio a/b per completion token (litlab stops an answer that repeats itself,
so whole answers can differ in length); writes bench/results/ask.json.

    .venv/bin/python bench/ask.py [--questions 8] [--tokens 64] [--smoke]

The Assistant is built from the settings, as `litlab ask` builds it (figures among the sources
included); the server is litlab's own, started or reused (the model prepared if need be).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import question_arguments, settings, test_papers_library, write

QUESTIONS = [
    "How does Mamba scale with sequence length?",
    "What does low-rank adaptation freeze?",
    "How is the RLHF policy optimised?",
    "What is the reward model trained on?",
    "What loss aligns images and text?",
    "How do diffusion models generate images?",
    "How many trainable parameters does LoRA save?",
    "What does zero-shot classification reach?",
]


def main() -> None:
    args = question_arguments(__doc__)

    from agentlab.assistant import Assistant
    from agentlab.client import ModelClient
    from agentlab.server import ensure_server

    s = settings()
    url = ensure_server(s, print)
    client = ModelClient(url, api_key=s.api_key)
    import openai

    raw = openai.OpenAI(base_url=url, api_key=s.api_key or "EMPTY", max_retries=0)
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.questions)]
    with tempfile.TemporaryDirectory() as tmp:
        home, lib = test_papers_library(Path(tmp))
        mine = s.model_copy(update={"home": home, "max_tokens": args.tokens, "temperature": 0})
        bot = Assistant.from_settings(mine, client, lib)
        bot.answer(questions[0])  # warm-up: the embedder and the server's caches

        rows = []
        for q in questions:
            t = time.perf_counter()
            answer = bot.answer(q)
            total = 1000 * (time.perf_counter() - t)
            steps = {s.kind: s for s in answer.steps}
            if "generate" not in steps:
                print(f"  (not in library, skipped) {q}")
                continue
            messages = _messages(bot, q)  # built outside the timer: the baseline is the model
            t = time.perf_counter()
            direct_tokens = _stream_direct(raw, messages, s.model, args.tokens)
            direct_ms = 1000 * (time.perf_counter() - t)
            model_ms = steps["generate"].ms
            rows.append({
                "retrieve_ms": steps["retrieve"].ms, "prompt_ms": steps["prompt"].ms,
                "ttft_ms": steps["generate"].data["ttft_ms"], "model_ms": model_ms,
                "cite_ms": steps["cite"].ms, "total_ms": total,
                "own_share": (total - model_ms) / total, "direct_ms": direct_ms,
                "tokens": steps["generate"].data["completion_tokens"],
                "direct_tokens": direct_tokens,
            })
            r = rows[-1]
            print(f"  retrieve {r['retrieve_ms']:6.1f} ms  prompt {r['prompt_ms']:5.2f} ms  "
                  f"first token {r['ttft_ms']:6.1f} ms  total {r['total_ms']:7.1f} ms  "
                  f"own {100 * r['own_share']:4.1f}%  direct {r['direct_ms']:7.1f} ms")

        env = {**os.environ, "LITLAB_HOME": str(home), "LITLAB_API_BASE": url}
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "litlab", "ask", "--max-tokens",
                        str(args.tokens), "--temperature", "0", questions[0]], env=env,
                       check=True, capture_output=True)
        cli_ms = 1000 * (time.perf_counter() - t)

    med = {k: round(statistics.median(r[k] for r in rows), 3) for k in rows[0]}
    # per token: litlab stops an answer that repeats itself, the direct request runs on, so
    # whole answers are not the same work
    ratio = statistics.median((r["total_ms"] / max(1, r["tokens"])) /
                              (r["direct_ms"] / max(1, r["direct_tokens"])) for r in rows)
    print(f"\nmedian: retrieve {med['retrieve_ms']} ms, prompt {med['prompt_ms']} ms, "
          f"first token {med['ttft_ms']} ms, total {med['total_ms']} ms")
    print(f"litlab's own share of a warm answer: {100 * med['own_share']:.1f}%  (target <= 10%)")
    print(f"a/b (litlab ask / the model alone, per token) = {ratio:.3f}")
    print(f"`litlab ask` as a fresh process: {cli_ms:.0f} ms (imports and model loading included)")
    write("ask", {"model": s.model, "questions": len(rows), "max_tokens": args.tokens,
                  "figure_k": s.figure_k, "median": med, "ratio_litlab_vs_direct": round(ratio, 3),
                  "cli_process_ms": round(cli_ms), "per_question": rows,
                  "targets": {"own_share": "<= 0.10"}}, args.smoke)


def _stream_direct(raw: object, messages: list[dict[str, str]], model: str, tokens: int) -> int:
    """The same streamed request sent straight to vLLM with the OpenAI client, nothing else;
    returns the completion tokens."""
    stream = raw.chat.completions.create(  # type: ignore[attr-defined]
        model=model, messages=messages, max_tokens=tokens, temperature=0, stream=True,
        stream_options={"include_usage": True})
    used = 0
    for chunk in stream:
        if chunk.usage is not None:
            used = chunk.usage.completion_tokens
    return used


def _messages(bot: object, question: str) -> list[dict[str, str]]:
    """The exact messages the Assistant sent, rebuilt from the same template and sources."""
    from agentlab.citations import NOT_IN_LIBRARY, format_sources
    from agentlab.prompts import load_template

    sources = bot.retrieve(question)  # type: ignore[attr-defined]
    return load_template("rag", bot.home).render(  # type: ignore[attr-defined]
        question=question, sources=format_sources(sources), not_in_library=NOT_IN_LIBRARY)


if __name__ == "__main__":
    main()
