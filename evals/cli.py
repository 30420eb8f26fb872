"""`litlab eval`: write, run, inspect and compare evaluation suites.

Mounted by the `litlab` root (litlab.cli); ``ctx.obj`` gives the effective settings.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from litcore.errors import UserError

STARTER = """\
# An evaluation suite (litlab eval run THIS_FILE). Every key is checked; see the README.
description: My first suite
# library: [papers/]          # files the suite indexes itself, relative to this file;
                               # without it, ask targets use your own library
targets:
  - {name: base, kind: ask, temperature: 0, max_tokens: 96}   # kind: prompt | ask | agent
prompts: [rag, few_shot]
assert:
  - {type: refusal}            # NOT_IN_LIBRARY exactly when a case should be refused
  - {type: citations}          # every [n] resolves, at least one citation
cases:
  - question: What problem does low-rank adaptation solve?
    reference: It cuts the number of trainable parameters.
    assert: [{type: rouge_l, threshold: 0.2}]
  - question: What is the capital of France?
    should_refuse: true
  # - file: cases.jsonl        # more cases, one JSON object a line (or .csv)
"""


def _settings(ctx: click.Context, **more: Any) -> Any:
    return ctx.obj.settings(**more)


@click.group(name="eval")
def eval_group() -> None:
    """Evaluation suites: cases × prompts × models, assertions, reports, compare."""


@eval_group.command("init")
@click.argument("path", type=click.Path(path_type=Path), default="suite.yaml")
def init(path: Path) -> None:
    """Write a starter suite to PATH (default suite.yaml)."""
    if path.exists():
        raise UserError(f"{path} already exists", "choose another name")
    path.write_text(STARTER)
    click.echo(f"wrote {path}; run it with `litlab eval run {path}`")


@eval_group.command("run")
@click.argument("suite_path", metavar="SUITE", type=click.Path(path_type=Path))
@click.option("-j", "--jobs", default=4, show_default=True,
              help="Requests at once (vLLM batches them).")
@click.option("--target", "targets", multiple=True, help="Only this target (repeatable).")
@click.option("--filter", "tags", multiple=True, help="Only cases with this tag (repeatable).")
@click.option("--repeat", default=1, show_default=True, help="Run every case N times.")
@click.option("--no-cache", is_flag=True, help="Ask the model again even for cached outputs.")
@click.option("--junit", type=click.Path(path_type=Path), help="Also write JUnit XML here.")
@click.option("--html", "html_path", type=click.Path(path_type=Path),
              help="Also write an HTML report with a chart here.")
@click.option("--json", "as_json", is_flag=True, help="Print the run's summary as JSON.")
@click.pass_context
def run(ctx: click.Context, suite_path: Path, jobs: int, targets: tuple[str, ...],
        tags: tuple[str, ...], repeat: int, no_cache: bool, junit: Path | None,
        html_path: Path | None, as_json: bool) -> None:
    """Run SUITE against the model server and print a report.

    Completions and judge verdicts are cached (by model, prompt text, variables, retrieved
    passages and settings); a run interrupted and started again resumes where it stopped.
    Exits 1 when any case failed.
    """
    from evals.report import print_summary, summarise, write_html, write_junit
    from evals.runner import run_suite
    from evals.suite import load_suite

    suite = load_suite(suite_path)
    s = _settings(ctx)
    from agentlab.server import connect
    from litcore.console import progress_line

    with progress_line() as say:
        client = connect(s, say)
    with _bar() as progress:
        summary = run_suite(suite, s, client, jobs=jobs, targets=list(targets) or None,
                            tags=list(tags) or None, repeat=repeat, use_cache=not no_cache,
                            progress=progress,
                            say=lambda m: click.secho(m, dim=True, err=True))
    report = summarise(summary.results)
    if junit:
        write_junit(summary.results, summary.run_id, junit)
    html_path = html_path or _run_folder(s, summary.run_id) / "report.html"
    write_html(report, summary.run_id, html_path)
    if as_json:
        click.echo(json.dumps({"run": summary.run_id, "requests": summary.requests,
                               "cache_hits": summary.cache_hits, "resumed": summary.resumed,
                               "retried": summary.retried, "seconds": round(summary.seconds, 2),
                               "servers": summary.servers, "notes": summary.notes,
                               "switched": summary.switched, **report},
                              indent=2))
    else:
        print_summary(report, summary.run_id)
        click.secho(f"\n{summary.requests} requests, {summary.cache_hits} from cache, "
                    f"{summary.resumed} resumed, "
                    + (f"{summary.retried} asked again after a timeout, " if summary.retried
                       else "")
                    + f"{summary.seconds:.1f} s · report: {html_path}",
                    dim=True, err=True)
        if summary.servers:
            click.secho("answers by server: " + ", ".join(
                f"{url} {n}" for url, n in summary.servers.items()), dim=True, err=True)
        for note in summary.notes:
            click.secho(f"note: {note}", fg="yellow", err=True)
    sys.exit(0 if all(r.passed for r in summary.results) else 1)


@eval_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_runs(ctx: click.Context, as_json: bool) -> None:
    """Past runs, newest first."""
    import time

    store = _store(ctx)
    rows = []
    for info in store.runs():
        results = store.results(info.id)
        rows.append({"id": info.id, "suite": info.suite, "results": len(results),
                     "pass_rate": sum(r.passed for r in results) / max(1, len(results)),
                     "finished": info.finished_at is not None, "created_at": info.created_at})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no evaluation runs yet (`litlab eval run SUITE`)")
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created_at"]))
        state = "" if r["finished"] else "  (interrupted: run it again to resume)"
        click.echo(f"{r['id']:<44} {when}  {r['results']:>4} results  "
                   f"{r['pass_rate']:>4.0%} passed{state}")


@eval_group.command("show")
@click.argument("run_ref", metavar="RUN", default="last")
@click.option("--case", "case_id", help="Only this case, with its outputs.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def show(ctx: click.Context, run_ref: str, case_id: str | None, as_json: bool) -> None:
    """Every result of RUN (default: the last): outputs and checks."""
    store = _store(ctx)
    info = store.run(run_ref)
    results = [r for r in store.results(info.id) if case_id in (None, r.case_id)]
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
        return
    for r in results:
        mark = click.style("pass", fg="green") if r.passed else click.style("FAIL", fg="red")
        click.echo(f"{mark} {r.case_id} [{r.target}/{r.prompt}#{r.repeat}] score {r.score:.2f}")
        text = str(r.output.get("error") or r.output.get("text") or "")
        click.echo("     " + text[:300].replace("\n", " "))
        for label, sc in r.scores.items():
            if not sc["passed"]:
                click.echo(f"     ✗ {label}: {sc['reason']}")


@eval_group.command("report")
@click.argument("run_ref", metavar="RUN", default="last")
@click.option("--junit", type=click.Path(path_type=Path), help="Write JUnit XML here.")
@click.option("--html", "html_path", type=click.Path(path_type=Path),
              help="Write the HTML report here (default: beside the run).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def report_cmd(ctx: click.Context, run_ref: str, junit: Path | None, html_path: Path | None,
               as_json: bool) -> None:
    """Pass rate and mean score per target, prompt and assertion; the worst cases."""
    from evals.report import print_summary, summarise, write_html, write_junit

    store = _store(ctx)
    info = store.run(run_ref)
    results = store.results(info.id)
    summary = summarise(results)
    html_path = html_path or _run_folder(_settings(ctx), info.id) / "report.html"
    write_html(summary, info.id, html_path)
    if junit:
        write_junit(results, info.id, junit)
    if as_json:
        click.echo(json.dumps({"run": info.id, "html": str(html_path), **summary}, indent=2))
        return
    print_summary(summary, info.id)
    click.secho(f"\nHTML report: {html_path}", dim=True, err=True)


@eval_group.command("compare")
@click.argument("a_ref", metavar="A")
@click.argument("b_ref", metavar="B")
@click.option("--fail-on", "fail_on", multiple=True,
              help="Exit 1 when this assertion (or '(case)') regressed significantly; "
                   "default: any.")
@click.option("--alpha", default=0.05, show_default=True, help="Significance level.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def compare_cmd(ctx: click.Context, a_ref: str, b_ref: str, fail_on: tuple[str, ...],
                alpha: float, as_json: bool) -> None:
    """Compare run B with run A, case by case, with a significance test.

    A and B are RUN[:TARGET[:PROMPT]] (RUN may be `last`, `last~1`), so two prompt variants of
    one run compare as `last::rag last::few_shot`. Exits 1 when an assertion regressed
    significantly (McNemar's exact test on the cases that changed).
    """
    from evals.compare import compare

    store = _store(ctx)
    a, a_name = _selection(store, a_ref)
    b, b_name = _selection(store, b_ref)
    result = compare(a, b, a_name=a_name, b_name=b_name, alpha=alpha)
    if not result.deltas:
        raise UserError(f"{a_name} and {b_name} have no case in common",
                        "compare runs of the same suite")
    regressions = [d for name in (fail_on or [None]) for d in result.regressions(name)]
    if as_json:
        click.echo(json.dumps({**result.to_dict(),
                               "regressed": [d.assertion for d in regressions]}, indent=2))
    else:
        _print_comparison(result)
    sys.exit(1 if regressions else 0)


@eval_group.command("cases")
@click.option("--from-library", "from_library", is_flag=True, required=True,
              help="Make cases from the passages of your library.")
@click.option("-n", "count", default=20, show_default=True, help="How many cases.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default="cases.jsonl",
              show_default=True)
@click.pass_context
def cases(ctx: click.Context, from_library: bool, count: int, output: Path) -> None:
    """Write a case file from the library: one question per passage, its paper expected."""
    from evals.cases import cases_from_library
    from retrievers.library import Library

    lib = Library.from_settings(_settings(ctx))
    made = cases_from_library(lib, count)
    if not made:
        raise UserError("the library has no passages to make cases from",
                        "index papers first (`litlab index files PATH`)")
    output.write_text("".join(json.dumps(c) + "\n" for c in made))
    click.echo(f"wrote {len(made)} cases to {output}; use them with `- file: {output}`")


# -- helpers -----------------------------------------------------------------------------------
def _store(ctx: click.Context) -> Any:
    from evals.store import RunStore

    return RunStore(_settings(ctx).home_dir)


def _run_folder(s: Any, run_id: str) -> Path:
    return Path(s.home_dir) / "runs" / "evals" / run_id


def _selection(store: Any, ref: str) -> tuple[list[Any], str]:
    from evals.compare import select

    run_ref, _, rest = ref.partition(":")
    target, _, prompt = rest.partition(":")
    info = store.run(run_ref)
    chosen = select(store.results(info.id), target or None, prompt or None)
    if not chosen:
        raise UserError(f"nothing in run {info.id} matches '{ref}'",
                        "use RUN[:TARGET[:PROMPT]] with names from `litlab eval report`")
    return chosen, info.id + (f":{rest}" if rest else "")


def _print_comparison(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("assertion", "pairs", "A pass", "B pass", "worse", "better", "p",
                  "Δ score (95% CI)", title=f"{result.b} vs {result.a}", box=None,
                  pad_edge=False)
    for d in result.deltas:
        flag = "[red]" if d in result.regressions() else ""
        table.add_row(f"{flag}{d.assertion}", str(d.pairs), f"{d.pass_a:.0%}", f"{d.pass_b:.0%}",
                      str(len(d.regressed)), str(len(d.improved)), f"{d.p_value:.3g}",
                      f"{d.mean_b - d.mean_a:+.2f} ({d.ci[0]:+.2f}, {d.ci[1]:+.2f})")
    console = Console()
    console.print(table)
    case = next((d for d in result.deltas if d.assertion == "(case)"), None)
    if case and case.regressed:
        console.print("[red]regressed:[/red] " + ", ".join(case.regressed[:20]), highlight=False)
    if case and case.improved:
        console.print("[green]improved:[/green] " + ", ".join(case.improved[:20]),
                      highlight=False)
    if result.unpaired:
        console.print(f"[dim]{result.unpaired} results had no partner and were left out[/dim]")


class _bar:
    """The run's progress bar, with the pass rate so far."""

    def __enter__(self) -> Any:
        from litcore.console import progress_bar

        self.bar = progress_bar("eval")
        update = self.bar.__enter__()

        def progress(done: int, total: int, passed: int) -> None:
            update(done, total, f"{passed / done:.0%} passed" if done else "")

        return progress

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)
