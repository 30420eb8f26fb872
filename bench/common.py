"""What every benchmark shares: percentiles, synthetic text and vectors, writing results."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
WORDS = (  # noqa: SIM905 - a paragraph reads better than 66 quoted words
    "attention transformer layer head query key value softmax gradient loss optimizer adam "
    "learning rate warmup diffusion noise denoising score sampler latent encoder decoder "
    "contrastive image text embedding clip lora rank adapter frozen weights fine-tuning "
    "reward model preference policy ppo dpo grpo kl penalty state space model mamba "
    "sequence length recurrence convolution scan token vocabulary batch normalization "
    "dropout residual connection scaling law compute data parameters benchmark accuracy"
).split()

# Topics of the field for generated questions (bench/evals.py, bench/finetune.py).
TOPICS = ["attention", "dropout", "LoRA", "diffusion", "Mamba", "DPO", "RLHF", "ViT", "CLIP",
          "batch normalization", "Adam", "warmup", "KV cache", "quantization", "distillation",
          "mixture of experts", "tokenization", "beam search", "contrastive loss", "GRPO"]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


_VOCAB: list[str] = []


def vocabulary() -> list[str]:
    """The field's words plus 30,000 made-up ones: text with a realistic long tail, so keyword
    search sees selective terms as it does on real papers (a 66-word corpus matches every
    chunk on every query word)."""
    if not _VOCAB:
        import numpy as np

        rng = np.random.default_rng(7)
        letters = np.array(list("etaoinshrdlucmfwypvbgkqjxz"))
        _VOCAB.extend(WORDS)
        _VOCAB.extend("".join(letters[rng.integers(0, 12, rng.integers(4, 10))])
                      for _ in range(30_000))
    return _VOCAB


def sentence(rng: Any, n: int = 18) -> str:
    """Words drawn Zipf-like from :func:`vocabulary` (frequent words first)."""
    vocab = vocabulary()
    ranks = [min(int(r), len(vocab)) - 1 for r in rng.zipf(1.3, n)]
    return " ".join(vocab[i] for i in ranks).capitalize() + "."


def clustered_vectors(n: int, dim: int = 384, clusters: int = 256, seed: int = 0) -> Any:
    """Unit vectors around ``clusters`` fixed centres (``seed`` only picks the samples): closer
    to real embeddings than uniform noise, which no approximate index handles well and no text
    corpus looks like. Queries drawn with another seed come from the same distribution."""
    import numpy as np

    centres = np.random.default_rng(12345).normal(size=(clusters, dim)).astype("float32")
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype="float32")
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        block = centres[rng.integers(0, clusters, m)] + 0.6 * rng.normal(size=(m, dim))
        out[start:start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def write(name: str, results: dict[str, Any]) -> Path:
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    results["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    path = RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {path}")
    return path
