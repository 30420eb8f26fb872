"""Serving throughput: transformers vs the vLLM server directly vs litlab's model client.

One run, one checkpoint, the same prompts:
  (a) transformers ``generate``, one prompt at a time (naive generation, no server);
  (a2) transformers ``generate`` on all prompts as one left-padded batch (the strongest
       transformers baseline);
  (b) the vLLM server driven directly with concurrent OpenAI-client requests;
  (c) the same load through litlab's AsyncModelClient;
and the time to first token of one streamed answer through litlab's ModelClient.

c/a and c/a2 compare serving stacks (vLLM's batching and kernels) with transformers, not litlab's
own code; c/b is the figure about litlab itself (its client against driving vLLM directly).
Prints tokens/s of each and the ratios; writes bench/results/serving.json.
Targets (issue 2): c/b >= 0.9, c/a >= 15, ttft < 0.1 s.

    .venv/bin/python bench/serving.py [--prompts 32] [--tokens 64] [--smoke]

The model is prepared in LITLAB_HOME if it is not yet (as `litlab serve` would); the server is
litlab's own, started or reused.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

from common import arguments, settings, write

TOPICS = [
    "attention", "LoRA", "diffusion models", "CLIP", "RLHF", "state-space models", "dropout",
    "batch normalization", "residual connections", "the transformer", "tokenization", "GRPO",
]


def prompts(n: int) -> list[str]:
    return [f"Explain {TOPICS[i % len(TOPICS)]} to a new student (version {i})." for i in range(n)]


def bench_transformers_batched(checkpoint: Path, texts: list[str], tokens: int) -> float:
    """All prompts in one left-padded batch: transformers at its best on this CPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(checkpoint, padding_side="left")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    chats = [tok.apply_chat_template([{"role": "user", "content": t}], tokenize=False,
                                     add_generation_prompt=True) for t in texts]
    batch = tok(chats, return_tensors="pt", padding=True)
    started = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(**batch, max_new_tokens=tokens, min_new_tokens=tokens,
                             do_sample=False, pad_token_id=tok.pad_token_id)
    generated = (out.shape[1] - batch["input_ids"].shape[1]) * out.shape[0]
    return generated / (time.perf_counter() - started)


def bench_transformers(checkpoint: Path, texts: list[str], tokens: int) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(checkpoint)
    # float32: transformers' eager CPU path is faster in it than in bf16 (the stronger baseline).
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    generated = 0
    started = time.perf_counter()
    with torch.inference_mode():
        for text in texts:
            ids: Any = tok.apply_chat_template([{"role": "user", "content": text}],
                                          add_generation_prompt=True, return_tensors="pt",
                                          return_dict=True)
            out = model.generate(**ids, max_new_tokens=tokens, min_new_tokens=tokens,
                                 do_sample=False)
            generated += out.shape[1] - ids["input_ids"].shape[1]
    return generated / (time.perf_counter() - started)


async def bench_openai_direct(url: str, model: str, texts: list[str], tokens: int) -> float:
    import openai

    client = openai.AsyncOpenAI(base_url=url, api_key="EMPTY", max_retries=0)

    async def one(text: str) -> int:
        r = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": text}], max_tokens=tokens,
            temperature=0, extra_body={"ignore_eos": True})
        return r.usage.completion_tokens if r.usage else 0

    started = time.perf_counter()
    counts = await asyncio.gather(*(one(t) for t in texts))
    elapsed = time.perf_counter() - started
    await client.close()
    return sum(counts) / elapsed


async def bench_litlab(url: str, model: str, texts: list[str], tokens: int) -> float:
    from agentlab.client import AsyncModelClient

    client = AsyncModelClient(url)
    started = time.perf_counter()
    results = await asyncio.gather(*(
        client.chat([{"role": "user", "content": t}], model=model, max_tokens=tokens,
                    temperature=0, extra_body={"ignore_eos": True})
        for t in texts))
    elapsed = time.perf_counter() - started
    await client.close()
    return sum(r.completion_tokens for r in results) / elapsed


def litlab_ttft(url: str, model: str, runs: int = 5) -> float:
    from agentlab.client import ModelClient

    client = ModelClient(url)
    samples = []
    for i in range(runs):
        stream = client.stream([{"role": "user", "content": f"Define a neural network ({i})."}],
                               model=model, max_tokens=8, temperature=0)
        for _ in stream:
            pass
        assert stream.result is not None and stream.result.ttft_s is not None
        samples.append(stream.result.ttft_s)
    return statistics.median(samples)


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds of (b) and (c)")
    args = parser.parse_args()
    if args.smoke:
        args.prompts, args.tokens, args.rounds = 2, 4, 1

    from agentlab.models import prepare
    from agentlab.server import LocalServer

    s = settings()
    model = s.model
    texts = prompts(args.prompts)
    checkpoint = prepare(model, s.models_dir, progress=print)

    server = LocalServer(s)
    if server.running() and not args.smoke:  # (a) must not share the CPU with a server
        print("stopping litlab's server for the transformers baseline")
        server.stop()
    print(f"(a) transformers generate, {len(texts)} prompts one at a time ...")
    hf = bench_transformers(checkpoint, texts, args.tokens)
    print(f"    {hf:.1f} tok/s")
    print(f"(a2) transformers generate, {len(texts)} prompts as one batch ...")
    hf_batched = bench_transformers_batched(checkpoint, texts, args.tokens)
    print(f"    {hf_batched:.1f} tok/s")

    url = server.ensure(progress=print)
    asyncio.run(bench_openai_direct(url, model, texts[:4], 8))  # warm-up
    direct: list[float] = []
    ours: list[float] = []
    for r in range(args.rounds):  # alternate who goes first, so neither gets the warmer server
        order = [(direct, bench_openai_direct), (ours, bench_litlab)]
        for sink, fn in order if r % 2 == 0 else order[::-1]:
            sink.append(asyncio.run(fn(url, model, texts, args.tokens)))
        print(f"    round {r + 1}: (b) vLLM direct {direct[-1]:.1f} tok/s, "
              f"(c) litlab {ours[-1]:.1f} tok/s")
    vllm_tok_s, litlab_tok_s = statistics.mean(direct), statistics.mean(ours)
    ttft = litlab_ttft(url, model, runs=1 if args.smoke else 5)

    results = {
        "model": model,
        "prompts": len(texts),
        "new_tokens": args.tokens,
        "hf_tok_s": round(hf, 2),
        "hf_batched_tok_s": round(hf_batched, 2),
        "vllm_tok_s": round(vllm_tok_s, 2),
        "litlab_tok_s": round(litlab_tok_s, 2),
        "ratio_litlab_vs_hf": round(litlab_tok_s / hf, 2),
        "ratio_litlab_vs_hf_batched": round(litlab_tok_s / hf_batched, 2),
        "ratio_litlab_vs_vllm": round(litlab_tok_s / vllm_tok_s, 3),
        "ttft_s": round(ttft, 4),
        "targets": {"ratio_litlab_vs_vllm": ">= 0.9", "ratio_litlab_vs_hf": ">= 15",
                    "ttft_s": "< 0.1"},
    }
    write("serving", results, args.smoke)
    print(f"\n(a) transformers {hf:8.1f} tok/s")
    print(f"(b) vLLM direct  {vllm_tok_s:8.1f} tok/s")
    print(f"(c) litlab       {litlab_tok_s:8.1f} tok/s")
    print(f"c/a = {results['ratio_litlab_vs_hf']}  (serving stack vs naive generation; "
          "target >= 15)")
    print(f"c/a2 = {results['ratio_litlab_vs_hf_batched']}  (vs transformers batched)")
    print(f"c/b = {results['ratio_litlab_vs_vllm']}  (target >= 0.9)")
    print(f"time to first token through litlab: {ttft * 1000:.0f} ms  (target < 100 ms)")


if __name__ == "__main__":
    main()
