"""Plans for questions with several parts, by rules for the common forms, and their combination.

Three forms are split: a comparison ("Which study had more participants: the CiteSee study or
the Paper Plain study?", "Which is higher: X's F1 or Y's F1?"), a difference ("How many more
warmup steps than attention heads does the base Transformer use?", "... than a tiny summary
does a short one have?", "... than S2ORC has papers?") and a two-part question ("Which two
agents make up PaSa, and which base model are they built on?"). Each part becomes a search
of its own, so the evidence for both sides is in front of the model (a 135M model does not
plan a second search by itself); a question of one part has no plan.

Once each part has been searched, :func:`combine` answers from the parts' own passages without
a model: each part's answering sentence (the answer line's choice, :mod:`agentlab.answer_line`)
quoted with its source, and for a difference or a comparison of amounts the number beside the
part's terms in each, subtracted with the calculator or compared. The numbers are the sources'
own; when a part has no such sentence there is no combination and the model answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

_COMPARISON = re.compile(r"^(?P<head>.+?)\s*[:,]\s*(?:the\s+)?(?P<a>.+?)\s+or\s+(?:the\s+)?"
                         r"(?P<b>.+?)\s*\?*$", re.IGNORECASE)
_AUX = r"(?P<aux>does|do|did|is|are|was|were|has|have|had)"
_DIFFERENCE = re.compile(r"^how many (?:more|fewer|less)\s+(?P<x>.+?)\s+than\s+(?P<y>.+?)\s+"
                         + _AUX + r"\s+(?P<rest>.+?)\s*\?*$", re.IGNORECASE)
# "how many more papers does S2ORC contain than papers with full text?"
_DIFFERENCE_AFTER = re.compile(
    r"^how many (?:more|fewer|less)\s+(?P<x>.+?)\s+" + _AUX
    + r"\s+(?P<rest>.+?)\s+than\s+(?P<y>.+?)\s*\?*$", re.IGNORECASE)
_ASKED_AGAIN = re.compile(rf"\b{_AUX}\b", re.IGNORECASE)
_TWO_PARTS = re.compile(r",\s*and\s+|;\s*", re.IGNORECASE)
_ASKING = re.compile(r"\b(?:which|who|what|whose|had|has|have|more|fewer|less|larger|smaller|"
                     r"higher|lower|better|worse|most|least|does|did|do|is|was|are|were)\b",
                     re.IGNORECASE)
_MORE = re.compile(r"\b(?:more|larger|bigger|higher|greater|longer|most|largest|highest)\b",
                   re.IGNORECASE)
_FEWER = re.compile(r"\b(?:fewer|less|smaller|lower|shorter|least|smallest|lowest)\b",
                    re.IGNORECASE)
_SCOPE = re.compile(r",\s*(?:according to|as (?:reported|given|stated) (?:in|by))\s+"
                    r"(?P<where>[^,?]+?)\s*\?*$", re.IGNORECASE)
_GENERIC_SCOPES = frozenset({"the paper", "this paper", "the authors", "its authors"})
_SIZE = re.compile(r"\b(?:more|fewer|larger|bigger|smaller|greater)\b", re.IGNORECASE)
_NAME = re.compile(r"\b[A-Z][\w.-]*[A-Za-z0-9]\b")
# what a difference's other side is when it is a thing, not an amount: "than a tiny summary",
# "than a short one" (the same amount of another thing) ...
_THING = re.compile(r"^(?:a|an)\s|\bones?$", re.IGNORECASE)
# ... or a clause of its own: "than S2ORC has English-language papers"
_CLAUSE = re.compile(r"^(?P<subject>.+?)\s+(?:has|have|had|contains?|holds?|includes?)\s+"
                     r"(?P<what>.+)$", re.IGNORECASE)
# the verb after a question's subject ("does a long summary *have* on average")
_VERBS = frozenset({"have", "contain", "hold", "include", "use", "reach", "get", "take", "need",
                    "require", "cover", "span", "produce", "achieve", "receive", "score",
                    "process", "employ", "list", "cite", "run"})
_REFERS_BACK = re.compile(r"\b(?:it|its|they|their|them|this|these|those|the same)\b",
                          re.IGNORECASE)


@dataclass
class Plan:
    """How a question of several parts is answered: ``kind`` is comparison, difference or
    parts; ``parts`` the searches; a comparison's two ``sides`` as the question names them and
    whether the larger amount wins (``larger``; None when the question compares no amount);
    ``counted``: what each part's number counts ("warmup steps", "participants");
    ``sizes``: the amounts compared are counts or sizes ("which is larger"), not scores;
    ``searches``: each part as it is searched (with the papers the question names, so that the
    search reaches them; the part itself chooses the answering sentence)."""

    kind: str
    parts: list[str]
    sides: tuple[str, str] = ("", "")
    larger: bool | None = None
    counted: tuple[str, str] = ("", "")
    sizes: bool = False
    searches: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.searches = self.searches or list(self.parts)


def _core(text: str) -> str:
    """The question's subject matter without its asking words."""
    return " ".join(_ASKING.sub(" ", text).split())


def plan(question: str, papers: Sequence[str] = ()) -> Plan | None:
    """The plan for ``question``, or None for a question of one part. ``papers``: the short
    names of the library's papers the question names ("Multi-LexSum"): every part that names
    no paper is searched with them, so that its search reaches the paper asked about."""
    q = " ".join(question.split())
    scope = _SCOPE.search(q)  # ", according to its datasheet": where to look, not what to count
    if scope:
        where = scope.group("where")
        q = q[:scope.start()] + "?"
        if where.lower() not in _GENERIC_SCOPES:
            papers = [*papers, where]
    found = _split(q, papers)
    return _scoped(found, papers) if found else None


def _split(q: str, papers: Sequence[str]) -> Plan | None:
    """The parts of question ``q`` by the forms above, before they are scoped."""
    m = _DIFFERENCE.match(q)
    if m is None or _ASKED_AGAIN.search(m.group("x")):  # "more tokens does X hold than ..."
        m = _DIFFERENCE_AFTER.match(q)
    if m:
        return _difference(m.group("x"), m.group("y"), m.group("aux"), m.group("rest"))
    m = _COMPARISON.match(q)
    if m and len(m.group("a").split()) <= 8 and len(m.group("b").split()) <= 8:
        head = m.group("head")
        core = _core(head)
        larger = True if _MORE.search(head) else False if _FEWER.search(head) else None
        a, b = m.group("a").strip(), m.group("b").strip()
        if larger is not None and not core:
            # "Which is higher: PRIMERA's ROUGE-1 ... or the S2ORC-SciBERT F1 ...?": each side
            # names its own amount
            return Plan("comparison", [a, b], (a, b), larger, sizes=bool(_SIZE.search(head)))
        if larger is None:
            return Plan("comparison", [f"{a} {core}".strip(), f"{b} {core}".strip()], (a, b))
        counted = core.split()[-1]  # "study participants": participants
        return Plan("comparison", [f"How many {counted} in {a}?", f"How many {counted} in {b}?"],
                    (a, b), larger, (counted, counted))
    parts = [p.strip(" ?") for p in _TWO_PARTS.split(q) if len(p.split()) >= 3]
    if len(parts) == 2:
        second = parts[1]
        if _REFERS_BACK.search(second) or not _NAME.findall(second):
            # "which GROBID version does *it* use": the names the first part asks about
            # (not its first word; a paper's name is searched with every part, below)
            known = {p.lower() for p in papers}
            names = [n for n in _NAME.findall(parts[0])[1:] if n not in second
                     and n.lower() not in known]
            second = " ".join([second, *names])
        return Plan("parts", [parts[0], second])
    return None


def _difference(x: str, y: str, aux: str, rest: str) -> Plan:
    """A difference's parts, each asked as the amount it is ("How many warmup steps does the
    base Transformer use?"), searched and read as a question for a number. The other side is
    another amount ("than attention heads"), the same amount of another thing ("than a tiny
    summary": how many words a tiny summary has), or a clause ("than S2ORC has papers")."""
    first = f"How many {x} {aux} {rest}?"
    clause = _CLAUSE.match(y)
    thing = bool(_THING.search(y)) or _the_thing(y, x)
    if clause and not thing:
        what = clause.group("what")
        return Plan("difference", [first, f"How many {what} {aux} {clause.group('subject')} "
                                          "have?"], counted=(x, what))
    words = rest.split()
    verb = next((i for i, w in enumerate(words) if i and w.lower() in _VERBS), 0)
    if thing and verb:
        subject, tail = words[:verb], " ".join(words[verb:])
        other = re.sub(r"\bone(s?)$", lambda m: subject[-1] + m.group(1), y)
        # "a long Multi-LexSum summary" / "a short one": the name qualifies both sides
        names = [] if _NAME.findall(other) else _NAME.findall(" ".join(subject))
        return Plan("difference", [first, " ".join([f"How many {x} {aux} {other} {tail}?",
                                                     *names])], counted=(x, x))
    y = re.sub(r"^the\s+", "", y, flags=re.IGNORECASE)
    return Plan("difference", [first, f"How many {y} {aux} {rest}?"], counted=(x, y))


def _the_thing(y: str, x: str) -> bool:
    """Whether "than the ..." names a thing ("than the CiteSee study", "than the base
    Transformer"), not an amount ("than the papers with full text", "the warmup steps"): one
    thing, and none of what is counted."""
    words = y.split()
    return len(words) > 1 and words[0].lower() == "the" and not words[-1].endswith("s") \
        and not {w.lower() for w in words} & {w.lower() for w in x.split()}


def _scoped(p: Plan, papers: Sequence[str]) -> Plan:
    """``p`` searching each part that names none of the papers the question names with them
    (a comparison of two papers' amounts keeps each side's own), and with where the question
    says to look ("according to its datasheet")."""
    p.searches = [part if any(n.lower() in part.lower() for n in papers) else
                  " ".join([part, *papers]) for part in p.parts]
    return p


def sub_questions(question: str) -> list[str]:
    """The searches that answer ``question`` part by part (empty for a one-part question)."""
    p = plan(question)
    return p.parts if p else []


@dataclass
class Combined:
    """A plan's answer from its parts' passages: the text (quotes cited as [n]) and, for a
    difference, the calculator's expression."""

    text: str
    expression: str | None = None


def combine(p: Plan, found: Sequence[Sequence[Any]], idf: Any = None,
            calculate: Callable[[str], str] | None = None) -> Combined | None:
    """Answer plan ``p`` from ``found`` (each part's passages, as numbered sources), or None
    when a part has no answering sentence (or, for amounts, no number beside its terms).
    ``calculate`` evaluates the difference (the agent's traced calculator tool)."""
    from agentlab.answer_line import answering_number, best_sentence, line

    quotes: list[tuple[int, str]] = []
    numbers = []
    amounts = p.kind == "difference" or p.larger is not None
    for part, counted, sources in zip(p.parts, p.counted, found, strict=True):
        best = best_sentence(part, list(sources), idf,
                             _has_number(part, counted, idf, p.sizes) if amounts else None)
        if best is None:
            return None
        quotes.append(best)
        numbers.append(answering_number(part, best[1], idf, counted, p.sizes))
    if quotes[0] == quotes[1] and (not amounts or numbers[0] == numbers[1]):
        return None  # one sentence (and number) for both parts does not tell them apart
    cited = "".join(line(n, s) for n, s in dict.fromkeys(quotes)).strip()  # one a paragraph
    if not amounts:
        return Combined(cited)
    a, b = numbers
    if p.kind == "difference":
        expression = f"{a.value:g} - {b.value:g}"
        result = calculate(expression) if calculate else repr(a.value - b.value)
        return Combined(f"{_number(result)} ({a.text} − {b.text}).\n\n{cited}", expression)
    if a.value == b.value:
        return Combined(f"Neither: both have {a.text}.\n\n{cited}")
    first = (a.value > b.value) == p.larger
    winner, won, lost = (p.sides[0], a, b) if first else (p.sides[1], b, a)
    return Combined(f"{winner[:1].upper()}{winner[1:]}: {won.text} against {lost.text}.\n\n"
                    f"{cited}")


def part_lines(p: Plan, sources: Sequence[Any], idf: Any = None) -> list[tuple[int, str]]:
    """The answer lines of a plan that could not be combined: each part's best sentence among
    ``sources`` (for an amount, one with a number beside what it counts when there is one), so
    that an answer leads with the evidence of every part it found."""
    from agentlab.answer_line import best_sentence

    amounts = p.kind == "difference" or p.larger is not None
    out: list[tuple[int, str]] = []
    for part, counted in zip(p.parts, p.counted, strict=True):
        best = (best_sentence(part, sources, idf, _has_number(part, counted, idf, p.sizes))
                if amounts else None) or best_sentence(part, sources, idf)
        if best is not None and best not in out:
            out.append(best)
    return out


def _has_number(part: str, counted: str, idf: Any,
                sizes: bool = False) -> Callable[[str], bool]:
    """Whether a sentence holds a number that counts what ``part`` asks about."""
    from agentlab.answer_line import answering_number

    return lambda sentence: answering_number(part, sentence, idf, counted, sizes) is not None


def _number(text: str) -> str:
    """The calculator's result as a person writes it ("3992", not "3992.0")."""
    try:
        value = float(text)
    except ValueError:
        return text
    if value.is_integer() or abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"
