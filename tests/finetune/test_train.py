"""Real TRL training steps (SFT, DPO, GRPO with PEFT LoRA) on a tiny model built from a config,
through litlab's own commands: loss falls and the adapter's weights change, a killed run
resumes at its checkpoint, DPO trains on pairs the app stored, bad input is one clear line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from litlab.cli import main
from tests.finetune.tiny import tiny_model

MEMORISE = [{"messages": [{"role": "user", "content": f"how many heads does the model use ? {w}"},
                          {"role": "assistant", "content": "the model uses eight heads [1] ."}]}
            for w in ("model", "layer", "paper", "source")] * 4


@pytest.fixture
def home() -> Path:
    home = Path(os.environ["LITLAB_HOME"])
    tiny_model(home)
    f = home / "memorise.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in MEMORISE))
    return home


def litlab(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def lora_b_norm(adapter: Path) -> float:
    from safetensors.torch import load_file

    weights = load_file(str(adapter / "adapter_model.safetensors"))
    return float(sum(w.abs().sum() for k, w in weights.items() if "lora_B" in k))


def test_sft_loss_falls_and_the_adapter_is_registered(home: Path) -> None:
    litlab("finetune", "data", "build", "mem", "--from", str(home / "memorise.jsonl"))
    out = json.loads(litlab("finetune", "sft", "--data", "mem", "--name", "mem1", "--steps", "16",
                            "--lr", "0.01", "--json"))
    assert out["adapter"] == "mem1" and out["steps"] == 16
    assert out["last_loss"] < out["first_loss"] - 0.3
    adapter = home / "adapters" / "mem1"
    assert lora_b_norm(adapter) > 0  # LoRA's B starts at zero: training moved it
    info = json.loads(litlab("adapters", "show", "mem1", "--json"))
    assert info["base"] == "smollm2-135m-instruct" and len(info["base_sha256"]) == 64
    manifest = json.loads((home / "datasets" / "mem" / "manifest.json").read_text())
    assert info["dataset_sha256"] == manifest["sha256"]
    assert info["gate_state"] == "not evaluated"
    run = json.loads((home / "runs" / "finetune" / "mem1" / "run.json").read_text())
    assert run["state"] == "finished" and run["versions"]["trl"] and run["seed"] == 0
    # On a CPU activations are kept, not recomputed in the backward pass (TRL's default is
    # to recompute, which only saves GPU memory): ~15% a step.
    assert run["training"]["gradient_checkpointing"] is False
    assert (home / "runs" / "finetune" / "mem1" / "loss.png").stat().st_size > 1000
    # Not passed a gate: `use` refuses without --force.
    result = CliRunner().invoke(main, ["adapters", "use", "mem1"])
    assert result.exit_code == 1 and "not passed an evaluation gate" in result.output
    assert "smollm2" not in (home / "litlab.toml").read_text() if \
        (home / "litlab.toml").exists() else True
    litlab("adapters", "use", "mem1", "--force")
    assert 'model = "mem1"' in (home / "litlab.toml").read_text()


def test_a_killed_run_resumes_from_its_checkpoint(home: Path) -> None:
    litlab("finetune", "data", "build", "mem", "--from", str(home / "memorise.jsonl"))
    config = home / "run.yaml"
    config.write_text("data: mem\nname: killed\ntraining:\n  max_steps: 40\n  save_steps: 4\n"
                      "  learning_rate: 0.01\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.Popen([sys.executable, "-m", "litlab", "finetune", "sft",
                             "--config", str(config)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    folder = home / "runs" / "finetune" / "killed"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (folder / "checkpoints/checkpoint-8/trainer_state.json").exists():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = max(int(p.name.split("-")[1]) for p in folder.glob("checkpoints/checkpoint-*")
                if (p / "trainer_state.json").exists())
    killed_at = len((folder / "metrics.jsonl").read_text().splitlines())
    assert saved >= 8 and killed_at < 40
    assert json.loads((folder / "run.json").read_text())["state"] == "running"
    runs = litlab("finetune", "runs")
    assert "--resume killed" in runs
    out = json.loads(litlab("finetune", "sft", "--resume", "killed", "--json"))
    assert out["steps"] == 40 and out["adapter"] == "killed"
    steps = [json.loads(line)["step"] for line in
             (folder / "metrics.jsonl").read_text().splitlines()]
    resumed = steps[killed_at:]
    assert resumed[0] == saved + 1  # continued after the checkpoint, not from step 1
    assert json.loads((folder / "run.json").read_text())["state"] == "finished"


def test_bad_input_is_one_line_and_loses_nothing(home: Path) -> None:
    litlab("finetune", "data", "build", "mem", "--from", str(home / "memorise.jsonl"))
    runner = CliRunner()
    r = runner.invoke(main, ["finetune", "sft"])
    assert r.exit_code == 1 and "no dataset given" in r.output
    r = runner.invoke(main, ["finetune", "sft", "--data", "nope"])
    assert "no dataset 'nope' (datasets: mem)" in r.output
    r = runner.invoke(main, ["finetune", "dpo", "--data", "mem"])
    assert "holds sft examples; dpo needs dpo examples" in r.output
    config = home / "bad.yaml"
    config.write_text("data: mem\ntraining:\n  learnin_rate: 0.1\n")
    r = runner.invoke(main, ["finetune", "sft", "--config", str(config)])
    assert "unknown training setting 'learnin_rate'" in r.output and "SFTConfig" in r.output
    small = home / "small.jsonl"
    small.write_text(json.dumps(MEMORISE[0]) + "\n")
    litlab("finetune", "data", "build", "small", "--from", str(small))
    config.write_text("data: small\ntraining:\n  per_device_train_batch_size: 4\n")
    r = runner.invoke(main, ["finetune", "sft", "--config", str(config)])
    assert "has 1 training examples; one step needs 4" in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert not (home / "adapters").exists()


@pytest.mark.anyio
async def test_dpo_trains_on_pairs_the_app_stored(home: Path, papers_dir: Path) -> None:
    """Feedback given in the app (an edited answer) becomes a DPO pair whose prompt is the one
    the model was sent, and DPO trains an adapter on it."""
    from textual.widgets import Input

    from agentlab.settings import load_settings
    from retrievers.library import Library
    from tests.tui.fakes import FakeClient
    from tui.app import LitlabApp
    from tui.services import Services

    lib = Library(home)
    assert lib.index_files([papers_dir]).ok
    lib.close()
    client = FakeClient()
    app = LitlabApp(Services(load_settings().settings, client=client))
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        for question in ("What does low-rank adaptation freeze?",
                         "Which weights does low-rank adaptation freeze?"):
            app.screen.query_one("#ask", Input).value = question
            await pilot.press("enter")
            await app.workers.wait_for_complete()
            await pilot.pause()
            await pilot.press("f5")
            app.screen.query_one("#edit").text = f"Corrected: {question} [1]."  # type: ignore[attr-defined]
            await pilot.press("ctrl+s")
            await pilot.pause()
        assert len(list(app.screen.query("MessageView.assistant"))) == 2
    sent = client.requests[0]
    out = json.loads(litlab("finetune", "data", "build", "prefs", "--from", "feedback",
                            "--kind", "dpo", "--json"))
    assert out["counts"]["train"] == 2
    rows = [json.loads(line) for line in
            (home / "datasets" / "prefs" / "train.jsonl").read_text().splitlines()]
    assert rows[0]["prompt"] == sent  # rebuilt exactly as the model saw it
    assert rows[0]["chosen"][0]["content"].startswith("Corrected:")
    # the answer as the app showed it (its marker to no source already removed)
    assert rows[0]["rejected"][0]["content"] == "LoRA freezes the pretrained weights [1]. See also."
    result = json.loads(litlab("finetune", "dpo", "--data", "prefs", "--name", "dpo1",
                               "--steps", "2", "--json"))
    assert result["adapter"] == "dpo1" and result["steps"] == 2
    assert lora_b_norm(home / "adapters" / "dpo1") > 0


def test_grpo_scores_samples_with_the_shipped_rewards(home: Path) -> None:
    rows = [{"prompt": [{"role": "system", "content": "sources : [1] the model uses eight heads ."},
                        {"role": "user", "content": "how many heads ?"}],
             "completion": [{"role": "assistant", "content": "eight heads [1] ."}],
             "oracle": 1, "n_sources": 1, "answerable": True}] * 4
    f = home / "g.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows))
    litlab("finetune", "data", "build", "g", "--from", str(f))
    out = json.loads(litlab("finetune", "grpo", "--data", "g", "--name", "g1", "--steps", "1",
                            "--json"))
    assert out["adapter"] == "g1"
    (metrics,) = [json.loads(line) for line in
                  (home / "runs" / "finetune" / "g1" / "metrics.jsonl").read_text().splitlines()
                  if "reward" in line][:1]
    assert {"rewards/citations/mean", "rewards/refusal/mean", "rewards/format/mean",
            "rewards/length/mean"} <= set(metrics)


def test_merge_export_and_remove(home: Path, tmp_path: Path) -> None:
    import tarfile

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    litlab("finetune", "data", "build", "mem", "--from", str(home / "memorise.jsonl"))
    litlab("finetune", "sft", "--data", "mem", "--name", "m", "--steps", "4", "--lr", "0.01")
    out = tmp_path / "m.tar.gz"
    litlab("adapters", "export", "m", str(out))
    with tarfile.open(out) as tar:
        assert {"m/adapter_config.json", "m/litlab-adapter.json"} <= set(tar.getnames())
    merged = tmp_path / "merged"
    litlab("adapters", "merge", "m", str(merged))
    base = home / "models" / "smollm2-135m-instruct"
    ids = torch.tensor([[2, 10, 11, 12, 13]])
    with torch.no_grad():
        want = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base),
                                         str(home / "adapters" / "m"))(ids).logits
        got = AutoModelForCausalLM.from_pretrained(merged)(ids).logits
        plain = AutoModelForCausalLM.from_pretrained(base)(ids).logits
    assert torch.allclose(want, got, atol=1e-4) and not torch.allclose(plain, got, atol=1e-4)
    litlab("adapters", "remove", "m")
    assert "no adapters yet" in litlab("adapters", "list")


def test_a_run_that_overfits_stops_early_and_keeps_its_best_checkpoint(home: Path) -> None:
    """Eval loss on the held-out split is logged beside the training loss; when it stops
    falling the run ends, and the adapter is the checkpoint where it was lowest."""
    def rows(answer_of: dict[int, str]) -> str:
        return "\n".join(json.dumps({"messages": [
            {"role": "user", "content": f"how many heads does the model use ? {i}"},
            {"role": "assistant", "content": answer_of.get(i, "the model uses eight heads .")}]})
            for i in range(20))

    probe = home / "probe.jsonl"
    probe.write_text(rows({}))
    litlab("finetune", "data", "build", "probe", "--from", str(probe), "--eval-share", "0.2")
    import re

    held = re.findall(r"\? (\d+)", (home / "datasets" / "probe" / "eval.jsonl").read_text())
    assert len(held) == 4
    # the same rows, the held-out ones now saying something training never teaches
    f = home / "overfit.jsonl"
    f.write_text(rows({int(i): "two layers of a different kind , the paper says ." for i in held}))
    litlab("finetune", "data", "build", "overfit", "--from", str(f), "--eval-share", "0.2")
    out = json.loads(litlab("finetune", "sft", "--data", "overfit", "--name", "over",
                            "--steps", "40", "--lr", "0.01", "--json"))
    folder = home / "runs" / "finetune" / "over"
    evals = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()
             if "eval_loss" in line]
    assert [e["step"] for e in evals][:2] == [5, 10]  # every save_steps
    best = min(evals, key=lambda e: e["eval_loss"])
    assert evals[-1]["eval_loss"] > best["eval_loss"]  # it overfit after its best point ...
    assert out["steps"] < 40 and out["adapter"] == "over"  # ... so it stopped early
    info = json.loads(litlab("adapters", "show", "over", "--json"))
    assert info["metrics"]["best_step"] == best["step"] and info["metrics"]["stopped_early"]
    # no held-out split: nothing evaluated, the run goes to its last step
    litlab("finetune", "data", "build", "all", "--from", str(f), "--eval-share", "0")
    out = json.loads(litlab("finetune", "sft", "--data", "all", "--name", "all", "--steps", "6",
                            "--lr", "0.01", "--json"))
    assert out["steps"] == 6
    assert "eval_loss" not in (home / "runs" / "finetune" / "all" / "metrics.jsonl").read_text()


def test_two_processes_train_one_run_whose_loss_follows_a_one_process_run(home: Path) -> None:
    """`--processes 2`: two DDP processes (gloo on this CPU) train one run; each takes a
    batch every step (about twice the tokens), the loss follows the one-process run's, and
    the adapter is registered once, by rank 0."""
    litlab("finetune", "data", "build", "mem", "--from", str(home / "memorise.jsonl"))
    common = ["--data", "mem", "--steps", "6", "--lr", "0.01", "--no-load", "--json"]
    one = json.loads(litlab("finetune", "sft", "--name", "one", *common))
    two = json.loads(litlab("finetune", "sft", "--name", "two", "--processes", "2", *common))
    assert two["adapter"] == "two" and two["steps"] == 6 and not two["stopped"]
    assert lora_b_norm(home / "adapters" / "two") > 0
    assert (home / "runs" / "finetune" / "two" / "processes.log").exists()
    assert two["tokens"] > 1.5 * one["tokens"]  # both processes took a batch each step

    def curve(run: str) -> list[float]:
        path = home / "runs" / "finetune" / run / "metrics.jsonl"
        return [e["loss"] for e in map(json.loads, path.read_text().splitlines()) if "loss" in e]

    a, b = curve("one"), curve("two")
    assert len(a) == len(b) == 6
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 0.05, (a, b)
    assert b[-1] < b[0]
    runs = json.loads(litlab("finetune", "runs", "--json"))
    assert {r["name"]: r["state"] for r in runs}["two"] == "finished"


def test_the_recipe_runs_sft_then_grpo_from_that_adapter_and_continues_where_it_stopped(
        home: Path) -> None:
    """`finetune run --recipe sft,grpo`: SFT, then GRPO going on from the SFT adapter with the
    library-checked rewards (key fact, verified claims) among its metrics; the same command
    again finds both stages done and trains nothing; the default recipe is SFT alone (the one
    measured best); a recipe of unknown methods is one line."""
    passage = "the model uses eight attention heads in every layer ."
    rows = [{"prompt": [{"role": "system", "content": f"sources : [1] {passage}"},
                        {"role": "user", "content": f"how many heads does it use ? {w}"}],
             "completion": [{"role": "assistant", "content": "it uses eight heads [1] ."}],
             "oracle": 1, "n_sources": 1, "answerable": True,
             "sources": [{"n": 1, "title": "a paper", "section": "model", "text": passage}],
             "meta": {"question": "how many heads does it use ?"}}
            for w in ("a", "b", "c", "d")]
    f = home / "r.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows))
    litlab("finetune", "data", "build", "r", "--from", str(f), "--eval-share", "0")
    out = json.loads(litlab("finetune", "run", "--data", "r", "--name", "r1", "--steps", "2",
                            "--recipe", "sft,grpo", "--no-load", "--json"))
    assert [s["name"] for s in out["stages"]] == ["r1-sft", "r1-grpo"]
    assert out["adapter"] == "r1-grpo"
    runs = home / "runs" / "finetune"
    grpo = json.loads((runs / "r1-grpo" / "run.json").read_text())
    assert grpo["spec"]["start"] == "r1-sft" and grpo["state"] == "finished"
    metrics = [json.loads(line) for line in
               (runs / "r1-grpo" / "metrics.jsonl").read_text().splitlines()]
    assert any({"rewards/keyfact/mean", "rewards/supported/mean"} <= set(m) for m in metrics)
    # the GRPO adapter went on from the SFT one: its LoRA weights started there, not at zero
    from safetensors.torch import load_file

    sft, rl = (load_file(str(home / "adapters" / n / "adapter_model.safetensors"))
               for n in ("r1-sft", "r1-grpo"))
    moved = sum(float((rl[k] - sft[k]).abs().sum()) for k in sft if "lora_B" in k)
    assert set(rl) == set(sft) and moved < 0.5 * lora_b_norm(home / "adapters" / "r1-sft")

    again = CliRunner().invoke(main, ["finetune", "run", "--data", "r", "--name", "r1",
                                      "--recipe", "sft,grpo", "--no-load", "--json"],
                               catch_exceptions=False)
    assert again.exit_code == 0
    assert "stage 1 of 2: sft: done before" in again.stderr
    assert json.loads(again.stdout)["adapter"] == "r1-grpo"
    # the default recipe: SFT alone (here done before, under the same name)
    default = CliRunner().invoke(main, ["finetune", "run", "--data", "r", "--name", "r1",
                                        "--no-load", "--json"], catch_exceptions=False)
    assert "stage 1 of 1: sft: done before" in default.stderr
    assert [s["name"] for s in json.loads(default.stdout)["stages"]] == ["r1-sft"]

    bad = CliRunner().invoke(main, ["finetune", "run", "--data", "r", "--recipe", "sft,ppo"])
    assert bad.exit_code == 1 and "unknown recipe stage 'ppo'" in bad.output
    typo = CliRunner().invoke(main, ["finetune", "run", "--data", "r", "--eval", "keyfakts"])
    assert typo.exit_code == 1 and "no suite 'keyfakts'" in typo.output
    assert "stage 1" not in typo.output  # refused before any training


def test_a_long_example_is_trained_whole_not_cut_before_its_answer(home: Path) -> None:
    """Five sources make a prompt longer than TRL's default 1024 tokens, and TRL cuts from
    the end, where the answer is: the run's length is fitted to the longest example."""
    passage = " ".join(f"word{i}" for i in range(2000))
    rows = [{"prompt": [{"role": "system", "content": f"sources : [1] {passage}"},
                        {"role": "user", "content": "how many heads ?"}],
             "completion": [{"role": "assistant", "content": "eight heads [1] ."}]}] * 4
    f = home / "long.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows))
    litlab("finetune", "data", "build", "long", "--from", str(f), "--eval-share", "0")
    out = json.loads(litlab("finetune", "sft", "--data", "long", "--name", "l1", "--steps", "1",
                            "--no-load", "--json"))
    assert out["tokens"] > 1024 * 2  # two whole examples in the step (batch 2)
    run = json.loads((home / "runs" / "finetune" / "l1" / "run.json").read_text())
    assert run["training"]["max_length"] > 1024


def test_a_merged_checkpoint_is_written_once_and_again_after_retraining(home: Path) -> None:
    """What a suite serves for an adapter on a CPU: its merge, rewritten when it changed."""
    import torch
    from transformers import AutoModelForCausalLM

    from agentlab.models import merged_checkpoint

    litlab("finetune", "data", "build", "mem", "--from", str(home / "memorise.jsonl"))
    litlab("finetune", "sft", "--data", "mem", "--name", "m", "--steps", "2", "--lr", "0.01")
    adapter = home / "adapters" / "m"
    first = merged_checkpoint(home / "models", adapter)
    assert first == home / "models" / "merged" / "m"
    written = (first / "model.safetensors").stat().st_mtime_ns
    assert merged_checkpoint(home / "models", adapter) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == written  # not merged again
    ids = torch.tensor([[2, 10, 11, 12, 13]])
    with torch.no_grad():
        before = AutoModelForCausalLM.from_pretrained(first)(ids).logits
    # trained again: a new weights file where the old one was
    litlab("finetune", "sft", "--data", "mem", "--name", "m2", "--steps", "4", "--lr", "0.02")
    shutil.copy(home / "adapters" / "m2" / "adapter_model.safetensors", adapter)
    again = merged_checkpoint(home / "models", adapter)
    with torch.no_grad():
        after = AutoModelForCausalLM.from_pretrained(again)(ids).logits
    assert not torch.allclose(before, after, atol=1e-4)  # the retrained weights, merged
    litlab("adapters", "remove", "m")
    assert not first.exists()  # removing an adapter removes its merge
