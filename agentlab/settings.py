"""Typed settings, validated at the edge.

Precedence, highest first: CLI flag > ``LITLAB_*`` environment variable > ``litlab.toml`` in
``LITLAB_HOME`` > default. :func:`load_settings` also records where each value came from, which
``litlab config show`` prints.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentlab.errors import ConfigError

DEFAULT_HOME = Path("~/.litlab")
ENV_PREFIX = "LITLAB_"


class Settings(BaseModel):
    """Everything litlab can be told. Every field can be set in all four places.

    A plain model: :func:`load_settings` reads the environment and the toml itself (to say
    where each value came from), and pydantic-settings' import alone cost a cold command
    about 0.1 s of its 0.3 s budget. Every field is a scalar, so pydantic's own lax
    conversion reads environment strings ("true", "2", "0.5").
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    home: Path = Field(
        DEFAULT_HOME,
        description="Where litlab keeps settings, the library, models, adapters, chats and runs.",
    )
    cache_dir: Path | None = Field(
        None,
        description="Machine-wide cache of what litlab derives from packaged models (the text "
        "embedder's ONNX export), shared by every home; unset: $XDG_CACHE_HOME/litlab or "
        "~/.cache/litlab.",
    )
    model: str = Field(
        "smollm2-135m-instruct",
        description="Model (or adapter) answers come from: a packaged model name, or any name "
        "the server at api_base lists under /v1/models.",
    )
    api_base: str | None = Field(
        None,
        description="OpenAI-compatible URL of a vLLM server you run yourself, e.g. "
        "http://gpu-box:8000/v1, or several separated by commas (requests spread over them; "
        "one that goes away is dropped with a note). When set, litlab starts no local server.",
    )
    api_key: str = Field("EMPTY", description="API key sent to the server (vLLM --api-key).")
    access_token: str | None = Field(
        None, description="Token other programs send (Authorization: Bearer TOKEN) to litlab's "
                          "own MCP server over HTTP; needed to listen beyond this machine.",
    )
    host: str = Field("127.0.0.1", description="Interface the managed local server listens on.")
    port: int = Field(
        8765, ge=1, le=65535, description="Preferred port of the managed local server."
    )
    dtype: Literal["auto", "bfloat16", "float32", "float16"] = Field(
        "auto", description="Weight dtype the local vLLM server computes in. 'auto': float32 "
        "on a CPU without bfloat16 instructions (AVX512-BF16 or AMX), where vLLM emulates "
        "bfloat16 (a cited answer 3x slower, measured by bench/cpu_serving.py); otherwise the "
        "checkpoint's own (bfloat16).",
    )
    max_model_len: int = Field(
        4096, ge=256, description="Context length (prompt + answer) of the local server."
    )
    kv_cache_gib: float = Field(
        1.0, gt=0, description="Memory for the KV cache of the local CPU server, in GiB."
    )
    lora: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Serve with LoRA adapters enabled: 'auto' enables it when adapters exist "
        "or one is asked for (LoRA slows a CPU server even for base-model requests).",
    )
    adapter_serving: Literal["auto", "lora", "merged"] = Field(
        "auto",
        description="How litlab's own server serves a LoRA adapter: 'lora' beside its base "
        "(loaded at runtime, no restart, several adapters on one server); 'merged' restarts "
        "the server on the adapter merged into its base (written once under "
        "models/merged/), as fast as the base: vLLM's LoRA kernels on a CPU made a cited "
        "answer 4x slower (bench/cpu_serving.py). 'auto': merged for evaluation suites and "
        "fine-tuning gates on a CPU, lora otherwise.",
    )
    max_loras: int = Field(1, ge=1, description="LoRA adapters usable in one batch.")
    max_lora_rank: int = Field(16, ge=1, description="Largest LoRA rank the server accepts.")
    compile_model: bool = Field(
        False, description="torch.compile the model in the local server (vLLM's default). Off "
                           "(eager) starts 40-120 s sooner on a CPU and measured no slower here "
                           "(vLLM 0.32's compile cache does not reload on a CPU).",
    )
    worker_process: bool = Field(
        False, description="Run vLLM's model worker in a process of its own (vLLM's default). "
                           "Off, it runs inside the engine: one Python start-up fewer (about "
                           "20 s less on a 2-core CPU) and no processes spinning against each "
                           "other for the cores.",
    )
    fork_engine: bool = Field(
        True, description="Start vLLM's engine process by forking its API server, which has "
                          "imported vLLM and torch already, instead of spawning a new Python "
                          "that imports them again (vLLM's way on a CPU): about 9 s sooner on "
                          "a 2-core CPU. Applies when worker_process is off.",
    )
    cpu_threads: int | None = Field(
        None, ge=1, description="CPU cores the local server computes on (default: all)."
    )
    keep_alive: float = Field(
        300.0, ge=0, description="Seconds the background server may sit idle (no requests, no "
                                 "open app) before it stops itself and gives its memory back; "
                                 "the next command starts it again. 0 keeps it running.",
    )
    app_server: Literal["keep", "stop"] = Field(
        "keep", description="When the app quits: 'keep' leaves the server it started for the "
                            "next command (the keep-alive stops it when idle), 'stop' stops it.",
    )
    store: Literal["faiss", "chroma"] = Field(
        "faiss", description="Vector store of the library: embedded FAISS, or Chroma."
    )
    chroma_url: str | None = Field(
        None, description="URL of a Chroma server (chroma run); unset: embedded Chroma."
    )
    chunk_context: bool = Field(
        True, description="Embed each chunk with its paper's title and section in front, so a "
                          "question naming the paper or section finds it (changing it needs "
                          "`litlab library rebuild`).",
    )
    embed_model: str = Field(
        "all-MiniLM-L6-v2",
        description="sentence-transformers model for text embeddings (name or local path).",
    )
    clip_model: str | None = Field(
        None, description="CLIP checkpoint that embeds figure images and matches text to them: "
                          "a local Hugging Face checkpoint directory, or a hub id prepared once "
                          "with `litlab models prepare --clip`. Unset: figures are found by "
                          "their captions only.",
    )
    answer_line: bool = Field(
        True, description="Lead each answer with the sentence of the sources that best answers "
                          "the question, quoted and cited, before the model's own words.",
    )
    figure_k: int = Field(
        2, ge=0, le=10, description="Figures whose captions join an answer's sources (0: none).",
    )
    startup_timeout: float = Field(
        300.0, gt=0, description="Seconds to wait for the local server to become healthy."
    )
    request_timeout: float = Field(
        120.0, gt=0, description="Seconds one model request may take before it is abandoned."
    )
    connect_retries: int = Field(
        2, ge=0, description="Retries of a request that could not connect (never of a slow one)."
    )
    # 256 (was 512), measured on evals/suites/keyfacts.yaml: every answer the embedded model
    # ended on its own was at most 111 tokens, the key fact was as often right at 96 and 256,
    # and what ran on was a loop or a ramble (docs/asking.md).
    max_tokens: int = Field(256, ge=1, description="Default cap on tokens in one answer.")
    repetition_penalty: float = Field(
        1.0, ge=1.0, le=2.0,
        description="vLLM's repetition penalty on answers (1: none). Answers that loop are "
                    "stopped on the stream whatever this is.",
    )
    top_k: int = Field(5, ge=1, le=50, description="Chunks retrieved as sources for an answer.")
    min_relevance: float = Field(
        0.3, ge=-1, le=1,
        description="Cosine similarity below which a chunk is not a source; when no chunk "
                    "reaches it the answer is that the library has nothing on the question.",
    )
    attribution: bool = Field(
        True, description="Match every sentence of an answer to the sources that support it "
                          "(and verify the model's own [n] markers); unsupported sentences are "
                          "marked as such.",
    )
    attribution_threshold: float = Field(
        0.55, ge=0, le=1, description="Support score (meaning and shared names and numbers) a "
                                      "source needs to count as supporting a sentence.",
    )
    citation_grammar: bool = Field(
        False, description="Hold the citation format by decoding: the server may only write "
                           "sentences that each end in a [n] marker over the given sources (or "
                           "NOT_IN_LIBRARY), through vLLM's structured outputs. Off: the prompt "
                           "asks for markers and attribution cites what the model did not.",
    )
    judge_model: str | None = Field(
        None, description="Model that judges evaluation suites' judged checks (faithfulness, "
                          "relevancy, rubrics); default: the model under test.",
    )
    teacher_model: str | None = Field(
        None, description="Model that writes questions and answers for fine-tuning datasets "
                          "(`finetune data build --teacher`); default: the served model.",
    )
    teacher_api_base: str | None = Field(
        None, description="OpenAI-compatible URL of the teacher's server (e.g. a bigger model "
                          "elsewhere), or several separated by commas; default: litlab's own "
                          "server.",
    )
    tool_parser: str | None = Field(
        None,
        description="vLLM tool-call parser for models that call tools (e.g. hermes, llama3_json); "
                    "when set the server enables tool calling and the agent uses it.",
    )
    chat_template: str | None = Field(
        None, description="A chat template file for the server (some tool-calling models need one)."
    )
    agent_protocol: Literal["auto", "schema", "tools", "react"] = Field(
        "auto",
        description="How the agent calls tools: steps held to a JSON schema by decoding, vLLM "
                    "tool calling, a ReAct text protocol, or auto (tool calling when tool_parser "
                    "is set, the schema otherwise).",
    )
    agent_max_steps: int = Field(6, ge=1, le=50, description="Model calls one agent turn may make.")
    agent_time_limit: float = Field(
        300, gt=0, description="Seconds one agent turn may take before it stops with what it has."
    )
    temperature: float = Field(
        0.2, ge=0, le=2, description="Default sampling temperature (0 is greedy)."
    )

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, *_: Any, **__: Any):  # type: ignore[override,unused-ignore]
        # load_settings() layers env and toml itself so it can report origins.
        return (init_settings,)

    # Paths inside the home. Derived, never set directly.
    @property
    def home_dir(self) -> Path:
        return self.home.expanduser()

    @property
    def cache_path(self) -> Path:
        """The machine-wide cache (``cache_dir``, or its default)."""
        if self.cache_dir is not None:
            return self.cache_dir.expanduser()
        from retrievers.index.embeddings import default_cache_dir

        return default_cache_dir()

    @property
    def models_dir(self) -> Path:
        return self.home_dir / "models"

    @property
    def adapters_dir(self) -> Path:
        return self.home_dir / "adapters"

    @property
    def run_dir(self) -> Path:
        """Runtime state: the managed server's pid file and log."""
        return self.home_dir / "run"

    @property
    def toml_path(self) -> Path:
        return self.home_dir / "litlab.toml"


class LoadedSettings:
    """Settings together with where each value came from."""

    def __init__(self, settings: Settings, origins: dict[str, str], warnings: list[str]) -> None:
        self.settings = settings
        self.origins = origins
        self.warnings = warnings


def _env_values() -> dict[str, Any]:
    """``LITLAB_<FIELD>`` variables (any case), by field name."""
    n = len(ENV_PREFIX)
    return {k[n:].lower(): v for k, v in os.environ.items()
            if k.upper().startswith(ENV_PREFIX) and k[n:].lower() in Settings.model_fields}


def _unknown_env() -> list[str]:
    known = {f"{ENV_PREFIX}{name}".upper() for name in Settings.model_fields}
    return sorted(
        k for k in os.environ if k.upper().startswith(ENV_PREFIX) and k.upper() not in known
    )


def _toml_values(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}", "fix or delete the file") from e
    if "home" in data:
        raise ConfigError(f"{path}: 'home' cannot be set inside the home", "use LITLAB_HOME")
    return data


def load_settings(**flags: Any) -> LoadedSettings:
    """Build the effective settings from flags (None means not given), env, toml and defaults."""
    given = {k: v for k, v in flags.items() if v is not None}
    env = _env_values()
    home = Path(given.get("home") or env.get("home") or DEFAULT_HOME).expanduser()
    toml_path = home / "litlab.toml"
    toml = _toml_values(toml_path)

    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for layer, label in (
        (toml, str(toml_path)),
        (env, "environment"),
        (given, "command line"),
    ):
        for key, value in layer.items():
            merged[key] = value
            origins[key] = f"env {ENV_PREFIX}{key.upper()}" if label == "environment" else label
    try:
        settings = Settings(**merged)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        where = origins.get(key, "default")
        raise ConfigError(
            f"setting '{key}' from {where}: {err['msg']}",
            "run `litlab config show` to see every setting",
        ) from e
    for name in Settings.model_fields:
        origins.setdefault(name, "default")
    warnings = [
        f"ignoring {name}: litlab has no such setting (see `litlab config show`)"
        for name in _unknown_env()
    ]
    return LoadedSettings(settings, origins, warnings)


def describe_fields() -> dict[str, str]:
    """Field name -> its description, for help texts."""
    return {name: f.description or "" for name, f in Settings.model_fields.items()}


def save_setting(home: Path, key: str, value: Any) -> Path:
    """Write ``key = value`` into ``home/litlab.toml`` (checked first; other lines kept)."""
    import json
    import re

    if key not in Settings.model_fields or key == "home":
        raise ConfigError(f"litlab has no setting '{key}' to save",
                          "run `litlab config show` to see every setting")
    path = Path(home) / "litlab.toml"
    current = _toml_values(path)
    current.pop(key, None)
    try:  # None removes the line: the default applies again
        checked = Settings(**{**current, "home": home, **({key: value} if value is not None
                                                           else {})})
    except ValidationError as e:
        raise ConfigError(f"setting '{key}': {e.errors()[0]['msg']}") from e
    new = getattr(checked, key) if value is not None else None
    line = "" if new is None else \
        f"{key} = {json.dumps(new if not isinstance(new, Path) else str(new))}"
    lines = path.read_text().splitlines() if path.exists() else []
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    kept = [ln for ln in lines if not pattern.match(ln)]
    if line:
        kept.append(line)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(kept) + "\n")
    tmp.replace(path)
    return path
