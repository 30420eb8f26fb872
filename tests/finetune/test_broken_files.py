"""A run or an adapter whose files were damaged (a half-written run.json, an adapter_config.json
edited by hand) is listed with what is wrong, and using it says so in one line: never a
traceback, and the healthy ones next to it stay usable."""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner

from litlab.cli import main


def _litlab(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.output


def test_a_malformed_run_json_is_listed_and_resuming_it_says_why() -> None:
    runs = Path(os.environ["LITLAB_HOME"]) / "runs" / "finetune"
    (runs / "half").mkdir(parents=True)
    (runs / "half" / "run.json").write_text('{"name": "half", "spec": {"meth')
    (runs / "old").mkdir()
    (runs / "old" / "run.json").write_text(json.dumps({"name": "old", "state": "running"}))

    code, out = _litlab("finetune", "runs")
    assert code == 0
    assert "half" in out and "unreadable" in out and "malformed" in out
    assert "old" in out
    code, out = _litlab("finetune", "runs", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["half"]["error"] and rows["old"]["error"]

    code, out = _litlab("finetune", "sft", "--resume", "half")
    assert code == 1
    assert out.strip().splitlines()[-1].startswith("error: run 'half' cannot be resumed")
    # nothing to resume by default: the broken runs are not taken for interrupted ones
    code, out = _litlab("finetune", "sft", "--resume")
    assert code == 1 and "no interrupted sft run" in out


def test_a_broken_adapter_is_listed_as_unreadable_and_the_others_still_work() -> None:
    adapters = Path(os.environ["LITLAB_HOME"]) / "adapters"
    good, bad = adapters / "good", adapters / "bad"
    for folder in (good, bad):
        folder.mkdir(parents=True)
    (good / "adapter_config.json").write_text(json.dumps(
        {"base_model_name_or_path": "/x/smollm2-135m-instruct", "r": 8}))
    (bad / "adapter_config.json").write_text("{'r': 8")  # not JSON

    code, out = _litlab("adapters", "list")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "unreadable" in lines["bad"] and "adapter_config.json" in lines["bad"]
    assert "smollm2-135m-instruct" in lines["good"]

    code, out = _litlab("adapters", "show", "bad")
    assert code == 1 and out.strip().startswith("error: adapter 'bad': adapter_config.json")
    code, out = _litlab("adapters", "show", "good")
    assert code == 0 and "rank: 8" in out
