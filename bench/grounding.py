"""Retrieval on real papers: does the passage that holds the answer come back?

Indexes the real PDFs in ../shared/papers/dev/ and asks the questions of
../shared/eval/dev_retrieval_qa*.json (each names its paper and a phrase that the passage
holding its answer contains). A hit is a returned chunk of that paper containing the phrase
(compared without case, white space or hyphenation breaks). A third set,
bench/data/retrieval_qa_sampled.json, asks about the same papers: one question on each of 14
chunks drawn at random (seed 12), written after the term-proximity ranking was designed and
before it was measured on them, as a check that what was tuned on the two dev sets carries
over. A fourth, bench/data/retrieval_qa_named.json (12 questions on 12 more random chunks,
seed 83, each naming its paper by its short name: "In Multi-LexSum, ...", "according to
S2ORC"), was written on 2026-12-03 before the named-paper ranking was built, and measured
before and after it. In one run:
  (a) litlab's search (hybrid BM25 + MiniLM, the library as `litlab index files` builds it);
  (b) a naive dense baseline: pypdf text of each PDF, 1000-character windows, MiniLM, exact
      cosine search.
Prints recall@1/5/10 and MRR of each per question set, and the ratio of recall@5 (a/b).
With --answers, the questions are also asked of the embedded model through an evaluation suite
(the real vLLM server, `ask` as the CLI runs it, temperature 0), once with the model's own
markers only (attribution off: before), once with litlab's claim verification (after), and
once more with the answer line (the sources' best sentence quoted first) as well:
the share of answers whose every sentence a source supports, the share with at least one valid
citation, and the share whose valid citations include one the model wrote itself.
Writes bench/results/grounding.json. Goal (issue 12): recall@5 of at least 0.95.

    .venv/bin/python bench/grounding.py [--shared ../shared] [--answers] [--smoke]

With --smoke it needs no ../shared: one small PDF the tests make and two questions about it.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from common import arguments, library, settings, write

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


SUITE = """description: grounded answers on the real dev papers (bench/grounding.py)
targets:
  - {name: before, kind: ask, temperature: 0, max_tokens: 96, attribution: false, answer_line: false}
  - {name: after, kind: ask, temperature: 0, max_tokens: 96, attribution: true, answer_line: false}
  - {name: answer-line, kind: ask, temperature: 0, max_tokens: 96, attribution: true, answer_line: true}
prompts: [rag]
assert:
  - {type: supported}
  - {type: citations}
  - {type: citations, value: model, name: model_cites}
cases: [{file: cases.jsonl}]
"""


def key_phrase(expect: list[str]) -> str:
    """A regular expression for any of the phrases the answering passage holds, spaces and
    line-end hyphens loose (the answer may quote it from text broken differently)."""
    def loose(phrase: str) -> str:
        return r"\s*-?\s*".join(re.escape(w).replace(r"\-", r"-?\s*") for w in phrase.split())
    return "(?i)" + "|".join(loose(e) for e in expect)


def answers(lib: Any, questions: list[dict[str, Any]], jobs: int) -> dict[str, Any]:
    """The share of answers every sentence of which is supported, and the shares with a valid
    citation (any, and the model's own), before and after attribution."""
    from agentlab.client import ModelClient
    from agentlab.server import ensure_server
    from evals.runner import Runner
    from evals.store import RunStore
    from evals.suite import load_suite

    s = settings()
    url = ensure_server(s, print)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "cases.jsonl").write_text("".join(
            json.dumps({"id": f"q{i}", "question": q["q"], "papers": [q["paper"]],
                        "assert": [{"type": "regex", "value": key_phrase(q["expect"]),
                                    "name": "key"}]}) + "\n"
            for i, q in enumerate(questions)))
        (folder / "suite.yaml").write_text(SUITE)
        store = RunStore(folder / "home")
        runner = Runner(load_suite(folder / "suite.yaml"), s,
                        ModelClient(url, api_key=s.api_key), store=store, library=lib,
                        use_cache=False)
        summary = runner.run(jobs=jobs)
        store.close()
    out: dict[str, Any] = {"model": s.model, "answers": len(questions),
                           "seconds": round(summary.seconds, 1)}
    for target in ("before", "after", "answer-line"):
        rs = [r for r in summary.results if r.target == target]

        def share(test: Any, rows: list[Any] = rs) -> float:
            return round(sum(bool(test(r)) for r in rows) / max(1, len(rows)), 3)

        def claims(r: Any) -> list[dict[str, Any]]:
            return [x for x in r.output.get("sentences", []) if x.get("claim", True)]

        answered = [r for r in rs if not r.output.get("abstained")
                    and not r.output.get("not_in_library")]
        out[target] = {
            # of the answers litlab showed as answers (not abstained, not refused)
            "every_sentence_supported": share(
                lambda r: claims(r) and all(x.get("supported") for x in claims(r)), answered),
            "sentences_supported": round(
                sum(bool(x.get("supported")) for r in answered for x in claims(r))
                / max(1, sum(len(claims(r)) for r in answered)), 3),
            "a_valid_citation": share(lambda r: r.scores["citations"]["passed"]),
            "a_verified_model_citation": share(lambda r: r.scores["model_cites"]["passed"]),
            "abstained": share(lambda r: r.output.get("abstained")),
            # the answer line stood and the model's words were withheld (none supported)
            "withheld": share(lambda r: r.output.get("withheld")),
            "refused": share(lambda r: r.output.get("not_in_library")),
            "key_phrase_in_answer": share(lambda r: r.scores["key"]["passed"]),
        }
        print(f"  {target:11s} {out[target]}")
    return out


SMOKE_QUESTIONS = [
    {"q": "What does low-rank adaptation freeze?", "paper": "adaptation.pdf",
     "expect": ["freezes the pretrained"]},
    {"q": "How do selective state space models scale with sequence length?",
     "paper": "adaptation.pdf", "expect": ["linearly with sequence length"]},
]


def smoke_inputs(folder: Path) -> tuple[list[Path], list[tuple[str, list[dict[str, Any]]]]]:
    """One PDF the tests make, and two questions about it (no ../shared needed)."""
    from tests.papers import make_two_column_pdf

    return [make_two_column_pdf(folder / "adaptation.pdf")], [("smoke", SMOKE_QUESTIONS)]


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--shared", type=Path,
                        default=Path(__file__).resolve().parent.parent.parent / "shared")
    parser.add_argument("--answers", action="store_true",
                        help="also ask every question of the model (starts the vLLM server)")
    parser.add_argument("--jobs", type=int, default=4, help="answers in flight (--answers)")
    args = parser.parse_args()
    work = tempfile.TemporaryDirectory()
    if args.smoke:
        pdfs, sets = smoke_inputs(Path(work.name))
    else:
        pdfs = sorted((args.shared / "papers" / "dev").glob("*.pdf"))
        files = sorted((args.shared / "eval").glob("dev_retrieval_qa*.json"))
        if not pdfs or not files:
            raise SystemExit(f"no dev papers or questions under {args.shared}: give --shared "
                             "DIR, or run `python bench/grounding.py --smoke` to check it runs")
        files.append(Path(__file__).resolve().parent / "data" / "retrieval_qa_sampled.json")
        files.append(Path(__file__).resolve().parent / "data" / "retrieval_qa_named.json")
        sets = [(f.stem, json.loads(f.read_text())) for f in files]

    lib = library(Path(work.name) / "home")
    embedder = lib.embedder  # the one litlab uses, for the baseline too
    windows, vectors = naive_index(pdfs, embedder)
    results: dict[str, Any] = {"papers": [p.name for p in pdfs], "sets": {}}
    with work:
        report = lib.index_files(pdfs, arxiv=False)  # the same titles online or not
        assert report.ok, report.failed
        names = {p.id: Path(p.source).name for p in lib.catalog.papers("indexed")}
        for name, questions in sets:
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
            results["sets"][name] = {"questions": len(questions), "litlab": a, "naive": b,
                                        "ratio_recall@5": round(a["recall@5"] /
                                                                max(b["recall@5"], 1e-9), 2),
                                        "litlab_misses_at_5": misses}
            print(f"{name} ({len(questions)} questions)")
            print(f"  litlab  {a}")
            print(f"  naive   {b}")
            print(f"  a/b recall@5 = {results['sets'][name]['ratio_recall@5']}  "
                  "(goal: litlab recall@5 >= 0.95)")
        if args.answers:
            print("answers (every question of every set, before / after attribution)")
            every = [q for _, questions in sets for q in questions]
            results["answers"] = answers(lib, every, args.jobs)
        lib.close()
    write("grounding", results, args.smoke)


if __name__ == "__main__":
    main()
