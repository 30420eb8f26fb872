"""Questions the way people ask them, written from one sentence of a paper without a model.

The data builder's first questions asked "What does the library say about X, Y and Z?" about a
sentence's rarest terms; an adapter trained on them learnt to quote, not to answer (issue 25).
People ask for a fact: "How many papers does S2ORC contain?", "Which tool detects the
language?", "What is the Jaccard index between the two vocabularies?". :func:`ask_about`
finds a sentence's *key fact* (a number bound to what it counts, or a name in the object or
subject place) and turns the sentence round it into such a question:

- the object asked for, with *do*-support when the verb allows it ("We use GROBID to parse
  PDFs" -> "What do the authors use to parse PDFs?"), else an echo question ("The model is
  trained on how many GPUs?");
- the subject asked for ("GROBID parses the PDFs" -> "What parses the PDFs?");
- a value named before it ("The Jaccard index is 0.536" -> "What is the Jaccard index?").

The answer is the clause that states the key fact, so an example *leads with* it. Every
example is still checked by claim verification before it is kept (finetune.grounded).
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass

from agentlab.verify import read
from litcore.text import STOP_WORDS

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-+/%]*[A-Za-z0-9%]|[A-Za-z0-9%]|[,;:()]")
# where a clause ends (a question stops there)
_BREAKS = frozenset([",", ";", ":", "(", ")", "which", "while", "whereas", "although", "but",
                     "because", "since", "respectively"])
# words that end what a number counts ("8 heads per layer", "1.5M of them")
_UNIT_STOP = frozenset(["and", "or", "of", "in", "on", "with", "from", "to", "for", "that",
                        "which", "per", "by", "at", "as", "than", "each", "are", "is", "were",
                        "was", "we", "this", "these", "respectively"])
# a value named before it: "a Jaccard index of 0.536", "F1 is 90.4"
_NAMING = frozenset(["is", "was", "are", "were", "of", "="])
_AUX = {"is": "is", "are": "are", "was": "was", "were": "were", "has": "does", "have": "do",
        "had": "did", "can": "can", "could": "could", "will": "will", "would": "would"}
_GENERIC_HEADS = frozenset(["model", "models", "tool", "tools", "dataset", "datasets", "corpus",
                            "method", "methods", "system", "library", "parser", "framework",
                            "benchmark", "algorithm", "metric", "version", "format", "language",
                            "architecture", "encoder", "decoder", "service", "platform",
                            "toolkit", "package", "optimizer", "loss", "task", "tasks"])
_PRONOUNS = {"we": "the authors", "our": "their", "us": "the authors", "i": "the author"}
_NOT_BEFORE_VERB = frozenset(["the", "a", "an", "all", "some", "each", "every", "of", "in", "on",
                              "for", "with", "to", "these", "this", "those", "many", "most",
                              "several", "its", "their", "our", "two", "three", "both"])
# a sentence opened by these starts with a clause that is not its main one
_SUBORDINATE = frozenset(["given", "as", "if", "when", "while", "although", "because", "since",
                          "owing", "though", "unless", "whereas", "once", "after", "before",
                          "to", "for", "in", "on", "with", "by", "from", "at", "however",
                          "thus", "therefore", "moreover", "furthermore", "finally", "then"])
# names too common in papers to be what a question is about
GENERIC_KEYS = frozenset(["pdf", "pdfs", "table", "figure", "section", "api", "id", "nlp", "ai",
                          "ml", "json", "html", "xml", "url", "gpu", "gpus", "cpu", "appendix",
                          "english", "python", "github"])
_KEY = re.compile(r"^(?:\d[\d.,]*(?:[kmbt%x])?|[a-z]+)$", re.I)  # "1.5M", "70%", "three"
_YEAR = re.compile(r"^(1[89]|20)\d\d$")
_VOWELS = set("aeiou")


@dataclass(frozen=True)
class Asked:
    """A question about a sentence, the key fact a right answer states, and the clause that
    states it (the answer to train on)."""

    question: str
    key: str
    answer: str


def _lemma(verb: str) -> tuple[str, str] | None:
    """(auxiliary, base form) for a finite verb: "contains" -> ("does", "contain"), "used" ->
    ("did", "use"); None when ``verb`` does not look like one."""
    v = verb.lower()
    if not v.isalpha() or len(v) < 3 or v in STOP_WORDS and v not in ("has", "have", "had"):
        return None
    if v in ("has", "have", "had"):
        return _AUX[v], "have"
    if v.endswith("ed") and len(v) > 4:
        root = v[:-2]
        if len(root) > 2 and root[-1] == root[-2] and root[-1] not in "ls":  # "planned"
            return "did", root[:-1]
        cvc = root[-1] not in _VOWELS | {"w", "x", "y"} and root[-2] in _VOWELS \
            and root[-3] not in _VOWELS
        if (cvc and not root.endswith(("er", "en", "on", "it", "el", "ain"))) \
                or root.endswith(("rs", "ns", "lv", "rv", "dg", "uc", "ur", "iz", "ys")):
            return "did", root + "e"  # "used", "produced", "parsed", "solved"
        return "did", root
    if v.endswith("ies") and len(v) > 4:
        return "does", v[:-3] + "y"
    if v.endswith(("ches", "shes", "sses", "xes", "zes")):
        return "does", v[:-2]
    if v.endswith("s") and not v.endswith(("ss", "us", "is")) and len(v) > 3:
        return "does", v[:-1]
    return None


def _clause(tokens: list[str], i: int) -> tuple[int, int]:
    """The span of the clause around token ``i`` (between clause breaks)."""
    start = i
    while start > 0 and tokens[start - 1].lower() not in _BREAKS:
        start -= 1
    end = i
    while end + 1 < len(tokens) and tokens[end + 1].lower() not in _BREAKS:
        end += 1
    return start, end + 1


def _words(tokens: list[str]) -> str:
    text = " ".join(_PRONOUNS.get(t.lower(), t) if t.lower() in _PRONOUNS else t
                    for t in tokens)
    return re.sub(r"\s+([,;:)])", r"\1", text).replace("( ", "(").strip()


def _subject(tokens: list[str]) -> str:
    s = _words(tokens)
    return s[:1].lower() + s[1:] if tokens and tokens[0].lower() in ("the", "a", "an", "this",
                                                                       "these", "each") else s


def _question(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip(" ,;:")
    return text[:1].upper() + text[1:] + "?"


def _subject_verb(before: list[str]) -> tuple[str, str, str, list[str]] | None:
    """(subject, auxiliary, verb's base form, words between verb and the key) when ``before``
    reads "SUBJECT VERB [a few function words]": the subject "we", a name, or a short noun
    phrase opened by a determiner; None otherwise (then the question is an echo)."""
    first = before[0].lower()
    if first in ("we", "i"):
        cut = 1
    elif first in ("the", "this", "these", "our", "each", "a", "an", "its", "their"):
        cut = next((k for k in range(2, min(len(before), 6)) if _lemma(before[k]) is not None
                    or before[k].lower() in _AUX), 0)
    elif before[0][:1].isupper() and before[0].lower() not in STOP_WORDS:
        cut = 1
    else:
        return None
    if not cut or cut >= len(before):
        return None
    verb, tail = before[cut], before[cut + 1:]
    if len(tail) > 2 or any(t.lower() not in STOP_WORDS for t in tail):
        return None
    subject = _subject(before[:cut])
    if first in ("we", "i"):  # "we use" -> "do the authors use"
        if not verb.isalpha() or verb.lower() in STOP_WORDS and verb.lower() not in _AUX:
            return None
        lemma = _lemma(verb) if verb.lower().endswith("ed") else ("do", verb.lower())
    else:
        lemma = _lemma(verb)
    if verb.lower() in ("is", "are", "was", "were"):
        return subject, verb.lower(), "", tail
    if lemma is None:
        return None
    return subject, lemma[0], lemma[1], tail


def _ask(tokens: list[str], start: int, end: int, at: int, width: int, wh: str) -> str | None:
    """The clause tokens[start:end] asked about the phrase tokens[at:at + width] (``wh``:
    "how many papers", "what", "which tool")."""
    before, after = tokens[start:at], tokens[at + width:end][:10]  # a question stays short
    if before and before[-1].lower() in ("the", "a", "an"):
        before = before[:-1]  # "use the DeBERTa model" -> "which model ... use"
    if wh == "what" and after and after[0].isalpha() and after[0].islower() \
            and after[0] not in STOP_WORDS:
        wh = "which"  # "from the Semantic Scholar literature corpus" -> "from which literature corpus"
    while after and after[-1].lower() in STOP_WORDS:  # "... categories for" -> "... categories"
        after = after[:-1]
    if not before:  # the subject is asked for: "GROBID parses PDFs" -> "What parses PDFs?"
        if len(after) < 3 or _lemma(after[0]) is None and after[0].lower() not in _AUX:
            return None
        return _question(f"{wh} {_words(after)}")
    found = _subject_verb(before)
    if found is not None:  # the object: "S V [P] KEY rest" -> "WH AUX S V [P] rest?"
        subject, aux, base, tail = found
        if after and after[0].endswith("ing"):  # "... papers spanning many fields": enough
            after = []
        if not base:  # "The vocabulary is 31k words" -> "How many words is the vocabulary?"
            return _question(f"{wh} {aux} {subject} {_words(tail)} {_words(after)}")
        return _question(f"{wh} {aux} {subject} {base} {_words(tail)} {_words(after)}")
    if len(before) < 3 or len(before) > 12:  # an echo: "The model is trained on how many GPUs?"
        return None
    return _question(f"{_words(before)} {wh} {_words(after)}")


def _answer(tokens: list[str], start: int, end: int) -> str:
    text = re.sub(r"\s+([,;:)])", r"\1", " ".join(tokens[start:end])).replace("( ", "(")
    text = text.rstrip(".")
    return text[:1].upper() + text[1:] + "."


def _number_question(tokens: list[str], reading_numbers: list[tuple[str, int]]
                     ) -> Asked | None:
    for text, i in reading_numbers:
        width = len(text.split())
        unit: list[str] = []
        for t in tokens[i + width:i + width + 4]:
            if t.lower() in _UNIT_STOP or not re.match(r"^[A-Za-z][A-Za-z\-]*$", t) \
                    or t.endswith(("ing", "ed", "ly")) and "-" not in t:  # "papers spanning"
                break
            unit.append(t)
        start, end = _clause(tokens, i)
        if start > 0 or (i and tokens[i - 1].lower() in ("the", "these", "those")):
            continue  # a clause without its subject, or "the two sets": nothing to ask
        if unit and not (len(unit) == 1 and unit[0].lower() in ("times", "x")):
            wh = f"how many {_words(unit)}"
            q = _ask(tokens, start, end, i, width + len(unit), wh)
            if q and len(q.split()) >= 5:
                return Asked(q, text, _answer(tokens, start, end))
        if i > start and tokens[i - 1].lower() in _NAMING and i - 1 > start:
            # "the Jaccard index ... is 0.536": what is it?
            thing = tokens[start:i - 1]
            if 1 <= len(thing) <= 10 and tokens[i - 1].lower() != "of":
                q = _question(f"what {tokens[i - 1].lower()} {_subject(thing)}")
                return Asked(q, text, _answer(tokens, start, end))
    return None


def _name_question(tokens: list[str], names: list[tuple[str, int]],
                   known: Container[str]) -> Asked | None:
    at = {i for _, i in names}
    for name, i in names:
        if i - 1 in at or name.lower() in known:  # inside a run; a name every question says
            continue
        if tokens[i + 1:i + 3] == ["et", "al"] or tokens[i + 1:i + 2] == ["et"]:
            continue  # a cited author, not a fact of the paper
        width = 1
        while i + width in at:  # "Civil Rights Litigation Clearinghouse" whole
            width += 1
        key = " ".join(tokens[i:i + width])
        nxt = tokens[i + width].lower() if i + width < len(tokens) else ""
        head = nxt if nxt in _GENERIC_HEADS else ""
        start, end = _clause(tokens, i)
        if start > 0:
            continue
        q = _ask(tokens, start, end, i, width + bool(head), f"which {head}" if head else "what")
        if q and key.lower() not in q.lower() and len(q.split()) >= 5:
            return Asked(q, key, _answer(tokens, start, end))
    return None


def ask_about(sentence: str, known: Container[str] = frozenset()) -> Asked | None:
    """A question a person would ask that ``sentence`` answers, with its key fact; None when
    the sentence has no fact to ask for. ``known``: names every question would say anyway
    (the paper's own name, lower case): never the key."""
    tokens = _WORD.findall(sentence)
    if not 6 <= len(tokens) <= 60 or tokens[0].lower() in _SUBORDINATE:
        return None
    reading = read(" ".join(tokens))
    # positions in the verification reading follow the same tokens, punctuation aside; where
    # they do not (a citation it dropped), the sentence is not asked about
    plain = [k for k, t in enumerate(tokens) if t not in ",;:()"]
    if len(plain) != len(reading.raw) \
            or any(tokens[k] != r for k, r in zip(plain, reading.raw, strict=True)):
        return None
    numbers = [(n.text, plain[n.pos]) for n in reading.numbers
               if _KEY.match(n.text) and not _YEAR.match(n.text)
               and n.text.lower() not in ("1", "one")]
    names = [(reading.raw[p], plain[p]) for _, p in sorted(reading.names.items(),
                                                           key=lambda kv: kv[1])
             if p > 0 and not reading.raw[p][:1].isdigit()]
    return _number_question(tokens, numbers) or _name_question(tokens, names, known)
