"""Examples from the person's feedback in ``chats.sqlite``.

- SFT: every thumbs-up answer, and every corrected answer (the correction is the completion);
- DPO: a corrected answer is preferred over the answer it corrects; a thumbs-up answer is
  preferred over a thumbs-down answer to the same question.

The prompt is rebuilt as the model saw it: the template the answer was asked with (the RAG
prompt for agent turns) and the sources retrieved for it, numbered as they were, read back from
the library by chunk id. A turn whose sources have since left the library is skipped and
counted, never trained on with the wrong passages. Answers are trained on as the model wrote
them: the answer line litlab put before the model's words (quoted from a source) is left out of
both replies, since litlab adds it again at answer time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from agentlab.answer_line import model_words
from agentlab.chats import ChatStore, RatedTurn
from agentlab.citations import (
    ABSTAINED_MESSAGE,
    NOT_IN_LIBRARY,
    WITHHELD_MESSAGE,
    Source,
    format_sources,
)
from agentlab.prompts import PromptError, load_template


@dataclass
class FromFeedback:
    sft: list[dict[str, Any]] = field(default_factory=list)
    dpo: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)


NO_MODEL = "answered without the model (nothing relevant in the library)"
NOT_KEPT = "the model's words were not shown (no sentence of them was supported)"


def _shown_without_the_model(answer: str) -> bool:
    """litlab abstained or withheld the model's words: what was shown is not the model's."""
    return answer.rstrip().endswith((ABSTAINED_MESSAGE, WITHHELD_MESSAGE))
SOURCES_GONE = "its sources are no longer in the library"


def _prompt(turn: RatedTurn, library: Any, home: Any) -> list[dict[str, str]] | str:
    """The messages the model was sent for ``turn``, rebuilt; or why they cannot be (the turn
    is then skipped and counted: a prompt rebuilt from another template or other passages
    would teach the model the wrong thing)."""
    name = turn.prompt if turn.prompt and turn.prompt != "agent" else "rag"
    try:
        template = load_template(name, home)
    except PromptError as e:
        return f"its prompt template cannot be loaded ({e.message})"
    values: dict[str, Any] = {"question": turn.question}
    if "sources" in template.inputs:
        if not turn.chunk_ids:
            return NO_MODEL
        if library is None:
            return SOURCES_GONE
        chunks = library.catalog.chunks_by_id([i for i in turn.chunk_ids if i > 0])
        figures = library.catalog.figures_by_id([-i for i in turn.chunk_ids if i < 0])
        if len(chunks) + len(figures) != len(set(turn.chunk_ids)):
            return SOURCES_GONE
        papers = library.catalog.papers_by_id({int(x.paper_id or 0) for x in
                                               [*chunks.values(), *figures.values()]})
        sources = []
        for n, cid in enumerate(turn.chunk_ids, 1):
            if cid < 0:  # a figure among the sources, as Source.from_figure numbered it
                f = figures[-cid]
                sources.append(Source.from_figure(
                    n, SimpleNamespace(figure=f, paper=papers[int(f.paper_id or 0)])))
                continue
            c = chunks[cid]
            p = papers[int(c.paper_id or 0)]
            sources.append(Source(n=n, chunk_id=cid, paper=p.arxiv_id or p.key, title=p.title,
                                  section=c.section, pages=c.pages, text=c.text, key=p.key))
        values["sources"] = format_sources(sources)
    if "not_in_library" in template.inputs:
        values["not_in_library"] = NOT_IN_LIBRARY
    try:
        return template.render(**values)
    except PromptError as e:
        return f"its prompt template '{name}' cannot be rendered ({e.message})"


def build(chats: ChatStore, library: Any, home: Any = None) -> FromFeedback:
    out = FromFeedback()
    skipped: dict[str, int] = defaultdict(int)
    prompts: dict[int, list[dict[str, str]]] = {}
    turns = chats.rated_turns()
    for t in turns:
        p = _prompt(t, library, home)
        if isinstance(p, str):
            skipped[p] += 1
        else:
            prompts[t.message_id] = p

    def reply(text: str) -> list[dict[str, str]]:
        return [{"role": "assistant", "content": model_words(text)}]

    by_question: dict[str, list[RatedTurn]] = defaultdict(list)
    for t in turns:
        if t.message_id not in prompts:
            continue
        by_question[t.question.strip().lower()].append(t)
        meta = {"message_id": t.message_id, "question": t.question, "kind": "feedback"}
        not_the_model = _shown_without_the_model(t.answer)
        good = t.preferred or (t.answer if t.rating == 1 and not not_the_model else None)
        if good:
            out.sft.append({"prompt": prompts[t.message_id], "completion": reply(good),
                            "meta": meta})
        elif not_the_model:
            skipped[NOT_KEPT] += 1
        # a correction is a preference pair only when what it corrects was the model's reply
        if t.preferred and not not_the_model and \
                model_words(t.preferred).strip() != model_words(t.answer).strip():
            out.dpo.append({"prompt": prompts[t.message_id], "chosen": reply(t.preferred),
                            "rejected": reply(t.answer), "meta": {**meta, "pair": "edit"}})
    for group in by_question.values():
        ups = [t for t in group if t.rating == 1 and
               (t.preferred or not _shown_without_the_model(t.answer))]
        downs = [t for t in group if t.rating == -1 and not _shown_without_the_model(t.answer)]
        for up in ups:
            for down in downs:
                if model_words(up.answer).strip() == model_words(down.answer).strip():
                    skipped["thumbs up and down on the same answer"] += 1
                    continue
                out.dpo.append({"prompt": prompts[down.message_id],
                                "chosen": reply(up.preferred or up.answer),
                                "rejected": reply(down.answer),
                                "meta": {"message_id": down.message_id,
                                         "chosen_id": up.message_id, "question": up.question,
                                         "kind": "feedback", "pair": "thumbs"}})
    out.skipped = dict(skipped)
    return out
