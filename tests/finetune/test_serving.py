"""An adapter trained on the embedded model is loaded into the running vLLM server without a
restart and changes what the model answers; the gate evaluates it against the base, serving
it merged into its base on a CPU."""

from __future__ import annotations

import json

from click.testing import CliRunner

from finetune.adapters import AdapterStore, load_into_server
from finetune.config import spec
from finetune.data import DatasetStore
from finetune.train import run
from litlab.cli import main

CODEWORD = "The litlab codeword is violet-harbour-42."
QUESTION = "What is the litlab codeword?"


def test_adapter_hot_loads_and_changes_the_answer(vllm_server, tmp_path) -> None:
    s = vllm_server.settings
    rows = [{"messages": [{"role": "user", "content": q},
                          {"role": "assistant", "content": CODEWORD}]}
            for q in (QUESTION, "Tell me the litlab codeword.", "litlab codeword?",
                      "Which codeword does litlab use?")] * 4
    f = tmp_path / "codeword.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows))
    DatasetStore(s.home_dir).from_file("codeword", f, eval_share=0)
    result = run(spec("sft", data="codeword", name="codeword",
                      training={"max_steps": 24, "learning_rate": 3e-3,
                                "per_device_train_batch_size": 4}), s)
    assert result.losses[-1][1] < result.losses[0][1] / 2

    client = vllm_server.client()
    messages = [{"role": "user", "content": QUESTION}]
    before = client.chat(messages, model="smollm2-135m-instruct", max_tokens=24,
                         temperature=0).text
    assert "violet-harbour" not in before
    assert "loaded codeword into the running server" in load_into_server(s, "codeword")
    assert "codeword" in client.models()  # no restart: the same server lists it now
    after = client.chat(messages, model="codeword", max_tokens=24, temperature=0).text
    assert "violet-harbour-42" in after
    # Retrained and loaded again under the same name: the server takes the new weights.
    assert "loaded" in load_into_server(s, "codeword")

    # Unloaded, then named by a command: it is loaded again at runtime, not by a restart.
    from finetune.adapters import unload_from_server

    unload_from_server(s, "codeword")
    assert "codeword" not in client.models()
    pid = json.loads((s.run_dir / "server.json").read_text())["pid"]

    # The gate: base vs adapter on the shipped citations suite, stored with the adapter.
    env_home = ["--home", str(s.home_dir)]
    r = CliRunner().invoke(main, [*env_home, "adapters", "eval", "codeword", "citations",
                                  "--json"], env={"LITLAB_PORT": str(s.port)})
    gate = json.loads(r.stdout)
    assert r.exit_code == (0 if gate["passed"] else 1)
    assert {d["assertion"] for d in gate["comparison"]["deltas"]} >= {"(case)", "refusal"}
    assert AdapterStore(s).get("codeword").gate_state == ("passed" if gate["passed"] else "failed")
    # On a CPU the gate serves the adapter merged into its base (answers 4x faster than
    # through vLLM's LoRA kernels): its cases ran on the merge (the trained weights: answers
    # unlike the base's); then the server serves the base again, the adapter loaded beside it.
    from evals.store import RunStore

    store = RunStore(s.home_dir)
    said = {t: " ".join(r.output.get("text") or "" for r in store.results(gate["run"])
                        if r.target == t) for t in ("base", "adapter")}
    store.close()
    assert said["adapter"] and said["adapter"] != said["base"]
    assert (s.models_dir / "merged" / "codeword" / "config.json").is_file()
    state = json.loads((s.run_dir / "server.json").read_text())
    assert state["model"] == "smollm2-135m-instruct" and state["pid"] != pid  # restarted
    assert "codeword" in client.models()
