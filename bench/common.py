"""What every benchmark shares: its command line (with ``--smoke``), the settings and library as
the product builds them, percentiles, synthetic text and vectors, writing results.

Every benchmark runs as the Makefile runs it (``python bench/NAME.py``) in any home: what it
needs (the prepared model, the embedder's ONNX export) it prepares the way the product does,
or it names the command that does. ``--smoke`` runs it in seconds at tiny sizes and writes
nothing to ``bench/results`` (``make test`` runs every smoke mode).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
if str(ROOT) not in sys.path:  # tests.papers, tests.clip: the papers and models tests make
    sys.path.insert(0, str(ROOT))


def arguments(doc: str | None) -> argparse.ArgumentParser:
    """The benchmark's command line, with ``--smoke``."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, seconds: check that it runs (nothing is written to "
                             "bench/results)")
    return parser


def settings(**flags: Any) -> Any:
    """The settings litlab would use here (LITLAB_HOME, litlab.toml, LITLAB_*), with
    ``flags`` on top as command-line flags would be."""
    from agentlab.settings import load_settings

    return load_settings(**flags).settings


def library(home: Path, **flags: Any) -> Any:
    """A library in ``home`` built from the settings, as every litlab command builds it."""
    from retrievers.library import Library

    return Library.from_settings(settings(home=home, **flags))


def question_arguments(doc: str | None) -> argparse.Namespace:
    """The command line of a bench that asks the model questions: ``--questions`` and
    ``--tokens`` (2 questions of 4 tokens with ``--smoke``)."""
    parser = arguments(doc)
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    if args.smoke:
        args.questions, args.tokens = 2, 4
    return args


def test_papers_library(folder: Path) -> tuple[Path, Any]:
    """The tests' three small papers (a two-column PDF, a LaTeX tarball, Markdown) indexed into
    a library under ``folder``: its home and the library."""
    from tests.papers import MARKDOWN, make_latex_tarball, make_two_column_pdf

    home, papers = folder / "home", folder / "papers"
    papers.mkdir(parents=True)
    make_two_column_pdf(papers / "adaptation.pdf")
    make_latex_tarball(papers / "clip.tar.gz")
    (papers / "rlhf.md").write_text(MARKDOWN)
    lib = library(home)
    assert lib.index_files([papers]).ok
    return home, lib
WORDS = (  # noqa: SIM905 - a paragraph reads better than 66 quoted words
    "attention transformer layer head query key value softmax gradient loss optimizer adam "
    "learning rate warmup diffusion noise denoising score sampler latent encoder decoder "
    "contrastive image text embedding clip lora rank adapter frozen weights fine-tuning "
    "reward model preference policy ppo dpo grpo kl penalty state space model mamba "
    "sequence length recurrence convolution scan token vocabulary batch normalization "
    "dropout residual connection scaling law compute data parameters benchmark accuracy"
).split()

# Topics of the field for generated questions (bench/suites.py, bench/training.py).
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


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def write(name: str, results: dict[str, Any], smoke: bool = False) -> Path | None:
    """Write ``bench/results/NAME.json`` stamped with the machine and the time (a smoke run
    writes nothing: its figures mean nothing)."""
    if smoke:
        print(f"smoke run: bench/results/{name}.json not written")
        return None
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    results["measured_at"] = now()
    path = RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {path}")
    return path
