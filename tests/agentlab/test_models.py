"""Packaged models: listing, preparing once, surviving interruption, refusing bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agentlab import models
from agentlab.errors import ModelPrepareError
from litlab.cli import main
from tests.conftest import DEFAULT_MODEL


def litlab(*args: str, home: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITLAB_")}
    env["LITLAB_HOME"] = str(home)
    return subprocess.Popen(
        [sys.executable, "-m", "litlab", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_list_shows_both_packaged_models_unprepared() -> None:
    result = CliRunner().invoke(main, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert set(rows) == {"smollm2-135m-instruct", "gemma-3-270m"}
    assert not any(r["prepared"] for r in rows.values())


def test_unknown_model_is_one_line_naming_it() -> None:
    result = CliRunner().invoke(main, ["models", "prepare", "gpt-17"])
    assert result.exit_code == 1
    assert "unknown model 'gpt-17'" in result.output
    assert "smollm2-135m-instruct" in result.output  # says what exists
    assert "Traceback" not in result.output


def test_prepared_checkpoint_is_a_plain_chat_model(prepared_models: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = prepared_models / DEFAULT_MODEL
    config = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in config
    tok = AutoTokenizer.from_pretrained(path)
    model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    ids: Any = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True, return_tensors="pt", return_dict=True,
    )
    out = model.generate(**ids, max_new_tokens=8, do_sample=False)
    answer = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer


def test_prepare_again_is_a_no_op(prepared_models: Path) -> None:
    weights = prepared_models / DEFAULT_MODEL / "model.safetensors"
    before = weights.stat().st_mtime_ns
    started = time.monotonic()
    models.prepare(DEFAULT_MODEL, prepared_models)
    assert time.monotonic() - started < 1
    assert weights.stat().st_mtime_ns == before


@pytest.mark.slow
def test_killed_preparation_leaves_nothing_ready_and_reruns(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = litlab("models", "prepare", home=home)
    assert proc.stderr is not None
    for line in proc.stderr:  # wait until the conversion itself is under way
        if "de-quantizing" in line:
            break
    time.sleep(3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    target = home / "models" / DEFAULT_MODEL
    assert not target.exists()
    assert not models.get_packaged(DEFAULT_MODEL).is_prepared(home / "models")
    assert list((home / "models").glob(f".{DEFAULT_MODEL}.partial-*"))  # the debris

    rerun = litlab("models", "prepare", home=home)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    assert "is ready" in out
    assert (target / "model.safetensors").is_file()
    assert not list((home / "models").glob(".*partial-*"))


def test_corrupt_gguf_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + os.urandom(4096))
    fake = models.PackagedModel("broken", "a damaged file", "some-package", lambda _w: bad)
    monkeypatch.setitem(models.PACKAGED, "broken", fake)

    with pytest.raises(ModelPrepareError, match="broken.gguf"):
        models.prepare("broken", tmp_path / "models")
    assert not (tmp_path / "models" / "broken").exists()
    assert not list((tmp_path / "models").glob(".*partial-*"))


def test_missing_model_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentlab.errors import MissingDependency

    monkeypatch.setattr(models.importlib.util, "find_spec", lambda _name: None)
    with pytest.raises(MissingDependency, match="make setup"):
        models._smollm2_gguf(Path("."))
