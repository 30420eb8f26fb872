"""Preference pairs from an evaluation run's failures (DPO on what a gate got wrong).

For every case of the run's target that failed and that its sources could answer, the pair is:
the prompt the model was sent (the run's template and the passages it retrieved, numbered as
they were: the run stores them), the *chosen* reply, the sentence of those passages that best
answers the question and states the case's key fact (its ``regex`` checks), cited, and
verified by litlab's claim verification; and the *rejected* reply, what the model wrote (the
answer line litlab put before it left out, as for feedback). A case whose passages hold no
sentence with the key fact, or whose model words were not kept, is skipped and counted.

Train on failures of cases about papers the gate does not ask about: pairs made from the gate
suite's own cases and then gated on them teach the test.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from agentlab.citations import NOT_IN_LIBRARY, Source, format_sources
from agentlab.prompts import PromptError, load_template
from litcore.errors import UserError

NO_FACT = "no passage sentence states the key fact"
NOT_ANSWERABLE = "the case has no key fact (a regex check) to prefer"
NO_WORDS = "the model's words were not kept (litlab abstained or withheld them)"
NOT_VERIFIED = "the passage sentence is not verified as supporting the reply"
REFUSAL = "a case that should be refused"


def pairs(run_store: Any, run_ref: str, home: Any, embed: Any, *,
          target: str | None = None) -> tuple[list[dict[str, Any]], Counter[str]]:
    """DPO rows (prompt, chosen, rejected, meta) from the failures of ``target`` (default:
    the run's first) in run ``run_ref``, and the counts of skipped failures by reason."""
    from agentlab.answer_line import best_sentence, model_words
    from agentlab.attribution import attribute
    from evals.suite import load_suite

    info = run_store.run(run_ref)
    results = run_store.results(info.id)
    if not results:
        raise UserError(f"run {info.id} has no results", "`litlab eval list` shows runs")
    target = target or results[0].target
    mine = [r for r in results if r.target == target]
    if not mine:
        names = sorted({r.target for r in results})
        raise UserError(f"run {info.id} has no target '{target}'",
                        f"targets: {', '.join(names)}")
    try:
        cases = {str(c.id): c for c in load_suite(Path(info.suite)).all_cases()}
    except (OSError, UserError) as e:
        raise UserError(f"the suite of run {info.id} cannot be read: {e}",
                        "the run's cases need their suite file") from None
    rows: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    for r in mine:
        if r.passed:
            continue
        case = cases.get(r.case_id)
        if case is None or case.should_refuse:
            skipped[REFUSAL if case is not None else "its case left the suite"] += 1
            continue
        facts = [str(a.value) for a in case.assert_ if a.type == "regex" and a.value]
        if not facts:
            skipped[NOT_ANSWERABLE] += 1
            continue
        sources = [Source(**{k: v for k, v in s.items() if k in Source.__dataclass_fields__})
                   for s in r.output.get("sources") or []]
        def states(sentence: str, facts: list[str] = facts) -> bool:
            return all(re.search(x, sentence) for x in facts)

        found = best_sentence(case.question, sources, accept=states)
        if found is None:
            skipped[NO_FACT] += 1
            continue
        n, sentence = found
        chosen = f"{sentence.rstrip('. ')} [{n}]."
        if not all(s.supported for s in attribute(chosen, sources, embed) if s.claim):
            skipped[NOT_VERIFIED] += 1
            continue
        text = str(r.output.get("text") or "")
        rejected = model_words(text).strip()
        if not rejected or r.output.get("abstained") or r.output.get("withheld"):
            skipped[NO_WORDS] += 1
            continue
        try:
            template = load_template(r.prompt if r.prompt not in ("-", "agent") else "rag",
                                     home)
            prompt = template.render(question=case.question, sources=format_sources(sources),
                                     not_in_library=NOT_IN_LIBRARY)
        except PromptError as e:
            skipped[f"its prompt cannot be rebuilt ({e.message})"] += 1
            continue
        rows.append({"prompt": prompt,
                     "chosen": [{"role": "assistant", "content": chosen}],
                     "rejected": [{"role": "assistant", "content": rejected}],
                     "meta": {"kind": "gate-failure", "run": info.id, "case": r.case_id,
                              "target": target, "question": case.question}})
    return rows, skipped

