"""The assistant's commands: `litlab ask`, `chat`, `serve`, `models`, `prompts`, `config`,
and :class:`State`, the settings every command group reads through ``ctx.obj``.

Mounted by the `litlab` root (:mod:`litlab.cli`). Nothing heavy is imported at module level:
each command imports what it needs when it runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from litcore.console import progress_line
from litcore.errors import UserError

if TYPE_CHECKING:  # pydantic is imported by the commands that read settings, not --help
    from agentlab.settings import LoadedSettings, Settings


class State:
    """Global flags, resolved into settings on first use."""

    def __init__(self, flags: dict[str, Any]) -> None:
        self.flags = flags
        self._loaded: LoadedSettings | None = None

    def loaded(self, echo: bool = True, **more: Any) -> LoadedSettings:
        """Settings from the global flags, plus a command's own flags (None: not given).
        ``echo``: print their warnings (the app shows them itself)."""
        more = {k: v for k, v in more.items() if v is not None}
        if self._loaded is None or more:
            from agentlab.settings import load_settings

            self._loaded = load_settings(**{**self.flags, **more})
            for w in self._loaded.warnings if echo else ():
                click.secho(f"warning: {w}", fg="yellow", err=True)
        return self._loaded

    def settings(self, **more: Any) -> Settings:
        return self.loaded(**more).settings


pass_state = click.make_pass_decorator(State)


# -- config ----------------------------------------------------------------------------------
@click.group()
def config() -> None:
    """Inspect and change settings."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def config_show(state: State, as_json: bool) -> None:
    """Print every setting, its value and where that value came from."""
    from agentlab.settings import describe_fields

    loaded = state.loaded()
    values = loaded.settings.model_dump(mode="json")
    if values.get("access_token"):
        values["access_token"] = "(set)"  # a secret: never printed
    if as_json:
        click.echo(json.dumps(
            {k: {"value": v, "source": loaded.origins[k]} for k, v in values.items()}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("setting", "value", "source", "meaning", box=None, pad_edge=False)
    descriptions = describe_fields()
    for k, v in values.items():
        table.add_row(k, str(v), loaded.origins[k], descriptions[k])
    Console().print(table)


@config.command("set")
@click.argument("key")
@click.argument("value")
@pass_state
def config_set(state: State, key: str, value: str) -> None:
    """Save KEY = VALUE in LITLAB_HOME/litlab.toml (checked before it is written; "default"
    removes the line, so the default applies again)."""
    from agentlab.settings import save_setting

    home = state.settings().home_dir
    reset = value.lower() in ("none", "null", "default")
    path = save_setting(home, key, None if reset else value)
    click.echo(f"{key} reset to its default in {path}" if reset else
               f"{key} = {value} saved in {path}")


# -- models ----------------------------------------------------------------------------------
@click.group()
def models() -> None:
    """Packaged models: list them and prepare them for serving and fine-tuning."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def models_list(state: State, as_json: bool) -> None:
    """List packaged models, whether each is prepared, and the adapters beside them."""
    from agentlab.models import PACKAGED, find_adapters

    s = state.settings()
    rows = [
        {"name": m.name, "kind": "model", "prepared": m.is_prepared(s.models_dir),
         "path": str(m.path(s.models_dir)), "description": m.description}
        for m in PACKAGED.values()
    ]
    for name, base in find_adapters(s.adapters_dir).items():
        if base:  # an adapter of another base is `litlab adapters list`'s to explain
            rows.append({"name": name, "kind": "adapter", "prepared": True,
                         "path": str(s.adapters_dir / name),
                         "description": f"LoRA adapter on {base}"})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        mark = "ready" if r["prepared"] else "not prepared"
        default = " (default)" if r["name"] == s.model else ""
        click.echo(f"{r['name']:<24} {r['kind']:<8} {mark:<13} {r['description']}{default}")


@models.command("prepare")
@click.argument("name", required=False)
@click.option("--force", is_flag=True, help="Convert again even if already prepared.")
@click.option("--clip", "clip", is_flag=True,
              help="Only fetch the CLIP checkpoint clip_model names (a hub id; needs the "
                   "network once) into LITLAB_HOME/models/clip.")
@pass_state
def models_prepare(state: State, name: str | None, force: bool, clip: bool) -> None:
    """Convert a packaged GGUF model once into a checkpoint vLLM and PEFT can use, and export
    the text embedder to ONNX (checked against sentence-transformers) for fast cold commands.

    NAME defaults to the configured model. Safe to interrupt: a half-done preparation is
    discarded and redone next time. With --clip, fetch the figure embedder instead.
    """
    from agentlab.models import PACKAGED, get_packaged, prepare

    s = state.settings()
    if clip:
        _prepare_clip(s)
        return
    if name is None and s.model not in PACKAGED:  # an adapter: prepare the model it tunes
        from agentlab.server import LocalServer

        name = LocalServer(s).base
    target = get_packaged(name or s.model)
    if target.is_prepared(s.models_dir) and not force:
        click.echo(f"{target.name} is ready at {target.path(s.models_dir)}")
    else:
        with progress_line() as progress:
            path = prepare(target.name, s.models_dir, force=force, progress=progress)
        click.echo(f"{target.name} is ready at {path}")
    _prepare_embedder(s, force)


def _prepare_clip(s: Settings) -> None:
    """The CLIP checkpoint for figures: a hub id downloaded once; a directory used as is."""
    from retrievers.index.clip import CLIP_HELP, ClipUnavailable
    from retrievers.index.clip import prepare as prepare_clip

    if not s.clip_model:
        raise ClipUnavailable("no clip_model is set", CLIP_HELP)
    with progress_line() as progress:
        progress(f"fetching {s.clip_model}")
        path = prepare_clip(s.clip_model, s.home_dir)
    click.echo(f"{s.clip_model} (CLIP) is ready at {path}; "
               "`litlab library rebuild --figures` embeds the library's figures with it")


def _prepare_embedder(s: Settings, force: bool) -> None:
    """The text embedder's ONNX export (no torch on a command's query path), made once for
    the machine: every home finds it in the cache."""
    from retrievers.errors import LibraryError
    from retrievers.index.embeddings import forget_failure
    from retrievers.index.onnx_embedder import export, export_dir, is_exported

    folder = export_dir(s.cache_path, s.embed_model)
    if is_exported(folder) and not force:
        click.echo(f"{s.embed_model} (ONNX) is ready at {folder}")
        return
    forget_failure(s.cache_path, s.embed_model)
    try:
        with progress_line() as progress:
            progress(f"exporting {s.embed_model} to ONNX and checking it")
            meta = export(s.embed_model, s.cache_path, force=force)
    except (ImportError, LibraryError, OSError, RuntimeError) as e:
        click.secho(f"warning: {s.embed_model} stays on sentence-transformers (slower cold "
                    f"commands): {e}", fg="yellow", err=True)
        return
    click.echo(f"{s.embed_model} (ONNX) is ready at {folder} (cosine to sentence-transformers "
               f"at least {meta['min_cosine']:.7f})")


# -- serve -----------------------------------------------------------------------------------
@click.command()
@click.option("--stop", is_flag=True, help="Stop litlab's background server.")
@click.option("--status", is_flag=True, help="Say whether litlab's server is up, and where.")
@click.option("--background", is_flag=True, help="Start the server in the background and return.")
@click.option("--port", type=int, help="Port to listen on (default from settings; --api: 8768).")
@click.option("--api", "api", is_flag=True,
              help="Serve litlab's cited answers as an OpenAI-compatible API instead "
                   "(/v1/models, /v1/chat/completions, streamed or not).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="With --api: interface to listen on; beyond this machine needs access_token.")
@pass_state
def serve(state: State, stop: bool, status: bool, background: bool, port: int | None,
          api: bool, host: str) -> None:
    """Serve the model through vLLM's OpenAI-compatible API, with LoRA adapters enabled.

    In the foreground by default (Ctrl-C stops it). Other commands start a background server
    on demand and reuse a running one; it stops itself after keep_alive seconds without work
    (default 300; an open app counts as work), and `--stop` ends it at once.

    \b
    With --api, litlab's own answers for any OpenAI client or chat UI: retrieval from the
    library, the model, every sentence verified, citations as [n] with a Sources list and in
    a structured `citations` field:
      litlab serve --api            (then base_url http://127.0.0.1:8768/v1, model "litlab")
    """
    if api:
        _serve_api(state, host, port or 8768)
        return
    from agentlab.server import LocalServer

    s = state.settings(port=port)
    if s.api_base:
        raise UserError(f"api_base is set ({s.api_base}): litlab serves nothing locally",
                          "unset api_base to use the local server")
    server = LocalServer(s)
    if stop:
        click.echo("stopped litlab's server" if server.stop() else "no litlab server was running")
        return
    if status:
        st = server.running()
        if st is None:
            click.echo("litlab's server is not running")
            sys.exit(1)
        click.echo(f"serving {st.model} at {st.api_base} (pid {st.pid}, log {st.log})")
        from agentlab.keepalive import held

        if s.keep_alive > 0:
            open_app = " (an open app holds it)" if held(server.hold_path) else ""
            click.echo(f"stops itself after {s.keep_alive:.0f} s without work{open_app} "
                       "(keep_alive); the next command starts it again")
        else:
            click.echo("runs until `litlab serve --stop` (keep_alive = 0)")
        click.echo(f"the app {'stops' if s.app_server == 'stop' else 'leaves'} the server it "
                   "started when it quits (app_server)")
        adapters = [m for m in server.served_now() if m != st.model]
        click.echo(f"LoRA {'on' if st.lora else 'off'}" +
                   (f"; adapters served: {', '.join(adapters)}" if adapters else ""))
        return
    if background:
        with progress_line() as progress:
            url = server.ensure(progress)
        click.echo(f"serving {server.served_name} at {url}")
        return
    server.serve_foreground(lambda msg: click.echo(msg, err=True))


def _serve_api(state: State, host: str, port: int) -> None:
    from agentlab.api_server import Answerer, build_app
    from agentlab.mcp_server import listening

    s = state.settings()
    listening(host, port, s.access_token)
    answerer = Answerer(s, client=_client(s))  # the model server is up before the first ask
    import uvicorn

    click.echo(f"litlab API on http://{host}:{port}/v1 (model \"litlab\""
               f"{', token required' if s.access_token else ''}); Ctrl-C stops it", err=True)
    uvicorn.run(build_app(answerer, token=s.access_token), host=host, port=port,
                log_level="warning")


# -- ask and chat ----------------------------------------------------------------------------
def _client(s: Settings) -> Any:
    from agentlab.server import connect

    with progress_line() as progress:
        return connect(s, progress)


def _footer(result: Any) -> None:
    if sys.stderr.isatty():
        ttft = f"{result.ttft_s:.2f}s to first token, " if result.ttft_s is not None else ""
        click.secho(f"[{result.model} · {result.completion_tokens} tokens · {ttft}"
                    f"{result.tokens_per_s:.0f} tok/s]", dim=True, err=True)


def _print_citations(answer: Any) -> None:
    if answer.dropped:
        click.secho("removed " + ", ".join(f"[{n}]" for n in answer.dropped)
                    + ": the answer cited sources that do not exist", fg="yellow", err=True)
    if answer.unverified:
        click.secho("not evidence: " + ", ".join(f"[{n}]" for n in answer.unverified)
                    + ": the answer cites them, but they do not support what it says",
                    fg="yellow", err=True)
    if answer.sentences:
        claims = [s for s in answer.sentences if s.claim]
        supported = sum(s.supported for s in claims)
        click.secho(f"\nSupport: {supported} of {len(claims)} sentences", bold=True)
        for s in answer.sentences:
            if s.origin == "computed":  # the agent's arithmetic over the quoted numbers
                click.secho(f"  = computed     {_short(s.text, 90)} (from the quotes below)",
                            fg="cyan")
        for s in claims:
            _print_verdict(s)
    if getattr(answer, "withheld", False):  # the answer line stands; the model's words do not
        click.secho("\n" + answer.text, fg="yellow", bold=True)
    if getattr(answer, "abstained", False):
        click.secho("\n" + answer.text, fg="yellow", bold=True)
        click.secho("Closest passages:", bold=True)
        for src in answer.sources[:3]:
            click.echo(f"  {src.header()}")
            click.echo(f"      {_short(src.text, 200)}")
    if answer.citations:
        click.secho("\nSources:", bold=True)
        for c in answer.citations:
            click.echo(f"  {c.header()}" + (f" · {'; '.join(c.figures)}" if c.figures else ""))
            if c.figure_id is not None:
                click.echo(f"      {c.text[:160]}")
                click.echo(f"      figure {c.figure_id}: {c.image_path or 'no image file'}")


def _short(text: str, width: int) -> str:
    flat = " ".join(text.split())  # one line, whatever the model or the PDF wrapped
    return flat if len(flat) <= width else flat[:width - 3] + "..."


def _around(text: str, value: str | None, width: int) -> str:
    """``text`` shortened to ``width`` around the source's ``value`` (what contradicts the
    claim), so a long table row shows the value rather than the row's first cells."""
    flat = " ".join(text.split())
    at = flat.find(value.split()[0]) if value else -1
    if len(flat) <= width or at < width - 40:
        return _short(flat, width)
    start = max(0, at - width // 2)
    return "..." + _short(flat[start:], width - 3)


def _print_verdict(s: Any) -> None:
    """One sentence with its verdict, and the source's words behind it: the sentence(s) that
    support it, or the value that contradicts it."""
    text = _short(s.text, 90)
    quote = s.evidence[0] if s.evidence else None
    if s.supported:
        cited = ", ".join(f"[{n}]" for n in s.sources)
        how = {"model": "cited", "answer_line": "the source's words"}.get(
            s.origin or "", "attributed by litlab")
        click.echo(f"  ✓ {cited} ({how})  {text}")
        for e in s.evidence if s.origin != "answer_line" else []:  # the line is its own quote
            click.secho(f"        [{e.n}] “{_short(e.quote, 150)}”", dim=True)
    elif s.contradicted and quote is not None:
        click.secho(f"  ✗ contradicted  {text}", fg="red")
        shown = _around(quote.quote, quote.value, 150)
        click.secho(f"        [{quote.n}] {quote.reason}: “{shown}”", fg="red")
    else:
        click.secho(f"  ? unsupported  {text}", fg="yellow")


def _print_trace(steps: list[Any]) -> None:
    click.secho("\nTrace:", bold=True)
    for i, step in enumerate(steps, start=1):
        data = {k: v for k, v in step.data.items() if v not in (None, [], {}, "")}
        detail = json.dumps(data, ensure_ascii=False)
        click.echo(f"  {i}. {step.kind:9s} {step.ms:8.1f} ms  "
                   f"{detail if len(detail) < 300 else detail[:297] + '...'}")


@click.command()
@click.argument("question")
@click.option("--prompt", "-p", "prompt_name", default="rag", show_default=True,
              help="Prompt template (`litlab prompts list`); zero_shot skips the library.")
@click.option("--agent", "use_agent", is_flag=True,
              help="The research agent: searches each part of the question, reads around "
                   "passages, computes with the calculator; its hops are listed under the "
                   "answer.")
@click.option("--rewrite", is_flag=True, help="Rewrite the question into a search query first.")
@click.option("--k", type=int, help="Sources to retrieve (default from settings: 5).")
@click.option("--trace", is_flag=True, help="Print each step: retrieval, prompt, tools, timings.")
@click.option("--model", "-m", help="Model or adapter to answer with.")
@click.option("--max-tokens", type=int, help="Cap on tokens in the answer.")
@click.option("--temperature", type=float, help="Sampling temperature (0 is greedy).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: answer, citations, reasoning, trace, timings.")
@click.option("--bib", is_flag=True,
              help="Also print BibTeX entries of the cited papers (--json: a 'bibtex' field).")
@pass_state
def ask(state: State, question: str, prompt_name: str, use_agent: bool, rewrite: bool,
        k: int | None, trace: bool, model: str | None, max_tokens: int | None,
        temperature: float | None, as_json: bool, bib: bool) -> None:
    """Answer a question from the library, citing paper, section and page as [n].

    When the library has nothing relevant, says so instead of guessing. The turn and its trace
    are kept in chats.sqlite.
    """
    from agentlab.chats import ChatStore
    from agentlab.prompts import load_template
    from retrievers.library import Library

    s = state.settings(model=model, max_tokens=max_tokens, temperature=temperature, top_k=k)
    if not use_agent:
        load_template(prompt_name, s.home_dir)  # a bad name fails before anything starts
    client = _client(s)
    library = Library.from_settings(s)
    if use_agent:
        answer = _run_agent(s, client, library, question)
        if not as_json:
            click.echo(answer.text)
    else:
        from agentlab.assistant import Assistant

        bot = Assistant.from_settings(s, client, library)
        streamed: list[str] = []

        def show(piece: str) -> None:
            streamed.append(piece)
            click.echo(piece, nl=False)

        try:
            answer = bot.answer(question, prompt=prompt_name, rewrite=rewrite,
                                on_token=None if as_json else show)
        except KeyboardInterrupt:
            click.echo()
            click.secho("[stopped]", fg="yellow", err=True)
            raise
        if not as_json:
            click.echo("\n" if streamed else answer.text)
    _, message_id = ChatStore(s.home_dir / "chats.sqlite").save_answer(None, answer)
    entries = _cited_bibtex(library, answer) if bib else None
    if as_json:
        click.echo(json.dumps({**answer.to_dict(), "message_id": message_id,
                               **({"bibtex": entries} if bib else {})}))
        return
    _print_citations(answer)
    if use_agent and not trace:
        _print_hops(answer.steps)
    if trace:
        _print_trace(answer.steps)
    if answer.result is not None:
        _footer(answer.result)
    if bib:
        click.echo("\n" + entries if entries else "% nothing cited: no entries")


def _cited_bibtex(library: Any, answer: Any) -> str:
    """BibTeX entries of the papers an answer cites, in citation order."""
    from agentlab.check import bibtex

    keys = list(dict.fromkeys(c.paper for c in answer.citations))
    by_key = {(p.arxiv_id or p.key): p for p in library.catalog.papers("indexed")}
    return bibtex([by_key[k] for k in keys if k in by_key])


def _run_agent(s: Settings, client: Any, library: Any, question: str) -> Any:
    """The agent's turn, each hop shown as it happens (on a pipe: a line each, on stderr)."""
    from agentlab.agent import ResearchAgent
    from agentlab.tools import hop

    agent = ResearchAgent.from_settings(s, client, library)
    with progress_line() as progress:
        progress("the agent is working (tools: library, calculator) ...")

        def on_step(step: Any) -> None:
            line = hop(step)
            if line:
                progress(f"agent: {line[:150]}")

        return agent.run(question, on_step=on_step)


def _print_hops(steps: list[Any]) -> None:
    """The agent's hops under its answer: what it looked up, and how the turn ended."""
    from agentlab.tools import hop

    lines = [line for line in (hop(s) for s in steps) if line]
    if lines:
        click.secho("\nHops:", bold=True)
        for i, line in enumerate(lines, start=1):
            click.echo(f"  {i}. {line}")


# -- prompt templates ------------------------------------------------------------------------
@click.group()
def prompts() -> None:
    """Prompt templates: shipped ones, overridable from LITLAB_HOME/prompts."""


@prompts.command("list")
@pass_state
def prompts_list(state: State) -> None:
    """Each template with its variables and what it is for."""
    from agentlab.prompts import PACKAGED, PromptError, load_template, template_names

    home = state.settings().home_dir
    broken = 0
    for name in template_names(home) + _unreadable_prompts(home):
        try:
            t = load_template(name, home)
        except PromptError as e:
            broken += 1
            click.secho(f"{name:10s} error: {e}", fg="red")
            continue
        origin = "" if t.path.parent == PACKAGED else f"  [{t.path}]"
        click.echo(f"{t.name:10s} ({', '.join(t.inputs)}){origin}\n    {t.description}")
    if broken:
        sys.exit(1)


def _unreadable_prompts(home: Path) -> list[str]:
    """Template files in LITLAB_HOME/prompts that template_names skipped (not valid TOML)."""
    from agentlab.prompts import template_names

    names = set(template_names(home))
    folder = home / "prompts"
    return sorted(p.stem for p in folder.glob("*.toml") if p.stem not in names) \
        if folder.is_dir() else []


@prompts.command("show")
@click.argument("name")
@pass_state
def prompts_show(state: State, name: str) -> None:
    """The template's file as written."""
    from agentlab.prompts import load_template

    click.echo(load_template(name, state.settings().home_dir).path.read_text())


@prompts.command("render")
@click.argument("name")
@click.option("--var", "variables", multiple=True, metavar="KEY=VALUE",
              help="A variable's value; repeat for each variable.")
@pass_state
def prompts_render(state: State, name: str, variables: tuple[str, ...]) -> None:
    """The chat messages the template makes from the given variables."""
    from agentlab.prompts import PromptError, load_template

    values = {}
    for item in variables:
        key, sep, value = item.partition("=")
        if not sep:
            raise PromptError(f"--var '{item}' is not KEY=VALUE", "e.g. --var question=...")
        values[key.strip()] = value
    for m in load_template(name, state.settings().home_dir).render(**values):
        click.secho(f"--- {m['role']}", bold=True)
        click.echo(m["content"])


@click.command()
@click.option("--model", "-m", help="Model or adapter to answer with.")
@click.option("--prompt", "-p", "prompt_name", default="rag", show_default=True,
              help="Prompt template (`litlab prompts list`).")
@pass_state
def chat(state: State, model: str | None, prompt_name: str) -> None:
    """Chat in the terminal, line by line, with cited answers from the library.

    /reset starts a new conversation, /quit (or Ctrl-D) leaves, Ctrl-C stops an answer.
    Conversations are kept in chats.sqlite.
    """
    from agentlab.assistant import Assistant
    from agentlab.chats import ChatStore
    from agentlab.prompts import load_template
    from retrievers.library import Library

    s = state.settings(model=model)
    load_template(prompt_name, s.home_dir)
    client = _client(s)
    bot = Assistant.from_settings(s, client, Library.from_settings(s))
    store = ChatStore(s.home_dir / "chats.sqlite")
    conversation: int | None = None
    history: list[dict[str, str]] = []
    click.secho(f"litlab · {s.model} · Ctrl-C stops an answer, Ctrl-D or /quit leaves", dim=True)
    while True:
        try:
            line = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            click.echo()
            return
        if not line:
            continue
        if line in {"/quit", "/exit"}:
            return
        if line == "/reset":
            history.clear()
            conversation = None
            click.secho("(new conversation)", dim=True)
            continue
        try:
            answer = bot.answer(line, prompt=prompt_name, history=history,
                                on_token=lambda piece: click.echo(piece, nl=False))
        except KeyboardInterrupt:
            click.echo()
            click.secho("[stopped]", fg="yellow", err=True)
            continue
        except UserError as e:
            click.secho(f"error: {e}", fg="red", err=True)
            continue
        click.echo(answer.text if answer.result is None else "")
        _print_citations(answer)
        conversation, _ = store.save_answer(conversation, answer)
        history += [{"role": "user", "content": line},
                    {"role": "assistant", "content": answer.text}]
        if answer.result is not None:
            _footer(answer.result)


# -- check a draft ---------------------------------------------------------------------------
@click.command()
@click.argument("draft", metavar="FILE|-|TEXT")
@click.option("--k", type=int, default=5, show_default=True,
              help="Passages searched for each sentence.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object a sentence: text, line, verdict, evidence.")
@click.option("--bib", is_flag=True, help="Also print BibTeX entries of the supporting papers.")
@click.option("--all", "show_all", is_flag=True,
              help="List supported sentences with their evidence too (default: a count).")
@pass_state
def check(state: State, draft: str, k: int, as_json: bool, bib: bool, show_all: bool) -> None:
    """Check a draft (Markdown, LaTeX or plain text) against the library.

    Every sentence that claims something is searched in the library and verified: supported
    (the source sentence quoted, with paper, section and page), contradicted (the source's
    value quoted) or not found. Exits 1 when a sentence is contradicted, 2 when the draft or
    the library cannot be read, so it fits a writing workflow or CI. Nothing is written to
    the library.

    \b
    litlab check paper.md
    litlab check - < section.tex
    litlab check "LoRA freezes the pretrained weights." --json
    """
    from agentlab.check import bibtex, check_draft, read_draft
    from agentlab.errors import DraftError
    from agentlab.verify import CONTRADICTED, NOT_FOUND, SUPPORTED
    from retrievers.library import Library

    text, kind = read_draft(draft, stdin=lambda: sys.stdin.read())
    s = state.settings()
    if not (s.home_dir / "library.sqlite").exists():
        raise DraftError(f"the library in {s.home_dir} is empty: nothing to check against",
                         "add papers with `litlab index files PATH` or `litlab index arxiv ID`")
    library = Library.from_settings(s)
    if library.catalog.is_empty():
        raise DraftError(f"the library in {s.home_dir} is empty: nothing to check against",
                         "add papers with `litlab index files PATH` or `litlab index arxiv ID`")
    from litcore.console import progress_bar

    with progress_bar("checking", every=5) as bar:
        checked = check_draft(text, kind, library, k=k,
                              progress=lambda done, total: bar(done, total, ""))
    counts = {v: sum(c.verdict == v for c in checked) for v in (SUPPORTED, CONTRADICTED,
                                                                 NOT_FOUND)}
    if as_json:
        for c in checked:
            click.echo(json.dumps(c.to_dict(), ensure_ascii=False))
    else:
        for c in checked:
            if c.verdict == SUPPORTED and not show_all:
                continue
            mark, colour = {SUPPORTED: ("✓ supported", "green"),
                            CONTRADICTED: ("✗ contradicted", "red"),
                            NOT_FOUND: ("? not found", "yellow")}[c.verdict]
            click.secho(f"line {c.line}: {mark}  {_short(c.text, 100)}", fg=colour)
            for e in c.evidence:
                where = ", ".join(x for x in (e["section"], f"p. {e['pages']}" if e["pages"]
                                              else "") if x)
                lead = e["reason"] + ": " if c.verdict == CONTRADICTED and e["reason"] else ""
                label = "closest" if c.verdict == NOT_FOUND else "source"
                click.secho(f"    {label}: {lead}“{_around(e['quote'], e['value'], 160)}”",
                            dim=True)
                click.secho(f"      {e['title'][:70]} ({e['paper']}){', ' + where if where else ''}",
                            dim=True)
        click.secho(f"{len(checked)} sentences: {counts[SUPPORTED]} supported, "
                    f"{counts[CONTRADICTED]} contradicted, {counts[NOT_FOUND]} not found",
                    bold=True, err=True)
    if bib:
        keys = {e["paper"] for c in checked if c.verdict == SUPPORTED for e in c.evidence}
        papers = [p for p in library.catalog.papers("indexed")
                  if (p.arxiv_id or p.key) in keys]
        click.echo("\n" + bibtex(papers) if papers else "% no supported sentence: no entries")
    if counts[CONTRADICTED]:
        sys.exit(1)


# -- the library for other tools (MCP) ------------------------------------------------------
@click.command()
@click.option("--http", "use_http", is_flag=True,
              help="Serve streamable HTTP instead of stdio (desktop clients start litlab mcp "
                   "themselves and speak over stdio).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on (--http). Beyond this machine needs access_token.")
@click.option("--port", type=int, default=8767, show_default=True, help="Port (--http).")
@click.option("--allow-write", is_flag=True,
              help="Also offer index_arxiv, the tool that adds papers (off: nothing a client "
                   "calls can change the library).")
@pass_state
def mcp(state: State, use_http: bool, host: str, port: int, allow_write: bool) -> None:
    """Serve the library to MCP clients: search, read, search_figures, list_papers, paper,
    ask (cited, verified answers) and check (claims against the library).

    \b
    Claude Desktop and other clients, in their config:
      {"mcpServers": {"litlab": {"command": "litlab", "args": ["mcp"]}}}
    Over HTTP:  litlab mcp --http   (then http://127.0.0.1:8767/mcp)
    """
    from agentlab.mcp_server import build_server, http_app, listening

    s = state.settings()
    server = build_server(s, allow_write=allow_write)
    if not use_http:
        server.run("stdio")
        return
    listening(host, port, s.access_token)
    import uvicorn

    app = http_app(server, host=host, token=s.access_token)
    click.echo(f"litlab MCP server on http://{host}:{port}/mcp "
               f"({'read and write' if allow_write else 'read-only'}"
               f"{', token required' if s.access_token else ''}); Ctrl-C stops it", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


# The commands of this package, mounted by the `litlab` root (litlab.cli).
COMMANDS = [config, models, serve, ask, chat, check, prompts, mcp]
