"""Plans for questions with several parts, by rules for the common forms: a comparison ("Which
study had more participants: the CiteSee study or the Paper Plain study?"), a difference ("How
many more warmup steps than attention heads does the base Transformer use?") and a two-part
question ("Which two agents make up PaSa, and which base model are they built on?"). Each part
becomes a search of its own, so the evidence for both sides is in front of the model (a 135M
model does not plan a second search by itself); a question of one part has no plan.
"""

from __future__ import annotations

import re

_COMPARISON = re.compile(r"^(?P<head>.+?)\s*[:,]\s*(?:the\s+)?(?P<a>.+?)\s+or\s+(?:the\s+)?"
                         r"(?P<b>.+?)\s*\?*$", re.IGNORECASE)
_DIFFERENCE = re.compile(r"^how many (?:more|fewer|less)\s+(?P<x>.+?)\s+than\s+(?P<y>.+?)\s+"
                         r"(?:does|do|did|is|are|was|were|has|have|had)\s+(?P<rest>.+?)\s*\?*$",
                         re.IGNORECASE)
_TWO_PARTS = re.compile(r",\s*and\s+|;\s*", re.IGNORECASE)
_ASKING = re.compile(r"\b(?:which|who|what|whose|had|has|have|more|fewer|less|larger|smaller|"
                     r"higher|lower|better|worse|most|least|does|did|do|is|was|are|were)\b",
                     re.IGNORECASE)
_NAME = re.compile(r"\b[A-Z][\w.-]*[A-Za-z0-9]\b")


def _core(text: str) -> str:
    """The question's subject matter without its asking words."""
    return " ".join(_ASKING.sub(" ", text).split())


def sub_questions(question: str) -> list[str]:
    """The searches that answer ``question`` part by part (empty for a one-part question)."""
    q = " ".join(question.split())
    m = _DIFFERENCE.match(q)
    if m:
        rest = m.group("rest")
        return [f"{m.group('x')} {rest}", f"{m.group('y')} {rest}"]
    m = _COMPARISON.match(q)
    if m and len(m.group("a").split()) <= 8 and len(m.group("b").split()) <= 8:
        core = _core(m.group("head"))
        return [f"{m.group('a')} {core}".strip(), f"{m.group('b')} {core}".strip()]
    parts = [p.strip(" ?") for p in _TWO_PARTS.split(q) if len(p.split()) >= 3]
    if len(parts) == 2:
        names = [n for n in _NAME.findall(parts[0])[1:] if n not in parts[1]]  # not its 1st word
        return [parts[0], " ".join([parts[1], *names])]
    return []
