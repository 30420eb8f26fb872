"""`litlab finetune retriever`: fit the text embedder to your library, gated by its search."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import click

from litcore.console import echo_json, progress_bar, progress_line
from litcore.errors import UserError


@click.group("retriever")
def retriever_group() -> None:
    """Fine-tune the embedding model on your own library, kept only when search gets better.

    `train` makes a candidate beside the library (the library is untouched while it trains),
    gates it on questions it never saw, and adopts it when it finds significantly more.
    """


def _library(ctx: click.Context) -> Any:
    from retrievers.library import Library

    return Library.from_settings(ctx.obj.settings())


def _in_use(lib: Any, cand: Any) -> bool:
    return str(lib.embed_model) == str(cand.model)


@retriever_group.command("train")
@click.option("--name", help="The candidate's name (default: retriever-DATE-TIME).")
@click.option("--pairs", default=400, show_default=True,
              help="Training pairs to make from the library (each: a query, its passage, "
                   "and a hard negative the search prefers).")
@click.option("--epochs", default=1, show_default=True)
@click.option("--lr", default=2e-5, show_default=True, help="Learning rate.")
@click.option("--batch", default=16, show_default=True,
              help="Pairs a step (the other passages of a batch are its negatives).")
@click.option("--eval", "eval_files", multiple=True,
              type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help='Hand-written questions to gate on too: JSON [{"q", "paper", "expect": '
                   '[phrases]}, ...]. Repeatable.')
@click.option("--teacher", is_flag=True,
              help="Questions written by the teacher model (settings teacher_model, "
                   "teacher_api_base) instead of extracted ones.")
@click.option("--adopt/--no-adopt", default=True, show_default=True,
              help="Use the candidate at once when it passes its gate.")
@click.option("--seed", default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def train_command(ctx: click.Context, name: str | None, pairs: int, epochs: int, lr: float,
                  batch: int, eval_files: tuple[Path, ...], teacher: bool, adopt: bool,
                  seed: int, as_json: bool) -> None:
    """Fine-tune the embedder on pairs made from the library and gate it.

    Pairs come from the library itself: a sentence of a passage as the query and the rest of
    the passage to find (the inverse cloze task), and a question about a passage's rarest
    terms; each with the passage the current search wrongly ranks first as a hard negative.
    A quarter of the papers are held out: their questions, and any --eval sets, are searched
    with the library's vectors and the candidate's. The candidate is adopted (its vectors
    replace the library's, embed_model points at it) only when it finds significantly more
    (McNemar p < 0.05) and is worse on no --eval set. Everything it makes is under
    LITLAB_HOME/retrievers/NAME; Ctrl-C keeps nothing and changes nothing.
    """
    from finetune.retriever import TrainConfig, make, retrievers_dir
    from finetune.retriever import adopt as adopt_candidate
    from finetune.train import plot_loss

    if pairs < batch:
        raise UserError(f"--pairs {pairs} is fewer than one batch ({batch})",
                        "give more pairs or a smaller --batch")
    s = ctx.obj.settings()
    lib = _library(ctx)
    name = name or time.strftime("retriever-%Y%m%d-%H%M%S")
    from finetune.data import check_name

    check_name(name, "retriever")
    writer = None
    if teacher:
        from finetune.grounded import Teacher

        with progress_line() as say:
            writer = Teacher.from_settings(s, say)
    cfg = TrainConfig(pairs=pairs, epochs=epochs, lr=lr, batch=batch, seed=seed)
    stop = threading.Event()
    with progress_bar("retriever", every=5) as bar:
        said: dict[str, Any] = {"at": 0.0, "stage": ""}

        def say(msg: str) -> None:  # the stage's progress, at most a line a second
            stage = msg.split(":")[0].split(" ")[0]
            if time.monotonic() - said["at"] >= 1 or stage != said["stage"]:
                said.update(at=time.monotonic(), stage=stage)
                bar(0, 0, msg)

        def on_step(step: int, total: int, loss: float | None) -> None:
            bar(step, total, f"training, loss {loss:.3f}" if loss is not None else "training")

        try:
            cand = make(lib, name, cfg, eval_files=eval_files, teacher=writer, progress=say,
                        on_step=on_step, stop=stop)
        except KeyboardInterrupt:
            stop.set()
            shutil.rmtree(retrievers_dir(lib.home) / name, ignore_errors=True)
            raise UserError("interrupted; nothing was kept and the library is unchanged",
                            "run the command again") from None
    info = cand.info()
    _metrics(cand.folder, info.get("losses", []))
    plot = plot_loss(cand.folder)
    adopted = False
    if adopt and info["gate"].get("passed"):
        with progress_line() as note:
            adopt_candidate(lib, cand, progress=note)
        adopted = True
    if as_json:
        echo_json({**cand.info(), "path": str(cand.folder), "adopted": adopted,
                   "loss_plot": str(plot) if plot else None})
        return
    click.echo(f"{name}: {info['pairs']} pairs, trained in {info['train_seconds']:.0f} s, "
               f"{info['chunks']} chunks embedded in {info['embed_seconds']:.0f} s")
    _print_gate(info["gate"])
    if plot:
        click.echo(f"  loss curve: {plot}")
    if adopted:
        click.echo(f"  adopted: search now uses {cand.model} "
                   "(`litlab finetune retriever reset` goes back)")
    elif info["gate"].get("passed"):
        click.echo(f"  passed; adopt it with `litlab finetune retriever use {name}`")
    else:
        click.echo("  not adopted: the library keeps its embedder")


def _metrics(folder: Path, losses: list[list[float]]) -> None:
    import json

    (folder / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": int(st), "loss": lo}) + "\n" for st, lo in losses))


def _print_gate(gate: dict[str, Any]) -> None:
    k = gate.get("k", 5)
    for set_name, r in gate.get("sets", {}).items():
        click.echo(f"  recall@{k} on {set_name} ({r['questions']} questions): "
                   f"{r['base']:.2f} → {r['tuned']:.2f}")
    if gate.get("note"):
        click.echo(f"  {gate['note']}")
    verdict = click.style("passed", fg="green") if gate.get("passed") else \
        click.style("failed", fg="red")
    worse = f"; worse on {', '.join(gate['worse_on'])}" if gate.get("worse_on") else ""
    click.echo(f"  gate {verdict}: {gate.get('gained', 0)} found only by the candidate, "
               f"{gate.get('lost', 0)} only by the library's (p = {gate.get('p_value', 1):.3g})"
               f"{worse}")


@retriever_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """Fine-tuned retrievers, with their gate and which one search uses."""
    from finetune.retriever import candidates

    lib = _library(ctx)
    rows = []
    for c in candidates(lib.home):
        info = c.info()
        gate = info.get("gate", {})
        rows.append({"name": c.name, "state": info.get("state"), "in_use": _in_use(lib, c),
                     "passed": gate.get("passed"), "p_value": gate.get("p_value"),
                     "made_at": info.get("made_at"), "path": str(c.folder)})
    if as_json:
        echo_json({"embed_model": lib.embed_model, "retrievers": rows})
        return
    click.echo(f"search uses: {lib.embed_model}")
    if not rows:
        click.echo("no fine-tuned retrievers yet: `litlab finetune retriever train`")
    for r in rows:
        mark = "*" if r["in_use"] else " "
        verdict = {True: "passed", False: "failed", None: "not gated"}[r["passed"]]
        click.echo(f"{mark} {r['name']}  {r['state']}, gate {verdict}  {r['made_at'] or ''}")


@retriever_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def show_command(ctx: click.Context, name: str, as_json: bool) -> None:
    """A fine-tuned retriever: how it was made and its gate, set by set."""
    from finetune.retriever import get_candidate

    lib = _library(ctx)
    cand = get_candidate(lib.home, name)
    info = cand.info()
    if as_json:
        echo_json({**info, "path": str(cand.folder), "in_use": _in_use(lib, cand)})
        return
    click.echo(f"{name} ({info.get('state')}{', in use' if _in_use(lib, cand) else ''}): "
               f"{info.get('pairs')} pairs {info.get('kinds', {})}, "
               f"trained on {len(info.get('train_papers', []))} papers")
    if "gate" in info:
        _print_gate(info["gate"])
    click.echo(f"  {cand.folder}")


@retriever_group.command("use")
@click.argument("name")
@click.option("--force", is_flag=True, help="Adopt it although it did not pass its gate.")
@click.pass_context
def use_command(ctx: click.Context, name: str, force: bool) -> None:
    """Search with fine-tuned retriever NAME (its vectors replace the library's)."""
    from finetune.retriever import adopt, get_candidate

    lib = _library(ctx)
    cand = get_candidate(lib.home, name)
    with progress_line() as say:
        adopt(lib, cand, force=force, progress=say)
    click.echo(f"search now uses {name} (`litlab finetune retriever reset` goes back)")


@retriever_group.command("reset")
@click.pass_context
def reset_command(ctx: click.Context) -> None:
    """Back to the packaged embedder; the library is embedded again with it."""
    from finetune.retriever import reset

    lib = _library(ctx)
    with progress_line() as say:
        now = reset(lib, say)
    click.echo(f"search uses {now.embed_model} again")


@retriever_group.command("remove")
@click.argument("name")
@click.pass_context
def remove_command(ctx: click.Context, name: str) -> None:
    """Delete fine-tuned retriever NAME (not the one in use)."""
    from finetune.retriever import get_candidate

    lib = _library(ctx)
    cand = get_candidate(lib.home, name)
    if _in_use(lib, cand):
        raise UserError(f"'{name}' is the retriever search uses",
                        "run `litlab finetune retriever reset` first")
    shutil.rmtree(cand.folder)
    click.echo(f"removed {name}")
