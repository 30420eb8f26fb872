"""The gate on several targets of a suite (its ``gate`` list): base and adapter compared on
each, the adapter passing only when no gated target got significantly worse. The model is
scripted: this is about the gate's bookkeeping, not the model (the real server's gate is in
test_serving.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentlab.client import ChatResult
from agentlab.settings import Settings
from finetune.adapters import AdapterStore
from finetune.gate import run_gate
from litcore.errors import UserError

BASE = "smollm2-135m-instruct"


class Scripted:
    """The base answers well everywhere; the adapter only when given room (max_tokens)."""

    def chat(self, messages, *, model: str, max_tokens: int = 128, **kw):
        good = model == BASE or max_tokens >= 64
        return ChatResult("fine" if good else "wrong", model, 1, 1, "stop")

    def models(self) -> list[str]:
        return [BASE, "ad"]


def _suite(tmp_path: Path, gate: str) -> Path:
    cases = "".join(f'  - {{id: q{i}, question: "question {i}?"}}\n' for i in range(8))
    path = tmp_path / "s.yaml"
    path.write_text(
        "targets:\n"
        "  - {name: roomy, kind: prompt, max_tokens: 128}\n"
        "  - {name: short, kind: prompt, max_tokens: 16}\n"
        f"{gate}prompts: [zero_shot]\nassert: [{{type: icontains, value: fine}}]\n"
        f"cases:\n{cases}")
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings(home=tmp_path / "home")
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "adapter_config.json").write_text("{}")
    AdapterStore(s).register("ad", weights, {"base": BASE})
    return s


def test_an_adapter_worse_on_any_gated_target_fails(tmp_path: Path, settings: Settings) -> None:
    # the first model target alone (no gate list): the adapter is as good as the base
    gate = run_gate(settings, Scripted(), "ad", str(_suite(tmp_path, "")))
    assert gate["passed"] and gate["target"] == "roomy" and list(gate["targets"]) == ["roomy"]

    gate = run_gate(settings, Scripted(), "ad", str(_suite(tmp_path, "gate: [roomy, short]\n")))
    assert not gate["passed"]
    assert gate["targets"]["roomy"]["passed"] and not gate["targets"]["short"]["passed"]
    assert (gate["pass_base"], gate["pass_adapter"]) == (1.0, 1.0)  # the headline: roomy
    assert gate["targets"]["short"]["pass_adapter"] == 0.0
    assert "short: (case)" in gate["regressions"]
    assert AdapterStore(settings).get("ad").gate_state == "failed"


def test_a_gate_naming_no_model_target_is_one_line(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(UserError, match="gate names 'long', which is not a model target"):
        run_gate(settings, Scripted(), "ad", str(_suite(tmp_path, "gate: [long]\n")))
