"""Answering with citations: question → (query rewrite) → hybrid retrieval → numbered sources →
streamed answer with [n] markers → every marker checked against the sources.

Every step is timed and kept as a :class:`~agentlab.chats.Step`, so a turn can be stored and
shown as a trace. When retrieval finds nothing relevant the model is not asked at all: the answer
is the :data:`~agentlab.citations.NOT_IN_LIBRARY` message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agentlab.chats import Step
from agentlab.citations import (
    ABSTAINED_MESSAGE,
    NOT_IN_LIBRARY,
    NOT_IN_LIBRARY_MESSAGE,
    WITHHELD_MESSAGE,
    Numbering,
    Source,
    format_sources,
    resolve,
    split_reasoning,
)
from agentlab.prompts import load_template

OnToken = Callable[[str], None]
Generate = Callable[..., Any]  # (messages, **request fields) -> ChatResult


@dataclass
class Answer:
    """A finished turn: the answer alone, its reasoning, its checked citations and its trace."""

    question: str
    text: str
    model: str
    prompt: str
    reasoning: str = ""
    citations: list[Source] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)  # markers that pointed at no source
    not_in_library: bool = False
    sources: list[Source] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    raw: str = ""  # what the model wrote, before checking
    result: Any = None  # the client's ChatResult, when the model was asked
    sentences: list[Any] = field(default_factory=list)  # attribution.Sentence, one a sentence
    unverified: list[int] = field(default_factory=list)  # markers whose source does not support
    # no claim of the model's text is supported: ``text`` says so and the closest passages
    # stand in for an answer; the model's own words are kept in ``model_text``
    abstained: bool = False
    model_text: str = ""
    # the same, after an answer line: the source's sentence is the answer, the model's
    # words are withheld (kept in ``model_text``); not a refusal
    withheld: bool = False

    def abstain(self, lead: str = "") -> None:
        """Take out an answer none of whose (model-written) claims a source supports. After an
        answer line (the source's own words, quoted) the line stands as the answer and the
        model's words are withheld; without one, litlab abstains."""
        self.model_text = self.text[len(lead):]
        if lead.strip():
            self.withheld, self.text = True, lead + WITHHELD_MESSAGE
        else:
            self.abstained, self.text = True, ABSTAINED_MESSAGE
        self.citations = [c for c in self.citations if lead and f"[{c.n}]" in lead]

    def to_dict(self) -> dict[str, Any]:
        r = self.result
        return {
            "question": self.question, "answer": self.text, "reasoning": self.reasoning,
            "citations": [c.to_dict() for c in self.citations],
            "dropped_citations": self.dropped, "not_in_library": self.not_in_library,
            "model": self.model, "prompt": self.prompt,
            "prompt_tokens": r.prompt_tokens if r else 0,
            "completion_tokens": r.completion_tokens if r else 0,
            "ttft_s": r.ttft_s if r else None, "total_s": r.total_s if r else 0.0,
            "sentences": [s.to_dict() for s in self.sentences],
            "unverified_citations": self.unverified,
            "abstained": self.abstained, "withheld": self.withheld,
            "model_text": self.model_text,
            "closest": [s.to_dict() for s in self.sources[:3]] if self.abstained else [],
            "trace": [s.to_dict() for s in self.steps],
        }


def _refusal(text: str) -> bool:
    return text.strip().startswith(NOT_IN_LIBRARY)


class _Clock:
    def __init__(self, steps: list[Step]) -> None:
        self.steps = steps
        self.t = time.perf_counter()

    def step(self, kind: str, **data: Any) -> None:
        now = time.perf_counter()
        self.steps.append(Step(kind, 1000 * (now - self.t), data))
        self.t = now


class Assistant:
    """Answers questions over a library through one model client."""

    def __init__(self, *, client: Any, model: str, library: Any = None, home: Path | None = None,
                 max_tokens: int | None = None, temperature: float | None = None, k: int = 5,
                 min_relevance: float = 0.3, attribution: bool = True,
                 attribution_threshold: float = 0.55, citation_grammar: bool = False,
                 figure_k: int = 0, answer_line: bool = False,
                 repetition_penalty: float = 1.0) -> None:
        self.client, self.model, self.library, self.home = client, model, library, home
        self.max_tokens, self.temperature = max_tokens, temperature
        self.k, self.min_relevance = k, min_relevance
        self.retrieval_lock = threading.Lock()
        self.attribution, self.attribution_threshold = attribution, attribution_threshold
        self.citation_grammar = citation_grammar
        self.figure_k = figure_k
        self.answer_line = answer_line
        self.repetition_penalty = repetition_penalty

    @classmethod
    def from_settings(cls, s: Any, client: Any, library: Any,
                      model: str | None = None) -> Assistant:
        """An Assistant with the person's settings (``s``: agentlab.settings.Settings)."""
        return cls(client=client, model=model or s.model, library=library, home=s.home_dir,
                   max_tokens=s.max_tokens, temperature=s.temperature, k=s.top_k,
                   min_relevance=s.min_relevance, attribution=s.attribution,
                   attribution_threshold=s.attribution_threshold,
                   citation_grammar=s.citation_grammar, figure_k=s.figure_k,
                   answer_line=s.answer_line, repetition_penalty=s.repetition_penalty)

    def retrieve(self, query: str) -> list[Source]:
        """The relevant chunks for ``query``, numbered from 1 (with the figures they hold)."""
        with self.retrieval_lock:  # one library, searched by one thread at a time
            return self._retrieve(query)

    def _retrieve(self, query: str) -> list[Source]:
        lib = self.library
        if lib is None or lib.catalog.is_empty():
            return []
        # Every hit is held to the same bar, whichever ranking found it: a chunk that shares
        # one rare word with the question is not a reason to ask the model.
        hits = [h for h in lib.search(query, self.k)
                if h.dense_score is not None and h.dense_score >= self.min_relevance]
        numbering = Numbering(lib.catalog.figures_of)
        numbering.add(hits)
        if hits and self.figure_k:
            # Figures whose captions meet the same bar join the sources, so an answer can cite
            # a figure. Captions only here: CLIP would put torch on a cold `ask`'s path.
            numbering.add_figures([f for f in lib.search_figures(query, self.figure_k,
                                                                 images=False)
                                   if f.relevance is not None
                                   and f.relevance >= self.min_relevance])
        return numbering.sources

    def answer(self, question: str, *, prompt: str = "rag", rewrite: bool = False,
               history: Sequence[dict[str, str]] = (), on_token: OnToken | None = None,
               generate: Generate | None = None,
               evidence: Sequence[Source] | None = None,
               lines: Callable[[Sequence[Source]], list[tuple[int, str]]] | None = None
               ) -> Answer:
        """Answer ``question``. ``generate`` (messages → ChatResult) replaces the streamed call
        to the model, e.g. for an evaluation runner's cache; ``evidence``, when given, is the
        sources instead of a retrieval (the agent's, gathered by its tools); ``lines`` chooses
        the answer lines over the sources instead of the one best sentence (the agent's plan:
        one a part)."""
        given = evidence
        template = load_template(prompt, self.home)
        steps: list[Step] = []
        clock = _Clock(steps)
        values: dict[str, Any] = {"question": question}
        sources: list[Source] = []
        if "sources" in template.inputs:
            query = question
            if rewrite and given is None:
                query = self._rewrite(question) or question
                clock.step("rewrite", query=query)
            sources = self.retrieve(query) if given is None else \
                [replace(s, n=i) for i, s in enumerate(given, start=1)]
            clock.step("retrieve", query=query,
                       sources=[{"n": s.n, "chunk_id": s.chunk_id, "paper": s.paper,
                                 "section": s.section, "pages": s.pages,
                                 **({"figure_id": s.figure_id} if s.figure_id else {})}
                                for s in sources])
            if not sources:
                return Answer(question, NOT_IN_LIBRARY_MESSAGE, self.model, prompt,
                              not_in_library=True, steps=steps)
            values["sources"] = format_sources(sources)
        if "not_in_library" in template.inputs:
            values["not_in_library"] = NOT_IN_LIBRARY
        messages = template.render(**values)
        messages[-1:-1] = list(history)  # earlier turns go between the system and the question
        clock.step("prompt", template=prompt, messages=len(messages),
                   chars=sum(len(m["content"]) for m in messages))

        lead = ""
        if self.answer_line and sources:
            from agentlab.answer_line import best_sentence, line

            chosen = lines(sources) if lines is not None else [
                b for b in [best_sentence(question, sources, getattr(self.library, "idf", None))]
                if b is not None]
            if chosen:
                lead = "".join(line(*b) for b in chosen)
                if on_token is not None:
                    on_token(lead)  # the source's words are on screen before the model's
            clock.step("answer_line", source=chosen[0][0] if chosen else None,
                       **({"sources": [b[0] for b in chosen]} if len(chosen) > 1 else {}))
        extra = self._decoding(sources)
        result = generate(messages, **extra) if generate is not None else \
            self._generate(messages, on_token, extra)
        clock.step("generate", model=result.model, ttft_ms=1000 * (result.ttft_s or 0),
                   prompt_tokens=result.prompt_tokens,
                   completion_tokens=result.completion_tokens,
                   finish_reason=result.finish_reason)
        reasoning, text = split_reasoning(result.text)
        if _refusal(text):
            lead = ""  # the model's refusal stands alone
        checked = resolve(lead + text, sources)
        answer = Answer(question, checked.text, result.model, prompt, reasoning=reasoning,
                        citations=checked.citations, dropped=checked.dropped,
                        not_in_library=checked.not_in_library, sources=sources, steps=steps,
                        raw=result.text, result=result)
        if self.attribution and sources and not checked.not_in_library:
            self.attribute(answer, lead)
            from agentlab.attribution import split_sentences

            written = answer.sentences[len(split_sentences(lead)):]  # the model's, not the line
            claims = [s for s in written if s.claim]
            if claims and not any(s.supported for s in claims):
                answer.abstain(lead)
        clock.step("cite", cited=[c.n for c in answer.citations], dropped=answer.dropped,
                   unverified=answer.unverified, abstained=answer.abstained,
                   withheld=answer.withheld,
                   supported=sum(s.supported for s in answer.sentences),
                   claims=sum(s.claim for s in answer.sentences))
        return answer

    def attribute(self, answer: Answer, lead: str = "") -> None:
        from agentlab.attribution import attribute_answer, split_sentences
        from agentlab.verify import Vocabulary

        attribute_answer(answer, self.library.embedder.embed_few, self.attribution_threshold,
                         Vocabulary.of(self.library), lead=len(split_sentences(lead)))

    def _decoding(self, sources: Sequence[Source]) -> dict[str, Any]:
        """vLLM's own request fields: the repetition penalty, and the citation format held by
        decoding (``citation_grammar``: structured outputs with :func:`citation_regex` over the
        sources' numbers)."""
        body: dict[str, Any] = {}
        if self.repetition_penalty != 1.0:
            body["repetition_penalty"] = self.repetition_penalty
        if self.citation_grammar and sources:
            from agentlab.citations import citation_regex

            body["structured_outputs"] = {"regex": citation_regex([s.n for s in sources])}
        return {"extra_body": body} if body else {}

    def _generate(self, messages: list[dict[str, str]], on_token: OnToken | None,
                  extra: dict[str, Any]) -> Any:
        """The streamed answer; stopped (on the server too) as soon as it repeats itself, its
        text then what came before the loop (``finish_reason`` "repetition")."""
        from agentlab.repetition import RepetitionGuard

        stream = self.client.stream(messages, model=self.model, max_tokens=self.max_tokens,
                                    temperature=self.temperature, **extra)
        guard = RepetitionGuard()
        try:
            for piece in stream:
                if on_token is not None:
                    on_token(piece)
                if guard.feed(piece):
                    break
        except BaseException:
            stream.close()  # Ctrl-C or a closed UI: stop generating on the server too
            raise
        if guard.cut is not None:
            stream.close()
            result = stream.result
            result.text, result.finish_reason = guard.answer, "repetition"
            return result
        return stream.result

    def _rewrite(self, question: str) -> str:
        messages = load_template("rewrite", self.home).render(question=question)
        result = self.client.chat(messages, model=self.model, max_tokens=32, temperature=0)
        return str(result.text).strip().splitlines()[0].strip().strip('"') if result.text else ""
