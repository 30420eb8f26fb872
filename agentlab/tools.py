"""One agent turn's tools and what they gather: numbered sources and a trace of steps.

Paper text is data: the one tool that changes state (``index_paper``) runs only for an arXiv id
the person's own message names together with a request to add it, whatever a retrieved passage
says. There is no shell or code tool; the calculator evaluates arithmetic only.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool

from agentlab.calculator import calculate
from agentlab.chats import Step
from agentlab.citations import Numbering, Source, format_sources

_INDEX_VERBS = re.compile(r"\b(index|add|download|fetch|ingest|import)\b", re.I)
_ARXIV_ASKED = re.compile(r"\barxiv\b|\b\d{4}\.\d{4,5}\b|\b[a-z-]+(?:\.[A-Z]{2})?/\d{7}\b"
                          r"|\b(?:index|download|fetch|ingest)\b", re.I)


_CALL = re.compile(r'\s*\{\s*"tool"')  # a schema step that calls a tool ('{ "tool": ...')


class ToolRefused(Exception):
    """A tool call the agent may not make; the model sees the reason as an observation."""


class Stopped(Exception):
    """The person asked the turn to stop."""


def explicitly_requested(question: str, arxiv_id: str) -> bool:
    """True when the person's own message names this paper and asks to add it."""
    from retrievers.sources.arxiv_ids import BadArxivId, parse_arxiv_id

    try:
        wanted = parse_arxiv_id(arxiv_id).id
    except BadArxivId:
        return False
    named = set()
    for token in re.findall(r"[\w./:-]+", question):
        try:
            named.add(parse_arxiv_id(token.rstrip(".,;:")).id)
        except BadArxivId:
            continue
    return wanted in named and bool(_INDEX_VERBS.search(question))


class _Trace(list[Step]):
    """The turn's steps; each one added is also told to ``on_step`` (the app's live view)."""

    def __init__(self, on_step: Callable[[Step], None] | None) -> None:
        super().__init__()
        self.on_step = on_step

    def append(self, step: Step) -> None:
        super().append(step)
        if self.on_step is not None:
            self.on_step(step)


def hop(step: Step) -> str | None:
    """One line a person reads for a step of the agent's turn (None: nothing to say)."""
    d = step.data
    if step.kind == "plan":
        return f"plan ({d.get('kind')}): " + "; ".join(d.get("sub_questions", []))
    if step.kind == "tool":
        args = d.get("args") or {}
        shown = args.get("query") or args.get("expression") or (
            f"[{args['source']}]" if args.get("source") else
            " ".join(str(v) for v in args.values() if v))
        result = "" if d.get("tool") != "calculator" else f" = {d.get('result', '?')}"
        return f"{d.get('tool')} {shown}{result}" + (f" (error: {d['error']})"
                                                     if "error" in d else "")
    if step.kind == "model":
        if "replaced" in d:
            r = d["replaced"]
            return f"model asked for {r['tool']} again: " + (
                f"{r['with']['tool']} instead" if r.get("with") else "nothing new to look up")
        if "error" in d:
            return f"model: {d['error']}"
        return None if d.get("tool_calls") or _CALL.match(d.get("text", "")) \
            else "model: final answer"
    if step.kind == "combine":
        return "combined the parts' numbers" if d.get("expression") or d.get("plan") != "parts" \
            else "combined the parts' answers"
    if step.kind == "stop":
        return f"stopped: {d.get('reason')}"
    if step.kind == "end":
        return f"ended with {d.get('ended')}"
    return None


class Turn:
    """What one agent turn gathers: numbered sources and a trace of steps."""

    def __init__(self, question: str, library: Any, arxiv: Callable[[], Any] | None,
                 stop: threading.Event | None = None,
                 on_step: Callable[[Step], None] | None = None,
                 confirm: Callable[[str], bool] | None = None) -> None:
        self.question, self.library, self.arxiv = question, library, arxiv
        self.confirm = confirm  # asks the person before the library changes (the app)
        self.stop = stop or threading.Event()
        self.numbering = Numbering(library.catalog.figures_of if library is not None
                                   else lambda _pid: [])
        self.steps: list[Step] = _Trace(on_step)
        self.found: dict[str, list[Source]] = {}  # each search's query -> its passages

    @property
    def sources(self) -> list[Source]:
        return self.numbering.sources

    def number(self, hits: list[Any]) -> list[Source]:
        return self.numbering.add(hits)

    # The tools. Docstrings are what the model reads.
    def search_library(self, query: str, k: int = 4) -> str:
        """Search the indexed deep-learning papers by meaning and keywords; returns numbered
        passages to cite as [n]."""
        if self.library is None or self.library.catalog.is_empty():
            return "The library is empty."
        sources = self.number(self.library.search(query, max(1, min(int(k), 10))))
        self.found[query] = sources
        return format_sources(sources) if sources else "No passage matches."

    def search_figures(self, query: str, k: int = 3) -> str:
        """Search the figures of the indexed papers (plots, diagrams, architectures, samples)
        by what they show; returns numbered figure captions to cite as [n]."""
        if self.library is None or self.library.catalog.is_empty():
            return "The library is empty."
        hits = self.library.search_figures(query, max(1, min(int(k), 6)))
        sources = self.numbering.add_figures(hits)
        return format_sources(sources) if sources else "No figure matches."

    def read(self, source: int = 0, paper: str = "", section: str = "") -> str:
        """Read more of a paper: the passages around source [n] (source: its number), or a
        section of a paper in the library (paper: arXiv id or title words; section: its
        heading or number)."""
        from retrievers.library import Hit

        if self.library is None:
            raise ToolRefused("there is no library")
        if source:
            return self._neighbours(int(source))
        p = self.library.catalog.find(paper, titles=True) if paper else None
        if p is None or p.id is None:
            raise ToolRefused(f"no paper '{paper}' in the library; use search_library, or "
                              "give source: the number of a passage found")
        chunks = self.library.catalog.chunks_of(p.id)
        wanted = [c for c in chunks if section.lower() in c.section.lower()]
        if not wanted:
            names = sorted({c.section for c in chunks if c.section})
            raise ToolRefused(f"no section '{section}'; sections are: {', '.join(names)}")
        return format_sources(self.number([Hit(c, p, 0.0) for c in wanted[:4]]))

    def _neighbours(self, n: int) -> str:
        from retrievers.library import Hit

        found = next((s for s in self.sources if s.n == n and s.figure_id is None), None)
        if found is None:
            raise ToolRefused(f"there is no passage [{n}]; the passages are "
                              f"{', '.join(f'[{s.n}]' for s in self.sources) or 'none yet'}")
        chunk = self.library.catalog.chunks_by_id([found.chunk_id]).get(found.chunk_id)
        paper = self.library.catalog.find(found.paper) if chunk is not None else None
        if chunk is None or paper is None or paper.id is None:
            raise ToolRefused(f"passage [{n}] is no longer in the library")
        chunks = self.library.catalog.chunks_of(paper.id)
        at = next(i for i, c in enumerate(chunks) if c.id == chunk.id)
        around = [c for c in chunks[max(0, at - 1):at + 2] if c.id != chunk.id]
        if not around:
            return f"Passage [{n}] is the whole paper."
        return format_sources(self.number([Hit(c, paper, 0.0) for c in around]))

    def search_arxiv(self, query: str, max_results: int = 5) -> str:
        """Search arXiv for papers (not yet in the library); returns ids and titles."""
        if self.arxiv is None:
            raise ToolRefused("arXiv search is not available here")
        client = self.arxiv()
        try:
            entries = client.search(query, max(1, min(int(max_results), 10)))
        finally:
            client.close()
        return "\n".join(f"{e.id}: {e.title} ({(e.published or '')[:4]})" for e in entries) \
            or "arXiv found nothing."

    def index_paper(self, arxiv_id: str) -> str:
        """Add an arXiv paper to the library. Only when the person asked for this paper."""
        if not explicitly_requested(self.question, arxiv_id):
            raise ToolRefused(f"indexing {arxiv_id} needs the person's explicit request naming "
                              "it; tell them they can ask for it")
        if self.confirm is not None and not self.confirm(f"Add arXiv {arxiv_id} to the library?"):
            raise ToolRefused(f"the person chose not to add {arxiv_id}")
        report = self.library.index_arxiv([arxiv_id], client=self.arxiv() if self.arxiv else None)
        if report.failed:
            return f"indexing failed: {report.failed[0][1]}"
        return f"indexed {arxiv_id} ({len(report.added + report.replaced)} added)"

    def calculator(self, expression: str) -> str:
        """Evaluate arithmetic, e.g. '2 * 4096 * 4096 / 1e6'."""
        return repr(calculate(expression))

    def tools(self) -> list[BaseTool]:
        """The turn's tools. arXiv's (search, index) only when the person's message is about
        arXiv or names a paper to add: a small model otherwise reaches for them unasked."""
        out: list[BaseTool] = []
        fns: list[Callable[..., str]] = [self.search_library, self.search_figures, self.read,
                                         self.calculator]
        if _ARXIV_ASKED.search(self.question):
            fns[3:3] = [self.search_arxiv, self.index_paper]
        for fn in fns:
            out.append(StructuredTool.from_function(self._traced(fn), name=fn.__name__,
                                                    description=(fn.__doc__ or "").strip()))
        return out

    def made(self, name: str, args: dict[str, Any]) -> bool:
        """Whether this call (defaults filled in; case and spaces aside) was made before in
        the turn."""
        key = self._key(name, args)
        return any(self._key(str(s.data.get("tool")), s.data.get("args") or {}) == key
                   for s in self.steps if s.kind == "tool")

    def _key(self, name: str, args: dict[str, Any]) -> str:
        try:
            bound = inspect.signature(getattr(self, name)).bind(**args)
            bound.apply_defaults()
            args = dict(bound.arguments)
        except (AttributeError, TypeError):
            pass
        return name + json.dumps({k: " ".join(str(v).lower().split())
                                  for k, v in args.items()}, sort_keys=True)

    def call(self, name: str, args: dict[str, Any]) -> str:
        """Run a tool as the agent itself decided it (a plan's search, a replaced step, the
        calculator of a combination), traced as the model's calls are."""
        return str(self._traced(getattr(self, name))(**args))

    def _traced(self, fn: Callable[..., str]) -> Callable[..., str]:
        @functools.wraps(fn)  # the tool's schema comes from fn's signature and docstring
        def run(**kwargs: Any) -> str:
            if self.stop.is_set():
                raise Stopped
            t = time.perf_counter()
            try:
                out = fn(**kwargs)
            except Exception as e:
                self.steps.append(Step("tool", 1000 * (time.perf_counter() - t),
                                       {"tool": fn.__name__, "args": kwargs, "error": str(e)}))
                raise
            self.steps.append(Step("tool", 1000 * (time.perf_counter() - t),
                                   {"tool": fn.__name__, "args": kwargs, "result": out[:500]}))
            return out

        return run
