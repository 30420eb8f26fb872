"""The adapter registry: LoRA adapters under ``LITLAB_HOME/adapters/NAME/`` with their
metadata (``litlab-adapter.json``: base model and its hash, dataset and its hash, run config,
metrics, evaluation gate), loaded into the running vLLM server without a restart.

The managed server serves every adapter under ``adapters/`` whose base it serves when it
starts (``lora = "auto"``); an adapter added while it runs is loaded through vLLM's runtime
LoRA endpoints.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tarfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agentlab.errors import ServerUnavailable
from finetune.data import check_name
from litcore.errors import UserError

META = "litlab-adapter.json"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")
Progress = Callable[[str], None]


@dataclass
class AdapterInfo:
    name: str
    path: Path
    base: str
    base_sha256: str = ""
    method: str = ""
    dataset: str | None = None
    dataset_sha256: str | None = None
    run: str | None = None  # the run's folder under runs/finetune
    rank: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    gate: dict[str, Any] | None = None  # the last evaluation gate: suite, passed, comparison
    created: float = 0.0
    error: str | None = None  # why its files could not be read (listed, not usable)

    @property
    def gate_state(self) -> str:
        if self.error:
            return "unreadable"
        if not self.gate:
            return "not evaluated"
        return "passed" if self.gate.get("passed") else "failed"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        d["gate_state"] = self.gate_state
        return d


def _read_json(path: Path, adapter: str) -> dict[str, Any]:
    """An adapter's JSON file as a dict, or one line saying which file is broken."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"adapter '{adapter}': {path.name} cannot be read ({e})",
                        f"fix or remove {path.parent}") from None
    if not isinstance(data, dict):
        raise UserError(f"adapter '{adapter}': {path.name} is not a JSON object",
                        f"fix or remove {path.parent}")
    return data


def base_sha256(checkpoint: Path) -> str:
    """The hash of a base checkpoint's weights, cached beside them (keyed by size and mtime)."""
    weights = sorted(checkpoint.glob("*.safetensors"))
    if not weights:
        return ""
    stamp = [[p.name, p.stat().st_size, int(p.stat().st_mtime)] for p in weights]
    cache = checkpoint / ".litlab-sha256.json"
    try:
        cached = json.loads(cache.read_text())
        if cached["stamp"] == stamp:
            return str(cached["sha256"])
    except (OSError, ValueError, KeyError):
        pass
    from retrievers.parsing.files import sha256_file

    h = hashlib.sha256("".join(sha256_file(p) for p in weights).encode()).hexdigest()
    with contextlib.suppress(OSError):
        cache.write_text(json.dumps({"stamp": stamp, "sha256": h}))
    return h


class AdapterStore:
    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.root: Path = settings.adapters_dir

    def names(self) -> list[str]:
        from agentlab.models import find_adapters

        return list(find_adapters(self.root))

    def list(self) -> list[AdapterInfo]:
        """Every adapter; one whose files cannot be read is listed with its ``error``."""
        out = []
        for name in self.names():
            try:
                out.append(self.get(name))
            except UserError as e:
                out.append(AdapterInfo(name, self.root / name, base="?", error=e.message))
        return out

    def get(self, name: str) -> AdapterInfo:
        from agentlab.models import adapter_base

        path = self.root / check_name(name, "adapter")
        if not (path / "adapter_config.json").is_file():
            known = ", ".join(self.names()) or "none yet"
            raise UserError(f"no adapter '{name}' (adapters: {known})",
                            "train one with `litlab finetune sft`")
        # no litlab metadata: an adapter copied in by hand, described by its config alone
        meta = _read_json(path / META, name) if (path / META).exists() else {}
        config = _read_json(path / "adapter_config.json", name)
        try:
            rank = int(config.get("r") or 0)
        except (TypeError, ValueError):
            raise UserError(f"adapter '{name}': adapter_config.json gives rank "
                            f"{config.get('r')!r}", f"fix or remove {path}") from None
        meta.update(name=name, path=path, rank=rank,
                    base=meta.get("base") or adapter_base(path) or
                    Path(str(config.get("base_model_name_or_path", ""))).name)
        known_fields = {f for f in AdapterInfo.__dataclass_fields__}
        return AdapterInfo(**{k: v for k, v in meta.items() if k in known_fields})

    def write_meta(self, info: AdapterInfo) -> None:
        d = info.to_dict()
        d.pop("path")
        d.pop("gate_state")
        tmp = info.path / (META + ".tmp")
        tmp.write_text(json.dumps(d, indent=2, default=str))
        tmp.replace(info.path / META)

    def register(self, name: str, source: Path, info: dict[str, Any]) -> AdapterInfo:
        """Copy a trained adapter into the registry (atomically: a temporary folder renamed
        into place), replacing one of the same name."""
        check_name(name, "adapter")
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for f in source.iterdir():
            if f.is_file() and (f.name in ADAPTER_FILES or f.suffix in (".json", ".jinja")
                                or f.name.startswith("tokenizer")):
                shutil.copy2(f, tmp / f.name)
        target = self.root / name
        if target.exists():
            old = self.root / f".{name}.old"
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
        adapter = AdapterInfo(name=name, path=target, created=time.time(), **info)
        self.write_meta(adapter)
        return self.get(name)

    def set_gate(self, name: str, gate: dict[str, Any]) -> AdapterInfo:
        info = self.get(name)
        info.gate = gate
        self.write_meta(info)
        return info

    def remove(self, name: str) -> None:
        info = self.get(name)
        shutil.rmtree(info.path)
        # the checkpoint a suite served it merged from (agentlab.models.merged_checkpoint)
        shutil.rmtree(self.settings.models_dir / "merged" / name, ignore_errors=True)

    def export(self, name: str, dest: Path) -> Path:
        """A ``.tar.gz`` of the adapter and its metadata (or a folder copy when ``dest`` is
        not a .tar.gz path)."""
        info = self.get(name)
        if dest.exists() and dest.is_dir():
            dest = dest / f"{name}.tar.gz"
        if str(dest).endswith((".tar.gz", ".tgz")):
            dest.parent.mkdir(parents=True, exist_ok=True)
            with tarfile.open(dest, "w:gz") as tar:
                tar.add(info.path, arcname=name)
        else:
            if dest.exists():
                raise UserError(f"{dest} already exists", "choose a new path")
            shutil.copytree(info.path, dest)
        return dest

    def merge(self, name: str, dest: Path, progress: Progress = lambda _m: None) -> Path:
        """Write base + adapter as one full checkpoint (safetensors, tokenizer, chat template)
        that vLLM or transformers load on their own."""
        from agentlab.models import adapter_stamp, merge_adapter

        info = self.get(name)
        base = base_checkpoint(self.settings, info.base)
        if dest.exists() and any(dest.iterdir()):
            raise UserError(f"{dest} is not empty", "merge into a new folder")
        if dest.exists():
            dest.rmdir()
        merge_adapter(base, info.path, dest, {**adapter_stamp(info.path), "base": info.base,
                                              "adapter_meta": info.to_dict()}, progress)
        progress(f"wrote {dest}")
        return dest


def base_checkpoint(settings: Any, base: str) -> Path:
    """The prepared checkpoint of a packaged base model (prepared now if it is not yet)."""
    from agentlab.models import MARKER, PACKAGED, get_packaged, prepare

    if base not in PACKAGED:
        raise UserError(f"unknown base model '{base}'", f"packaged: {', '.join(PACKAGED)}")
    path = get_packaged(base).path(settings.models_dir)
    if not (path / MARKER).is_file():
        prepare(base, settings.models_dir)
    return path


def load_into_server(settings: Any, name: str, *, restart: bool = False,
                     progress: Progress = lambda _m: None) -> str:
    """Make the running server serve adapter ``name`` now. Returns what happened, in words."""
    from agentlab.client import ModelClient
    from agentlab.server import LocalServer

    info = AdapterStore(settings).get(name)
    if settings.adapter_serving == "merged" and not settings.api_base:
        # served merged into its base: a server of its own (restarted on it unless it is)
        LocalServer(settings.model_copy(update={"model": name})).ensure(progress)
        return f"the server serves {name} merged into {info.base} (adapter_serving = merged)"
    if info.rank > settings.max_lora_rank:
        raise UserError(f"{name} has LoRA rank {info.rank}; the server accepts up to "
                        f"{settings.max_lora_rank}",
                        f"`litlab config set max_lora_rank {info.rank}`, then "
                        "`litlab serve --stop`")
    if settings.api_base:
        from agentlab.pool import split_urls

        for url in split_urls(settings.api_base):
            _load(ModelClient(url, api_key=settings.api_key), name, str(info.path))
        return f"loaded {name} into {settings.api_base} (the path must be readable there)"
    server = LocalServer(settings)
    state = server.running()
    if state is None:
        return f"no server is running; the next one litlab starts serves {name}"
    if info.base != server.base:
        raise UserError(f"{name} was trained on {info.base}; the running server serves "
                        f"{server.base}", f"set model = \"{info.base}\" to use it")
    if not state.lora:
        if not restart:
            raise UserError(
                f"the running server at {state.api_base} has LoRA off, so it cannot load "
                f"{name} without a restart",
                f"`litlab adapters load {name} --restart` restarts it with LoRA on")
        progress("restarting the server with LoRA on")
        server.stop()
        s = settings.model_copy(update={"lora": "on"})
        LocalServer(s).ensure(progress)
        return f"restarted the server with LoRA on; it serves {name}"
    client = ModelClient(state.api_base, api_key=settings.api_key)
    try:
        _load(client, name, str(info.path))
    finally:
        client.close()
    return f"loaded {name} into the running server at {state.api_base}"


def _load(client: Any, name: str, path: str) -> None:
    """Load (or reload, with new weights) an adapter into a running server."""
    try:
        client.load_adapter(name, path)
    except ServerUnavailable:
        raise
    except UserError as e:
        if "already" not in str(e).lower():
            raise
        client.unload_adapter(name)
        client.load_adapter(name, path)


def unload_from_server(settings: Any, name: str) -> str:
    from agentlab.client import ModelClient
    from agentlab.server import LocalServer

    url = settings.api_base
    if not url:
        state = LocalServer(settings).running()
        if state is None:
            return "no server is running"
        url = state.api_base
    from agentlab.pool import split_urls

    for one in split_urls(url):
        client = ModelClient(one, api_key=settings.api_key)
        try:
            client.unload_adapter(name)
        finally:
            client.close()
    return f"unloaded {name} from {url}"
