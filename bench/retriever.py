"""A retriever fine-tuned on the library (`litlab finetune retriever train`): does search find more?

Indexes the real PDFs in ../shared/papers/dev/ (as `litlab index files` does), then makes a
candidate exactly as the command does (pairs from the library, sentence-transformers training,
the candidate's own vectors of every chunk) and searches every question set twice in the same
run: with the library's packaged embedder (the baseline) and with the candidate's. Sets,
reported apart by how their questions were made:
  - held-out papers: questions made the way the training pairs are (cloze sentences and
    extractive questions) from the papers training never saw;
  - dev_retrieval_qa.json, dev_retrieval_qa_2.json (hand-written, ../shared; the sets the
    ranking was designed on);
  - bench/data/retrieval_qa_sampled.json, retrieval_qa_named.json (written on random chunks;
    design data since their first reading);
  - bench/data/retrieval_qa_heldout.json (12 questions on 12 random chunks, seed 101, written
    on 2026-12-03 before the fine-tuned retriever was built or tuned: the held-out check).
Recall@5 of each, the McNemar p-value over all, the gate's verdict, and the time to make pairs,
fine-tune and embed, per 1k chunks. Writes bench/results/retriever.json.

    .venv/bin/python bench/retriever.py [--shared ../shared] [--pairs 400] [--lr 2e-5] [--smoke]

With --smoke it needs no ../shared: the tests' four topic notes, 16 pairs.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from common import arguments, library, write

DATA = Path(__file__).resolve().parent / "data"


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--shared", type=Path,
                        default=Path(__file__).resolve().parent.parent.parent / "shared")
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--lr", type=float, default=2e-5)
    args = parser.parse_args()
    from finetune.retriever import TrainConfig, make

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.smoke:
            from tests.papers import topic_notes

            lib = library(folder / "home")
            assert lib.index_files([topic_notes(folder / "notes")]).ok
            sets: list[Path] = []
            cfg = TrainConfig(pairs=16, batch=8)
        else:
            dev = sorted((args.shared / "papers" / "dev").glob("*.pdf"))
            if not dev:
                raise SystemExit(f"no dev papers under {args.shared}: give --shared")
            lib = library(folder / "home")
            t0 = time.time()
            assert lib.index_files(dev, arxiv=False).ok
            print(f"indexed {len(dev)} papers in {time.time() - t0:.0f} s")
            sets = [args.shared / "eval" / "dev_retrieval_qa.json",
                    args.shared / "eval" / "dev_retrieval_qa_2.json",
                    DATA / "retrieval_qa_sampled.json", DATA / "retrieval_qa_named.json",
                    DATA / "retrieval_qa_heldout.json"]
            cfg = TrainConfig(pairs=args.pairs, lr=args.lr)
        t0 = time.time()
        cand = make(lib, "bench", cfg, eval_files=[s for s in sets if s.is_file()],
                    progress=lambda m: None,
                    on_step=lambda st, total, loss: print(f"step {st}/{total} loss {loss}"))
        seconds = time.time() - t0
        info = cand.info()
    gate = info["gate"]
    per_1k = 1000 / max(1, info["chunks"])
    results: dict[str, Any] = {
        "sets": {name: {k: r[k] for k in ("questions", "base", "tuned")}
                 for name, r in gate["sets"].items()},
        "changed": {name: r["changed"] for name, r in gate["sets"].items()},
        "gained": gate["gained"], "lost": gate["lost"], "p_value": gate["p_value"],
        "passed": gate["passed"], "worse_on": gate["worse_on"],
        "pairs": info["pairs"], "kinds": info["kinds"], "config": info["config"],
        "chunks": info["chunks"], "seconds": round(seconds, 1),
        "train_seconds": info["train_seconds"], "embed_seconds": info["embed_seconds"],
        "train_seconds_per_1k_chunks": round(info["train_seconds"] * per_1k, 1),
        "embed_seconds_per_1k_chunks": round(info["embed_seconds"] * per_1k, 1),
        "baseline": "the same hybrid search with the packaged all-MiniLM-L6-v2 vectors",
    }
    for name, r in results["sets"].items():
        print(f"{name:32s} recall@5 {r['base']:.3f} -> {r['tuned']:.3f} ({r['questions']} q)")
    print(f"gate {'passed' if gate['passed'] else 'failed'}: +{gate['gained']} "
          f"-{gate['lost']} p={gate['p_value']}; {seconds:.0f} s in all")
    print(json.dumps({k: results[k] for k in ("train_seconds_per_1k_chunks",
                                              "embed_seconds_per_1k_chunks")}))
    write("retriever", results, smoke=args.smoke)


if __name__ == "__main__":
    main()
