"""The ``litlab`` command: the root every package's commands hang from.

The assistant's commands (`ask`, `chat`, `serve`, `models`, `prompts`, `config`) are small
and import nothing heavy, so they are added as they are; the library's, the suites' and
fine-tuning's groups are imported only when their command runs, so ``litlab --help`` loads no
torch, vLLM or FAISS. Every :class:`~litcore.errors.UserError` becomes one line on stderr and
a non-zero exit; Ctrl-C exits 130 without a traceback.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from agentlab.cli import COMMANDS, State, chat, pass_state
from litcore.errors import UserError


class LitlabGroup(click.Group):
    """A click group that reports litlab errors as one line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as e:  # every litlab error, whichever package raised it
            click.secho(f"error: {e}", fg="red", err=True)
            ctx.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            ctx.exit(130)


@click.group(cls=LitlabGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(file_okay=False), help="litlab's data folder (LITLAB_HOME).")
@click.option("--api-base", help="URL of a vLLM server you run yourself, or several separated "
                                 "by commas; litlab then starts none.")
@click.option("--model", "-m", help="Model or adapter to answer with.")
@click.version_option(package_name="litlab")
@click.pass_context
def main(ctx: click.Context, home: str | None, api_base: str | None, model: str | None) -> None:
    """litlab: a local-first research assistant for deep learning.

    Run with no command to open the terminal app (the line chat when not in a terminal).
    Settings come from flags, LITLAB_* environment variables, LITLAB_HOME/litlab.toml and
    defaults, in that order; `litlab config show` prints them.
    """
    ctx.obj = State({"home": home, "api_base": api_base, "model": model})
    if ctx.invoked_subcommand is None:
        ctx.invoke(tui if sys.stdin.isatty() and sys.stdout.isatty() else chat)


@main.command()
@pass_state
def tui(state: State) -> None:
    """Open the terminal app: chat with cited answers, the library, feedback (F1: keys)."""
    from tui.app import run

    run(lambda: state.loaded(echo=False))  # loaded by the app after its first paint


for _command in COMMANDS:
    main.add_command(_command)


def _mount(name: str, target: str, help_text: str) -> None:
    """Add a command whose module is imported only when it runs (`--help` lists it cheaply)."""
    module, attr = target.split(":")

    class LazyCommand(click.Command):
        def _real(self) -> click.Command:
            return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return,unused-ignore]

        def make_context(self, info_name, args, parent=None, **extra):  # type: ignore[override,unused-ignore]
            return self._real().make_context(info_name, args, parent=parent, **extra)

        def invoke(self, ctx: click.Context) -> Any:
            return self._real().invoke(ctx)

    main.add_command(LazyCommand(name, help=help_text, add_help_option=False,
                                 context_settings={"ignore_unknown_options": True}))


_mount("index", "retrievers.cli:index", "Add papers to the library (files, arXiv).")
_mount("library", "retrievers.cli:library", "Inspect and maintain the library.")
_mount("search", "retrievers.cli:search", "Search the library by meaning and by words.")
_mount("eval", "evals.cli:eval_group",
       "Evaluation suites: cases × prompts × models, reports, compare.")
_mount("finetune", "finetune.cli:finetune_group",
       "Fine-tune the base model: datasets, LoRA SFT / DPO / GRPO, gated by a suite.")
_mount("adapters", "finetune.cli:adapters_group",
       "LoRA adapters: list, load into the server, evaluate, use, merge, export.")


if __name__ == "__main__":  # pragma: no cover
    main()
