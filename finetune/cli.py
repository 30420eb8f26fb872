"""`litlab finetune` (datasets and runs) and `litlab adapters` (the registry).

Mounted by the `litlab` root (litlab.cli); ``ctx.obj`` gives the effective settings.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from finetune.retriever_cli import retriever_group
from litcore.console import echo_json, progress_bar, progress_line
from litcore.errors import UserError


def _settings(ctx: click.Context) -> Any:
    return ctx.obj.settings()


# -- finetune ---------------------------------------------------------------------------------
@click.group(name="finetune")
def finetune_group() -> None:
    """Fine-tune the base model: datasets, LoRA SFT / DPO / GRPO runs, gated by a suite."""


@finetune_group.group("data")
def data() -> None:
    """Datasets: from the library, from your feedback, or from a JSONL file."""


@data.command("build")
@click.argument("name")
@click.option("--from", "source", default="library", show_default=True,
              help="library, feedback, run:RUN (DPO pairs from an eval run's failed cases: "
                   "the passage sentence with the key fact preferred over the model's reply), "
                   "or a JSONL file in TRL's formats.")
@click.option("--target", "run_target", help="run:RUN: the target whose failures to use "
                                               "[default: the run's first].")
@click.option("--examples", default=60, show_default=True,
              help="Library: examples to build (a later build of the same name adds to it).")
@click.option("-k", "--sources", "k", type=int,
              help="Library: numbered sources in each prompt, the oracle and k-1 distractors "
                   "[default: top_k, as `ask` shows them].")
@click.option("--refusals", default=0.15, show_default=True,
              help="Library: share of examples whose sources do not answer (NOT_IN_LIBRARY).")
@click.option("--eval-share", default=0.2, show_default=True,
              help="Share of papers (library) or rows (file) held out for evaluation.")
@click.option("--teacher", is_flag=True,
              help="Library: questions and answers written by the teacher model (settings "
                   "teacher_model, teacher_api_base) instead of extracted.")
@click.option("--kind", type=click.Choice(["sft", "dpo"]), default="sft", show_default=True,
              help="Feedback: SFT examples (good answers) or DPO pairs (preferred vs rejected).")
@click.option("--seed", default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def data_build(ctx: click.Context, name: str, source: str, run_target: str | None,
               examples: int, k: int | None, refusals: float, eval_share: float,
               teacher: bool, kind: str, seed: int, as_json: bool) -> None:
    """Build dataset NAME under LITLAB_HOME/datasets/NAME.

    From the library, each example is the RAG prompt `ask` would send (k numbered sources:
    the passage that answers among distractors found by search) and a cited answer; every
    example is checked (its citations resolve to that passage, which supports the answer)
    before it is kept. Papers are split so eval papers are unseen in training.
    """
    from finetune.data import DatasetStore

    s = _settings(ctx)
    store = DatasetStore(s.home_dir)
    if source == "feedback":
        from agentlab.chats import ChatStore
        from retrievers.library import Library

        chats = ChatStore(s.home_dir / "chats.sqlite")
        ds, skipped = store.from_feedback(name, chats, Library.from_settings(s), kind,  # type: ignore[arg-type]
                                          home=s.home_dir)
        _built(ds, as_json, skipped=skipped)
        return
    if source.startswith("run:"):
        from evals.store import RunStore
        from finetune.failures import pairs
        from retrievers.library import Library

        lib = Library.from_settings(s)
        rows, skipped = pairs(RunStore(s.home_dir), source[4:] or "last", s.home_dir,
                              lib.embedder.embed_few, target=run_target)
        if not rows:
            from finetune.records import DataError

            why = "; ".join(f"{n}× {r}" for r, n in skipped.most_common(3)) or \
                "every case passed"
            raise DataError(f"run {source[4:]} gave no pairs ({why})",
                            "pairs come from failed answerable cases with a regex key fact")
        _built(store.write(name, "dpo", rows, [], "eval run", run=source[4:],
                           skipped=dict(skipped)), as_json, skipped=dict(skipped))
        return
    if source != "library":
        path = Path(source)
        if not path.is_file():
            raise UserError(f"--from {source}: no such file",
                            "use library, feedback, or the path of a JSONL file")
        _built(store.from_file(name, path, eval_share=eval_share, seed=seed), as_json)
        return
    from finetune.grounded import Builder, Teacher
    from retrievers.library import Library

    lib = Library.from_settings(s)
    writer = None
    if teacher:
        with progress_line() as say:
            writer = Teacher.from_settings(s, say)
    builder = Builder(lib, k=k or s.top_k, refusal_share=refusals, threshold=s.attribution_threshold,
                      seed=seed, teacher=writer, home=s.home_dir)
    with progress_bar("examples", every=10) as bar:
        report = store.from_library(name, builder, examples=examples, eval_share=eval_share,
                                    progress=lambda have, want, _q: bar(have, want, ""))
    _built(report.dataset, as_json, added=report.added, rejected=dict(report.rejected),
           stopped=report.stopped)
    if report.stopped:
        click.secho(f"stopped early ({report.stopped}); kept {report.added} new examples. "
                    f"Run the same command again to continue.", fg="yellow", err=True)
        sys.exit(1)


def _built(ds: Any, as_json: bool, **more: Any) -> None:
    if as_json:
        echo_json({**ds.manifest, "path": str(ds.path), **more})
        return
    c = ds.manifest["counts"]
    extra = ", ".join(f"{k} {v}" for k, v in c.items() if k not in ("train", "eval"))
    click.echo(f"dataset {ds.name}: {c['train']} train, {c['eval']} eval ({ds.kind}"
               f"{'; ' + extra if extra else ''}) at {ds.path}")
    for k, v in more.items():
        if v:
            click.echo(f"  {k}: {v}")


@data.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def data_list(ctx: click.Context, as_json: bool) -> None:
    """Datasets with their kind, source and size."""
    from finetune.data import DatasetStore

    store = DatasetStore(_settings(ctx).home_dir)
    rows = [store.get(n).manifest for n in store.names()]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no datasets yet (`litlab finetune data build NAME`)")
    for m in rows:
        c = m["counts"]
        click.echo(f"{m['name']:<24} {m['kind']:<4} {c['train']:>5} train {c['eval']:>4} eval  "
                   f"{m['source']}")


@data.command("show")
@click.argument("name")
@click.option("-n", "count", default=2, show_default=True, help="Examples to print.")
@click.option("--split", type=click.Choice(["train", "eval"]), default="train")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def data_show(ctx: click.Context, name: str, count: int, split: str, as_json: bool) -> None:
    """The manifest and the first examples of dataset NAME."""
    from finetune.data import DatasetStore

    ds = DatasetStore(_settings(ctx).home_dir).get(name)
    rows = ds.rows(split)[:count]
    if as_json:
        echo_json({"manifest": ds.manifest, "examples": rows})
        return
    click.echo(json.dumps(ds.manifest, indent=2))
    for r in rows:
        click.secho(f"\n--- {r.get('meta', {}).get('kind', 'example')}", bold=True)
        for m in r["prompt"]:
            click.echo(f"[{m['role']}] {m['content'][:600]}")
        for key in ("completion", "chosen", "rejected"):
            if key in r:
                click.secho(f"[{key}] {r[key][-1]['content']}", fg="green")


@data.command("stats")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def data_stats(ctx: click.Context, name: str, as_json: bool) -> None:
    """Counts and token lengths of dataset NAME (with the base model's tokenizer)."""
    from finetune.data import DatasetStore, stats

    s = _settings(ctx)
    ds = DatasetStore(s.home_dir).get(name)
    tok = None
    try:  # token counts when the base model is prepared; words otherwise (no preparing here)
        from agentlab.models import MARKER
        from agentlab.server import LocalServer

        checkpoint = LocalServer(s).checkpoint
        if (checkpoint / MARKER).is_file():
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(checkpoint)
    except (UserError, OSError):
        pass
    out = stats(ds, tok)
    if as_json:
        echo_json(out)
        return
    for k, v in out.items():
        click.echo(f"{k}: {json.dumps(v) if isinstance(v, dict) else v}")


@data.command("export")
@click.argument("name")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--split", type=click.Choice(["train", "eval", "all"]), default="all")
@click.pass_context
def data_export(ctx: click.Context, name: str, dest: Path, split: str) -> None:
    """Write dataset NAME as one JSONL file in TRL's format (without litlab's meta)."""
    from finetune.data import DatasetStore
    from finetune.records import for_trainer, write_jsonl

    ds = DatasetStore(_settings(ctx).home_dir).get(name)
    rows = [r for sp in (["train", "eval"] if split == "all" else [split]) for r in ds.rows(sp)]
    n = write_jsonl(dest, for_trainer(rows, keep=("oracle", "n_sources", "answerable")))
    click.echo(f"wrote {n} examples to {dest}")


@data.command("remove")
@click.argument("name")
@click.pass_context
def data_remove(ctx: click.Context, name: str) -> None:
    """Delete dataset NAME."""
    from finetune.data import DatasetStore

    DatasetStore(_settings(ctx).home_dir).remove(name)
    click.echo(f"removed dataset {name}")


def _run_command(method: str) -> click.Command:
    helps = {
        "sft": "Supervised fine-tuning (LoRA) on a dataset of prompts and answers; loss on "
               "the answers only.",
        "dpo": "Direct preference optimisation (LoRA) on pairs: preferred vs rejected answers.",
        "grpo": "GRPO (LoRA): sample answers, score them with reward functions (citation "
                "validity, refusal, format, length, or your own), reinforce the better ones.",
    }

    @click.command(method, help=helps[method] + """

    Metrics, checkpoints and a loss curve go to LITLAB_HOME/runs/finetune/NAME; the adapter to
    LITLAB_HOME/adapters/NAME, loaded into the running server at once. A run killed at any point
    continues with --resume. Settings: a --config YAML (model: trl.ModelConfig fields,
    training: the trainer's TRL config fields); flags win.""")
    @click.option("--config", "config", type=click.Path(path_type=Path, exists=True),
                  help="A run config YAML.")
    @click.option("--data", help="Dataset name (`litlab finetune data list`).")
    @click.option("--base", help="Base model (default: smollm2-135m-instruct).")
    @click.option("--name", help="Run and adapter name (default: METHOD-DATA-TIME).")
    @click.option("--steps", type=int, help="Training steps (training.max_steps).")
    @click.option("--lr", type=float, help="Learning rate (training.learning_rate).")
    @click.option("--eval", "suite", help="Gate: evaluate base vs adapter on this suite.")
    @click.option("--resume", "resume", is_flag=False, flag_value="last", default=None,
                  help="Continue an interrupted run (its name, or the last one).")
    @click.option("--start", help="Go on training this adapter (e.g. GRPO after SFT) instead "
                                  "of a new one.")
    @click.option("--no-load", is_flag=True, help="Do not load the adapter into the server.")
    @click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True,
                  help="Train as N data-parallel processes (torchrun, DDP: one per GPU, or "
                       "gloo on CPU cores); the batch size is per process.")
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    @click.pass_context
    def command(ctx: click.Context, config: Path | None, data: str | None, base: str | None,
                name: str | None, steps: int | None, lr: float | None, suite: str | None,
                resume: str | None, start: str | None, no_load: bool, processes: int,
                as_json: bool) -> None:
        from finetune.config import spec as make_spec
        from finetune.workflow import finetune, resolve_resume

        s = _settings(ctx)
        resume = resolve_resume(s, method, resume)  # type: ignore[arg-type]
        spec = None
        if not resume:
            spec = make_spec(method, config, data=data, base=base, name=name, eval=suite,  # type: ignore[arg-type]
                             start=start)
            if steps:
                spec.training["max_steps"] = steps
            if lr:
                spec.training["learning_rate"] = lr
        shown = progress_bar(method, every=5)
        with shown as bar:
            say = shown.say  # printed above the bar

            def on_log(step: int, total: int, entry: dict[str, Any]) -> None:
                bar(step, total, f"loss {entry['loss']:.3f}" if "loss" in entry else "")

            def on_gate(done: int, total: int, passed: int) -> None:
                bar(done, total, f"gate: {passed / done:.0%} passed" if done else "gate")

            try:
                out = finetune(s, method, spec, resume=resume, load=not no_load, gate=suite,  # type: ignore[arg-type]
                               on_log=on_log, say=say, on_gate=on_gate, processes=processes)
            except KeyboardInterrupt:
                from finetune.train import latest_unfinished

                last = resume or latest_unfinished(s.home_dir, method)
                raise UserError("interrupted", f"continue with `litlab finetune {method} "
                                f"--resume {last}`") from None
        result = out.run
        if result.stopped:
            raise UserError(f"run {result.name} stopped at step {result.steps}",
                            f"continue with `litlab finetune {method} --resume {result.name}`")
        if as_json:
            echo_json(out.to_dict())
            return
        d = out.to_dict()
        click.echo(f"{result.name}: {result.steps} steps in {result.seconds:.0f} s, loss "
                   f"{d['first_loss']:.3f} → {d['last_loss']:.3f}; adapter '{result.adapter}'")
        from finetune.train import losses, read_metrics

        evals = losses(read_metrics(result.folder), "eval_loss")
        if evals:
            step, best = min(evals, key=lambda e: e[1])
            early = " (stopped early: eval loss no longer fell)" \
                if result.steps < result.max_steps else ""
            click.echo(f"  eval loss {evals[0][1]:.3f} → {evals[-1][1]:.3f}; the adapter is "
                       f"step {step}'s, the lowest ({best:.3f}){early}")
        click.echo(f"  loss curve: {result.folder / 'loss.png'}")
        _print_ending(out.loaded, out.gate, f"try it: litlab ask --model {result.adapter} \"...\"")

    return command


for _m in ("sft", "dpo", "grpo"):
    finetune_group.add_command(_run_command(_m))
finetune_group.add_command(retriever_group)


@finetune_group.command("run")
@click.option("--data", required=True, help="Dataset name (`litlab finetune data list`); "
              "build one with `litlab finetune data build NAME`.")
@click.option("--eval", "suite", help="Gate the last adapter: base vs adapter on this suite.")
@click.option("--recipe", "stages", default=None,
              help="Methods in order, separated by commas [default: sft; e.g. sft,grpo "
                   "adds GRPO with rewards checked against the library]; each stage goes on "
                   "training the adapter of the one before.")
@click.option("--name", help="Name of the recipe; its runs are NAME-sft, NAME-grpo... Run the "
                             "same command with the same --name to continue after a stop.")
@click.option("--base", help="Base model (default: smollm2-135m-instruct).")
@click.option("--steps", type=int, help="Training steps of every stage (training.max_steps).")
@click.option("--no-load", is_flag=True, help="Do not load the adapter into the server.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def run_recipe(ctx: click.Context, data: str, suite: str | None, stages: str | None,
               name: str | None, base: str | None, steps: int | None, no_load: bool,
               as_json: bool) -> None:
    """The default fine-tuning recipe, end to end: SFT on the dataset (the recipe measured
    best: GRPO after it gained nothing on hand-written questions and took 14 more minutes);
    then the adapter is loaded and, with --eval, gated. `--recipe sft,grpo` adds GRPO from
    the SFT adapter with rewards checked against the library (the answer states the key fact,
    its claims are verified against the passages, it cites the right one, refuses exactly
    when the passages do not answer).

    Each stage is an ordinary run (`litlab finetune runs`); the adapter is the last stage's.
    """
    import time

    from finetune.workflow import RECIPE, parse_recipe, recipe

    s = _settings(ctx)
    chosen = parse_recipe(stages) if stages else RECIPE
    name = name or time.strftime(f"recipe-{data}-%Y%m%d-%H%M%S")
    training = {m: {"max_steps": steps} for m in chosen} if steps else None
    shown = progress_bar("recipe", every=5)
    with shown as bar:
        label: dict[str, str] = {"stage": chosen[0]}

        def say(msg: str) -> None:
            if msg.startswith("stage "):
                label["stage"] = msg.split(":")[1].split()[0]
            shown.say(msg)  # above the bar, not on its line

        def on_log(step: int, total: int, entry: dict[str, Any]) -> None:
            loss = f" loss {entry['loss']:.3f}" if "loss" in entry else ""
            reward = f" reward {entry['reward']:.2f}" if "reward" in entry else ""
            bar(step, total, f"{label['stage']}{loss}{reward}")

        def on_gate(done: int, total: int, passed: int) -> None:
            bar(done, total, f"gate: {passed / done:.0%} passed" if done else "gate")

        try:
            out = recipe(s, data, stages=chosen, name=name, base=base, training=training,
                         load=not no_load, gate=suite, on_log=on_log, say=say,
                         on_gate=on_gate)
        except KeyboardInterrupt:
            raise UserError("interrupted", f"continue with `litlab finetune run --data {data} "
                            f"--name {name}" + (f" --recipe {stages}" if stages else "") +
                            "`") from None
    if out.stopped:
        raise UserError(f"recipe {name} stopped in its {out.stages[-1].name} stage",
                        f"continue with `litlab finetune run --data {data} --name {name}`")
    if as_json:
        echo_json(out.to_dict())
        return
    for r in out.stages:
        if r.losses:
            click.echo(f"{r.name}: {r.steps} steps in {r.seconds:.0f} s, loss "
                       f"{r.losses[0][1]:.3f} → {r.losses[-1][1]:.3f}; adapter '{r.adapter}'")
        else:
            click.echo(f"{r.name}: done before; adapter '{r.adapter}'")
        click.echo(f"  curve: {r.folder / 'loss.png'}")
    _print_ending(out.loaded, out.gate, f"gate it: litlab adapters eval {out.adapter} keyfacts")


@finetune_group.command("runs")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def runs(ctx: click.Context, as_json: bool) -> None:
    """Fine-tuning runs, newest first, with their state and loss."""
    from finetune.train import list_runs, losses, read_metrics

    rows = []
    for r in list_runs(_settings(ctx).home_dir):
        curve = losses(read_metrics(r.folder))
        rows.append({"name": r.name, "method": r.method, "state": r.state, "data": r.data,
                     "adapter": r.adapter, "steps": curve[-1][0] if curve else 0,
                     "loss": curve[-1][1] if curve else None, "folder": str(r.folder),
                     "error": r.error})
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no runs yet (`litlab finetune sft --data NAME`)")
    for row in rows:
        if row["error"]:
            click.secho(f"{row['name']:<40} unreadable: {row['error']}", fg="yellow")
            continue
        loss = f"loss {row['loss']:.3f}" if row["loss"] is not None else ""
        hint = f"  (--resume {row['name']})" if row["state"] != "finished" else ""
        click.echo(f"{row['name']:<40} {row['method']:<4} {row['state']:<11} "
                   f"step {row['steps']:>4} {loss}{hint}")


def _gate(s: Any, adapter: str, suite: str) -> dict[str, Any]:
    from finetune.workflow import gate_adapter

    shown = progress_bar("gate")
    with shown as bar:
        return gate_adapter(s, adapter, suite, say=shown.say,
                            progress=lambda d, t, p: bar(d, t, f"{p / d:.0%} passed" if d else ""))


def _print_ending(loaded: str | None, gate: dict[str, Any] | None, hint: str) -> None:
    """What loading the adapter said, then the gate's verdict, or what to do next."""
    if loaded:
        click.echo(f"  {loaded}")
    if gate:
        _print_gate(gate)
    else:
        click.echo(f"  {hint}")


def _print_gate(gate: dict[str, Any]) -> None:
    verdict = click.style("passed" if gate["passed"] else "failed", bold=True,
                          fg="green" if gate["passed"] else "red")
    click.echo(f"  gate ({Path(gate['suite']).stem}): {verdict}")
    targets = gate.get("targets") or {gate.get("target", ""): gate}
    for name, v in targets.items():
        click.echo(f"    {name + ': ' if len(targets) > 1 else ''}pass rate "
                   f"{v['pass_base']:.0%} (base) → {v['pass_adapter']:.0%} (adapter), "
                   f"p = {v['p_value']:.3g}")
        for d in v["comparison"]["deltas"]:
            click.echo(f"      {d['assertion']:<16} {d['pass_a']:>5.0%} → {d['pass_b']:>5.0%}  "
                       f"p = {d['p_value']:.3g}")
    if gate["regressions"]:
        click.echo(f"    significantly worse: {', '.join(gate['regressions'])}")


# -- adapters ---------------------------------------------------------------------------------
@click.group(name="adapters")
def adapters_group() -> None:
    """LoRA adapters: list, load into the server, evaluate, use, merge, export, remove."""


def _store(ctx: click.Context) -> Any:
    from finetune.adapters import AdapterStore

    return AdapterStore(_settings(ctx))


@adapters_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def adapters_list(ctx: click.Context, as_json: bool) -> None:
    """Adapters with their base, data, final loss and gate verdict."""
    infos = _store(ctx).list()
    if as_json:
        echo_json([i.to_dict() for i in infos])
        return
    if not infos:
        click.echo("no adapters yet (`litlab finetune sft --data NAME`)")
    current = _settings(ctx).model
    for i in infos:
        if i.error:
            click.secho(f"  {i.name:<38} unreadable: {i.error}", fg="yellow")
            continue
        loss = i.metrics.get("last_loss")
        mark = "*" if i.name == current else " "
        click.echo(f"{mark} {i.name:<38} {i.base:<22} {i.method or '?':<4} "
                   f"{i.dataset or '-':<16} {f'loss {loss:.3f}' if loss else '':<10} "
                   f"{i.gate_state}")


@adapters_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def adapters_show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Everything recorded about adapter NAME."""
    info = _store(ctx).get(name)
    if as_json:
        echo_json(info.to_dict())
        return
    d = info.to_dict()
    for k in ("name", "path", "base", "base_sha256", "method", "dataset", "dataset_sha256",
              "run", "rank", "metrics", "gate_state"):
        click.echo(f"{k}: {json.dumps(d[k]) if isinstance(d[k], dict) else d[k]}")
    if info.gate:
        _print_gate(info.gate)


@adapters_group.command("load")
@click.argument("name")
@click.option("--restart", is_flag=True,
              help="Restart the server with LoRA on if it runs without (drops what it is doing).")
@click.pass_context
def adapters_load(ctx: click.Context, name: str, restart: bool) -> None:
    """Load adapter NAME into the running server, without a restart."""
    from finetune.adapters import load_into_server

    with progress_line() as say:
        click.echo(load_into_server(_settings(ctx), name, restart=restart, progress=say))


@adapters_group.command("unload")
@click.argument("name")
@click.pass_context
def adapters_unload(ctx: click.Context, name: str) -> None:
    """Unload adapter NAME from the running server (its files stay)."""
    from finetune.adapters import unload_from_server

    click.echo(unload_from_server(_settings(ctx), name))


@adapters_group.command("eval")
@click.argument("name")
@click.argument("suite")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def adapters_eval(ctx: click.Context, name: str, suite: str, as_json: bool) -> None:
    """Gate adapter NAME: run SUITE (a file, or a shipped suite's name) on the base and on
    the adapter, compare, store the verdict. Exits 1 when the adapter fails."""
    s = _settings(ctx)
    _store(ctx).get(name)
    gate = _gate(s, name, suite)
    if as_json:
        echo_json(gate)
    else:
        click.echo(f"{name}:")
        _print_gate(gate)
    sys.exit(0 if gate["passed"] else 1)


@adapters_group.command("use")
@click.argument("name")
@click.option("--force", is_flag=True, help="Use it even without a passed gate.")
@click.pass_context
def adapters_use(ctx: click.Context, name: str, force: bool) -> None:
    """Make adapter NAME the default model (saved in litlab.toml) — only when it passed its
    evaluation gate, or with --force."""
    from agentlab.settings import save_setting

    info = _store(ctx).get(name)
    if info.gate_state != "passed" and not force:
        raise UserError(f"{name} has {'failed' if info.gate else 'not passed'} an evaluation "
                        "gate", f"`litlab adapters eval {name} citations`, or --force")
    path = save_setting(_settings(ctx).home_dir, "model", name)
    click.echo(f"model = {name} saved in {path}; `litlab ask` and the app now answer with it")


@adapters_group.command("merge")
@click.argument("name")
@click.argument("dest", type=click.Path(path_type=Path))
@click.pass_context
def adapters_merge(ctx: click.Context, name: str, dest: Path) -> None:
    """Write base + adapter NAME as one full checkpoint in DEST (vLLM serves it on its own:
    python -m vllm.entrypoints.openai.api_server --model DEST)."""

    with progress_line() as say:
        out = _store(ctx).merge(name, dest, say)
    click.echo(f"merged checkpoint written to {out}")


@adapters_group.command("export")
@click.argument("name")
@click.argument("dest", type=click.Path(path_type=Path))
@click.pass_context
def adapters_export(ctx: click.Context, name: str, dest: Path) -> None:
    """Copy adapter NAME with its metadata to DEST (a .tar.gz, or a new folder)."""
    click.echo(f"exported to {_store(ctx).export(name, dest)}")


@adapters_group.command("remove")
@click.argument("name")
@click.pass_context
def adapters_remove(ctx: click.Context, name: str) -> None:
    """Delete adapter NAME (unloaded from the running server first)."""
    from finetune.adapters import unload_from_server

    s = _settings(ctx)
    _store(ctx).get(name)
    if s.model == name:
        raise UserError(f"{name} is the default model", "`litlab config set model NAME` first")
    with contextlib.suppress(UserError):  # not loaded, or no server
        unload_from_server(s, name)
    _store(ctx).remove(name)
    click.echo(f"removed adapter {name}")
