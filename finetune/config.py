"""A fine-tuning run's configuration: litlab's few settings around TRL's own config classes.

```yaml
method: sft                     # sft | dpo | grpo
base: smollm2-135m-instruct     # a packaged model
data: mylib                     # a dataset under LITLAB_HOME/datasets
eval: citations                 # a suite the adapter must pass (optional)
start: sft-mylib-20261203       # continue training this adapter (optional; e.g. GRPO after SFT)
model:                          # trl.ModelConfig: the LoRA adapter
  lora_r: 16
  lora_alpha: 32
training:                       # SFTConfig / DPOConfig / GRPOConfig, any of their fields
  learning_rate: 5.0e-4
  max_steps: 30
rewards: [citations, refusal, format, length]   # GRPO only; or my_rewards.py:fn
```

Nothing of TRL's is declared twice: ``model`` and ``training`` are passed to TRL's dataclasses,
which check them (an unknown field is an error that names it). litlab only chooses defaults
sized for the embedded 135M model on a 2-core CPU; a GPU is used when there is one.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from litcore.errors import UserError

Method = Literal["sft", "dpo", "grpo"]
METHODS: tuple[Method, ...] = ("sft", "dpo", "grpo")

# LoRA on every linear layer of the attention and MLP blocks; rank 16 is what the served
# vLLM accepts by default (max_lora_rank).
MODEL_DEFAULTS: dict[str, Any] = {
    "use_peft": True, "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.05,
    "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                            "down_proj"],
    "lora_task_type": "CAUSAL_LM",
}
# Sized so a run on SmolLM2-135M (prompts of ~700 tokens: three sources) takes minutes on two
# CPU cores (measured ~7 s a step at batch 2).
COMMON: dict[str, Any] = {
    "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "logging_steps": 1,
    "save_strategy": "steps", "save_steps": 5, "save_total_limit": 2, "report_to": [],
    "disable_tqdm": True, "seed": 0, "lr_scheduler_type": "constant_with_warmup",
    "warmup_steps": 2, "dataloader_num_workers": 0,
}
# Loss on the dataset's held-out split every 5 steps, drawn beside the training loss; the
# checkpoint with the lowest eval loss is the adapter (a run that overfits keeps its best
# point), and a run stops after EARLY_STOP evaluations without improvement. Without an eval
# split these are off (train.py). Chosen a priori, not yet by measurement (issue 25).
EVALUATED: dict[str, Any] = {
    "eval_strategy": "steps", "eval_steps": 5, "per_device_eval_batch_size": 2,
    "load_best_model_at_end": True, "metric_for_best_model": "eval_loss",
    "greater_is_better": False,
}
EARLY_STOP = 2
TRAINING_DEFAULTS: dict[Method, dict[str, Any]] = {
    "sft": {**COMMON, **EVALUATED, "learning_rate": 5e-4, "max_steps": 30, "max_length": 1024},
    "dpo": {**COMMON, **EVALUATED, "learning_rate": 1e-4, "max_steps": 20, "max_length": 1024,
            "beta": 0.1},
    "grpo": {**COMMON, "learning_rate": 1e-4, "max_steps": 10, "per_device_train_batch_size": 4,
             "num_generations": 4, "max_completion_length": 64, "temperature": 1.0,
             "save_steps": 2},
}
DEFAULT_REWARDS = ["keyfact", "supported", "citations", "refusal", "format", "length"]
TOP_KEYS = {"method", "name", "base", "data", "eval", "model", "training", "rewards", "start"}


@dataclass
class RunSpec:
    method: Method
    data: str
    base: str = "smollm2-135m-instruct"
    name: str | None = None
    eval: str | None = None
    model: dict[str, Any] = field(default_factory=dict)  # trl.ModelConfig fields
    training: dict[str, Any] = field(default_factory=dict)  # the method's TRL config fields
    rewards: list[str] = field(default_factory=lambda: list(DEFAULT_REWARDS))
    start: str | None = None  # an adapter to go on training (its LoRA settings are kept)
    config_dir: Path | None = None  # where a config file was read (for relative reward files)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["config_dir"] = str(self.config_dir) if self.config_dir else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        """The spec :meth:`to_dict` wrote (TypeError when it is malformed)."""
        return cls(**{**d, "config_dir": Path(d["config_dir"]) if d.get("config_dir") else None})

    def with_name(self, name: str) -> RunSpec:
        return dataclasses.replace(self, name=name)


def read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise UserError(f"{path}{line}: not valid YAML ({getattr(e, 'problem', e)})") from e
    if not isinstance(data, dict):
        raise UserError(f"{path}: a run config is a mapping (method:, data:, training: ...)")
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise UserError(f"{path}: unknown key '{unknown[0]}'",
                        f"known keys: {', '.join(sorted(TOP_KEYS))}")
    return data


def spec(method: Method, config: Path | None = None, **overrides: Any) -> RunSpec:
    """The run's spec: the config file (if any), then command-line values over it."""
    data: dict[str, Any] = read(config) if config else {}
    if data.get("method") and data["method"] != method:
        raise UserError(f"{config} is a {data['method']} config",
                        f"run it with `litlab finetune {data['method']}`")
    data.update({k: v for k, v in overrides.items() if v is not None})
    data["method"] = method
    if not data.get("data"):
        raise UserError("no dataset given",
                        "pass --data NAME (`litlab finetune data list` shows them)")
    for key in ("model", "training"):
        if not isinstance(data.get(key, {}), dict):
            raise UserError(f"{config}: '{key}' must be a mapping of settings")
    if not isinstance(data.get("rewards", []), list):
        raise UserError(f"{config}: 'rewards' must be a list")
    return RunSpec(config_dir=config.parent if config else None, **data)


def model_config(s: RunSpec) -> Any:
    from trl import ModelConfig

    return _build(ModelConfig, {**MODEL_DEFAULTS, **s.model}, "model", "trl.ModelConfig")


def training_config(s: RunSpec, output_dir: Path, *, cuda: bool) -> Any:
    from trl import DPOConfig, GRPOConfig, SFTConfig

    cls = {"sft": SFTConfig, "dpo": DPOConfig, "grpo": GRPOConfig}[s.method]
    values = {**TRAINING_DEFAULTS[s.method], **s.training, "output_dir": str(output_dir)}
    if values.get("save_strategy") == "no":  # no checkpoints: no best one to keep
        values["load_best_model_at_end"] = False
    elif values.get("load_best_model_at_end") and "eval_steps" not in s.training \
            and values.get("save_steps"):
        values["eval_steps"] = values["save_steps"]  # the best point must be a checkpoint
    if not cuda:
        values.setdefault("use_cpu", True)
        # TRL checkpoints activations by default, recomputing the forward pass in the
        # backward one to save GPU memory; a 135M model's activations fit a CPU's memory
        # many times over, and not recomputing made an SFT step ~15% faster (53/46 s
        # against 62/53 s on this 2-core CPU, the same batches).
        values.setdefault("gradient_checkpointing", False)
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # processes of one run (torchrun)
            values.setdefault("ddp_backend", "gloo")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        values.setdefault("ddp_find_unused_parameters", False)  # LoRA uses all it trains
    elif "bf16" not in s.training and "fp16" not in s.training:
        import torch

        values["bf16"] = bool(torch.cuda.is_bf16_supported())
    return _build(cls, values, "training", cls.__name__)


def _build(cls: Any, values: dict[str, Any], section: str, what: str) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"unknown {section} setting '{unknown[0]}'",
                        f"'{section}:' takes the fields of {what}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise UserError(f"invalid {section} settings: {str(e).splitlines()[0]}") from e
