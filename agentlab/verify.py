"""Claim verification: does a passage say what a claim asserts?

A claim is read for what it asserts, not for how close it sounds:

- **numbers**, each bound to what it counts (the claim's words next to it). The passage must
  give the same value next to the same words; spelled-out numbers, scale words and suffixes
  ("81.1M", "forty", "3 million", "70%"), decimals, thousands marks and approximations are
  read as values. Section, figure, table and equation numbers, reference markers, page numbers,
  citation years and arXiv ids are no evidence and are never read as values. A passage that
  gives *another* value next to the same words contradicts the claim.
- **names and terms** (systems, datasets, models, tools: "GROBID", "Qwen2.5-7B", "CiteSee"):
  each must be in the passage (or its paper's title). A passage that says everything else but
  names others in their place contradicts it.
- **the other content words**: what is missing, weighted by how rare the word is in the
  library, must be little (a colour, a level, a method swapped for another is missing).
- **polarity**: a word the claim asserts that the passage negates ("no recurrence",
  "without labels") does not support it, nor the reverse.

The passage is read sentence by sentence and in windows of two adjacent sentences; the best
window is the evidence, quoted as it stands in the source.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from litcore.text import FILLER_WORDS, GENERIC_WORDS, STOP_WORDS, stem

SUPPORTED, CONTRADICTED, NOT_FOUND = "supported", "contradicted", "not_found"


class Vocabulary:
    """What the library knows of a word (as written): how rare it is among the chunks (BM25's
    IDF), and whether any chunk holds it at all. Each word is asked once."""

    def __init__(self, idf: Callable[[str], float], holds: Callable[[str], bool]) -> None:
        self._idf, self._holds = idf, holds
        self._rarity: dict[str, float] = {}
        self._held: dict[str, bool] = {}

    @classmethod
    def of(cls, library: Any) -> Vocabulary | None:
        """The vocabulary of a :class:`~retrievers.library.Library` (None for no library)."""
        return None if library is None else cls(library.idf, library.holds)

    def idf(self, word: str) -> float:
        if word not in self._rarity:
            self._rarity[word] = self._idf(word)
        return self._rarity[word]

    def holds(self, word: str) -> bool:
        if word not in self._held:
            self._held[word] = self._holds(word)
        return self._held[word]

# -- reading a text ---------------------------------------------------------------------------
_UNITS = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12, "thousand": 1e3, "million": 1e6,
          "billion": 1e9, "trillion": 1e12}
_WORDS: dict[str, float] = {w: float(i) for i, w in enumerate(
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"])}
_WORDS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
               "eighty": 80, "ninety": 90, "hundred": 100, "dozen": 12, "single": 1,
               "once": 1, "twice": 2, "thrice": 3, "double": 2, "triple": 3, "half": 0.5})
_NOT_VALUES = {"single", "once", "double", "half", "one"}  # mostly not a count: "one of", ...
_LABELS = {"section", "sec", "sections", "figure", "fig", "figures", "table", "tab", "tables",
           "equation", "eq", "eqn", "eqs", "appendix", "page", "p", "pp", "pages", "algorithm",
           "line", "lines", "chapter", "theorem", "lemma", "definition", "example", "step",
           "footnote", "ref", "version", "v", "arxiv", "§", "#"}
_APPROX = {"about", "approximately", "around", "roughly", "nearly", "almost", "over", "under",
           "more", "less", "fewer", "than", "up", "least", "most", "some", "circa", "~"}
_NEGATORS = {"not", "no", "never", "without", "none", "neither", "nor", "cannot", "lack",
             "lacks", "lacking", "dispensing", "dispense", "instead", "rather", "unlike",
             "fail", "fails", "absent", "free", "eschew", "eschews", "n't"}
# Words a claim is not about: function words, fillers, the words every paper uses, negators
# (polarity is checked on its own)
_NOT_CONTENT = STOP_WORDS | FILLER_WORDS | GENERIC_WORDS | _NEGATORS
# Verbs that relate a claim's terms rather than assert them ("S2ORC contains 81.1M papers",
# "consists of", "is a collection of"): a paraphrase swaps them freely, so a missing one
# weighs a quarter of its rarity.
_RELATIONS = {stem(w) for w in ["contain", "consist", "include", "comprise", "have", "has", "use", "uses", "used", "using", "employ", "utilize", "leverage", "rely", "relies", "base", "based", "provide", "offer", "introduce", "present", "propose", "describe", "report", "reach", "achieve", "obtain", "attain", "yield", "get", "give", "make", "take", "build", "built", "construct", "create", "produce", "perform", "apply", "adopt", "require", "need", "allow", "enable", "help", "call", "name", "term", "find", "found", "show", "demonstrate", "state", "note", "consider", "cover", "span", "collect", "gather", "run", "train", "trained", "say", "says", "said", "argue", "suggest", "observe", "mention", "explain", "write", "wrote", "gave", "given", "made", "took", "taken", "got", "held", "showed", "shown", "led"]}
# Verbs that attribute what follows to its authors ("The authors warn that X", "Smith et al.
# show that X"): the claim is X, and the frame before "that" is not what the source must say
# (its names aside).
_REPORTING = {stem(w) for w in ["warn", "note", "argue", "state", "report", "show", "find", "found", "say", "said", "claim", "suggest", "explain", "mention", "observe", "caution", "stress", "emphasize", "emphasise", "conclude", "hypothesize", "believe", "acknowledge", "remark", "recommend", "write", "wrote", "point", "demonstrate", "confirm", "assert", "admit", "highlight", "indicate"]}
_NAMING = {"of", "is", "was", "were", "are", "be", "been", "="}  # "a rating of 0.43"
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9.,\-+/]*[A-Za-z0-9%]|[A-Za-z0-9%~§#]|n't")
_NUMBER = re.compile(r"(?i)^(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?:e([-+]?\d+))?(k|m|b|t|x|%)?$")
_COMPOUND = re.compile(r"^(\d+(?:\.\d+)?|[a-z]+)-([a-z]{3,})$")
_SENTENCE_GAP = re.compile(r"[.!?:\n]")
_RANGE = re.compile(r"^(\d[\d.,]*)[-/\u2013](\d[\d.,]*)$")  # "10-20", "3/4"
_MARKERS = re.compile(r"\[\s*\d+(?:\s*[,;\u2013-]\s*\d+)*\s*\]")
_CITATION = re.compile(r"\((?:[^()]*?\bet al\.?|[A-Z][A-Za-z\-]+(?: (?:and|&) [A-Z][A-Za-z\-]+)?)"
                       r",? \d{4}[a-z]?(?:[;,] [^()]*?)?\)|\bet al\.?,? \(?\d{4}[a-z]?\)?")
# a year in parentheses after a name: "Kingma and Ba (2014)", "Saier and Farber (2019)"
_NAME_YEAR = re.compile(r"(?<=[A-Za-z\u00a8]) \((?:1[89]|20)\d{2}[a-z]?\)")
# a footnote's mark after a sentence's full stop, before the next sentence or the end
_NOTE_AFTER_STOP = re.compile(r"(?<=[a-z]{2})\.\d{1,2}(?=\s+[A-Z]|\s*$)")
_ARROW = re.compile(r"\s*(?:\u2192|->|\u27f6)\s*")
_RATE = re.compile(r"(?<=\d)/(?=[A-Za-z])")
_ARXIV = re.compile(r"(?i)arxiv:\s*\S+|\b\d{4}\.\d{4,5}(?:v\d+)?\b")
_HEADING = re.compile(r"(?m)^\s*\d+(?:\.\d+)*\.?\s+(?=[A-Z])")


@dataclass
class Number:
    value: float
    text: str  # as written ("81.1M", "forty", "70%")
    pos: int
    percent: bool = False


@dataclass
class Reading:
    """What a text asserts: its tokens, numbers, names and content words, with positions."""

    text: str
    tokens: list[str]  # lower case, in order
    raw: list[str] = field(default_factory=list)  # as written
    numbers: list[Number] = field(default_factory=list)
    names: dict[str, int] = field(default_factory=dict)  # lower-case name -> first position
    words: dict[str, list[int]] = field(default_factory=dict)  # content-word stem -> positions
    negations: list[int] = field(default_factory=list)
    approximate: set[int] = field(default_factory=set)  # positions of approximated numbers
    # a token inside parentheses -> the token before the opening one ("documents (on
    # average, eight)": eight -> documents)
    bracketed: dict[int, int] = field(default_factory=dict)

    def stems_near(self, pos: int, span: int) -> set[str]:
        """The content words and names within ``span`` tokens of ``pos``."""
        near = {w for w, at in self.words.items() if any(abs(p - pos) <= span for p in at)}
        return near | {n for n, at in self.names.items() if abs(at - pos) <= span}

    def unit(self, number: Number) -> set[str]:
        """What a number counts: the words and names in the three tokens after it, the
        generic ones too ("81.1M academic papers" -> academic, paper; "8 heads" -> head)."""
        out = set()
        compound = _COMPOUND.match(number.text.lower())
        if compound:  # "a 4-point scale" and "the 4-point rating": points both
            out.add(stem(compound.group(2)))
        before = number.pos - 1
        if before >= 1 and self.tokens[before] in _NAMING:
            # "a user rating of 0.43", "F1 is 90.4": what it counts comes before
            for p in range(max(0, before - 4), before):
                word = self.tokens[p].replace("-", "")
                if word.isalpha() and len(word) > 2 and word not in STOP_WORDS | FILLER_WORDS:
                    out.add(stem(word))
        head = self.bracketed.get(number.pos)
        if head is not None and number.pos + 1 not in self.bracketed:
            # the number ends its parentheses: it counts what they follow
            word = self.tokens[head].replace("-", "")
            if word.isalpha() and len(word) > 2 and word not in STOP_WORDS | FILLER_WORDS:
                out.add(stem(word))
        for p in range(number.pos + 1, min(number.pos + 4, len(self.tokens))):
            word = self.tokens[p].replace("-", "")
            if word in self.names or self.tokens[p] in self.names:
                out.add(self.tokens[p])
            elif word.isalpha() and len(word) > 2 and word not in STOP_WORDS | FILLER_WORDS \
                    and stem(word) not in _RELATIONS:
                out.add(stem(word))
        return out


_CONTRACTED = re.compile(r"(?i)\b(\w+)n[\u2019']t\b")
_CONTRACTIONS = {"can't": "can not", "won't": "will not", "can\u2019t": "can not",
                 "won\u2019t": "will not"}


def _clean(text: str, arrows: bool = True) -> str:
    """The text without what is no evidence: reference markers, citations, arXiv ids,
    heading numbers at the start of a line. Letters lose their accents ("Färber", and a PDF's
    "Farber ¨" alike), ligatures are undone, and "n't" is "not" ("haven't found")."""
    text = "".join(c for c in unicodedata.normalize("NFKD", text)
                   if not unicodedata.combining(c) and c != "\u00a8")
    text = _CONTRACTED.sub(lambda m: _CONTRACTIONS.get(m.group(0).lower(), m.group(1) + " not"),
                           text)
    text = _MARKERS.sub(" ", text)
    text = _NOTE_AFTER_STOP.sub(".", text)  # "on a 4-point scale.5 System design"
    text = _RATE.sub(" per ", text)  # "$15/hour": 15 per hour
    if arrows:
        text = _ARROW.sub(" to ", text)  # "D → L": D to L
    text = _CITATION.sub(" ", text)
    text = _NAME_YEAR.sub(" ", text)
    text = _ARXIV.sub(" ", text)
    return _HEADING.sub("", text)


def _value(token: str) -> tuple[float, bool] | None:
    m = _NUMBER.match(token)
    if not m:
        return None
    value = float(m.group(1).replace(",", "") + (m.group(2) or ""))
    if m.group(3):
        value *= 10 ** int(m.group(3))
    suffix = (m.group(4) or "").lower()
    if suffix in _UNITS:
        value *= _UNITS[suffix]
    return value, suffix == "%"


def _is_name(raw: str, first: bool) -> bool:
    """A name or term written as one: inner capitals or digits with letters ("GROBID",
    "CiteSee", "Qwen2.5-7B", "S2ORC"), or a capitalised word inside a sentence."""
    letters = re.sub(r"[^A-Za-z]", "", raw)
    if not letters:
        return False
    if any(c.isdigit() for c in raw) and len(letters) >= 1 and not _NUMBER.match(raw):
        return True
    if sum(c.isupper() for c in raw[1:]) >= 1 and len(letters) >= 2:
        return True
    return raw[0].isupper() and not first and raw.lower() not in STOP_WORDS | FILLER_WORDS \
        and raw.lower() not in _LABELS


def read(text: str) -> Reading:
    """Read ``text`` for verification (see the module's docstring)."""
    clean = _clean(text)
    found = list(_TOKEN.finditer(clean))
    raw = [m.group(0) for m in found]
    # a token starts a sentence at the text's start, or after a sentence's end or a new line
    # in the gap before it
    starts = {i for i, m in enumerate(found)
              if i == 0 or _SENTENCE_GAP.search(clean[found[i - 1].end():m.start()])}
    r = Reading(text, [t.lower() for t in raw], raw)
    heads: list[int] = []  # for each open parenthesis, the token before it
    for k, m in enumerate(found):
        for ch in clean[found[k - 1].end() if k else 0:m.start()]:
            if ch == "(":
                heads.append(k - 1)
            elif ch == ")" and heads:
                heads.pop()
        if heads and heads[-1] >= 0:
            r.bracketed[k] = heads[-1]
    i = 0
    while i < len(raw):
        tok, low = raw[i], raw[i].lower()
        prev = r.tokens[i - 1] if i else ""
        compound = _COMPOUND.match(low)
        if compound and prev not in _LABELS:  # "15-year", "fifteen-year", "12-layer": a count
            head = compound.group(1)
            got = _value(head) or ((_WORDS[head], False) if head in _WORDS else None)
            if got is not None:
                r.numbers.append(Number(got[0], tok, i, got[1]))
                r.words.setdefault(stem(compound.group(2)), []).append(i)
                i += 1
                continue
        span = _RANGE.match(tok)
        if span and prev not in _LABELS:
            for part in span.groups():
                got = _value(part)
                if got is not None:
                    r.numbers.append(Number(got[0], tok, i, got[1]))
            i += 1
            continue
        value = _value(tok)
        spelled = _spelled(r.tokens, i)
        if value is not None or spelled is not None:
            v, percent, used = (value[0], value[1], 1) if value is not None else spelled  # type: ignore[misc]
            nxt = r.tokens[i + used] if i + used < len(r.tokens) else ""
            if nxt in _UNITS and nxt not in ("k", "m", "b", "t"):
                v, used = v * _UNITS[nxt], used + 1
            elif nxt in ("percent", "%"):
                percent, used = True, used + 1
            if prev not in _LABELS and not (value is None and low in _NOT_VALUES and used == 1):
                r.numbers.append(Number(v, " ".join(raw[i:i + used]), i, percent))
                if prev in _APPROX or (i > 1 and r.tokens[i - 2] in _APPROX):
                    r.approximate.add(i)
            i += used
            continue
        if low in _NEGATORS:
            r.negations.append(i)
        author = r.tokens[i + 1:i + 3] == ["et", "al"] if i + 2 < len(raw) else False
        if author or _is_name(tok, i in starts):
            r.names.setdefault(low.rstrip(".-"), i)
        else:
            parts = [p for p in low.split("-") if p]
            word = "".join(parts)  # "fine-tuned" and "finetuned" alike
            if word.isalpha() and len(word) > 2 and not all(p in _NOT_CONTENT for p in parts):
                r.words.setdefault(stem(word), []).append(i)
        i += 1
    return r


def _spelled(tokens: list[str], i: int) -> tuple[float, bool, int] | None:
    """A number written in words at ``tokens[i]``: "forty", "twenty-five", "two hundred"."""
    parts = tokens[i].split("-")
    if not all(p in _WORDS for p in parts):
        return None
    value = float(sum(_WORDS[p] for p in parts))
    used = 1
    if i + 1 < len(tokens) and tokens[i + 1] == "hundred":
        value, used = value * 100, 2
    return value, False, used


# -- one claim against one passage ------------------------------------------------------------
@dataclass
class Check:
    """How a window of a passage stands to a claim."""

    verdict: str  # supported | contradicted | not_found
    coverage: float  # the claim's content (weighted by rarity) the window holds, 0..1
    reason: str = ""
    value: str | None = None  # contradicted: what the source says instead


def _same(a: Number, b: Number, loose: bool) -> bool:
    """The same value ("8" and "eight", "81.1M" and "81.1 million"; within 5% when the claim
    approximates it: "about 80M")."""
    return math.isclose(a.value, b.value, rel_tol=0.05 if loose else 1e-6, abs_tol=1e-12)


def abbreviates(short: str, reading: Reading) -> bool:
    """``short`` is an acronym of consecutive words of ``reading``: "LoRA" of "Low-rank
    adaptation", "RLHF" of "reinforcement learning from human feedback" (small words may be
    skipped)."""
    letters = [c.lower() for c in short if c.isupper()]
    if len(letters) < 2 or len(letters) > 8:
        return False
    parts = [p for tok in reading.tokens for p in tok.split("-") if p]
    for start in range(len(parts)):
        i, j = 0, start
        while i < len(letters) and j < len(parts):
            if parts[j][0] == letters[i]:
                i, j = i + 1, j + 1
            elif parts[j] in STOP_WORDS and i > 0:
                j += 1  # "from", "of": not in the acronym
            else:
                break
        if i == len(letters):
            return True
    return False


_CAMEL = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def _kin(a: str, b: str) -> bool:
    """Two names of one kind: CamelCase names sharing a part of four letters or more
    ("WordPredictor", "SentencePredictor")."""
    if "-" in a or "-" in b:
        return False
    pa, pb = [p.lower() for p in _CAMEL.findall(a)], [p.lower() for p in _CAMEL.findall(b)]
    if len(pa) < 2 or len(pb) < 2 or a.lower() == b.lower():
        return False
    return any(len(p) >= 4 and p in pb for p in pa)


def _same_word(a: str, b: str) -> bool:
    return a == b or (min(len(a), len(b)) >= 5 and (a.startswith(b) or b.startswith(a)))


def _has(reading: Reading, word: str) -> bool:
    """The reading holds the content word: the same stem, or (stems of five letters or more)
    one that begins the other ("compar" of "compares", "comparabl" of "comparable")."""
    if word in reading.words:
        return True
    words = list(reading.words) + [stem(n) for n in reading.names if n.isalpha()]
    if word in words or len(word) >= 5 and any(
            w.startswith(word) or (len(w) >= 5 and word.startswith(w)) for w in words):
        return True
    # the words as written, where the stemmer cut one short ("proceed" -> "proc", while
    # "proceeding" -> "proceed")
    if len(word) >= 5 and any(len(t) >= 5 and (t.startswith(word) or word.startswith(t))
                              for t in reading.tokens if t.isalpha()):
        return True
    return _spelled_apart(reading, word)


def _spelled_apart(reading: Reading, word: str) -> bool:
    """A hyphenated word whose parts the reading writes apart, in order ("the over-50-pages
    filter" and "Over 50 pages")."""
    parts = [p for p in word.split("-") if p]
    if len(parts) < 2:
        return False

    def alike(a: str, b: str) -> bool:
        a, b = stem(a), stem(b)
        return a == b or (min(len(a), len(b)) >= 3 and (a.startswith(b) or b.startswith(a)))
    toks = reading.tokens
    return any(all(alike(toks[i + k], p) for k, p in enumerate(parts))
               for i in range(len(toks) - len(parts) + 1))


def _name_in(name: str, reading: Reading, context: str) -> bool:
    """The name is in the reading or the context, with or without its hyphens ("GROBID-parsed"
    and "GROBIDparsed" as PDF text sometimes loses them; "over-50-pages" and "Over 50
    pages")."""
    bare = name.replace("-", "")
    if name in reading.names or stem(name) in reading.words or bare in {
            n.replace("-", "") for n in reading.names} or _spelled_apart(reading, name):
        return True
    low = reading.text.lower() + " " + context
    if re.search(rf"(?<![\w-]){re.escape(name)}s?(?![\w-])", low) is not None:
        return True
    return re.search(rf"(?<![\w-]){re.escape(bare)}s?(?![\w-])", low.replace("-", "")) is not None


def missing_names(text: str | Reading, source: str, context: str = "") -> list[str]:
    """The names ``text`` uses (systems, datasets, models: "GPT-4", "S2ORC") that neither
    ``source`` nor ``context`` holds (a possessive "'s" aside). ``text`` may be read already
    (one question against several sources)."""
    claim = text if isinstance(text, Reading) else read(text)
    if not claim.names:
        return []
    held = read(source)
    out = []
    for name in claim.names:
        bare = re.sub(r"['’]s$", "", name)
        if not _name_in(bare, held, context.lower()):
            out.append(bare)
    return out


def _is_label(raw: str) -> bool:
    """A label of a letter or two ("B", "T", "B1"), not a two-letter name written as a word
    ("Ba")."""
    return len(raw) <= 2 and not (len(raw) == 2 and raw[0].isupper() and raw[1].islower())


def frame(claim: Reading) -> int:
    """The position of "that" ending an attribution frame at the claim's start ("The
    PaperMage authors warn that ...", "Lo et al. (2020) show that ..."), else -1."""
    for i, tok in enumerate(claim.tokens[:12]):
        if tok == "that" and i >= 2 and any(
                stem(t) in _REPORTING for t in claim.tokens[max(0, i - 2):i]):
            return i
    return -1


def check(claim: Reading, window: Reading, context: str = "",
          vocabulary: Vocabulary | None = None, *, coverage_needed: float = 0.6,
          title: str = "") -> Check:
    """Whether ``window`` (a sentence or two of a source) supports ``claim``, contradicts it, or
    does neither. ``context``: the source's title, section and whole text, where the claim's
    names may also be (a passage about the Transformer need not name it in every sentence);
    ``vocabulary``: the library's, which weighs each content word by its rarity and knows the
    words it never uses (a claim word the library never uses is something it does not say);
    ``title``: the source paper's title, whose name the source may call "this project"."""
    def weight(w: str) -> float:
        rarity = vocabulary.idf(_as_written(claim, w)) if vocabulary else 1.0
        return max(rarity, 0.1) * (0.25 if w in _RELATIONS else 1.0)

    framed = frame(claim)
    wanted = {w: weight(w) for w, at in claim.words.items() if max(at) > framed}
    total = sum(wanted.values()) or 1.0

    def held(w: str) -> bool:
        return _has(window, w) or abbreviates(claim.raw[claim.words[w][0]], window)

    coverage = sum(v for w, v in wanted.items() if held(w)) / total if wanted else 1.0
    unheard = [w for w in wanted if vocabulary is not None and w not in _RELATIONS
               and not held(w) and not vocabulary.holds(_as_written(claim, w))]
    # a label of a letter or two ("region B", "task T", "B1") is looked up in the window
    # alone: a passage holds "b" somewhere, whatever it says of region B (a two-letter name
    # written as a word, the surname "Ba", is a name)
    missing_names = [n for n, at in claim.names.items()
                     if not _name_in(n, window, "" if _is_label(claim.raw[at]) else context)
                     and not abbreviates(claim.raw[at], window)]

    conflicts: list[str] = []
    missing_numbers: list[str] = []
    for number in claim.numbers:
        near = claim.stems_near(number.pos, 8)
        unit = claim.unit(number)
        loose = number.pos in claim.approximate

        def same_thing(m: Number, at_least: int, unit: set[str] = unit,
                       near: set[str] = near) -> bool:
            """``m`` counts what the claim's number counts: the same unit where both say
            what they count ("two weeks" is not "two hours"), else enough words around it."""
            theirs = window.unit(m)
            shared = len(near & window.stems_near(m.pos, 10))
            if unit and theirs:
                # "8 parallel attention layers, or heads": what it counts, named again after
                after = {stem(t) for t in window.tokens[m.pos + 1:m.pos + 7]}
                return (any(_same_word(a, b) for a in unit for b in theirs)
                        or bool(unit & after)) and shared >= 1
            return shared >= at_least

        # a value of a list read with "respectively": the list decides whose it is
        paired = respectively(claim, number, window.text)
        if paired is not None:
            if paired[0] == "other":
                conflicts.append(paired[1])
            elif paired[0] == "unclear":
                missing_numbers.append(number.text)
            continue
        # the same value, about the same thing
        matching = [m for m in window.numbers
                    if _same(number, m, loose) and (not near or same_thing(m, 1))]
        foreign = [_given_to(claim, number, window, m) for m in matching]
        if matching and all(foreign):
            # a table row or "1.0M arXiv publications": the value is another name's
            conflicts.append(f"{matching[0].text} for {foreign[0]}")
            continue
        if matching:
            given = _swapped_value(claim, number, window, loose)
            if given is not None:  # but the source gives it to another term of a list
                conflicts.append(given.text)
            continue
        # another value for the same thing
        others = [m for m in window.numbers if not _same(number, m, loose) and near
                  and m.percent == number.percent
                  and same_thing(m, max(1, math.ceil(len(near) / 2)))]
        if others:
            conflicts.append(others[0].text)
        else:
            missing_numbers.append(number.text)

    if conflicts and not missing_names and coverage >= 0.5:
        return Check(CONTRADICTED, coverage, f"the source gives {conflicts[0]}", conflicts[0])
    if missing_names and not conflicts and not missing_numbers and coverage >= 0.99 \
            and len(claim.words) >= 2:
        # everything else said, other names in their place: "processes PDFs with Tesseract"
        # against "processes PDFs with GROBID"
        theirs = [n for n in window.names if n not in claim.names
                  and not _name_in(n, claim, "")]
        if theirs and len(theirs) <= len(missing_names) + 1:
            return Check(CONTRADICTED, coverage,
                         f"the source names {', '.join(theirs[:3])}, not "
                         f"{', '.join(missing_names[:3])}", ", ".join(theirs[:3]))
    if missing_numbers or conflicts:
        return Check(NOT_FOUND, coverage, f"the source does not give {(missing_numbers or conflicts)[0]}"
                     if missing_numbers else "")
    if missing_names:
        return Check(NOT_FOUND, coverage, f"the source does not name {missing_names[0]}")
    for n, at in claim.names.items():  # named in the passage, but another of its kind here
        if _name_in(n, window, ""):
            continue
        kin = [m for m in window.names
               if m != n and _kin(claim.raw[at], window.raw[window.names[m]])]
        if kin:
            other = window.raw[window.names[kin[0]]]
            return Check(CONTRADICTED, coverage, f"the source says {other} here, not "
                         f"{claim.raw[at]}", other)
    if _polarity_differs(claim, window):
        return Check(NOT_FOUND, coverage, "the source says the opposite")
    if unheard:
        return Check(NOT_FOUND, coverage, "the library never says "
                     + ", ".join(_as_written(claim, w) for w in unheard[:3]))
    swapped = substitution(claim, window, title) if coverage >= coverage_needed else None
    if swapped:
        return Check(CONTRADICTED, coverage, f"the source says {swapped[1]}, not {swapped[0]}",
                     swapped[1])
    counted = (quantity(claim, window) or frequency(claim, window)
               if coverage >= coverage_needed else None)
    if counted:
        return Check(CONTRADICTED, coverage, f"the source says {counted[1]}, not {counted[0]}",
                     counted[1])
    if coverage < coverage_needed:
        missing = [w for w in claim.words if not _has(window, w)]
        return Check(NOT_FOUND, coverage, "the source does not say this (not in it: "
                     + ", ".join(_as_written(claim, w) for w in missing[:4]) + ")")
    compared = comparison(claim, window)
    if compared is not None:
        word, what, opposite = compared
        if opposite:
            return Check(CONTRADICTED, coverage, f"the source says {opposite} {what}, not "
                         f"{word}", opposite)
        return Check(NOT_FOUND, coverage, f"the source makes no comparison ({word} {what})")
    roles = exchanged(claim, window)
    if roles:
        a, b = (_as_written(claim, t) if t in claim.words else claim.raw[claim.names[t]]
                for t in roles)
        return Check(CONTRADICTED, coverage, f"the source has {a} and {b} the other way round",
                     f"{b} … {a}")
    return Check(SUPPORTED, coverage)


_LIST_TOKEN = re.compile(r"[A-Za-z0-9][\w\-.%→/]*[\w%]|[A-Za-z0-9%]|[,;()→]")
_LIST_SEPARATORS = {",", "and", "or"}
_LIST_BREAKS = {";", "(", ")", "respectively", "were", "are", "is", "was", "of", "the", "with",
                "have", "has", "by", "for", "to", "from", "in", "on", "at"}


def _item_value(item: list[str]) -> float | None:
    """The value of a list item: its first number ("35" of "k = 35")."""
    for tok in item:
        got = _value(tok.lower())
        if got is not None:
            return got[0]
    return None


def _lists(tokens: list[str]) -> list[tuple[int, int, list[list[str]]]]:
    """Coordinated lists in a sentence's tokens ("A, B, and C", "16384 and 4096", "short or
    tiny"): (first token, last token, items), each item up to three tokens (a parenthesised
    one taken whole: "Decoder (LED) and PRIMERA" lists LED)."""
    out: list[tuple[int, int, list[list[str]]]] = []
    low = [t.lower() for t in tokens]
    i = 0
    while i < len(tokens):
        if low[i] not in _LIST_SEPARATORS:
            i += 1
            continue
        j, item = i - 1, []
        if j >= 0 and tokens[j] == ")":
            k = j - 1
            while k >= 0 and tokens[k] != "(":
                k -= 1
            item = tokens[k + 1:j] if k >= 0 and j - k <= 4 else []
            j = k - 1
        else:
            while j >= 0 and len(item) < 3 and low[j] not in _LIST_SEPARATORS | _LIST_BREAKS:
                item.insert(0, tokens[j])
                j -= 1
        if not item:
            i += 1
            continue
        start, items = j + 1, [item]
        while i < len(tokens) and low[i] in _LIST_SEPARATORS:
            while i < len(tokens) and low[i] in _LIST_SEPARATORS:
                i += 1
            nxt: list[str] = []
            while i < len(tokens) and len(nxt) < 3 and low[i] not in \
                    _LIST_SEPARATORS | _LIST_BREAKS:
                nxt.append(tokens[i])
                i += 1
            if not nxt:
                break
            items.append(nxt)
        if len(items) >= 2:
            out.append((start, i - 1, items))
    return out


def respectively(claim: Reading, number: Number, text: str) -> tuple[str, str] | None:
    """Where the source gives the claim's value in a list read with "respectively" ("LED and
    PRIMERA ... (16384 and 4096 tokens, respectively)"): None when it does not; ("same", v)
    when the claim names the term the value belongs to; ("other", v) with the value of the
    term the claim names instead ("PRIMERA ... 16384" -> "4096"); ("unclear", "") when the
    claim names none of the list's terms, or several (the source does not say which value is
    this one). The terms are the list before "respectively" nearest the values, its last
    items where it runs longer."""
    if "respectively" not in text.lower():
        return None
    claim_words = {t.replace("-", "") for t in claim.tokens} | {
        stem(t) for t in claim.tokens}

    def words(item: list[str]) -> list[str]:
        return [w.lower().replace("-", "") for w in item
                if w.lower() not in STOP_WORDS and w != "→"]

    def said(w: str) -> bool:
        return w in claim_words or stem(w) in claim_words or any(
            _same_word(w, c) for c in claim_words)

    def named_in(items: list[list[str]]) -> list[int]:
        """The items the claim names: every word of one ("S → T" in "S to T"), else one
        word of three letters or more no other item has ("LED" of "Because LED")."""
        whole = [k for k, it in enumerate(items) if words(it) and all(map(said, words(it)))]
        if whole:
            return whole
        own = []
        for k, it in enumerate(items):
            others = {w for j, o in enumerate(items) if j != k for w in words(o)}
            if any(len(w) >= 3 and w not in others and said(w) for w in words(it)):
                own.append(k)
        return own

    for sentence in re.split(r"(?<=[.;])\s+", _clean(text, arrows=False)):
        tokens = _LIST_TOKEN.findall(sentence)
        ends = [k for k, t in enumerate(tokens) if t.lower() == "respectively"]
        if not ends:
            continue
        lists = [entry for entry in _lists(tokens) if entry[1] < ends[0]]
        values: tuple[int, int, list[list[str]]] | None = None
        for start, end, items in reversed(lists):
            numeric: list[list[str]] = []  # the list's last items that are numbers: "long summaries, and 70%
            for it in reversed(items):  # and 36%" lists 70% and 36%
                if _item_value(it) is None:
                    break
                numeric.insert(0, it)
            if len(numeric) >= 2 and any(
                    _same(number, Number(_item_value(it) or 0.0, "", 0), False)
                    for it in numeric):
                values = (start, end, numeric)
                break
        if values is None:
            continue
        listed = [_item_value(it) or 0.0 for it in values[2]]
        if len(claim.numbers) >= 2 and [m for m in listed if any(
                _same(c, Number(m, "", 0), False) for c in claim.numbers)] == [
                m for c in claim.numbers for m in listed if _same(c, Number(m, "", 0), False)]:
            return "same", number.text  # the claim gives the list's values in its order
        n = len(values[2])
        terms = [(abs(start - values[0]), items[-n:]) for start, end, items in lists
                 if (start, end) != values[:2] and len(items) >= n
                 and sum(_item_value(it) is not None for it in items[-n:]) < n]
        if not terms:
            return "unclear", ""
        items = min(terms, key=lambda t: t[0])[1]
        hits = named_in(items)
        if len(hits) != 1:
            return "unclear", ""
        mine = values[2][hits[0]]
        given = next(t for t in mine if _value(t.lower()) is not None)
        if _same(number, Number(_item_value(mine) or 0.0, "", 0), False):
            return "same", given
        return "other", given
    return None


def _leading(r: Reading, pos: int) -> set[str]:
    """The terms in the four tokens before a number: what a list gives it to ("tiny (25
    words)", "tiny summaries have 25 words")."""
    return {w for w, at in r.words.items() if w not in _RELATIONS
            and any(0 < pos - p <= 4 for p in at)} | \
        {n for n, at in r.names.items() if 0 < pos - at <= 4}


def _swapped_value(claim: Reading, number: Number, window: Reading,
                   loose: bool) -> Number | None:
    """Another of the source's values, when the source gives the claim's value to one term
    and another value to the claim's term: "tiny (25 words), short (130 words)" against
    "tiny summaries have 130 words". Only where the claim gives two numbers or more (a list
    read back with its values exchanged)."""
    if len(claim.numbers) < 2:
        return None
    same = [m for m in window.numbers if _same(number, m, loose)]
    for terms in (lambda r, n: _leading(r, n.pos), lambda r, n: r.unit(n)):
        mine = terms(claim, number) - set().union(  # what sets it apart from the others
            *(terms(claim, n) for n in claim.numbers if n is not number))
        if not mine or any(mine & terms(window, m) for m in same):
            continue
        other = next((m for m in window.numbers if not _same(number, m, loose)
                      and m.percent == number.percent and mine & terms(window, m)), None)
        if other is not None:
            return other
    return None


def _names_before(r: Reading, pos: int, reach: int, *, adjacent: bool) -> list[str]:
    """The names in the ``reach`` tokens before ``pos`` (nearest first), up to another number;
    ``adjacent``: only those right before it, with nothing else between (a table row's label:
    "S2ORC (PDF-parse) 8.1M", "BillSum 23,455")."""
    numbers = {n.pos for n in r.numbers}
    out: list[str] = []
    for p in range(pos - 1, max(-1, pos - reach - 1), -1):
        if p in numbers:
            break
        tok = r.tokens[p].rstrip(".-")
        if tok in r.names:
            out.append(tok)
        elif adjacent:
            break
    return out


def _given_to(claim: Reading, number: Number, window: Reading, theirs: Number) -> str | None:
    """The name the source gives the claim's value to, when it is not the claim's: the label
    right before the value ("S2ORC (PDF-parse) 8.1M" against "PubMed Central (OA) has 8.1M
    papers") or a name in what it counts ("1.0M arXiv publications" against "1.0M PubMed
    publications"). None when the source binds the value to no name, or to one of the
    claim's."""
    def foreign(names: list[str]) -> list[str]:
        return [n for n in names if not _name_in(n, claim, "")]

    mine = _names_before(claim, number.pos, 4, adjacent=False)
    label = _names_before(window, theirs.pos, 3, adjacent=True)
    if mine and label and len(foreign(label)) == len(label) and \
            not set(mine) & set(_names_before(window, theirs.pos, 4, adjacent=False)):
        return window.raw[theirs.pos - 1]
    counted = [t for t in claim.unit(number) if t in claim.names]
    counted_there = [t for t in window.unit(theirs) if t in window.names]
    if counted and counted_there and not set(counted) & set(counted_there) \
            and len(foreign(counted_there)) == len(counted_there):
        # what it counts may come before it ("GROBID full text is 8.1M")
        at = [i for i, t in enumerate(window.tokens) if t == counted_there[0]]
        return window.raw[min(at, key=lambda i: abs(i - theirs.pos))] if at else \
            counted_there[0]
    return None


def _as_written(r: Reading, stem_: str) -> str:
    return r.tokens[r.words[stem_][0]] if r.words.get(stem_) else stem_


def _adverb(word: str) -> bool:
    return len(word) > 4 and word.lower().endswith("ly")


def _foreign_at(sentence: Reading, pos: int, claim: Reading, name: bool,
                shown: str = "") -> str | None:
    """The sentence's name (``name``) or content word at ``pos`` as written, when the claim
    does not hold it; an adverb in -ly is no stand-in for the claim's word ``shown`` unless
    that is one too ("the *authors* endorse" against "We *strongly* endorse"; "*linearly*"
    against "*quadratically*" is a swap)."""
    if not 0 <= pos < len(sentence.tokens):
        return None
    if shown and _adverb(sentence.tokens[pos]) != _adverb(shown):
        return None
    tok = sentence.tokens[pos].rstrip(".-")
    if name:
        return sentence.raw[pos] if tok in sentence.names and not _name_in(tok, claim, "") \
            else None
    if tok in sentence.names:
        return None
    word = next((w for w, at in sentence.words.items() if pos in at), None)
    if word is None or word in _RELATIONS or _has(claim, word):
        return None
    return sentence.raw[pos]


_DETERMINERS = frozenset(["the", "a", "an"])
_LINKS = frozenset(["for", "of", "in", "on", "at", "to", "from", "by", "with", "like", "as"])


def substitution(claim: Reading, sentence: Reading, title: str = "") -> tuple[str, str] | None:
    """(the claim's word, the sentence's word in its place) when the sentence says the same
    around a word of the claim but another word there: "scale *linearly* with sequence length"
    against "scale *quadratically* with ...", "focuses on *extractive* approaches" against
    "*abstractive*", "wraps models like *GPT-3*" against "like *Contriever*", "a model for
    *medicine*" against "for *science*". The anchors are the claim's words, names and numbers
    on either side that the sentence holds; relation verbs and generic words are neither
    replaced nor anchors (a relation verb after "the" is a word: "the *state* courts"). A
    paper that calls itself "this project" or "our toolkit" does not swap its own name
    (``title``: the paper's title) for those words."""
    anchors: list[tuple[int, int]] = []  # (position in the claim, position in the sentence)
    every: dict[int, list[int]] = {}  # a word's every position in the sentence ("summaries
    # ... long summary": the word before the second is the one in the claim's word's place)
    for w, at in claim.words.items():
        if w not in _RELATIONS and _has(sentence, w):
            theirs = sentence.words.get(w) or next(
                (v for k, v in sentence.words.items() if _same_word(k, w)), [])
            anchors += [(p, theirs[0]) for p in at] if theirs else []
            every.update((p, theirs) for p in at)
    for n, p in claim.names.items():
        if n in sentence.names:
            anchors.append((p, sentence.names[n]))
    for number in claim.numbers:
        same = [m.pos for m in sentence.numbers if _same(number, m, False)]
        if same:
            anchors.append((number.pos, same[0]))
    anchors.sort()
    # a word is replaced by a word, a name by a name
    missing = [(at[0], _as_written(claim, w), False) for w, at in claim.words.items()
               if not _has(sentence, w) and (w not in _RELATIONS or (
                   at[0] > 0 and claim.tokens[at[0] - 1] in _DETERMINERS))]
    missing += [(p, claim.raw[p], True) for n, p in claim.names.items()
                if not _name_in(n, sentence, "") and not abbreviates(claim.raw[p], sentence)]
    for pos, shown, name in sorted(missing):
        before = [a for a in anchors if a[0] < pos]
        after = [a for a in anchors if a[0] > pos]
        trail = claim.tokens[pos + 1:after[0][0]] if after else []
        if not name and after and len(trail) <= 2 and all(t in STOP_WORDS for t in trail):
            # the word right before a term both hold, or before the same small words: the
            # term's modifier ("*tiny* summaries" against "*Long* summaries"), the subject
            # ("*captions* are linked" against "Citations are linked"); not a name there,
            # which is mostly what the claim is about ("the Multi-LexSum summarizers", "For
            # abstractive summarizers")
            for at_term in every.get(after[0][0], [after[0][1]]):
                spot = at_term - len(trail) - 1
                if any(_family(shown.lower(), t) for t in sentence.tokens[max(0, spot - 2):spot]):
                    continue  # "PDF *parser* with" against "PDF parsing *utility* with"
                if spot >= 0 and sentence.tokens[spot + 1:at_term] == trail:
                    while spot > 0 and _abbreviation(sentence.raw[spot]):
                        spot -= 1  # "*Long* (L) summaries": the word before its letter
                    other = _foreign_at(sentence, spot, claim, False, shown)
                    if other and not _itself(sentence, spot, shown, title):
                        return shown, other
        if before and not after and claim.tokens[pos - 1] in _LINKS:
            # the last word, after a term both hold and the same words ("a language model
            # *for medicine*" against "language model for science"; not the word right after
            # the term: "baseline comparison" and "baseline evaluation" alike)
            lead = claim.tokens[before[-1][0]:pos]
            spot = before[-1][1]
            if len(lead) <= 4 and sentence.tokens[spot:spot + len(lead)] == lead:
                spot += len(lead)
                while spot < len(sentence.tokens) - 1 and sentence.tokens[spot] in STOP_WORDS:
                    spot += 1  # "linked to *their* captions"
                other = _foreign_at(sentence, spot, claim, name, shown)
                if other:
                    return shown, other
        if not before or not after:
            continue  # a word at either end: nothing holds its place (a paraphrase may end
            # otherwise: "baseline comparison" and "baseline evaluation" alike)
        lo, hi = before[-1][1], after[0][1]
        if not 0 < hi - lo <= (after[0][0] - before[-1][0]) + 3:
            continue
        if any(_family(shown.lower(), sentence.tokens[p]) for p in range(lo + 1, hi)):
            continue  # the same word in another form ("PDF *parser*" against "PDF *parsing*
            # utility"): a paraphrase, not a swap
        replacing = [t for p in range(lo + 1, hi)
                     if (t := _foreign_at(sentence, p, claim, name, shown))
                     and not _itself(sentence, p, shown, title)]
        if replacing:
            return shown, replacing[0]
    return None


_SELF = frozenset(["this", "our", "present"])  # "this project", "our toolkit", "the present work"


def _itself(sentence: Reading, pos: int, shown: str, title: str) -> bool:
    """The sentence's word at ``pos`` is the paper speaking of itself ("*This project* was
    supported by ...", "our toolkit") where the claim names it ("papermage was supported"):
    the claim's word is the name in the paper's title."""
    name = shown.lower()
    return bool(title) and pos > 0 and sentence.tokens[pos - 1] in _SELF and \
        re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", title.lower()) is not None


def _abbreviation(raw: str) -> bool:
    """A letter or two in capitals, as a term's short form is written after it ("Long (L)",
    "Short (S)")."""
    return 1 <= len(raw) <= 2 and raw.isalpha() and raw.isupper() and raw != "A"


def _family(a: str, b: str) -> bool:
    """Two forms of one word: a shared beginning of four letters or more, most of the shorter,
    both of five letters or more ("parser" and "parsing", "encoder" and "encoding"; not
    "extractive" and "abstractive", nor "text" and "textual")."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n >= 4 and min(len(a), len(b)) >= 5 and n >= 0.6 * min(len(a), len(b))


# how many, said in words: one thing, several, none ("a *single* paragraph" against
# "*multiple* paragraphs")
_HOW_MANY = {"single": 1, "sole": 1, "multiple": 2, "several": 2, "many": 2, "numerous": 2,
             "various": 2, "no": 0, "zero": 0}


def quantity(claim: Reading, window: Reading) -> tuple[str, str] | None:
    """(the claim's words, the source's) when both say how many of the same thing in words
    and say differently: "a single paragraph" against "multiple paragraphs"."""
    def said(r: Reading, term: str) -> list[tuple[int, str]]:
        out = []
        for at in r.words.get(term) or next(
                (v for k, v in r.words.items() if _same_word(k, term)), []):
            for k in range(max(0, at - 2), at):
                if r.tokens[k] in _HOW_MANY:
                    out.append((_HOW_MANY[r.tokens[k]], " ".join(r.tokens[k:at + 1])))
        return out

    for term in claim.words:
        mine = said(claim, term)
        theirs = said(window, term)
        if mine and theirs and not {m for m, _ in mine} & {t for t, _ in theirs}:
            return mine[0][1], theirs[0][1]
    return None


_ROLE_WORDS = frozenset(["from", "to", "into", "than", "by", "over", "against", "with",
                         "without", "for", "of", "between", "through", "across", "within",
                         "before", "after", "onto", "versus", "vs"])


# how often, said in words: "often requires glue code" against "rarely requires" (never is a
# negation already, read apart)
_OFTEN = frozenset(["often", "usually", "always", "frequently", "commonly", "typically",
                    "generally", "mostly", "regularly"])
_RARELY = frozenset(["rarely", "seldom", "hardly", "occasionally", "infrequently"])


def frequency(claim: Reading, window: Reading) -> tuple[str, str] | None:
    """(the claim's word, the source's) when they say how often with words of opposite kinds:
    "*rarely* require glue code" against "it *often* requires"."""
    for mine, other in ((_OFTEN, _RARELY), (_RARELY, _OFTEN)):
        said = next((t for t in claim.tokens if t in mine), None)
        theirs = next((t for t in window.tokens if t in other), None)
        if said and theirs and not any(t in mine for t in window.tokens):
            return said, theirs
    return None


def _roles(r: Reading) -> dict[str, set[str]]:
    """For each term (content word or name), the role words that mark it: the nearest of
    "from", "to", "than", "by", "through", "across", ... within the three tokens before it
    ("from a visual selection to text": selection <- from, text <- to)."""
    out: dict[str, set[str]] = {}
    # how often something happens is no term ("for scientific documents *often* require")
    terms = [(w, p) for w, at in r.words.items()
             if w not in _RELATIONS and r.tokens[at[0]] not in _OFTEN | _RARELY for p in at]
    terms += [(t.rstrip(".-"), p) for p, t in enumerate(r.tokens) if t.rstrip(".-") in r.names]
    for term, p in terms:
        for back in range(p - 1, max(-1, p - 4), -1):
            if r.tokens[back] in _ROLE_WORDS:
                out.setdefault(term, set()).add(r.tokens[back])
                break
    return out


def exchanged(claim: Reading, window: Reading) -> tuple[str, str] | None:
    """Two terms of the claim that the source holds in each other's roles: "converts ... from
    text to a visual selection" against "from a visual selection to text", "iterate through
    Layers ... across Entities" against "through Entities ... across Layers"."""
    mine, theirs = _roles(claim), _roles(window)
    terms = set(claim.words) | set(claim.names)
    held = [t for t in terms if _has(window, t) or t in window.names]
    mine = {t: mine.get(t, set()) for t in held}
    theirs = {t: theirs.get(t, set()) for t in held}
    for a in held:
        for b in held:
            if a == b:
                continue
            a_took = (mine[a] & theirs[b]) - theirs[a]  # a's role in the claim is b's there
            b_took = (mine[b] & theirs[a]) - theirs[b]
            if a_took and (b_took - a_took or not (mine[b] or theirs[a])
                           and a_took != {"of"}):
                # both traded roles, or b has none in the claim and a none in the source:
                # "preserve paragraph breaks rather than line breaks" against "line breaks
                # rather than paragraph breaks"; "of" alone is too common to be a role
                # taken ("the documents of a case" against "the length of the documents")
                return a, b
    return None


_UP = frozenset(["more", "greater", "larger", "bigger", "higher", "longer", "better", "faster",
                 "stronger", "wider", "largest", "biggest", "highest", "longest", "best",
                 "fastest", "strongest", "widest", "most", "increase", "increased", "increases",
                 "increasing", "grow", "grows", "grew", "growing"])
_DOWN = frozenset(["less", "fewer", "smaller", "lower", "shorter", "worse", "slower", "weaker",
                   "narrower", "smallest", "lowest", "shortest", "worst", "slowest", "weakest",
                   "fewest", "least", "decrease", "decreased", "decreases", "decreasing", "shrink",
                   "shrinks", "shrank", "reduced", "reduces", "degrade", "degrades",
                   "degraded"])
_UP_STEMS = ("outperform", "surpass", "exceed", "improv")
_DOWN_STEMS = ("underperform",)


def _direction(token: str) -> int:
    """+1 for a word that says more (larger, better, outperforms, improves), -1 for one that
    says less (fewer, worse, degrades), 0 otherwise."""
    if token in _UP or token.startswith(_UP_STEMS):
        return 1
    if token in _DOWN or token.startswith(_DOWN_STEMS):
        return -1
    return 0


def _comparatives(r: Reading) -> list[tuple[int, int]]:
    """(position, direction) of the reading's comparing words ("one or more" left out: it
    compares nothing)."""
    return [(i, d) for i, tok in enumerate(r.tokens)
            if (d := _direction(tok)) and not (i and r.tokens[i - 1] == "or")
            and not (tok in ("most", "least") and r.tokens[i + 1:i + 2] == ["of"])]


def _term_at(r: Reading, pos: int) -> str | None:
    """What a comparing word can be about at ``pos``: a content word or a name (its stem),
    or another word that is not a function word ("models", "quality")."""
    if not 0 <= pos < len(r.tokens):
        return None
    word = next((w for w, at in r.words.items() if pos in at), None)
    if word:
        return word
    tok = r.tokens[pos]
    if tok.rstrip(".-") in r.names:
        return tok.rstrip(".-")
    if tok.isalpha() and len(tok) > 2 and tok not in STOP_WORDS | FILLER_WORDS \
            and not _direction(tok):
        return stem(tok)
    return None


def _positions(r: Reading, term: str) -> list[int]:
    bare = term.replace("-", "")
    return [i for i, tok in enumerate(r.tokens)
            if (t := _term_at(r, i)) is not None and _same_word(t.replace("-", ""), bare)]


def comparison(claim: Reading, window: Reading) -> tuple[str, str, str | None] | None:
    """Where the claim compares ("*less* stable", "*fewer* paragraphs", "models are *worse*
    than", "*more than* 100 characters"): (its word, what it compares, the source's opposite
    word or None) when the source says the same thing the other way ("*more* stable",
    "*fewer than* 100") or holds it with no comparison at all; None when the source compares
    it the same way, or does not hold what is compared (the other rules decide then). What
    is compared is the word right after the comparing word (the number after "than"), or,
    when "than" follows with no number, the word before it; the source's comparing word must
    stand on the same side of it."""
    mine = _comparatives(claim)
    if not mine:
        return None
    theirs = _comparatives(window)
    for pos, d in mine:
        toks = claim.tokens
        bound = toks[pos + 1:pos + 2] == ["than"] and pos + 2 < len(toks) and any(
            n.pos == pos + 2 for n in claim.numbers)
        if bound:  # "more than 100 characters": about the number
            number = next(n for n in claim.numbers if n.pos == pos + 2)
            at = [m.pos for m in window.numbers if _same(number, m, False)]
            head, before = number.text, True
        else:
            # the word after it ("more *stable*"), else, or where the source does not hold
            # that one, the word before it ("models are worse", "*take* less time")
            after = next((t for q in range(pos + 1, pos + 3)
                          if (t := _term_at(claim, q))), None) \
                if toks[pos + 1:pos + 2] != ["than"] else None
            behind = next((t for q in range(pos - 1, max(-1, pos - 4), -1)
                           if (t := _term_at(claim, q))), None)
            head, before, at = None, True, []
            for term, side in ((after, True), (behind, False)):
                if term is not None:
                    head, before, at = term, side, _positions(window, term)
                    if at:
                        break
            if head is None:
                continue
        if not at:
            continue  # the source does not hold what is compared: the other rules decide
        if before:  # "more stable": the source's word before it
            near = [(q, e) for q, e in theirs if any(0 < a - q <= 2 + bound for a in at)]
        else:  # "models are worse than": after it
            near = [(q, e) for q, e in theirs if any(0 < q - a <= 3 for a in at)]
        if not near and not bound:  # said the other way: "worse quality", "the quality of
            # metadata ... is worse"
            near = [(q, e) for q, e in theirs if any(0 < a - q <= 2 or 0 < q - a <= 8
                                                      for a in at)]
        if any(e == d for _, e in near):
            swapped = _sides_swapped(claim, pos, window, [q for q, e in near if e == d])
            if swapped:
                return toks[pos], f"({swapped[0]} and {swapped[1]} the other way round)", \
                    f"{swapped[1]} {window.tokens[near[0][0]]} {swapped[0]}"
            continue
        written = str(head if bound or head not in claim.words else _as_written(claim, head))
        return toks[pos], written, (window.tokens[near[0][0]] if near else None)
    return None


def _side(r: Reading, pos: int, step: int) -> str | None:
    """The nearest name within six tokens of ``pos`` in direction ``step`` ("than" and
    function words skipped), without hyphens."""
    for q in range(pos + step, pos + 7 * step, step):
        if not 0 <= q < len(r.tokens):
            return None
        tok = r.tokens[q].rstrip(".-")
        if tok in r.names:
            return tok.replace("-", "")
    return None


def _sides_swapped(claim: Reading, pos: int, window: Reading,
                   at: list[int]) -> tuple[str, str] | None:
    """The names on either side of the claim's comparing word stand the other way round
    around the source's: "SciBERT outperforms S2ORC-SciBERT" against "S2ORC-SciBERT
    outperforms SciBERT"."""
    left, right = _side(claim, pos, -1), _side(claim, pos, 1)
    if not left or not right or left == right:
        return None
    for q in at:
        if _side(window, q, -1) == right and _side(window, q, 1) == left:
            return claim.raw[claim.names[left if left in claim.names else right]], \
                next((claim.raw[p] for n, p in claim.names.items()
                      if n.replace("-", "") == right), right)
    return None


def _polarity_differs(claim: Reading, window: Reading) -> bool:
    """A content word the claim shares with the window is negated in one and not the other."""
    def negated(r: Reading, positions: list[int]) -> bool:
        return any(0 < p - n <= 3 for p in positions for n in r.negations)

    shared = set(claim.words) & set(window.words)
    claim_negated = any(negated(claim, claim.words[w]) for w in shared)
    window_negated = any(negated(window, window.words[w]) for w in shared)
    return claim_negated != window_negated


# -- a claim against numbered sources ---------------------------------------------------------
@dataclass
class Evidence:
    """A source's sentence(s) that bear on a claim, quoted as the source has them."""

    n: int
    quote: str
    verdict: str
    score: float  # meaning (cosine) and content together, 0..1
    reason: str = ""
    value: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.n, "quote": self.quote, "verdict": self.verdict,
                "score": round(self.score, 3), "reason": self.reason, "value": self.value}


_REFERRING = frozenset(["it", "its", "they", "their", "them", "this", "these", "those",
                        "such", "he", "she", "his", "her", "we", "our", "both", "each",
                        "here", "there", "thus", "hence", "therefore", "then", "also"])


def _refers_back(sentence: str) -> bool:
    """The sentence opens by referring to the one before ("It ...", "These ...", "We ...")."""
    first = re.match(r"\W*([A-Za-z]+)", sentence)
    return bool(first) and first.group(1).lower() in _REFERRING  # type: ignore[union-attr]


def _without(context: str, parts: Sequence[str]) -> str:
    """``context`` (lower case) with ``parts`` of its sentence taken out: where a claim's names
    may still be, but not in the other clauses or items."""
    rest = " ".join(context.split())
    for part in parts:
        rest = rest.replace(" ".join(part.split()).lower(), " ")
    return rest


def _one_clause(claim: Reading, sentence: str, result: Check, context: str,
                vocabulary: Vocabulary | None, title: str = "") -> Check:
    """A sentence of clauses joined by semicolons says one thing a clause: the claim must be
    supported by one clause (with those after it that refer back), as by one sentence
    ("Region A consists of ... generative models; region B consists of ... graph learning"
    does not put region B among generative models). A clause that refers back, or names
    nothing of its own, goes on about the one before ("... are paid $15/hour; the rate was
    lower in prior years"). Names may still be elsewhere in the passage, but not in the
    other clauses."""
    # a semicolon inside parentheses separates citations, not clauses
    clauses = [" ".join(c.split()) for c in re.split(r";(?![^()]*\))", sentence) if c.strip()]
    for i in range(len(clauses)):
        j = i
        while j + 1 < len(clauses) and (_refers_back(clauses[j + 1])
                                        or not read(clauses[j + 1]).names):
            j += 1
        part = "; ".join(clauses[i:j + 1])
        rest = _without(context, clauses[:i] + clauses[j + 1:])
        if check(claim, read(part), rest, vocabulary, title=title).verdict == SUPPORTED:
            return result
    return Check(NOT_FOUND, result.coverage, "no one clause of the source says this")


_ITEM = re.compile(r"\((?:\d{1,2}|[ivx]{1,4}|[a-h])\)\s")


def _one_item(claim: Reading, sentence: str, result: Check, context: str,
              vocabulary: Vocabulary | None, title: str = "") -> Check:
    """A sentence that enumerates ("Its contributions include (1) magelib, ..., (2)
    Predictors, ..., and (3) Recipes, which provide turn-key access ...") says one thing an
    item: the claim must be supported by the sentence's lead with one item, not by one item's
    name and another's words ("Predictors provide turn-key access")."""
    marks = list(_ITEM.finditer(sentence))
    if len(marks) < 2:
        return result
    lead = sentence[:marks[0].start()]
    items = [sentence[m.end():(marks[i + 1].start() if i + 1 < len(marks) else len(sentence))]
             for i, m in enumerate(marks)]
    for i, item in enumerate(items):
        rest = _without(context, items[:i] + items[i + 1:])
        if check(claim, read(lead + " " + item), rest, vocabulary,
                 title=title).verdict == SUPPORTED:
            return result
    return Check(NOT_FOUND, result.coverage, "no one item of the source's list says this")


def windows(count: int) -> list[tuple[int, int]]:
    """(first, last) indices of ``count`` sentences: every sentence, and every two adjacent
    ones."""
    return [(i, i) for i in range(count)] + [(i, i + 1) for i in range(count - 1)]


def judge(claim: str, pieces: Sequence[tuple[int, str]], similarity: Sequence[float],
          contexts: dict[int, str], vocabulary: Vocabulary | None = None,
          min_meaning: float = 0.3, titles: dict[int, str] | None = None) -> dict[int, Evidence]:
    """The best evidence in each source for ``claim``: ``pieces`` are the sources' sentences
    (source number, sentence) in order, ``similarity`` the claim's cosine to each. A window is
    read only where it means something close to the claim (``min_meaning``). ``contexts``: each
    source's title, section and text (lower case), where the claim's names may be; ``titles``:
    each source's paper title."""
    titles = titles or {}
    mine = read(claim)
    by_source: dict[int, list[int]] = {}
    for j, (n, _) in enumerate(pieces):
        by_source.setdefault(n, []).append(j)
    best: dict[int, Evidence] = {}
    rank = {SUPPORTED: 2, CONTRADICTED: 1, NOT_FOUND: 0}
    for n, idx in by_source.items():
        readings = {j: read(pieces[j][1]) for j in idx}
        context, title = contexts.get(n, ""), titles.get(n, "")
        for a, b in windows(len(idx)):
            meaning = max(similarity[idx[a]], similarity[idx[b]])
            if meaning < min_meaning and best.get(n) is not None:
                continue
            quote = " ".join(pieces[idx[k]][1] for k in range(a, b + 1))
            window = readings[idx[a]] if a == b else read(quote)
            result = check(mine, window, context, vocabulary, title=title)
            if a != b and result.verdict == SUPPORTED and not _refers_back(pieces[idx[b]][1]) \
                    and not pieces[idx[a]][1].rstrip().endswith("?"):
                # two sentences support one claim only when the second goes on about the
                # first ("It consists of ..."); else each says its own thing, and a claim
                # that takes its subject from one and its predicate from the other is
                # neither's ("citations are linked to bibliography entries. Figure
                # references are linked to their captions" does not link captions to
                # bibliography entries); a question and the sentence after it (its answer,
                # as in a datasheet) are one
                result = Check(NOT_FOUND, result.coverage, "no one sentence of the source "
                               "says this")
            if result.verdict == SUPPORTED and ";" in quote:
                result = _one_clause(mine, quote, result, context, vocabulary, title)
            if result.verdict == SUPPORTED:
                result = _one_item(mine, quote, result, context, vocabulary, title)
            score = 0.6 * meaning + 0.4 * result.coverage
            if meaning < min_meaning and result.verdict != NOT_FOUND:
                result = Check(NOT_FOUND, result.coverage, "the source is about something else")
            found = Evidence(n, quote, result.verdict, score, result.reason, result.value)
            old = best.get(n)
            # a single sentence wins over a pair when both support: the shorter quote
            if old is None or (rank[found.verdict], found.score - 0.02 * (b - a)) > \
                    (rank[old.verdict], old.score - 0.02 * old.quote.count(". ")):
                best[n] = found
        # a sentence of this source that says the same with a word swapped outweighs a pair
        # of sentences that hold every word between them ("region A ... deep generative
        # models; region B ... graph representation learning")
        if best[n].verdict == SUPPORTED and best[n].quote.count(". ") >= 1:
            for j in idx:
                swapped = substitution(mine, readings[j], title)
                if swapped and similarity[j] >= min_meaning and \
                        check(mine, readings[j], context, vocabulary,
                              title=title).coverage >= 0.5:
                    best[n] = Evidence(n, pieces[j][1], CONTRADICTED, best[n].score,
                                       f"the source says {swapped[1]}, not {swapped[0]}",
                                       swapped[1])
                    break
    return best
