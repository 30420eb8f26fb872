"""Retrieval on real papers: does the passage that holds the answer come back?

Indexes the real PDFs in ../shared/papers/dev/ and asks the questions of
../shared/eval/dev_retrieval_qa*.json (each names its paper and a phrase that the passage
holding its answer contains). A hit is a returned chunk of that paper containing the phrase
(compared without case, white space or hyphenation breaks). In one run:
  (a) litlab's search (hybrid BM25 + MiniLM, the library as `litlab index files` builds it);
  (b) a naive dense baseline: pypdf text of each PDF, 1000-character windows, MiniLM, exact
      cosine search.
Prints recall@1/5/10 and MRR of each per question set, and the ratio of recall@5 (a/b);
writes bench/results/grounding.json. Goal (issue 12): recall@5 of at least 0.95.

    .venv/bin/python bench/grounding.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from common import write

K = (1, 5, 10)


def norm(text: str) -> str:
    text = re.sub(r"(\w)-\s+(\w)", r"\1\2", text)
    return re.sub(r"\s+", " ", text).strip().lower()


def metrics(ranks: list[int | None]) -> dict[str, float]:
    """recall@k and MRR from the 1-based rank of the first hit (None: not in the top 10)."""
    n = len(ranks)
    out = {f"recall@{k}": round(sum(r is not None and r <= k for r in ranks) / n, 3) for k in K}
    out["mrr"] = round(sum(1 / r for r in ranks if r is not None) / n, 3)
    return out


def first_hit(texts: list[tuple[str, str]], paper: str, expect: list[str]) -> int | None:
    wanted = [norm(e) for e in expect]
    for rank, (name, text) in enumerate(texts, start=1):
        if name == paper and any(w in norm(text) for w in wanted):
            return rank
    return None


def naive_index(pdfs: list[Path], embedder: Any) -> tuple[list[tuple[str, str]], Any]:
    from pypdf import PdfReader

    windows: list[tuple[str, str]] = []
    for pdf in pdfs:
        text = "\n".join(page.extract_text() or "" for page in PdfReader(pdf).pages)
        windows += [(pdf.name, text[i:i + 1000]) for i in range(0, len(text), 1000)]
    return windows, embedder.embed([t for _, t in windows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--shared", type=Path,
                        default=Path(__file__).resolve().parent.parent.parent / "shared")
    args = parser.parse_args()
    pdfs = sorted((args.shared / "papers" / "dev").glob("*.pdf"))
    sets = sorted((args.shared / "eval").glob("dev_retrieval_qa*.json"))
    if not pdfs or not sets:
        raise SystemExit(f"no dev papers or questions under {args.shared} (see --shared)")

    from retrievers.embeddings import get_embedder
    from retrievers.library import Library

    embedder = get_embedder()
    windows, vectors = naive_index(pdfs, embedder)
    results: dict[str, Any] = {"papers": [p.name for p in pdfs], "sets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        lib = Library(Path(tmp) / "home")
        report = lib.index_files(pdfs, arxiv=False)  # the same titles online or not
        assert report.ok, report.failed
        names = {p.id: Path(p.source).name for p in lib.catalog.papers("indexed")}
        for qa in sets:
            questions = json.loads(qa.read_text())
            ours, naive, misses = [], [], []
            for q in questions:
                hits = lib.search(q["q"], max(K))
                ranked = [(names.get(h.paper.id, ""), h.chunk.text) for h in hits]
                rank = first_hit(ranked, q["paper"], q["expect"])
                ours.append(rank)
                if rank is None or rank > 5:
                    misses.append({"q": q["q"], "expect": q["expect"], "rank": rank})
                scores = vectors @ embedder.embed_query(q["q"])
                top = scores.argsort()[::-1][:max(K)]
                naive.append(first_hit([windows[i] for i in top], q["paper"], q["expect"]))
            a, b = metrics(ours), metrics(naive)
            results["sets"][qa.stem] = {"questions": len(questions), "litlab": a, "naive": b,
                                        "ratio_recall@5": round(a["recall@5"] /
                                                                max(b["recall@5"], 1e-9), 2),
                                        "litlab_misses_at_5": misses}
            print(f"{qa.stem} ({len(questions)} questions)")
            print(f"  litlab  {a}")
            print(f"  naive   {b}")
            print(f"  a/b recall@5 = {results['sets'][qa.stem]['ratio_recall@5']}  "
                  "(goal: litlab recall@5 >= 0.95)")
        lib.close()
    write("grounding", results)


if __name__ == "__main__":
    main()
