"""The progress bar of long commands: a stage's line is printed above the bar, not on it."""

from __future__ import annotations

import io

from rich.console import Console

from litcore.console import progress_bar


def test_a_line_said_during_a_run_stands_above_the_bar_on_a_terminal() -> None:
    out = io.StringIO()
    shown = progress_bar("recipe", console=Console(file=out, force_terminal=True, width=100))
    with shown as bar:
        bar(3, 10, "sft loss 1.234")
        shown.say("stage 2 of 2: grpo from recipe-sft")
        bar(4, 10, "grpo")
    lines = [line for line in out.getvalue().replace("\r", "\n").split("\n")
             if "stage 2 of 2" in line]
    assert lines and all("recipe" not in line.split("stage")[0] and "/10" not in line
                         for line in lines)


def test_on_a_pipe_progress_and_lines_are_plain(capsys) -> None:
    shown = progress_bar("gate", every=1,
                         console=Console(file=io.StringIO(), force_terminal=False))
    with shown as bar:
        bar(1, 2, "50% passed")
        shown.say("loading adapter a1")
        bar(2, 2, "100% passed")
    assert capsys.readouterr().err.splitlines() == [
        "gate: 1/2 50% passed", "loading adapter a1", "gate: 2/2 100% passed"]
