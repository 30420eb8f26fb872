"""Every assertion kind on hand-made outputs: ones that must pass and ones that must fail."""

from __future__ import annotations

import pytest

from evals.assertions import Output, applies, check
from evals.suite import Assertion, Case

SOURCES = [{"n": 1, "chunk_id": 11, "paper": "file:/lib/mamba.md", "title": "Mamba notes",
            "text": "Mamba scales linearly in sequence length."},
           {"n": 2, "chunk_id": 12, "paper": "2106.09685", "title": "LoRA",
            "text": "LoRA freezes W."}]


def out(text: str, **kw) -> Output:
    return Output(text=text, sources=kw.pop("sources", SOURCES), **kw)


def a(kind: str, **kw) -> Assertion:
    return Assertion(type=kind, **kw)


CASE = Case(id="c", question="How does Mamba scale?", reference="Mamba scales linearly",
            papers=["mamba.md"])
REFUSE = Case(id="r", question="Capital of France?", should_refuse=True)
CITED = [{"n": 1, "paper": "file:/lib/mamba.md", "title": "Mamba notes"}]


@pytest.mark.parametrize(("output", "assertion", "case", "passes"), [
    (out("Mamba scales linearly"), a("equals"), CASE, True),
    (out("Mamba scales linearly."), a("equals", value="no"), CASE, False),
    (out("It is LINEAR"), a("icontains", value="linear"), CASE, True),
    (out("It is LINEAR"), a("contains", value="linear"), CASE, False),
    (out("quadratic"), a("not_contains", value="linear"), CASE, True),
    (out("linear [1]"), a("not_contains", value="Linear"), CASE, False),
    (out("cost O(n) [1]"), a("regex", value=r"O\(n\)\s*\[\d+\]"), CASE, True),
    (out("cost O(n^2)"), a("regex", value=r"O\(n\)"), CASE, False),
    (out('{"answer": "linear", "n": 1}'),
     a("json_schema", value={"type": "object", "required": ["answer"]}), CASE, True),
    (out('{"n": 1}'), a("json_schema", value={"type": "object", "required": ["answer"]}),
     CASE, False),
    (out("not json"), a("json_schema", value={"type": "object"}), CASE, False),
    (out("Mamba scales linearly with length"), a("rouge_l", threshold=0.6), CASE, True),
    (out("Attention is quadratic"), a("rouge_l", threshold=0.6), CASE, False),
    (out("mamba scales linearly"), a("token_f1", threshold=0.9), CASE, True),
    (out("transformers are slow"), a("token_f1", threshold=0.2), CASE, False),
    (out("NOT_IN_LIBRARY", not_in_library=True), a("refusal"), REFUSE, True),
    (out("Paris."), a("refusal"), REFUSE, False),  # answered what it should refuse
    (out("NOT_IN_LIBRARY", not_in_library=True), a("refusal"), CASE, False),  # refused wrongly
    (out("Linear.", not_in_library=False), a("no_refusal"), CASE, True),
    (out("Linear [1].", citations=CITED), a("citations"), CASE, True),
    (out("Linear."), a("citations"), CASE, False),  # cites nothing
    (out("Linear [1].", citations=CITED, dropped=[9]), a("citations"), CASE, False),
    (out("NOT_IN_LIBRARY", not_in_library=True), a("citations"), REFUSE, True),
    (out("Linear.", citations=[{**CITED[0], "origin": "litlab"}]), a("citations"), CASE, True),
    (out("Linear.", citations=[{**CITED[0], "origin": "litlab"}]),
     a("citations", value="model"), CASE, False),  # attributed by litlab, not the model's
    (out("Linear [1].", citations=[{**CITED[0], "origin": "model"}]),
     a("citations", value="model"), CASE, True),
    (out("Linear [1].", citations=CITED), a("cites_expected"), CASE, True),
    (out("Linear [2].", citations=[{"n": 2, "paper": "2106.09685", "title": "LoRA"}]),
     a("cites_expected"), CASE, False),
    (out("x"), a("recall_at_k", k=1), CASE, True),
    (out("x", sources=SOURCES[::-1]), a("recall_at_k", k=1), CASE, False),
    # a paper named by its file still matches once an arXiv stamp gave it an id
    (out("x", sources=[{**SOURCES[1], "key": "file:/papers/lora-paper.pdf"}]),
     a("recall_at_k", k=1), Case(id="f", question="q", papers=["lora-paper.pdf"]), True),
    (out("x", sources=[SOURCES[1]]), a("recall_at_k", k=1),
     Case(id="f", question="q", papers=["lora-paper.pdf"]), False),
    (out("x", sources=SOURCES[::-1]), a("mrr", threshold=0.5), CASE, True),  # rank 2: 0.5
    (out("x", sources=SOURCES[1:]), a("mrr"), CASE, False),
    (out("x", sources=SOURCES[::-1]), a("ndcg", k=2, threshold=0.9), CASE, False),
    (out("x"), a("ndcg", k=2, threshold=0.99), CASE, True),
    (out("x", latency_s=0.4), a("latency", value=0.5), CASE, True),
    (out("x", latency_s=2.0), a("latency", value=0.5), CASE, False),
    (out("x", completion_tokens=90), a("max_tokens", value=64), CASE, False),
    (out("x", tools=["search_library"]), a("tool", value="search_library"), CASE, True),
    (out("x", tools=["calculator"]), a("tool", value="search_library"), CASE, False),
    # a list: these tools in this order (others may come between)
    (out("x", tools=["search_library", "read", "search_library", "calculator"]),
     a("tool", value=["search_library", "search_library", "calculator"]), CASE, True),
    (out("x", tools=["search_library", "calculator", "search_library"]),
     a("tool", value=["search_library", "search_library", "calculator"]), CASE, False),
    (out("x", tools=["search_library"]),
     a("tool", value=["search_library", "search_library"]), CASE, False),
    (out("", error="the server at http://x/v1 does not answer"), a("icontains", value=""),
     CASE, False),  # a failed target fails every check, with its reason
])
def test_assertion(output: Output, assertion: Assertion, case: Case, passes: bool) -> None:
    score = check(output, case, assertion)
    assert score.passed is passes, score.reason
    assert 0.0 <= score.score <= 1.0
    assert passes or score.reason  # a failure says why


def test_scores_are_graded_not_only_pass_fail() -> None:
    assert check(out("x", sources=SOURCES[::-1]), CASE, a("mrr")).score == 0.5
    f1 = check(out("mamba scales fast"), CASE, a("token_f1")).score
    assert 0.3 < f1 < 0.9


def test_retrieval_checks_do_not_apply_without_expected_papers() -> None:
    assert not applies(REFUSE, a("recall_at_k")) and applies(REFUSE, a("refusal"))
    assert applies(CASE, a("mrr"))
    assert not applies(REFUSE, a("token_f1")) and applies(CASE, a("rouge_l"))


def test_judged_check_uses_the_verdict_and_needs_a_judge() -> None:
    calls = []

    def judge(messages, schema):
        calls.append(schema)
        return {"statements": [{"statement": "linear", "supported": True},
                               {"statement": "invented", "supported": False}]}

    score = check(out("Mamba is linear and was invented in 1802."), CASE,
                  a("faithfulness", threshold=0.5), judge)
    assert score.score == 0.5 and score.passed and "statements" in calls[0]["properties"]
    assert not check(out("x"), CASE, a("rubric", value="is polite")).passed  # no judge


def test_supported_is_the_share_of_claims_a_source_supports() -> None:
    sentences = [
        {"text": "LoRA freezes the pretrained weights [1].", "claim": True, "supported": True,
         "origin": "model"},
        {"text": "It was invented in 1850 by a famous painter.", "claim": True,
         "supported": False, "origin": None},
        {"text": "See [2].", "claim": False, "supported": True, "origin": "model"},
    ]
    out = Output(text="...", sentences=sentences)
    strict = check(out, Case(question="q"), Assertion(type="supported"))
    assert not strict.passed and strict.score == 0.5 and "1 of 2" in strict.reason
    assert check(out, Case(question="q"), Assertion(type="supported", threshold=0.5)).passed
    # The model's own verified markers are read from the sentences, not the shown citations.
    own = check(out, Case(question="q"), Assertion(type="citations", value="model"))
    assert own.passed
    none = Output(text="...", sentences=[{**sentences[1]}], citations=[{"n": 1}])
    assert not check(none, Case(question="q"), Assertion(type="citations", value="model")).passed


def test_tool_checks_apply_to_agent_targets_only() -> None:
    """Plain `ask` beside the agent in one suite is not failed for using no tool."""
    tool = a("tool", value="search_library")
    assert applies(CASE, tool, "agent") and not applies(CASE, tool, "ask")
    assert applies(CASE, a("regex", value="x"), "ask")
