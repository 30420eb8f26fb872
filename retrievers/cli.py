"""`litlab index`, `litlab library` and `litlab search`: the library's own commands.

Mounted by the `litlab` root (litlab.cli). ``ctx.obj.settings()`` gives the effective settings
(duck-typed: ``home_dir``, ``store``, ``chroma_url``, ``embed_model``), so this package imports
nothing from agentlab.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from litcore.console import progress_line
from retrievers.library import IndexReport, Library
from retrievers.search.hybrid import location

STORE = click.option("--store", type=click.Choice(["faiss", "chroma"]),
                     help="Vector store (default from settings: faiss).")


def _library(ctx: click.Context, store: str | None = None) -> Library:
    s = ctx.obj.settings(store=store)
    return Library.from_settings(s)


def _report(report: IndexReport, as_json: bool = False) -> None:
    if as_json:
        import dataclasses

        click.echo(json.dumps(dataclasses.asdict(report), indent=2))
        if report.failed:
            sys.exit(2)
        return
    click.echo(f"added {len(report.added)}, replaced {len(report.replaced)}, "
               f"unchanged {len(report.unchanged)}, failed {len(report.failed)}; "
               f"vectors +{report.vectors_added} -{report.vectors_removed}")
    for source, note in report.notes:
        click.secho(f"note: {source}: {note}", fg="yellow", err=True)
    for source, reason in report.failed:
        click.secho(f"failed: {source}: {reason}", fg="red", err=True)
    if report.failed:
        sys.exit(2)


def ray_options(f: Any) -> Any:
    """``--ray [ADDRESS]`` and ``--workers N``: embed (and parse) on a Ray cluster."""
    f = click.option("--workers", type=click.IntRange(min=1),
                     help="With --ray: embedding workers (default: one per CPU, or per GPU).")(f)
    return click.option(
        "--ray", "ray_address", is_flag=False, flag_value="local", default=None,
        metavar="[ADDRESS]",
        help="Run the work on a Ray cluster: `--ray` alone starts one on this machine, `--ray "
             "HOST:PORT` joins yours (needs `pip install 'litlab[scale]'`; files and home on a "
             "filesystem every node shares).")(f)


@contextlib.contextmanager
def _cluster(ray_address: str | None, workers: int | None,
             progress: Any) -> Iterator[Any]:
    """The Ray cluster ``--ray`` names (None without it), closed afterwards."""
    if workers and not ray_address:
        from retrievers.errors import LibraryError

        raise LibraryError("--workers counts Ray workers, so it needs --ray",
                           "add --ray (or drop --workers)")
    if not ray_address:
        yield None
        return
    from retrievers.index.cluster import RayCluster

    cluster = RayCluster(ray_address, workers)
    progress(cluster.describe())
    try:
        yield cluster
    finally:
        cluster.close()


@click.group()
def index() -> None:
    """Add papers to the library."""


@index.command("files")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@STORE
@click.option("--arxiv/--no-arxiv", "arxiv", default=True, show_default=True,
              help="Look up arXiv's title, authors, abstract and date for PDFs whose first "
                   "page carries an arXiv id (one request; offline, the first page's title "
                   "and authors are kept and the next run tries again).")
@ray_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def index_files(ctx: click.Context, paths: tuple[Path, ...], store: str | None,
                arxiv: bool, ray_address: str | None, workers: int | None,
                as_json: bool) -> None:
    """Index PDFs, .tex files, LaTeX tarballs, Markdown and text (folders are searched).

    Unchanged files are skipped; a changed file replaces its old version. Files that fail are
    listed with the reason and the run exits 2; the others are indexed. A PDF without
    metadata gets its title and authors from its first page. Interrupted (Ctrl-C, a crash),
    the next run goes on where it stopped.
    """
    lib = _library(ctx, store)
    with progress_line() as progress, _cluster(ray_address, workers, progress) as cluster:
        report = lib.index_files(list(paths), progress, None if arxiv else False, cluster)
    _report(report, as_json)


@index.command("arxiv")
@click.argument("ids", nargs=-1)
@click.option("--query", "-q", help="An arXiv search query instead of ids, e.g. 'all:lora'.")
@click.option("--max", "max_results", default=10, show_default=True, help="Papers for --query.")
@STORE
@ray_options
@click.pass_context
def index_arxiv(ctx: click.Context, ids: tuple[str, ...], query: str | None, max_results: int,
                store: str | None, ray_address: str | None, workers: int | None) -> None:
    """Index arXiv papers by id (1706.03762, arXiv:1706.03762v7, abs/pdf URLs, hep-th/9901001)
    or by a search query. Uses the LaTeX source when arXiv has it, the PDF otherwise.

    With --ray the chunks are embedded on the cluster; downloads stay one at a time, as
    arXiv asks of automated clients."""
    from retrievers.errors import LibraryError

    if not ids and not query:
        raise LibraryError("give arXiv ids or --query", "e.g. litlab index arxiv 1706.03762")
    lib = _library(ctx, store)
    with progress_line() as progress, _cluster(ray_address, workers, progress) as cluster:
        report = lib.index_arxiv(list(ids), query, max_results, progress=progress,
                                 cluster=cluster)
    _report(report)


ARXIV_LOOKUP = click.option(
    "--arxiv/--no-arxiv", "arxiv", default=True, show_default=True,
    help="Fetch entries with an arXiv id and no file from arXiv (politely, as `index arxiv`), "
         "and look up arXiv's metadata for attached PDFs that carry an id.")


@index.command("bib")
@click.argument("bibfile", type=click.Path(path_type=Path))
@STORE
@ARXIV_LOOKUP
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def index_bib(ctx: click.Context, bibfile: Path, store: str | None, arxiv: bool,
              as_json: bool) -> None:
    """Index the papers of a BibTeX file: entries with an attached file (`file = {...}`, as
    Zotero, JabRef and Mendeley export it) or an arXiv id (eprint, url, doi).

    Citation keys are kept (`ask --bib` prints them, `--paper KEY` finds them). Entries with
    neither, and blocks with syntax errors (by line), are listed; the rest is indexed.
    Running it again indexes only what changed.
    """
    from retrievers.sources.references import read_bib

    refs, problems = read_bib(bibfile)
    _import(ctx, refs, problems, store, arxiv, as_json, f"{bibfile.name}: {len(refs)} entries")


@index.command("zotero")
@click.argument("folder", required=False, type=click.Path(path_type=Path))
@STORE
@ARXIV_LOOKUP
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def index_zotero(ctx: click.Context, folder: Path | None, store: str | None, arxiv: bool,
                 as_json: bool) -> None:
    """Index a Zotero library: FOLDER is Zotero's data directory (default ~/Zotero), holding
    zotero.sqlite and storage/.

    Items with PDF attachments are indexed from them (items with none, from arXiv when they
    carry an id); collections become tags (`search --tag NAME`), citation keys are kept.
    The database is read from a copy, so Zotero may stay open. Running it again indexes only
    what changed.
    """
    from retrievers.sources.references import default_zotero_dir, read_zotero

    folder = folder or default_zotero_dir()
    refs, problems = read_zotero(folder)
    _import(ctx, refs, problems, store, arxiv, as_json, f"Zotero ({folder}): {len(refs)} items")


def _import(ctx: click.Context, refs: list[Any], problems: list[tuple[str, str]],
            store: str | None, arxiv: bool, as_json: bool, what: str) -> None:
    lib = _library(ctx, store)
    if not as_json:
        click.echo(what, err=True)
    with progress_line() as progress:
        report = lib.index_references(refs, progress, None if arxiv else False)
    report.failed[:0] = problems
    _report(report, as_json)


@click.group()
def library() -> None:
    """Inspect and maintain the library."""


@library.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def library_list(ctx: click.Context, as_json: bool) -> None:
    """List papers, with failed ones and why."""
    lib = _library(ctx)
    papers = lib.catalog.papers()
    if as_json:
        click.echo(json.dumps([{"id": p.id, "key": p.key, "arxiv_id": p.arxiv_id,
                                "title": p.title, "state": p.state, "error": p.error,
                                "indexed_from": p.indexed_from, "source_note": p.source_note,
                                "cite_key": p.cite_key, "tags": p.tags}
                               for p in papers], indent=2))
        return
    if not papers:
        click.echo("the library is empty (add papers with `litlab index files PATH`)")
    for p in papers:
        mark = "" if p.state == "indexed" else f"  [failed: {p.error}]"
        tags = f"  #{' #'.join(p.tags)}" if p.tags else ""
        click.echo(f"{p.id:>4}  {p.cite_key or p.arxiv_id or p.key[:60]:<40} {p.title[:70]}"
                   f"{tags}{mark}")


@library.command("show")
@click.argument("paper")
@click.pass_context
def library_show(ctx: click.Context, paper: str) -> None:
    """Show a paper: metadata, sections and figures."""
    from retrievers.errors import LibraryError

    lib = _library(ctx)
    p = lib.catalog.find(paper)
    if p is None or p.id is None:
        raise LibraryError(f"no paper '{paper}' in the library", "see `litlab library list`")
    click.echo(f"{p.title}\n{p.key}  ({p.state})")
    if p.cite_key or p.tags:
        click.echo(f"citation key: {p.cite_key or '-'}" +
                   (f"; tags: {', '.join(p.tags)}" if p.tags else ""))
    if p.indexed_from:
        click.echo(f"indexed from: {p.indexed_from}" + (f" ({p.source_note})" if p.source_note
                                                        else ""))
    if p.authors:
        click.echo(", ".join(p.authors))
    if p.abstract:
        click.echo(f"\n{p.abstract[:1000]}")
    sections: list[str] = []
    for c in lib.catalog.chunks_of(p.id):
        if c.section not in sections:
            sections.append(c.section)
    click.echo("\nsections: " + "; ".join(s or "(untitled)" for s in sections))
    figures = lib.catalog.figures_of(p.id)
    if figures:
        click.echo(f"\nfigures ({len(figures)}):")
    for f in figures:
        page = f", p. {f.page}" if f.page else ""
        click.echo(f"  {f.id:>4}  {f.name}{page}: {f.caption[:100] or '(no caption)'}")
        if f.skipped:
            click.secho(f"        image skipped: {f.skipped}", fg="yellow")
        elif f.image_path:
            click.echo(f"        {f.image_path}")


@library.command("remove")
@click.argument("paper")
@click.pass_context
def library_remove(ctx: click.Context, paper: str) -> None:
    """Remove a paper with its chunks, keyword rows and vectors."""
    removed = _library(ctx).remove(paper)
    click.echo(f"removed {removed.title or removed.key}")


@library.command("rebuild")
@STORE
@click.option("--figures", is_flag=True,
              help="Rebuild the figure index instead: caption vectors, and image vectors with "
                   "the CLIP model the settings name (after setting clip_model).")
@ray_options
@click.pass_context
def library_rebuild(ctx: click.Context, store: str | None, figures: bool,
                    ray_address: str | None, workers: int | None) -> None:
    """Rebuild the vector index from the catalog (or, with --figures, the figure index).
    With --ray the chunks are embedded on a Ray cluster."""
    lib = _library(ctx, store)
    with progress_line() as progress, _cluster(ray_address, workers, progress) as cluster:
        report = lib.rebuild(progress, figures=figures, cluster=cluster)
    if figures:
        images = "with CLIP image vectors" if lib.figures.clip_ready() else "captions only"
        click.echo(f"rebuilt the figure index ({images})")
    else:
        click.echo(f"rebuilt: {report.vectors_added} vectors")
    for source, note in report.notes:
        click.secho(f"note: {source}: {note}", fg="yellow", err=True)


@click.command()
@click.argument("query", required=False)
@click.option("--k", "k", default=5, show_default=True, help="How many chunks (or figures).")
@STORE
@click.option("--paper", help="Only this paper (arXiv id, key, citation key or catalog id).")
@click.option("--year", type=int, help="Only papers published in this year.")
@click.option("--category", help="Only papers in this arXiv category, e.g. cs.LG.")
@click.option("--tag", help="Only papers with this tag (a Zotero collection).")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "keyword"]), default="hybrid",
              show_default=True)
@click.option("--figures", is_flag=True,
              help="Search figures instead: captions by words and meaning, images through CLIP "
                   "when clip_model is set.")
@click.option("--like", "like", type=int, metavar="FIGURE_ID",
              help="Figures that look like this one (implies --figures).")
@click.option("--show", is_flag=True, help="With --figures: draw each figure in the terminal.")
@click.option("--json", "as_json", is_flag=True, help="Print the ranked hits as JSON.")
@click.pass_context
def search(ctx: click.Context, query: str | None, k: int, store: str | None, paper: str | None,
           year: int | None, category: str | None, tag: str | None, mode: str, figures: bool,
           like: int | None, show: bool, as_json: bool) -> None:
    """Search the library by meaning and by words; with --figures, its figures.

    \b
    litlab search "how is attention scaled"
    litlab search --figures "attention heatmap" --show
    litlab search --like 12          figures that look like figure 12
    """
    from retrievers.errors import LibraryError

    if figures or like is not None:
        _search_figures(ctx, query, k, store, paper, like, show, as_json)
        return
    if not query:
        raise LibraryError("no query", 'say what to search for, e.g. litlab search "LoRA rank"')
    hits = _library(ctx, store).search(query, k, paper=paper, year=year, category=category,
                                       tag=tag, mode=mode)
    if as_json:
        click.echo(json.dumps([h.to_dict() for h in hits], indent=2))
        return
    if not hits:
        click.echo("nothing found")
    for i, h in enumerate(hits, start=1):
        where = location(h.chunk.section, h.chunk.pages)
        click.secho(f"[{i}] {h.paper.title[:80]} ({where})", bold=True)
        click.echo("    " + h.chunk.text[:300].replace("\n", " "))


def _search_figures(ctx: click.Context, query: str | None, k: int, store: str | None,
                    paper: str | None, like: int | None, show: bool, as_json: bool) -> None:
    lib = _library(ctx, store)
    hits = lib.search_figures(query, k, like=like, paper=paper)
    if as_json:
        click.echo(json.dumps([h.to_dict() for h in hits], indent=2))
        return
    if not hits:
        click.echo("no figure found")
    if not lib.figures.clip_ready():
        click.secho("(captions only: no CLIP image vectors; see `litlab config show clip_model`)",
                    fg="yellow", err=True)
    if show and not sys.stdout.isatty():
        click.secho("(--show draws figures only in a terminal)", fg="yellow", err=True)
    for h in hits:
        f = h.figure
        where = location(f.section, str(f.page) if f.page else "")
        click.secho(f"figure {f.id}  {f.name}, {h.paper.title[:70]}"
                    + (f" ({where})" if where else ""), bold=True)
        click.echo("    " + (f.caption[:300].replace("\n", " ") or "(no caption)"))
        click.echo(f"    {f.image_path or 'no image'}" + (f"  [skipped: {f.skipped}]"
                                                          if f.skipped else ""))
        if show and f.image_path and not f.skipped and sys.stdout.isatty():
            from rich.console import Console

            from retrievers.halfblocks import HalfBlocks

            Console(width=min(100, shutil.get_terminal_size().columns)).print(
                HalfBlocks(f.image_path, rows=20))
