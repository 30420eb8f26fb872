"""Grounded examples from the library (retrieval-augmented fine-tuning).

Each example is what ``ask`` shows the model: the RAG prompt with k numbered sources, one of
them (the *oracle*) holding the answer and the others *distractors* found by searching the
library for the question (hard negatives, as retrieval would bring them), and an answer that
quotes the oracle and cites it as ``[n]``. Refusal examples give the question with distractors
only and teach the ``NOT_IN_LIBRARY`` sentinel.

Questions and answers come from a *teacher* model (any OpenAI-compatible server), or are
written without a model: a question the way people ask one about the fact of the oracle's most
informative sentence that has one (:mod:`finetune.questions`), answered by the clause that
states it; else the most informative sentence, asked about by its rarest terms. Either way every example is checked
before it is kept: its markers resolve to the oracle and nothing else, and every claim of the
answer is supported by the oracle (litlab's sentence attribution). A refusal is kept only when
no distractor supports the answer.

Papers are split into train and eval by a hash of their key, so eval papers are unseen.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentlab.attribution import attribute, split_sentences
from agentlab.citations import NOT_IN_LIBRARY, Source, format_sources, resolve
from agentlab.prompts import load_template
from agentlab.verify import Vocabulary
from finetune.questions import GENERIC_KEYS, ask_about
from litcore.text import FILLER_WORDS, GENERIC_WORDS, STOP_WORDS, terms

Embed = Callable[[list[str]], Any]
COMMON = STOP_WORDS | FILLER_WORDS | GENERIC_WORDS  # words a question is never about


@dataclass
class Made:
    """An example (or why a candidate was not kept)."""

    row: dict[str, Any] | None = None
    rejected: str | None = None


@dataclass
class Candidate:
    """An oracle chunk with the question and answer written about it."""

    chunk: Any
    paper: Any
    question: str
    answer: str  # without markers
    teacher: str | None = None
    key: str | None = None  # the fact a right answer states, when the question asks for one


class Teacher:
    """Writes a question and its answer about a passage, through an OpenAI-compatible server."""

    SCHEMA = {"type": "object", "properties": {"question": {"type": "string"},
                                               "answer": {"type": "string"}},
              "required": ["question", "answer"]}

    def __init__(self, client: Any, model: str) -> None:
        self.client, self.model = client, model

    @classmethod
    def from_settings(cls, s: Any, say: Callable[[str], None]) -> Teacher:
        """The teacher the settings name: ``teacher_model`` (default: the model) on
        ``teacher_api_base``, else on litlab's own server (started if need be, ``say``
        reporting it)."""
        from agentlab.server import client_for, connect

        # several teacher servers (comma-separated): the questions are spread over them
        client: Any = client_for(s.teacher_api_base, s, say) if s.teacher_api_base \
            else connect(s, say)
        return cls(client, s.teacher_model or s.model)

    def write(self, passage: str, title: str) -> tuple[str, str]:
        messages = [
            {"role": "system", "content":
                "You write study questions about research papers. Given a passage, write one "
                "question a researcher might ask that the passage answers, without naming the "
                "passage, and a one- or two-sentence answer that uses the passage's own words. "
                'Reply as JSON: {"question": ..., "answer": ...}'},
            {"role": "user", "content": f"Paper: {title}\n\nPassage:\n{passage}"},
        ]
        result = self.client.chat(
            messages, model=self.model, temperature=0.3, max_tokens=200,
            response_format={"type": "json_schema",
                             "json_schema": {"name": "qa", "schema": self.SCHEMA}})
        data = json.loads(result.text)
        return str(data["question"]).strip(), str(data["answer"]).strip()


def eval_papers(keys: Sequence[str], share: float, seed: int = 0) -> set[str]:
    """The papers held out for evaluation: a stable share of them, chosen by hash."""
    if len(keys) < 2 or share <= 0:
        return set()
    ranked = sorted(keys, key=lambda k: hashlib.sha1(f"{seed}:{k}".encode()).hexdigest())
    return set(ranked[:max(1, round(share * len(keys)))])


class Rarity:
    """How rare a word is across the library's chunks (inverse document frequency)."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.n = max(1, len(texts))
        self.df: Counter[str] = Counter()
        for t in texts:
            self.df.update({w.lower() for w in terms(t)})

    def idf(self, word: str) -> float:
        return math.log((1 + self.n) / (1 + self.df[word.lower()]))


SKIP_SECTIONS = re.compile(r"reference|bibliograph|acknowledg|appendix|author|contribution",
                           re.I)
_CITATION = re.compile(r"\s*\[\d+(?:\s*[,;–-]\s*\d+)*\]")


def quotable(section: str) -> bool:
    """Whether a section holds prose worth quoting (not references or acknowledgements)."""
    return not SKIP_SECTIONS.search(section or "")


def claims(chunk_text: str) -> Iterator[tuple[str, list[str]]]:
    """The sentences of a chunk fit to train on, with their words: a sensible length, ending
    as a sentence does, not a list of names, a reference or a table row; the paper's own
    reference markers and ligatures undone."""
    for s in split_sentences(chunk_text.replace("\n", " ")):
        s = unicodedata.normalize("NFKC", _CITATION.sub("", s)).strip()  # "ﬁ" as "fi"
        words = terms(s)
        if not 8 <= len(words) <= 40 or s.count("|") > 2 or not s.endswith("."):
            continue
        lower = sum(1 for w in words if w[0].islower())
        if lower < 0.5 * len(words) or s.count(",") > 4:  # a list of names, not a claim
            continue
        if sum(1 for w in words if w[0].isdigit()) > 0.2 * len(words):  # a table row
            continue
        yield s, words


def _informative(chunk_text: str, rarity: Rarity) -> list[tuple[str, list[str]]]:
    """The chunk's sentences fit to train on, with their content words, most informative
    first (rare terms, numbers; a long sentence does not win by length alone)."""
    scored = []
    for s, words in claims(chunk_text):
        content = [w for w in words if w.lower() not in COMMON and len(w) > 2]
        if len(content) >= 3:
            scored.append((sum(rarity.idf(w) for w in content) / len(words) ** 0.5, s, content))
    scored.sort(key=lambda x: -x[0])
    return [(s, content) for _, s, content in scored]


def extractive(chunk_text: str, rarity: Rarity) -> tuple[str, str] | None:
    """(question, answer) from a chunk without a model, or None when no sentence is fit:
    the most informative sentence, asked about by its rarest terms ("What does the library
    say about X, Y and Z?"). The retriever's question pairs are these."""
    ranked = _informative(chunk_text, rarity)
    if not ranked:
        return None
    sentence, content = ranked[0]
    def salience(w: str) -> float:  # names, versions and numbers say more than rare verbs
        technical = any(c.isupper() or c.isdigit() or c == "-" for c in w[1:])
        return rarity.idf(w) * (1.5 if technical else 1.0)

    top = sorted(dict.fromkeys(content), key=lambda w: -salience(w))[:3]
    ordered = [w for w in dict.fromkeys(content) if w in top]
    topic = ", ".join(ordered[:-1]) + f" and {ordered[-1]}" if len(ordered) > 1 else ordered[0]
    return f"What does the library say about {topic}?", sentence


def asked(chunk_text: str, rarity: Rarity) -> tuple[str, str, str] | None:
    """(question, answer, key fact): a question the way people ask one
    (:mod:`finetune.questions`: "How many papers does S2ORC contain?", "Which tool ...?")
    about the fact of the chunk's most informative sentence that has one, answered by the
    clause that states it; None when no fit sentence has a fact to ask for."""
    for sentence, _ in _informative(chunk_text, rarity):
        found = ask_about(sentence, GENERIC_KEYS)
        if found is not None:
            return found.question, found.answer, found.key
    return None


def cite(answer: str, n: int) -> str:
    """The answer with ``[n]`` after every sentence (before its final punctuation)."""
    out = []
    for s in split_sentences(answer):
        s = s.strip()
        m = re.match(r"(.*?)([.!?]?)$", s, flags=re.S)
        body, end = (m.group(1), m.group(2)) if m else (s, "")
        out.append(f"{body.rstrip()} [{n}]{end or '.'}")
    return " ".join(out)


def check(answer: str, sources: Sequence[Source], oracle: int | None, embed: Embed,
          threshold: float, vocabulary: Vocabulary | None = None) -> str | None:
    """Why an example must not be kept, or None when it is sound.

    An answerable example (``oracle`` set) must cite the oracle and nothing else, and every
    claim must be supported by the oracle; a refusal must be the sentinel."""
    if oracle is None:
        return None if answer.strip() == NOT_IN_LIBRARY else "a refusal must be NOT_IN_LIBRARY"
    checked = resolve(answer, sources)
    if checked.dropped:
        return f"cites [{checked.dropped[0]}], which is not among the sources"
    cited = {c.n for c in checked.citations}
    if not cited:
        return "cites nothing"
    if cited != {oracle}:
        wrong = sorted(cited - {oracle})
        return f"cites [{wrong[0]}], a distractor" if wrong else "does not cite the oracle"
    for s in attribute(answer, sources, embed, threshold, vocabulary):
        if s.claim and oracle not in s.sources:
            return f"the oracle does not support “{s.text[:60]}”"
    return None


def supports(answer: str, sources: Sequence[Source], embed: Embed, threshold: float,
             vocabulary: Vocabulary | None = None) -> bool:
    """Whether any of ``sources`` supports a claim of ``answer``."""
    return any(s.sources for s in attribute(answer, sources, embed, threshold, vocabulary)
               if s.claim)


@dataclass
class Builder:
    """Makes grounded and refusal examples from a library."""

    library: Any
    k: int = 5
    refusal_share: float = 0.15
    threshold: float = 0.55
    seed: int = 0
    teacher: Teacher | None = None
    home: Any = None
    rarity: Rarity | None = None
    rng: random.Random = field(init=False)
    asked_before: set[str] = field(default_factory=set)  # answers of examples made so far

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.template = load_template("rag", self.home)

    @property
    def embed(self) -> Embed:
        return self.library.embedder.embed_few

    def candidates(self, skip: set[int]) -> Iterator[tuple[Any, Any]]:
        """(paper, chunk) pairs, papers taken in turn so examples spread over the library."""
        cat = self.library.catalog
        per_paper = []
        texts: list[str] = []
        for p in cat.papers(state="indexed"):
            every = cat.chunks_of(int(p.id or 0))
            chunks = [c for c in every if c.id not in skip and len(c.text.split()) >= 12
                      and quotable(c.section)]
            texts += [c.text for c in every]
            random.Random(f"{self.seed}:{p.key}").shuffle(chunks)
            if chunks:
                per_paper.append((p, chunks))
        if self.rarity is None:
            self.rarity = Rarity(texts)
        while per_paper:
            for entry in list(per_paper):
                p, chunks = entry
                yield p, chunks.pop()
                if not chunks:
                    per_paper.remove(entry)

    def write(self, paper: Any, chunk: Any) -> Candidate | None:
        if self.teacher is not None:
            q, a = self.teacher.write(chunk.text, paper.title)
            return Candidate(chunk, paper, q, a, self.teacher.model) if q and a else None
        assert self.rarity is not None
        found = asked(chunk.text, self.rarity)
        if found is not None:
            return Candidate(chunk, paper, found[0], found[1], key=found[2])
        qa = extractive(chunk.text, self.rarity)
        return Candidate(chunk, paper, *qa) if qa else None

    def distractors(self, question: str, oracle_chunk: Any, n: int,
                    other_papers: bool = False) -> list[Any]:
        """The passages search finds for the question, besides the oracle: hard negatives.
        For a refusal, only passages of other papers: a question the library cannot answer
        is one whose paper is not there, not one whose answer is paraphrased."""
        hits = [h for h in self.library.search(question, n + (12 if other_papers else 4))
                if h.chunk.id != oracle_chunk.id and h.chunk.text[:80] not in oracle_chunk.text
                and not (other_papers and h.paper.id == oracle_chunk.paper_id)]
        return hits[:n]

    def make(self, paper: Any, chunk: Any, refusal: bool) -> Made:
        cand = self.write(paper, chunk)
        if cand is None:
            return Made(rejected="no sentence fit to quote" if self.teacher is None
                        else "the teacher wrote nothing")
        if cand.answer in self.asked_before:  # overlapping chunks hold the same sentence
            return Made(rejected="the same answer as an earlier example")
        hits = self.distractors(cand.question, chunk, self.k - 1 if not refusal else self.k,
                                other_papers=refusal)
        if refusal:
            if len(hits) < self.k:
                return Made(rejected="too few distractors")
            sources = [_source(i + 1, h.chunk, h.paper) for i, h in enumerate(hits)]
            if supports(cand.answer, sources, self.embed, self.threshold,
                        Vocabulary.of(self.library)):
                return Made(rejected="a distractor answers the question")
            return Made(self._row(cand, sources, NOT_IN_LIBRARY, None))
        pos = self.rng.randrange(len(hits) + 1)
        parts: list[tuple[Any, Any]] = [(h.chunk, h.paper) for h in hits]
        parts.insert(pos, (chunk, paper))
        sources = [_source(i + 1, c, p) for i, (c, p) in enumerate(parts)]
        answer = cite(cand.answer, pos + 1)
        reason = check(answer, sources, pos + 1, self.embed, self.threshold,
                       Vocabulary.of(self.library))
        if reason:
            return Made(rejected=reason)
        self.asked_before.add(cand.answer)
        return Made(self._row(cand, sources, answer, pos + 1))

    def _row(self, cand: Candidate, sources: list[Source], answer: str,
             oracle: int | None) -> dict[str, Any]:
        messages = self.template.render(question=cand.question, sources=format_sources(sources),
                                        not_in_library=NOT_IN_LIBRARY)
        return {
            "prompt": messages, "completion": [{"role": "assistant", "content": answer}],
            "oracle": oracle, "n_sources": len(sources), "answerable": oracle is not None,
            # the passages as numbered, for GRPO's rewards that verify against them
            "sources": [{"n": s.n, "title": s.title, "section": s.section, "text": s.text}
                        for s in sources],
            "meta": {"paper": cand.paper.key, "chunk_id": cand.chunk.id,
                     "question": cand.question, "teacher": cand.teacher, "key": cand.key,
                     "kind": "grounded" if oracle is not None else "refusal",
                     "sources": [s.chunk_id for s in sources]},
        }


def _source(n: int, chunk: Any, paper: Any) -> Source:
    return Source(n=n, chunk_id=int(chunk.id or 0), paper=paper.arxiv_id or paper.key,
                  title=paper.title, section=chunk.section, pages=chunk.pages, text=chunk.text,
                  key=paper.key)
