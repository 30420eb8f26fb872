"""One fine-tuning run: a dataset, a base model, TRL's trainer with a PEFT LoRA adapter.

Everything a run leaves is under ``LITLAB_HOME/runs/finetune/NAME/``: ``run.json`` (config,
dataset hash, seed, library and package versions, state), ``metrics.jsonl`` (one line a
logged step), ``loss.png``, ``checkpoints/`` (TRL's, every ``save_steps``) and ``adapter/``.
A run killed at any point is continued with ``--resume``: from its last checkpoint, with the
config it started with. A finished adapter is registered under ``adapters/NAME``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune.config import RunSpec, model_config, training_config
from finetune.data import Dataset, DatasetStore, check_name
from finetune.records import DataError, for_trainer
from litcore.errors import UserError

OnLog = Callable[[int, int, dict[str, Any]], None]  # step, max steps, logged values
PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets")


@dataclass
class RunResult:
    name: str
    folder: Path
    adapter: str | None  # the registered adapter's name (None when stopped early)
    steps: int
    max_steps: int
    seconds: float
    losses: list[tuple[int, float]] = field(default_factory=list)
    tokens: int = 0  # training tokens seen (SFT)
    stopped: bool = False
    spec: RunSpec | None = None  # what the run was started with

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "folder": str(self.folder), "adapter": self.adapter,
                "steps": self.steps, "max_steps": self.max_steps,
                "seconds": round(self.seconds, 2), "tokens": self.tokens,
                "tokens_per_s": round(self.tokens_per_s, 1), "stopped": self.stopped,
                "first_loss": self.losses[0][1] if self.losses else None,
                "last_loss": self.losses[-1][1] if self.losses else None}


def runs_dir(home: Path) -> Path:
    return Path(home) / "runs" / "finetune"


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for p in ("litlab", *PACKAGES):
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = "missing"
    return out


@dataclass
class RunInfo:
    """A run as its ``run.json`` records it; ``error`` says why that file could not be read
    (the run is listed, never a traceback)."""

    name: str
    folder: Path
    method: str = "?"
    state: str = "unreadable"
    data: str = "?"
    adapter: str | None = None
    started: float = 0.0
    spec: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def read_run(folder: Path) -> RunInfo:
    """The run in ``folder``; a missing or malformed ``run.json`` gives ``error``."""
    info = RunInfo(folder.name, folder)
    try:
        raw = json.loads((folder / "run.json").read_text())
        info.spec = dict(raw["spec"])
        info.method, info.state = str(info.spec["method"]), str(raw["state"])
        info.data = str(raw.get("dataset", {}).get("name", "?"))
        info.adapter, info.started = raw.get("adapter"), float(raw.get("started") or 0)
    except FileNotFoundError:
        info.error = "it has no run.json"
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        info.error = f"its run.json is malformed ({type(e).__name__}: {e})"
    return info


def list_runs(home: Path) -> list[RunInfo]:
    """Every run under ``runs/finetune``, newest first."""
    root = runs_dir(home)
    if not root.is_dir():
        return []
    runs = [read_run(d) for d in root.iterdir() if d.is_dir()]
    return sorted(runs, key=lambda r: (-r.started, r.name))


def latest_unfinished(home: Path, method: str | None = None) -> str | None:
    """The newest run (of ``method``) that did not finish and can be resumed."""
    for r in list_runs(home):
        if r.error is None and r.state != "finished" and method in (None, r.method):
            return r.name
    return None


def read_metrics(folder: Path) -> list[dict[str, Any]]:
    path = folder / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def losses(metrics: list[dict[str, Any]], key: str = "loss") -> list[tuple[int, float]]:
    """(step, value) of a logged loss: the training loss, or ``key="eval_loss"``."""
    return [(int(m["step"]), float(m[key])) for m in metrics if key in m]


def plot_loss(folder: Path) -> Path | None:
    """``loss.png`` of a run's logged training loss (and eval loss where logged)."""
    metrics = read_metrics(folder)
    train = losses(metrics)
    if not train:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=120)
    ax.plot(*zip(*train, strict=True), label="train loss", color="#3b6fb6")
    evals = losses(metrics, "eval_loss")
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="eval loss", color="#d9822b")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(folder.name, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = folder / "loss.png"
    fig.savefig(out)
    plt.close(fig)
    return out


def _dataset(store: DatasetStore, spec: RunSpec) -> Dataset:
    ds = store.get(spec.data)
    want = "dpo" if spec.method == "dpo" else "sft"
    if ds.kind != want:
        hint = "`litlab finetune dpo`" if ds.kind == "dpo" else \
            "build pairs with `litlab finetune data build --from feedback --kind dpo`"
        raise DataError(f"dataset '{ds.name}' holds {ds.kind} examples; {spec.method} needs "
                        f"{want} examples", hint)
    if spec.method == "grpo" and not any("oracle" in r for r in ds.rows()):
        raise DataError(f"dataset '{ds.name}' has no oracle sources for GRPO's rewards",
                        "build it from the library: `litlab finetune data build --from library`")
    return ds


MAX_LENGTH = 4096  # the served model's context (settings.max_model_len)


def fitted_length(ds: Dataset, base: Path) -> int:
    """The sequence length that holds the dataset's longest example whole (prompt and
    answer, with the chat template), at most MAX_LENGTH. TRL's default (1024) cuts the end of
    a longer example, and the end is the answer: a prompt with five sources of ~200 tokens
    runs past it, and such an example teaches nothing."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    longest = 0
    for row in ds.rows("train") + ds.rows("eval"):
        prompt = row.get("prompt") or []
        answers = [row[k] for k in ("completion", "chosen", "rejected") if k in row]
        for messages in ([row["messages"]] if "messages" in row else
                         [prompt + a for a in answers if isinstance(a, list)]):
            ids: Any = tokenizer.apply_chat_template(messages, tokenize=True)
            if hasattr(ids, "keys"):  # a BatchEncoding in newer transformers
                ids = ids["input_ids"]
            longest = max(longest, len(ids))
    return max(256, min(MAX_LENGTH, longest + 8))


def _check_resources(folder: Path, targs: Any, base: Path) -> None:
    """Fail before any time is lost when the disk or memory is known to be too small."""
    import psutil

    weights = sum(p.stat().st_size for p in base.glob("*.safetensors"))
    free = shutil.disk_usage(folder).free
    need_disk = 200 * 2**20 + weights // 4  # adapters, optimizer states and checkpoints
    if free < need_disk:
        raise UserError(f"only {free / 2**20:.0f} MiB free on {folder}'s disk; a run needs "
                        f"about {need_disk / 2**20:.0f} MiB", "free some space and run again")
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(base)
    hidden = int(getattr(cfg, "hidden_size", 1024))
    layers = int(getattr(cfg, "num_hidden_layers", 24))
    length = int(getattr(targs, "max_length", None) or 1024)
    batch = int(targs.per_device_train_batch_size)
    # fp32 weights (a reference copy for DPO), plus activations kept for the backward pass
    # (~34 values per hidden unit a token and layer, the usual transformer estimate).
    need = weights * 2 * (2 if hasattr(targs, "beta") else 1) + \
        batch * length * layers * hidden * 34 * 4
    available = psutil.virtual_memory().available
    if need > available:
        raise UserError(
            f"this run needs about {need / 2**30:.1f} GiB of memory and {available / 2**30:.1f} "
            "GiB is available",
            "lower training.per_device_train_batch_size or training.max_length")


def _callback(folder: Path, on_log: OnLog | None, stop: threading.Event | None) -> Any:
    from transformers import TrainerCallback

    class Record(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kw: Any) -> None:
            if not logs or not state.is_world_process_zero:
                return
            entry = {"step": state.global_step, "max_steps": state.max_steps, "time": time.time(),
                     **{k: v for k, v in logs.items() if isinstance(v, int | float)}}
            with (folder / "metrics.jsonl").open("a") as f:
                f.write(json.dumps(entry) + "\n")
            if on_log is not None:
                on_log(state.global_step, state.max_steps, entry)

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if stop is not None and stop.is_set():
                control.should_save = True  # a clean stop leaves a checkpoint to resume from
                control.should_training_stop = True

    return Record()


def _rewards(spec: RunSpec) -> list[Any]:
    from finetune.rewards import load

    if not spec.rewards:
        raise UserError("GRPO needs at least one reward", "rewards: [citations, refusal]")
    return [load(r, spec.config_dir) for r in spec.rewards]


def _rank() -> int:
    """This process's rank in a multi-process run (0 alone): only rank 0 writes the run."""
    return int(os.environ.get("RANK", "0"))


def _prepare(spec: RunSpec | None, settings: Any, resume: str | None,
             check_name_free: bool = True) -> tuple[RunSpec, Dataset, str, Path]:
    """The spec (a resumed run's own), its dataset, the run's name and folder; every
    mistake is one line before anything is trained."""
    home = Path(settings.home_dir)
    if resume:
        folder = runs_dir(home) / check_name(resume, "run")
        info = read_run(folder)
        if not folder.is_dir():
            raise UserError(f"no run '{resume}' to resume", f"runs are in {runs_dir(home)}")
        if info.error:
            raise UserError(f"run '{resume}' cannot be resumed: {info.error}",
                            f"start a new run, or remove {folder}")
        if info.state == "finished":
            raise UserError(f"run '{resume}' already finished",
                            f"its adapter is '{info.adapter}'")
        try:
            spec = RunSpec.from_dict(info.spec)
        except TypeError as e:
            raise UserError(f"run '{resume}' cannot be resumed: its run.json's spec is "
                            f"malformed ({e})", f"start a new run, or remove {folder}") from None
    if spec is None:
        raise UserError("no run spec and no run to resume", "`litlab finetune sft --data NAME`")
    ds = _dataset(DatasetStore(home), spec)
    if spec.start:
        from finetune.adapters import AdapterStore

        started = AdapterStore(settings).get(spec.start)
        if started.base != spec.base:
            raise UserError(f"adapter '{spec.start}' was trained on {started.base}, not "
                            f"{spec.base}", f"train on --base {started.base}")
    name = spec.name or time.strftime(f"{spec.method}-{ds.name}-%Y%m%d-%H%M%S")
    folder = runs_dir(home) / check_name(name, "run")
    if check_name_free and not resume and folder.exists() and (folder / "run.json").exists():
        raise UserError(f"a run named '{name}' exists",
                        f"continue it with --resume {name}, or choose another --name")
    return spec, ds, name, folder


def run(spec: RunSpec | None, settings: Any, *, resume: str | None = None,
        on_log: OnLog | None = None, stop: threading.Event | None = None,
        register: bool = True) -> RunResult:
    """Train (or, with ``resume``, continue training with the spec it started with) and
    register the adapter. In one process of a multi-process run (finetune.distributed),
    rank 0 alone writes the run."""
    import torch

    from finetune.adapters import AdapterStore, base_checkpoint, base_sha256

    main = _rank() == 0
    spec, ds, name, folder = _prepare(spec, settings, resume, check_name_free=main)
    folder.mkdir(parents=True, exist_ok=True)
    base = base_checkpoint(settings, spec.base)
    cuda = torch.cuda.is_available()
    targs = training_config(spec, folder / "checkpoints", cuda=cuda)
    if spec.method in ("sft", "dpo") and "max_length" not in spec.training:
        targs.max_length = fitted_length(ds, base)
    margs = model_config(spec)
    if margs.lora_r > settings.max_lora_rank:
        raise UserError(f"LoRA rank {margs.lora_r} is above the server's max_lora_rank "
                        f"({settings.max_lora_rank}); the adapter could not be served",
                        f"lower model.lora_r, or `litlab config set max_lora_rank "
                        f"{margs.lora_r}`")
    train_rows = ds.rows("train")
    per_step = targs.per_device_train_batch_size * targs.gradient_accumulation_steps
    if spec.method == "grpo":
        per_step = max(per_step, targs.num_generations) // targs.num_generations
    if len(train_rows) < per_step:
        raise DataError(f"dataset '{ds.name}' has {len(train_rows)} training examples; one step "
                        f"needs {per_step}",
                        "build more, or lower training.per_device_train_batch_size")
    _check_resources(folder, targs, base)
    state = {
        "name": name, "spec": spec.to_dict(), "state": "running", "started": time.time(),
        "dataset": {"name": ds.name, "sha256": ds.sha256, "kind": ds.kind,
                    "train": len(train_rows), "eval": len(ds.rows("eval"))},
        "base": {"name": spec.base, "path": str(base), "sha256": base_sha256(base)},
        "seed": targs.seed, "device": "cuda" if cuda else "cpu", "versions": versions(),
        "training": {k: v for k, v in targs.to_dict().items()
                     if not k.startswith("_") and k not in ("output_dir", "logging_dir")},
        "model": {k: getattr(margs, k) for k in ("lora_r", "lora_alpha", "lora_dropout",
                                                 "lora_target_modules")},
    }
    if resume:
        old = json.loads((folder / "run.json").read_text())
        state["started"], state["resumed"] = old.get("started"), old.get("resumed", 0) + 1
    write = _write_json if main else (lambda _path, _data: None)  # rank 0 writes the run
    write(folder / "run.json", state)

    from transformers import PrinterCallback
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # litlab shows progress and loss itself
    start = Path(settings.adapters_dir) / spec.start if spec.start else None
    trainer = _trainer(spec, ds, base, targs, margs, folder, on_log, stop, cuda, start)
    trainer.remove_callback(PrinterCallback)
    last = _last_checkpoint(folder / "checkpoints") if resume else None
    if not resume and main:
        (folder / "metrics.jsonl").unlink(missing_ok=True)
    started = time.perf_counter()
    try:
        trainer.train(resume_from_checkpoint=str(last) if last else None)
    except KeyboardInterrupt:
        state["state"] = "interrupted"
        write(folder / "run.json", state)
        raise
    seconds = time.perf_counter() - started
    ts = trainer.state
    result = RunResult(name, folder, None, ts.global_step, ts.max_steps, seconds,
                       losses(read_metrics(folder)),
                       tokens=int(getattr(ts, "num_input_tokens_seen", 0) or
                                  _num_tokens(read_metrics(folder))), spec=spec)
    if not main:
        return result  # rank 0 saves, registers and plots
    plot_loss(folder)
    if ts.global_step < ts.max_steps and stop is not None and stop.is_set():
        result.stopped = True  # the person stopped it: a checkpoint to resume, no adapter
        state["state"] = "stopped"
        _write_json(folder / "run.json", state)
        return result
    # with an eval split the weights are the best checkpoint's (lowest eval loss), loaded at
    # the end, also when the eval loss stopped falling and the run ended early
    trainer.save_model(str(folder / "adapter"))
    evals = losses(read_metrics(folder), "eval_loss")
    metrics = {"steps": ts.global_step, "seconds": round(seconds, 1),
               "first_loss": result.losses[0][1] if result.losses else None,
               "last_loss": result.losses[-1][1] if result.losses else None,
               "tokens_per_s": round(result.tokens_per_s, 1),
               **({"best_eval_loss": round(min(v for _, v in evals), 4),
                   "best_step": min(evals, key=lambda e: e[1])[0],
                   "stopped_early": ts.global_step < ts.max_steps} if evals else {})}
    if register:
        AdapterStore(settings).register(name, folder / "adapter", {
            "base": spec.base, "base_sha256": state["base"]["sha256"], "method": spec.method,
            "dataset": ds.name, "dataset_sha256": ds.sha256, "run": name,
            "config": {"spec": spec.to_dict(), "training": state["training"],
                       "model": state["model"]}, "metrics": metrics})
        result.adapter = name
    state.update(state="finished", finished=time.time(), adapter=result.adapter, metrics=metrics)
    _write_json(folder / "run.json", state)
    shutil.rmtree(folder / "checkpoints", ignore_errors=True)  # the adapter is what is kept
    return result


def _num_tokens(metrics: list[dict[str, Any]]) -> int:
    return int(max((m.get("num_tokens", 0) for m in metrics), default=0))


def _last_checkpoint(root: Path) -> Path | None:
    found = [p for p in root.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    return max(found, key=lambda p: int(p.name.split("-")[-1])) if found else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)


def grpo_row(row: dict[str, Any]) -> dict[str, Any]:
    """A dataset row as GRPO's rewards read it: the prompt, the oracle's number, whether the
    sources answer, the question, the verified answer (no markers) and the passages."""
    from finetune.rewards import plain_answer

    answer = row.get("completion") or []
    text = str(answer[-1]["content"]) if isinstance(answer, list) and answer else str(answer)
    return {"prompt": row["prompt"], "oracle": row.get("oracle"),
            "n_sources": row.get("n_sources"), "answerable": row.get("answerable"),
            "question": str((row.get("meta") or {}).get("question") or ""),
            "reference": plain_answer(text) if row.get("answerable") else "",
            "sources": row.get("sources") or []}


def _trainer(spec: RunSpec, ds: Dataset, base: Path, targs: Any, margs: Any, folder: Path,
             on_log: OnLog | None, stop: threading.Event | None, cuda: bool,
             start: Path | None = None) -> Any:
    import datasets
    import torch
    from datasets import Dataset as HFDataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOTrainer, GRPOTrainer, SFTTrainer, get_peft_config

    datasets.disable_progress_bars()  # litlab's own bar says where the run is
    if not cuda:
        torch.set_num_threads(max(1, torch.get_num_threads()))
    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch.bfloat16 if getattr(targs, "bf16", False) else torch.float32
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
    peft = get_peft_config(margs)
    if start is not None:  # go on training that adapter (DPO's reference: the base alone)
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(start),  # type: ignore[assignment]
                                          is_trainable=True)
        peft = None
    callbacks = [_callback(folder, on_log, stop)]
    train_rows, eval_rows = ds.rows("train"), ds.rows("eval")
    if spec.method == "grpo":
        rows = [grpo_row(r) for r in train_rows]
        return GRPOTrainer(model=model, reward_funcs=_rewards(spec), args=targs,
                           train_dataset=HFDataset.from_list(rows), processing_class=tokenizer,
                           peft_config=peft, callbacks=callbacks)
    train = HFDataset.from_list(for_trainer(train_rows))
    evaluated = getattr(targs, "eval_strategy", "no") != "no"  # a str enum
    evald = HFDataset.from_list(for_trainer(eval_rows)) if eval_rows and evaluated else None
    if evald is None:  # no held-out split: nothing to evaluate, no best point to keep
        from transformers.trainer_utils import IntervalStrategy

        targs.eval_strategy = IntervalStrategy.NO
        targs.load_best_model_at_end = False
    elif targs.load_best_model_at_end:
        from transformers import EarlyStoppingCallback

        from finetune.config import EARLY_STOP

        callbacks.append(EarlyStoppingCallback(early_stopping_patience=EARLY_STOP))
    if spec.method == "dpo":
        return DPOTrainer(model=model, args=targs, train_dataset=train, eval_dataset=evald,
                          processing_class=tokenizer, peft_config=peft, callbacks=callbacks)
    return SFTTrainer(model=model, args=targs, train_dataset=train, eval_dataset=evald,
                      processing_class=tokenizer, peft_config=peft, callbacks=callbacks)
