"""`litlab finetune sft` against a plain TRL SFTTrainer script: training tokens per second and
peak memory, same model (the prepared SmolLM2-135M, fp32), same data, same LoRA and trainer
settings, each side in its own process (so peak RSS is its own), alternated ``--rounds`` times.

    .venv/bin/python bench/training.py [--steps 16] [--batch 4] [--rounds 2] [--smoke]

Prints litlab/TRL for tokens/s (target at least 0.95) and for peak memory; writes
bench/results/training.json. The model is prepared in LITLAB_HOME first if it is not yet (as
`litlab finetune` would). The examples are ~70-token question/answer pairs, as in the
measurement made before litlab had any fine-tuning code (plain TRL: ~168 tokens/s).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import TOPICS, arguments, settings, write

MODEL = "smollm2-135m-instruct"


def examples(n: int = 64) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        t = TOPICS[i % len(TOPICS)]
        out.append({"messages": [
            {"role": "user", "content": f"In one sentence, what is {t} in deep learning?"},
            {"role": "assistant", "content": f"{t} is a technique used when training neural "
                                             f"networks; the paper describes it in section "
                                             f"{i % 7 + 1} and reports its effect [1]."}]})
    return out


def side_litlab(args: Any, folder: Path) -> dict[str, Any]:
    from finetune.config import spec
    from finetune.data import DatasetStore
    from finetune.train import run

    mine = settings()
    home = folder / "home"
    home.mkdir()
    (home / "models").symlink_to(mine.models_dir, target_is_directory=True)
    s = mine.model_copy(update={"home": home})
    data = folder / "data.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in examples()))
    DatasetStore(home).from_file("bench", data, eval_share=0)
    result = run(spec("sft", data="bench", name="bench",
                      training={"max_steps": args.steps, "per_device_train_batch_size": args.batch,
                                "save_strategy": "no"}), s)
    return {"tokens": result.tokens, "seconds": result.seconds,
            "first_loss": result.losses[0][1], "last_loss": result.losses[-1][1]}


def side_trl(args: Any, folder: Path) -> dict[str, Any]:
    """What a person would write with TRL alone, with litlab's LoRA and trainer settings."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from finetune.config import MODEL_DEFAULTS, TRAINING_DEFAULTS

    path = settings().models_dir / MODEL
    rows = [{"prompt": r["messages"][:1], "completion": r["messages"][1:]} for r in examples()]
    # the same work as litlab's side: its dataset has no eval split, so nothing is evaluated
    training = {**TRAINING_DEFAULTS["sft"], "max_steps": args.steps,
                "per_device_train_batch_size": args.batch, "save_strategy": "no",
                "eval_strategy": "no", "load_best_model_at_end": False}
    cfg = SFTConfig(output_dir=str(folder / "out"), use_cpu=True, **training)
    lora = LoraConfig(r=MODEL_DEFAULTS["lora_r"], lora_alpha=MODEL_DEFAULTS["lora_alpha"],
                      lora_dropout=MODEL_DEFAULTS["lora_dropout"], bias="none",
                      target_modules=MODEL_DEFAULTS["lora_target_modules"], task_type="CAUSAL_LM")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    trainer = SFTTrainer(model=model, args=cfg, train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer, peft_config=lora)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    logs = [h for h in trainer.state.log_history if "loss" in h]
    return {"tokens": int(max(h.get("num_tokens", 0) for h in logs)), "seconds": seconds,
            "first_loss": logs[0]["loss"], "last_loss": logs[-1]["loss"]}


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--side", choices=["litlab", "trl"], help="(one side, in its process)")
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.batch, args.rounds = 2, 2, 1
    if args.side:
        with tempfile.TemporaryDirectory() as tmp:
            out = (side_litlab if args.side == "litlab" else side_trl)(args, Path(tmp))
        out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print("RESULT " + json.dumps(out))
        return

    from agentlab.models import prepare

    prepare(MODEL, settings().models_dir, progress=print)  # once, before either side
    runs: dict[str, list[dict[str, Any]]] = {"litlab": [], "trl": []}
    for r in range(args.rounds):
        for side in ("trl", "litlab") if r % 2 == 0 else ("litlab", "trl"):
            proc = subprocess.run(
                [sys.executable, __file__, "--side", side, "--steps", str(args.steps),
                 "--batch", str(args.batch)], capture_output=True, text=True, check=False)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                sys.exit(f"the {side} side failed:\n{proc.stderr[-3000:]}")
            res = json.loads(line[7:])
            res["tokens_per_s"] = res["tokens"] / res["seconds"]
            runs[side].append(res)
            print(f"  {side:6s} round {r + 1}: {res['tokens_per_s']:6.1f} tokens/s, peak "
                  f"{res['peak_rss_mib']:.0f} MiB, loss {res['first_loss']:.2f} → "
                  f"{res['last_loss']:.2f}")
    best = {side: max(rs, key=lambda x: x["tokens_per_s"]) for side, rs in runs.items()}
    speed = best["litlab"]["tokens_per_s"] / best["trl"]["tokens_per_s"]
    memory = min(x["peak_rss_mib"] for x in runs["litlab"]) / \
        min(x["peak_rss_mib"] for x in runs["trl"])
    print(f"\nlitlab/TRL tokens per second = {speed:.3f}  (target >= 0.95)")
    print(f"litlab/TRL peak memory       = {memory:.3f}")
    write("training", {"model": MODEL, "steps": args.steps,
                       "batch": args.batch, "rounds": args.rounds, "runs": runs,
                       "ratio_tokens_per_s": round(speed, 3), "ratio_peak_memory": round(memory, 3),
                       "targets": {"ratio_tokens_per_s": ">= 0.95"}}, args.smoke)


if __name__ == "__main__":
    main()
