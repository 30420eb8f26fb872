"""Running a suite: targets × prompts × cases × repeats, N at a time so vLLM batches them.

run: load the suite → index its library (once; later runs reuse it) → resume an interrupted
run of the same suite and settings, or start one → each unit: produce the output (completions
cached by everything that determines them) → check the assertions → store the result.

A unit whose request fails (a server that went away, a model it does not serve) is a failed
result carrying the reason; the run goes on and never ends in a traceback.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.assertions import JUDGED, Judge, Output, applies, check
from evals.store import Result, RunStore
from evals.suite import Assertion, Case, InlinePrompt, Suite, Target
from litcore.errors import UserError

Progress = Callable[[int, int, int], None]  # done, total, passed so far


@dataclass
class Unit:
    case: Case
    target: Target
    prompt: str
    repeat: int

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (str(self.case.id), self.target.name, self.prompt, self.repeat)


@dataclass
class RunSummary:
    run_id: str
    results: list[Result] = field(default_factory=list)
    resumed: int = 0  # results already stored by an interrupted run
    requests: int = 0  # completions and verdicts actually sent to a server
    cache_hits: int = 0
    seconds: float = 0.0
    stopped: bool = False  # stopped early: run the suite again to resume
    servers: dict[str, int] = field(default_factory=dict)  # answers per server (several only)
    notes: list[str] = field(default_factory=list)  # e.g. a server that left the run
    switched: list[str] = field(default_factory=list)  # models the server was switched to
    retried: int = 0  # cases asked again, alone, after their request timed out

    @property
    def pass_rate(self) -> float:
        return sum(r.passed for r in self.results) / len(self.results) if self.results else 0.0


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def suite_library(suite: Suite, home: Path) -> Any:
    """The library the suite names, indexed under LITLAB_HOME/runs/evals/libraries/ once (an
    index run only re-reads changed files); None when the suite names none."""
    if not suite.library:
        return None
    from retrievers.library import Library

    paths = [(suite.path.parent / p).resolve() for p in suite.library]
    for p in paths:
        if not p.exists():
            raise UserError(f"{suite.path}: library path {p} does not exist",
                            "paths are relative to the suite file")
    lib = Library(home / "runs" / "evals" / "libraries" / digest([str(p) for p in paths])[:12])
    report = lib.index_files(paths)
    if report.failed:
        raise UserError(f"{suite.path}: could not index {report.failed[0][0]}: "
                        f"{report.failed[0][1]}", "fix or remove that file")
    return lib


class Runner:
    """Runs one suite against one model server (``client``: agentlab.client.ModelClient)."""

    def __init__(self, suite: Suite, settings: Any, client: Any, *, store: RunStore | None = None,
                 library: Any = None, use_cache: bool = True) -> None:
        self.suite, self.settings, self.client = suite, settings, client
        self.store = store or RunStore(settings.home_dir)
        self.library = library
        self.use_cache = use_cache
        self.requests = 0
        self.cache_hits = 0
        self._count = threading.Lock()
        self.retrieval_lock = threading.Lock()
        # Inline prompts become template files beside the suite's library, where the
        # assistant looks templates up.
        self.prompt_home = self.store.folder / "prompts" / suite.digest
        for p in suite.prompts:
            if isinstance(p, InlinePrompt):
                _write_template(self.prompt_home / "prompts" / f"{p.name}.toml", p)

    # -- the run ---------------------------------------------------------------------------
    def run(self, *, jobs: int = 4, targets: list[str] | None = None,
            tags: list[str] | None = None, repeat: int = 1,
            progress: Progress | None = None,
            stop: threading.Event | None = None,
            switch: Callable[[str], Any] | None = None) -> RunSummary:
        """Run every unit not yet done. Setting ``stop`` ends the run after the cases in
        flight; it stays unfinished and the next run of the same suite resumes it.

        ``switch`` (a model name → a client for a server that serves it): targets whose
        models need different base models run one base at a time, the server switched
        between them; a base that cannot be served fails its cases with the reason."""
        from agentlab.client import TIMED_OUT

        started = time.perf_counter()
        units = self.units(targets, tags, repeat)
        if not units:
            raise UserError(f"{self.suite.path}: no case matches the filters",
                            "check --target and --filter")
        config = {"targets": targets, "tags": tags, "repeat": repeat,
                  "suite": str(self.suite.path)}
        run_id = self.store.unfinished(self.suite.digest, config)
        if run_id is None:
            run_id = f"{self.suite.path.stem}-{time.strftime('%Y%m%d-%H%M%S')}-" \
                     f"{digest([time.time(), config])[:4]}"
            self.store.start(run_id, str(self.suite.path), self.suite.digest, config)
        done = self.store.done(run_id)
        summary = RunSummary(run_id, resumed=len(done & {u.key for u in units}))
        todo = [u for u in units if u.key not in done]
        passed = sum(r.passed for r in self.store.results(run_id))
        finished = len(units) - len(todo)
        if progress:
            progress(finished, len(units), passed)
        stopped = False
        groups = self.by_base(todo, switch is not None)
        summary.switched = [m for m, _ in groups if m is not None]
        for model, group in groups:
            if stopped:
                break
            down = None
            if model is not None and switch is not None:
                try:
                    self.client = switch(model)
                    from agentlab.server import ensure_models

                    ensure_models(self.settings, self.client,
                                  {self.model(u.target) for u in group} |
                                  {self.judge_model(u.target) for u in group})
                except UserError as e:
                    down = str(e)
            timed_out: list[Unit] = []
            with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                futures = {pool.submit(self.run_unit, u, down): u for u in group}
                for f in as_completed(futures):
                    if f.cancelled():
                        continue
                    result = f.result()
                    self.store.add(run_id, result)
                    finished += 1
                    passed += result.passed
                    if TIMED_OUT in str(result.output.get("error") or ""):
                        timed_out.append(futures[f])
                    if progress:
                        progress(finished, len(units), passed)
                    if stop is not None and stop.is_set() and not stopped:
                        stopped = True
                        for other in futures:
                            other.cancel()
            # a request that waited behind the others past request_timeout (a slow CPU, long
            # prompts) says nothing about the model: asked again once, alone, it replaces
            # the timed-out result
            for u in [] if stopped else timed_out:
                result = self.run_unit(u, down)
                self.store.add(run_id, result)
                passed += result.passed
                summary.retried += 1
                if progress:
                    progress(finished, len(units), passed)
        if not stopped:
            self.store.finish(run_id)
        summary.stopped = stopped
        summary.results = self.store.results(run_id)
        summary.requests, summary.cache_hits = self.requests, self.cache_hits
        summary.seconds = time.perf_counter() - started
        return summary

    def base(self, t: Target) -> str | None:
        """The packaged base model that must serve target ``t`` (None: any server will do,
        or a model litlab does not manage)."""
        from agentlab.server import server_for

        return None if t.kind == "search" else server_for(self.settings, self.model(t))

    def by_base(self, units: list[Unit], split: bool) -> list[tuple[str | None, list[Unit]]]:
        """``units`` in groups that one server can answer, each with a model to switch the
        server to (None: no switch). Not ``split``: one group. The base of the settings'
        model comes first: the server litlab already runs needs no restart for it."""
        if not split:
            return [(None, units)]
        groups: dict[str | None, list[Unit]] = {}
        for u in units:
            groups.setdefault(self.base(u.target), []).append(u)
        if not needs_switch(set(groups)):
            return [(None, units)]
        from agentlab.server import server_for

        first = server_for(self.settings, self.settings.model)
        order = sorted(groups, key=lambda b: (b is not None, b != first, b or ""))
        # a group is switched to by its first target's model (an adapter loads with its base)
        return [(None if b is None else self.model(groups[b][0].target), groups[b])
                for b in order]

    def units(self, targets: list[str] | None, tags: list[str] | None,
              repeat: int) -> list[Unit]:
        chosen = [t for t in self.suite.targets if not targets or t.name in targets]
        if targets:
            unknown = set(targets) - {t.name for t in self.suite.targets}
            if unknown:
                raise UserError(f"no target '{sorted(unknown)[0]}' in {self.suite.path}",
                                "targets: " + ", ".join(t.name for t in self.suite.targets))
        cases = [c for c in self.suite.all_cases()
                 if not tags or set(tags) & set(c.tags)]
        return [Unit(c, t, p, r) for t in chosen for p in self._prompts(t)
                for c in cases for r in range(repeat)]

    def _prompts(self, t: Target) -> list[str]:
        """The prompts a target runs with: an agent or a search target uses none of the
        suite's templates (it would run once per prompt for nothing), so its label is '-'."""
        return [NO_PROMPT] if t.kind in ("agent", "search") else self.suite.prompt_names()

    def run_unit(self, u: Unit, down: str | None = None) -> Result:
        """Produce ``u``'s output and check it (``down``: why no server can answer it)."""
        try:
            if down:
                raise UserError(down)
            out = self.output(u)
        except UserError as e:
            out = Output(text="", error=str(e))
        except Exception as e:  # noqa: BLE001 - one case fails with its reason; the run goes on
            out = Output(text="", error=f"{type(e).__name__}: {e}")
        judge = self.judge_for(u.target)
        scores: dict[str, dict[str, Any]] = {}
        for a in self.suite.assert_ + u.case.assert_:
            if not applies(u.case, a, u.target.kind):
                continue
            s = check(out, u.case, a, judge if a.type in JUDGED else None)
            entry = {"type": a.type, "passed": s.passed, "score": round(s.score, 4),
                     "reason": s.reason, "weight": a.weight}
            if a.type in JUDGED:
                entry["judge"] = self.judge_model(u.target)
            scores[_unique(scores, a)] = entry
        weight = sum(e["weight"] for e in scores.values())
        score = sum(e["score"] * e["weight"] for e in scores.values()) / weight if weight else 0.0
        # a check of weight 0 is reported, not required
        passed = all(e["passed"] for e in scores.values() if e["weight"] > 0) and not out.error
        return Result(str(u.case.id), u.target.name, u.prompt, u.repeat, u.case.tags,
                      out.to_dict(), scores, passed, round(score, 4))

    # -- outputs -----------------------------------------------------------------------------
    def model(self, t: Target) -> str:
        return t.model or self.settings.model

    def output(self, u: Unit) -> Output:
        t = u.target
        started = time.perf_counter()
        if t.kind == "agent":
            return self._agent(u, started)
        if t.kind == "search":
            return self._search(u, started)
        from agentlab.assistant import Assistant
        from agentlab.citations import NOT_IN_LIBRARY, resolve

        bot = Assistant(client=self.client, model=self.model(t), library=self.library,
                        home=self.prompt_home, max_tokens=t.max_tokens,
                        temperature=t.temperature, k=t.k,
                        min_relevance=self.settings.min_relevance,
                        attribution=self.settings.attribution if t.attribution is None
                        else t.attribution,
                        attribution_threshold=self.settings.attribution_threshold,
                        citation_grammar=self.settings.citation_grammar
                        if t.citation_grammar is None else t.citation_grammar,
                        answer_line=self.settings.answer_line if t.answer_line is None
                        else t.answer_line,
                        repetition_penalty=self.settings.repetition_penalty
                        if t.repetition_penalty is None else t.repetition_penalty)
        bot.retrieval_lock = self.retrieval_lock  # one library, searched by one thread at a time
        generate = self._generator(t, u.repeat)
        if t.kind == "prompt":
            from agentlab.prompts import load_template

            template = load_template(u.prompt, self.prompt_home)
            values = {**u.case.vars, "question": u.case.question}
            values = {k: v for k, v in values.items() if k in template.inputs}
            if "not_in_library" in template.inputs:
                values["not_in_library"] = NOT_IN_LIBRARY
            if "sources" in template.inputs and "sources" not in values:
                values["sources"] = ""
            result = generate(template.render(**values))
            checked = resolve(result.text, [])
            return Output(text=result.text, model=result.model,
                          not_in_library=checked.not_in_library,
                          latency_s=time.perf_counter() - started,
                          completion_tokens=result.completion_tokens,
                          finish_reason=result.finish_reason)
        answer = bot.answer(u.case.question, prompt=u.prompt, generate=generate)
        r = answer.result
        sentences = answer.sentences
        if not bot.attribution and answer.sources and not answer.not_in_library:
            from agentlab.attribution import attribute  # measured, not shown
            from agentlab.verify import Vocabulary

            sentences = attribute(answer.text, answer.sources, self.library.embedder.embed_few,
                                  self.settings.attribution_threshold,
                                  Vocabulary.of(self.library))
        return Output(text=answer.text, model=answer.model,
                      citations=[c.to_dict() for c in answer.citations], dropped=answer.dropped,
                      not_in_library=answer.not_in_library, abstained=answer.abstained,
                      withheld=answer.withheld,
                      sources=[s.to_dict() for s in answer.sources],
                      sentences=[s.to_dict() for s in sentences],
                      latency_s=time.perf_counter() - started,
                      completion_tokens=r.completion_tokens if r else 0,
                      finish_reason=r.finish_reason if r else None)

    def _search(self, u: Unit, started: float) -> Output:
        """Retrieval alone, ranked as `litlab search` ranks (no relevance gate, no model)."""
        from agentlab.citations import Numbering

        if self.library is None:
            raise UserError("a search target needs a library", "add `library:` to the suite")
        with self.retrieval_lock:
            hits = self.library.search(u.case.question, u.target.k)
            sources = Numbering(self.library.catalog.figures_of).add(hits)
        return Output(text="\n".join(s.text for s in sources),
                      sources=[s.to_dict() for s in sources],
                      latency_s=time.perf_counter() - started)

    def _agent(self, u: Unit, started: float) -> Output:
        from agentlab.agent import ResearchAgent

        t = u.target  # the target's sampling, as an ask target's
        settings = self.settings.model_copy(update={"max_tokens": t.max_tokens,
                                                    "temperature": t.temperature})
        agent = ResearchAgent.from_settings(settings, self.client, self.library, self.model(t))
        answer = agent.run(u.case.question)
        calls = sum(s.kind in ("model", "generate") for s in answer.steps)
        with self._count:  # the agent's model calls are requests too (never cached)
            self.requests += calls
        return Output(text=answer.text, model=answer.model,
                      citations=[c.to_dict() for c in answer.citations], dropped=answer.dropped,
                      not_in_library=answer.not_in_library,
                      sources=[s.to_dict() for s in answer.sources],
                      tools=[str(s.data.get("tool")) for s in answer.steps if s.kind == "tool"],
                      latency_s=time.perf_counter() - started)

    def _generator(self, t: Target, repeat: int) -> Callable[[list[dict[str, str]]], Any]:
        """messages → ChatResult, through the cache. The key holds everything that decides the
        completion: model, messages (template text, variables and retrieved passages),
        sampling settings, and the repeat index when sampling is random."""
        from agentlab.client import ChatResult

        def generate(messages: list[dict[str, str]], **extra: Any) -> Any:
            key = "completion:" + digest({
                "model": self.model(t), "messages": messages, "temperature": t.temperature,
                "max_tokens": t.max_tokens, "repeat": repeat if t.temperature > 0 else 0,
                **({"extra": extra} if extra else {})})
            hit = self.store.cached(key) if self.use_cache else None
            if hit is not None:
                self._counted(hit=True)
                return _unlooped(ChatResult(**hit))
            result = self.client.chat(messages, model=self.model(t), max_tokens=t.max_tokens,
                                      temperature=t.temperature, **extra)
            self._counted(hit=False)
            self.store.cache(key, {k: getattr(result, k) for k in (
                "text", "model", "prompt_tokens", "completion_tokens", "finish_reason",
                "ttft_s", "total_s")})
            return _unlooped(result)

        return generate

    # -- the judge ---------------------------------------------------------------------------
    def judge_model(self, t: Target) -> str:
        return self.suite.judge or self.settings.judge_model or self.model(t)

    def judge_for(self, t: Target) -> Judge:
        model = self.judge_model(t)

        def judge(messages: list[dict[str, str]], schema: dict[str, Any]) -> dict[str, Any]:
            key = "verdict:" + digest({"model": model, "messages": messages, "schema": schema})
            hit = self.store.cached(key) if self.use_cache else None
            if hit is not None:
                self._counted(hit=True)
                return dict(hit)
            result = self.client.chat(
                messages, model=model, temperature=0, max_tokens=400,
                response_format={"type": "json_schema",
                                 "json_schema": {"name": "verdict", "schema": schema}})
            self._counted(hit=False)
            try:
                verdict = json.loads(result.text)
            except json.JSONDecodeError as e:
                raise ValueError(f"the judge {model} did not return JSON ({e.msg})") from None
            self.store.cache(key, verdict)
            return dict(verdict)

        return judge

    def _counted(self, hit: bool) -> None:
        with self._count:
            if hit:
                self.cache_hits += 1
            else:
                self.requests += 1


NO_PROMPT = "-"


def _unlooped(result: Any) -> Any:
    """A reply cut where it began to repeat itself, as ``ask``'s stream cuts it."""
    from agentlab.repetition import unlooped

    cut = unlooped(result.text or "")
    if cut is not None:
        result.text, result.finish_reason = cut, "repetition"
    return result


def _unique(scores: dict[str, Any], a: Assertion) -> str:
    label, n = a.label, 2
    while label in scores:
        label, n = f"{a.label}#{n}", n + 1
    return label


def _write_template(path: Path, p: InlinePrompt) -> None:
    import re

    used = sorted(set(re.findall(r"{{\s*(\w+)", p.system + p.user)))
    path.parent.mkdir(parents=True, exist_ok=True)
    body = (f"description = {json.dumps('inline prompt of an evaluation suite')}\n"
            f"variables = {json.dumps(used)}\n"
            f"system = {json.dumps(p.system)}\nuser = {json.dumps(p.user)}\n")
    if not path.exists() or path.read_text() != body:
        path.write_text(body)


def shipped_suites() -> list[Path]:
    """The suites that come with litlab."""
    order = ["citations", "prompting", "retrieval", "agent"]
    return sorted((Path(__file__).parent / "suites").glob("*.yaml"),
                  key=lambda p: (order.index(p.stem) if p.stem in order else len(order), p.stem))


def needs_switch(servers: set[str | None]) -> bool:
    """Whether targets needing these servers (:func:`agentlab.server.server_for`) need
    litlab's server restarted between them: two bases, or an adapter served merged."""
    from agentlab.models import PACKAGED

    named = servers - {None}
    return len(named) > 1 or any(s not in PACKAGED for s in named)


def run_suite(suite: Suite, settings: Any, client: Any, *, jobs: int = 4,
              targets: list[str] | None = None, tags: list[str] | None = None,
              repeat: int = 1, use_cache: bool = True,
              progress: Progress | None = None,
              stop: threading.Event | None = None,
              say: Callable[[str], None] | None = None) -> RunSummary:
    """Run ``suite`` (the Python API the fine-tuning gate uses).

    Targets on different packaged base models (``smollm2-135m-instruct`` and
    ``gemma-3-270m``) run one base at a time on litlab's own server, which restarts for each
    and, at the end, returns to the settings' model (``say`` hears of each restart); with
    ``api_base`` set, the remote server must serve every target's model itself."""
    library = suite_library(suite, settings.home_dir)
    if library is None and any(t.kind != "prompt" for t in suite.targets):
        from retrievers.library import Library

        library = Library.from_settings(settings)
    from agentlab.server import ensure_models, for_many_answers, switcher

    home_settings, settings = settings, for_many_answers(settings)
    runner = Runner(suite, settings, client, library=library, use_cache=use_cache)

    bases = {runner.base(t) for t in suite.targets if not targets or t.name in targets}
    switch = None
    if not settings.api_base and needs_switch(bases):
        switch = switcher(settings, say or (lambda _m: None))
    else:
        # an adapter that a target (or the judge) names is loaded into the server, as for
        # `ask` (when switching, each switch loads its own)
        ensure_models(settings, client, {runner.model(t) for t in suite.targets
                                         if t.kind != "search"} |
                      {runner.judge_model(t) for t in suite.targets})
    try:
        summary = runner.run(jobs=jobs, targets=targets, tags=tags, repeat=repeat,
                             progress=progress, stop=stop, switch=switch)
    finally:
        runner.store.close()
        if switch is not None:
            try:
                # the server serves the settings' model again, as the settings serve it
                switcher(home_settings, say or (lambda _m: None))(home_settings.model)
            except UserError as e:
                if say:
                    say(f"the server could not return to {settings.model}: {e}")
    if hasattr(client, "spread"):  # a pool of several servers (agentlab.pool)
        summary.servers, summary.notes = client.spread(), list(client.notes)
    return summary
