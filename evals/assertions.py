"""Assertions: plain functions ``(output, case, assertion, judge) -> Score``.

Deterministic checks (text, regex, JSON schema, ROUGE-L, token F1, refusal, citations,
retrieval metrics, latency, tokens) need nothing else; judged ones (faithfulness, answer
relevancy, a rubric) ask a served model for a verdict in a JSON schema it is held to.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentlab.citations import NOT_IN_LIBRARY
from evals.suite import Assertion, Case

Judge = Callable[[list[dict[str, str]], dict[str, Any]], dict[str, Any]]


@dataclass
class Output:
    """What a target produced for a case."""

    text: str
    model: str = ""
    citations: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    not_in_library: bool = False
    abstained: bool = False  # attribution found no claim supported: litlab refused for it
    withheld: bool = False  # the same after an answer line, which stands as the answer
    sources: list[dict[str, Any]] = field(default_factory=list)  # retrieved, in rank order
    tools: list[str] = field(default_factory=list)  # the agent's tool calls
    # Each sentence of an ask answer as attribution judged it (text, claim, supported,
    # sources, origin, unverified), whether or not the target showed the attribution.
    sentences: list[dict[str, Any]] = field(default_factory=list)
    latency_s: float = 0.0
    completion_tokens: int = 0
    error: str | None = None  # the target failed (server down...): every check fails
    finish_reason: str | None = None  # stop, length (max_tokens), repetition (cut: it looped)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "model": self.model, "citations": self.citations,
                "dropped": self.dropped, "not_in_library": self.not_in_library,
                "abstained": self.abstained, "withheld": self.withheld,
                "sources": self.sources, "tools": self.tools, "sentences": self.sentences,
                "latency_s": self.latency_s,
                "completion_tokens": self.completion_tokens, "error": self.error,
                "finish_reason": self.finish_reason}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Output:
        return cls(**d)


@dataclass
class Score:
    passed: bool
    score: float
    reason: str = ""


def _bool(ok: bool, reason: str = "") -> Score:
    return Score(ok, 1.0 if ok else 0.0, "" if ok else reason)


def _scored(value: float, threshold: float, what: str) -> Score:
    return Score(value >= threshold, value, "" if value >= threshold
                 else f"{what} {value:.2f} < {threshold:.2f}")


def _text(a: Assertion) -> str:
    if a.value is None:
        raise ValueError(f"'{a.type}' needs a value")
    return str(a.value)


# -- text ----------------------------------------------------------------------------------
def equals(out: Output, case: Case, a: Assertion, judge: Judge | None = None) -> Score:
    want = a.value if a.value is not None else case.reference
    return _bool(out.text.strip() == str(want).strip(), f"not equal to {want!r}")


def contains(out: Output, case: Case, a: Assertion, judge: Judge | None = None) -> Score:
    return _bool(_text(a) in out.text, f"does not contain {a.value!r}")


def icontains(out: Output, case: Case, a: Assertion, judge: Judge | None = None) -> Score:
    return _bool(_text(a).lower() in out.text.lower(), f"does not contain {a.value!r}")


def not_contains(out: Output, case: Case, a: Assertion, judge: Judge | None = None) -> Score:
    return _bool(_text(a).lower() not in out.text.lower(), f"contains {a.value!r}")


def regex(out: Output, case: Case, a: Assertion, judge: Judge | None = None) -> Score:
    return _bool(re.search(_text(a), out.text) is not None, f"no match for /{a.value}/")


def json_schema(out: Output, case: Case, a: Assertion, judge: Judge | None = None) -> Score:
    import jsonschema

    try:
        data = json.loads(out.text)
    except json.JSONDecodeError as e:
        return Score(False, 0.0, f"not JSON ({e.msg})")
    try:
        jsonschema.validate(data, a.value or {})
    except jsonschema.ValidationError as e:
        return Score(False, 0.0, f"schema: {e.message}")
    return Score(True, 1.0)


def rouge_l(out: Output, case: Case, a: Assertion, judge: Judge | None = None) -> Score:
    from rouge_score import rouge_scorer

    ref = str(a.value or case.reference or "")
    if not ref:
        raise ValueError("'rouge_l' needs a reference (the case's or a value)")
    f = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True).score(ref, out.text)["rougeL"]
    return _scored(f.fmeasure, a.threshold if a.threshold is not None else 0.3, "ROUGE-L")


def _tokens(text: str) -> list[str]:
    text = text.lower().translate(str.maketrans("", "", string.punctuation))
    return [w for w in text.split() if w not in {"a", "an", "the"}]


def token_f1(out: Output, case: Case, a: Assertion, judge: Judge | None = None) -> Score:
    """SQuAD's token F1 between the output and the reference."""
    ref = _tokens(str(a.value or case.reference or ""))
    got = _tokens(out.text)
    common = sum((Counter(ref) & Counter(got)).values())
    f1 = 0.0 if not common else 2 * common / (len(ref) + len(got))
    return _scored(f1, a.threshold if a.threshold is not None else 0.5, "token F1")


# -- refusal and citations -------------------------------------------------------------------
def refused(out: Output) -> bool:
    """The library's answer is that it has no answer: nothing relevant, the model's sentinel,
    or (abstained) nothing the model wrote was supported."""
    return out.not_in_library or out.abstained or NOT_IN_LIBRARY in out.text


def refusal(out: Output, case: Case, a: Assertion, judge: Judge | None = None) -> Score:
    """The NOT_IN_LIBRARY sentinel exactly when the case should be refused."""
    if refused(out) == case.should_refuse:
        return Score(True, 1.0)
    return Score(False, 0.0, "refused an answerable question" if refused(out)
                 else "answered what the library cannot support")


def no_refusal(out: Output, case: Case, a: Assertion, judge: Judge | None = None) -> Score:
    return _bool(not refused(out), "refused")


def citations(out: Output, case: Case, a: Assertion, judge: Judge | None = None) -> Score:
    """Every marker resolves and at least one source is cited (a correct refusal cites none).
    ``value: model`` counts only markers the model wrote that were verified, not sources
    litlab attributed to its sentences."""
    if refused(out):
        return _bool(case.should_refuse, "refused instead of citing")
    if out.dropped:
        return Score(False, 0.0, "markers to no source: " + ", ".join(f"[{n}]" for n in
                                                                        out.dropped))
    if a.value == "model":
        if out.sentences:  # attribution's view: a marker whose source supports its sentence
            own = [s for s in out.sentences if s.get("origin") == "model"]
        else:
            own = [c for c in out.citations if c.get("origin") in (None, "model")]
        return _bool(bool(own), "the model cited nothing verifiable")
    return _bool(bool(out.citations), "cites nothing")


def supported(out: Output, case: Case, a: Assertion, judge: Judge | None = None) -> Score:
    """Share of the answer's claims (sentences long enough to claim something) that a
    retrieved source supports, by litlab's attribution; passes at ``threshold`` (default:
    every one). A refusal has no claims and passes."""
    if refused(out):
        return Score(True, 1.0)
    claims = [s for s in out.sentences if s.get("claim", True)]
    if not claims:
        return Score(False, 0.0, "no claim to support")
    value = sum(bool(s.get("supported")) for s in claims) / len(claims)
    bar = 1.0 if a.threshold is None else a.threshold
    return Score(value >= bar, value, "" if value >= bar else
                 f"{len(claims) - round(value * len(claims))} of {len(claims)} sentences "
                 "unsupported")


def _is_expected(source: dict[str, Any], expected: list[str]) -> bool:
    """A source is of an expected paper named by its arXiv id, key, file name or title (the
    file name still counts when an arXiv stamp gave the paper an id)."""
    names = {str(source.get("title") or "")}
    for paper in (str(source.get("paper") or ""), str(source.get("key") or "")):
        names |= {paper, paper.removeprefix("file:"), Path(paper.removeprefix("file:")).name}
    names.discard("")
    return any(e in names for e in expected)


def cites_expected(out: Output, case: Case, a: Assertion, judge: Judge | None = None) -> Score:
    if not case.papers:
        raise ValueError("'cites_expected' needs the case's papers")
    return _bool(any(_is_expected(c, case.papers) for c in out.citations),
                 "cites none of " + ", ".join(case.papers))


# -- retrieval -------------------------------------------------------------------------------
def _relevant(out: Output, case: Case, k: int) -> list[bool]:
    if not case.papers and not case.chunks:
        raise ValueError("retrieval metrics need the case's papers or chunks")
    if case.chunks:
        return [int(s.get("chunk_id") or 0) in case.chunks for s in out.sources[:k]]
    seen: set[str] = set()  # a paper is found once, however many of its chunks come back
    hits = []
    for s in out.sources[:k]:
        wanted = [p for p in case.papers if p not in seen and _is_expected(s, [p])]
        seen.update(wanted)
        hits.append(bool(wanted))
    return hits


def recall_at_k(out: Output, case: Case, a: Assertion, judge: Judge | None = None) -> Score:
    """Share of the expected papers (or chunks) among the first k retrieved."""
    top = out.sources[:a.k]
    if case.chunks:
        found = {int(s.get("chunk_id") or 0) for s in top} & set(case.chunks)
        value = len(found) / len(case.chunks)
    else:
        value = sum(any(_is_expected(s, [p]) for s in top) for p in case.papers) / \
            max(1, len(case.papers))
    return _scored(value, a.threshold if a.threshold is not None else 1.0, f"recall@{a.k}")


def mrr(out: Output, case: Case, a: Assertion, judge: Judge | None = None) -> Score:
    hits = _relevant(out, case, len(out.sources))
    rank = next((i for i, h in enumerate(hits, start=1) if h), None)
    value = 1.0 / rank if rank else 0.0
    return _scored(value, a.threshold if a.threshold is not None else 0.5, "MRR")


def ndcg(out: Output, case: Case, a: Assertion, judge: Judge | None = None) -> Score:
    hits = _relevant(out, case, a.k)
    dcg = sum(1 / math.log2(i + 1) for i, h in enumerate(hits, start=1) if h)
    ideal_n = min(a.k, len(case.chunks) or len(case.papers))
    idcg = sum(1 / math.log2(i + 1) for i in range(1, ideal_n + 1))
    value = dcg / idcg if idcg else 0.0
    return _scored(value, a.threshold if a.threshold is not None else 0.5, f"nDCG@{a.k}")


# -- limits and tools ------------------------------------------------------------------------
def latency(out: Output, case: Case, a: Assertion, judge: Judge | None = None) -> Score:
    limit = float(a.value)
    return _bool(out.latency_s <= limit, f"took {out.latency_s:.2f} s > {limit:.2f} s")


def max_tokens(out: Output, case: Case, a: Assertion, judge: Judge | None = None) -> Score:
    limit = int(a.value)
    return _bool(out.completion_tokens <= limit, f"{out.completion_tokens} tokens > {limit}")


def tool(out: Output, case: Case, a: Assertion, judge: Judge | None = None) -> Score:
    """The agent used a tool, or, for a list, these tools in this order (others may come
    between): [search_library, search_library, calculator] needs two searches, then the
    calculator."""
    wanted = [str(v) for v in a.value] if isinstance(a.value, list) else [_text(a)]
    used = iter(out.tools)
    in_order = all(any(u == w for u in used) for w in wanted)  # consumes: a subsequence
    return _bool(in_order, f"did not use {' then '.join(wanted)} (used: "
                           f"{', '.join(out.tools) or 'no tool'})")


# -- judged ----------------------------------------------------------------------------------
FAITHFULNESS_SCHEMA = {
    "type": "object",
    "properties": {"statements": {"type": "array", "maxItems": 8, "items": {
        "type": "object",
        "properties": {"statement": {"type": "string", "maxLength": 300},
                       "supported": {"type": "boolean"}},
        "required": ["statement", "supported"]}}},
    "required": ["statements"],
}
VERDICT_SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "integer", "minimum": 1, "maximum": 5},
                   # bounded: a small judge can loop inside a string until max_tokens
                   "reason": {"type": "string", "maxLength": 300}},
    "required": ["score", "reason"],
}


def _need(judge: Judge | None) -> Judge:
    if judge is None:
        raise ValueError("judged checks need a model")
    return judge


def _context(out: Output) -> str:
    return "\n\n".join(f"[{s.get('n', i)}] {s.get('text', '')}"
                       for i, s in enumerate(out.sources, start=1)) or "(no context)"


def faithfulness(out: Output, case: Case, a: Assertion, judge: Judge | None = None) -> Score:
    """RAGAS's faithfulness: the answer split into statements, each judged supported by the
    retrieved context or not; the score is the supported share."""
    if refused(out):
        return Score(True, 1.0)
    verdict = _need(judge)([
        {"role": "system", "content": "You check answers against their sources."},
        {"role": "user", "content": f"Context:\n{_context(out)}\n\nAnswer:\n{out.text}\n\n"
                                    "List the answer's factual statements and, for each, "
                                    "whether the context supports it."}],
        FAITHFULNESS_SCHEMA)
    statements = verdict.get("statements") or []
    value = sum(bool(s.get("supported")) for s in statements) / len(statements) \
        if statements else 0.0
    return _scored(value, a.threshold if a.threshold is not None else 0.5, "faithfulness")


def _rated(judge: Judge | None, prompt: str) -> tuple[float, str]:
    verdict = _need(judge)([{"role": "system", "content": "You grade answers strictly."},
                            {"role": "user", "content": prompt}], VERDICT_SCHEMA)
    score = min(5, max(1, int(verdict.get("score", 1))))
    return (score - 1) / 4, str(verdict.get("reason", ""))


def answer_relevancy(out: Output, case: Case, a: Assertion,
                     judge: Judge | None = None) -> Score:
    """How directly the answer addresses the question, rated 1-5 by the judge, as 0-1 (RAGAS
    generates questions from the answer and compares embeddings; see the README)."""
    value, why = _rated(judge, f"Question: {case.question}\nAnswer: {out.text}\n\nRate 1-5 how "
                               "directly and completely the answer addresses the question.")
    s = _scored(value, a.threshold if a.threshold is not None else 0.5, "relevancy")
    return Score(s.passed, s.score, s.reason and f"{s.reason}: {why}")


def rubric(out: Output, case: Case, a: Assertion, judge: Judge | None = None) -> Score:
    value, why = _rated(judge, f"Question: {case.question}\nAnswer: {out.text}\n\n"
                               f"Rubric: {_text(a)}\nRate 1-5 how well the answer meets it.")
    s = _scored(value, a.threshold if a.threshold is not None else 0.5, "rubric")
    return Score(s.passed, s.score, s.reason and f"{s.reason}: {why}")


CHECKS: dict[str, Callable[[Output, Case, Assertion, Judge | None], Score]] = {
    "equals": equals, "contains": contains, "icontains": icontains,
    "not_contains": not_contains, "regex": regex, "json_schema": json_schema,
    "rouge_l": rouge_l, "token_f1": token_f1, "refusal": refusal, "no_refusal": no_refusal,
    "citations": citations, "supported": supported, "cites_expected": cites_expected, "recall_at_k": recall_at_k,
    "mrr": mrr, "ndcg": ndcg, "faithfulness": faithfulness,
    "answer_relevancy": answer_relevancy, "rubric": rubric, "latency": latency,
    "max_tokens": max_tokens, "tool": tool,
}
JUDGED = {"faithfulness", "answer_relevancy", "rubric"}


NEEDS_EXPECTED = {"cites_expected", "recall_at_k", "mrr", "ndcg"}


NEEDS_REFERENCE = {"rouge_l", "token_f1"}


def applies(case: Case, a: Assertion, kind: str = "agent") -> bool:
    """Retrieval checks say nothing about a case with no expected paper or chunk, nor
    reference checks about one without a reference (a question that should be refused), nor
    tool checks about a target of ``kind`` other than an agent (plain `ask` beside it in a
    suite): they are left out of its score, not failed."""
    if a.type == "tool" and kind != "agent":
        return False
    if a.type in NEEDS_EXPECTED:
        return bool(case.papers or case.chunks)
    if a.type in NEEDS_REFERENCE:
        return bool(a.value or case.reference)
    return True


def check(out: Output, case: Case, a: Assertion, judge: Judge | None = None) -> Score:
    """Run one assertion; a target that failed fails every check, with its reason."""
    if out.error:
        return Score(False, 0.0, out.error)
    try:
        return CHECKS[a.type](out, case, a, judge)
    except (ValueError, TypeError) as e:
        return Score(False, 0.0, f"{a.type}: {e}")
