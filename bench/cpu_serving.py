"""Serving on a CPU: the dtype litlab chooses, and an adapter served merged instead of with LoRA.

One run, the same `ask`-sized prompts (the `rag` template with five sources of ~110 words, as
`ask` sends them: ~1,000 tokens), the same number of answer tokens each (``ignore_eos``), one
request at a time, each configuration on litlab's own server started afresh:

  (a) the base model in bfloat16, the dtype litlab served in before (the baseline);
  (b) the base model in the dtype litlab's ``dtype = "auto"`` chooses here (float32 on a CPU
      without AVX512-BF16 or AMX, where vLLM emulates bfloat16);
  (c) a LoRA adapter through vLLM's LoRA kernels (``adapter_serving = "lora"``), and the base
      model's requests on that same LoRA-enabled server;
  (d) the same adapter merged into its base (``adapter_serving = "merged"``, what suites and
      fine-tuning gates use on a CPU), the merge's own time included once.

The adapter is a fresh rank-16 LoRA on every projection, as `litlab finetune sft` trains (its B
is zero, so it answers as the base does and every configuration does the same work). Prints
seconds per answer and the ratios a/b and c/d; writes bench/results/cpu_serving.json.

    .venv/bin/python bench/cpu_serving.py [--questions 8] [--tokens 64] [--smoke]

Runs in a temporary home beside the settings' one (the prepared base model linked from it,
prepared there first if need be); litlab's own server in the settings' home is left alone.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from ask import QUESTIONS  # the questions bench/ask.py times
from common import question_arguments, sentence, settings, write

ADAPTER = "bench-lora"


def make_adapter(base: Path, dest: Path) -> None:
    """A rank-16 LoRA adapter on ``base`` with litlab's default target modules."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from finetune.config import MODEL_DEFAULTS

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    config = LoraConfig(r=16, lora_alpha=32, task_type="CAUSAL_LM",
                        target_modules=list(MODEL_DEFAULTS["lora_target_modules"]))
    get_peft_model(model, config).save_pretrained(str(dest))


def prompts(home: Path, n: int) -> tuple[list[list[dict[str, str]]], int]:
    """``n`` prompts shaped as `ask` sends them: the `rag` template with five sources of about
    110 words each (text drawn from the field's vocabulary: the length is what costs, not
    the words); and their mean length in characters."""
    import numpy as np

    from agentlab.citations import NOT_IN_LIBRARY
    from agentlab.prompts import load_template

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        sources = "\n\n".join(
            f"[{k}] A paper on {QUESTIONS[(i + k) % len(QUESTIONS)].split()[-1]} "
            f"(section {k} Method, page {k + 2})\n" +
            " ".join(sentence(rng) for _ in range(6)) for k in range(1, 6))
        out.append(load_template("rag", home).render(
            question=QUESTIONS[i % len(QUESTIONS)], sources=sources,
            not_in_library=NOT_IN_LIBRARY))
    return out, round(statistics.mean(sum(len(m["content"]) for m in ms) for ms in out))


def _timed(client: Any, model: str, messages: list[list[dict[str, str]]], tokens: int
           ) -> tuple[list[float], int]:
    """Each answer's seconds, one request at a time, and the longest prompt in tokens."""
    seconds, prompt_tokens = [], 0
    for ms in messages:
        t = time.perf_counter()
        r = client.chat(ms, model=model, max_tokens=tokens, temperature=0,
                        extra_body={"ignore_eos": True})
        seconds.append(time.perf_counter() - t)
        prompt_tokens = max(prompt_tokens, r.prompt_tokens)
    return seconds, prompt_tokens


def answer_times(s: Any, model: str, messages: list[list[dict[str, str]]], tokens: int,
                 say: Any, restart: bool = True) -> tuple[float, list[float], int]:
    """Start litlab's server for ``s`` afresh (a running one is reused whatever its dtype;
    ``restart`` False keeps it), then time each answer; (seconds to start, answers, prompt
    tokens)."""
    from agentlab.client import ModelClient
    from agentlab.server import LocalServer

    server = LocalServer(s)
    if restart:
        server.stop()
    started = time.perf_counter()
    client = ModelClient(server.ensure(say), api_key=s.api_key, timeout=900)
    start_s = time.perf_counter() - started
    client.chat(messages[0], model=model, max_tokens=2, temperature=0)  # warm-up
    seconds, prompt_tokens = _timed(client, model, messages, tokens)
    client.close()
    return start_s, seconds, prompt_tokens


def main() -> None:
    args = question_arguments(__doc__)

    from agentlab.models import merged_checkpoint, prepare
    from agentlab.server import LocalServer, server_dtype

    s0 = settings()
    base_ckpt = prepare(s0.model, s0.models_dir, progress=print)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        (home / "models").mkdir(parents=True)
        (home / "models" / base_ckpt.name).symlink_to(base_ckpt, target_is_directory=True)
        make_adapter(base_ckpt, home / "adapters" / ADAPTER)
        s = s0.model_copy(update={"home": home, "api_base": None, "keep_alive": 0})
        messages, chars = prompts(home, args.questions)
        chosen = server_dtype("auto")
        print(f"{len(messages)} prompts of ~{chars} characters, {args.tokens} answer tokens "
              f"each; dtype auto here: {chosen}")

        runs: dict[str, dict[str, Any]] = {}

        def measure(name: str, s_run: Any, model: str, restart: bool = True) -> None:
            print(f"({name}) ...")
            start_s, secs, ptoks = answer_times(s_run, model, messages, args.tokens, print,
                                                restart)
            runs[name] = {"server_start_s": round(start_s, 1),
                          "answer_s": round(statistics.mean(secs), 3),
                          "answers_s": [round(x, 2) for x in secs], "prompt_tokens": ptoks}
            print(f"    {runs[name]['answer_s']:.2f} s an answer (start {start_s:.0f} s)")

        try:
            plain = {"lora": "off", "adapter_serving": "lora"}
            measure("a_base_bfloat16", s.model_copy(update={**plain, "dtype": "bfloat16"}),
                    s.model)
            measure("b_base_auto", s.model_copy(update={**plain, "dtype": "auto"}), s.model)
            lora = s.model_copy(update={"model": ADAPTER, "adapter_serving": "lora",
                                        "dtype": "auto"})
            measure("c_adapter_lora", lora, ADAPTER)
            measure("c_base_on_lora_server", lora, s.model, restart=False)
            t = time.perf_counter()
            merged_checkpoint(s.models_dir, s.adapters_dir / ADAPTER, print)
            merge_s = time.perf_counter() - t
            measure("d_adapter_merged", s.model_copy(update={
                "model": ADAPTER, "adapter_serving": "merged", "dtype": "auto"}), ADAPTER)
        finally:
            LocalServer(s).stop()

    a, b = runs["a_base_bfloat16"]["answer_s"], runs["b_base_auto"]["answer_s"]
    c, d = runs["c_adapter_lora"]["answer_s"], runs["d_adapter_merged"]["answer_s"]
    results = {
        "model": s0.model, "questions": len(messages), "answer_tokens": args.tokens,
        "prompt_characters": chars, "dtype_auto": chosen, "runs": runs,
        "merge_s": round(merge_s, 1),
        "ratio_bfloat16_vs_auto": round(a / b, 2),
        "ratio_lora_vs_merged": round(c / d, 2),
        "ratio_base_on_lora_server_vs_auto": round(
            runs["c_base_on_lora_server"]["answer_s"] / b, 2),
    }
    write("cpu_serving", results, args.smoke)
    print(f"\n(a) base, bfloat16        {a:6.2f} s an answer")
    print(f"(b) base, dtype auto ({chosen}) {b:6.2f} s   a/b = {results['ratio_bfloat16_vs_auto']}")
    print(f"(c) adapter with LoRA     {c:6.2f} s   (the base on that server: "
          f"{runs['c_base_on_lora_server']['answer_s']:.2f} s)")
    print(f"(d) adapter merged        {d:6.2f} s   c/d = {results['ratio_lora_vs_merged']} "
          f"(merging: {merge_s:.0f} s once)")


if __name__ == "__main__":
    main()
