"""The real vLLM server on the embedded model: answers, streaming, adapters, faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest

from agentlab.client import ModelClient
from agentlab.errors import ModelNotFound, ServerUnavailable
from agentlab.server import LocalServer, ServerState, check_remote
from agentlab.settings import Settings
from tests.conftest import DEFAULT_MODEL, RunningServer, free_port, home_with_models

QUESTION = [{"role": "user", "content": "Name three deep learning architectures."}]


_spawned: list[subprocess.Popen[str]] = []


def _default_sigint() -> None:
    """Ctrl-C acts in the child as in a terminal even when the suite runs as a background job
    (a shell starts those with SIGINT ignored, and a child inherits that: Python then installs
    no KeyboardInterrupt handler, and the Ctrl-C test waited for an answer that never stopped)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def litlab_cli(*args: str, env: dict[str, str], stdin: int | None = None
               ) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "litlab", *args],
        env=env, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_default_sigint,
    )
    _spawned.append(proc)
    return proc


@pytest.fixture(autouse=True)
def _reap_cli_processes() -> object:
    """A failed test must not leave a `litlab` behind: after the session server stops, it
    would start a server of its own."""
    yield
    while _spawned:
        proc = _spawned.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_chat_completion_answers(vllm_server: RunningServer) -> None:
    result = vllm_server.client().chat(QUESTION, model=DEFAULT_MODEL, max_tokens=32, temperature=0)
    assert result.text.strip()
    assert result.model == DEFAULT_MODEL
    assert 0 < result.completion_tokens <= 32
    assert result.prompt_tokens > 5


def test_stream_arrives_in_pieces_that_add_up(vllm_server: RunningServer) -> None:
    stream = vllm_server.client().stream(QUESTION, model=DEFAULT_MODEL, max_tokens=24, temperature=0)
    pieces = list(stream)
    assert stream.result is not None
    assert len(pieces) > 3
    assert "".join(pieces) == stream.result.text
    assert stream.result.completion_tokens > 3
    assert stream.result.ttft_s is not None and stream.result.ttft_s < stream.result.total_s


def test_litlab_ask_reuses_the_running_server(vllm_server: RunningServer) -> None:
    pid_before = LocalServer(vllm_server.settings).read_state().pid  # type: ignore[union-attr]
    proc = litlab_cli("ask", "--prompt", "zero_shot", "--json", "--max-tokens", "16", "--temperature", "0",
                      "What is attention?", env=vllm_server.env())
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    answer = json.loads(out)
    assert answer["answer"].strip()
    assert answer["model"] == DEFAULT_MODEL
    assert answer["completion_tokens"] > 0 and answer["ttft_s"] > 0
    assert "starting vLLM" not in err
    assert LocalServer(vllm_server.settings).read_state().pid == pid_before  # type: ignore[union-attr]


def test_ask_streams_text_to_the_terminal(vllm_server: RunningServer) -> None:
    proc = litlab_cli("ask", "--prompt", "zero_shot", "--max-tokens", "16", "--temperature", "0", "Say hello.",
                      env=vllm_server.env())
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.strip() and not out.lstrip().startswith("{")


def test_lora_adapter_served_beside_the_base_changes_the_answer(
    vllm_server: RunningServer, tmp_path: Path
) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base_path = vllm_server.settings.models_dir / DEFAULT_MODEL
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    config = LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj"],
                        init_lora_weights=False)  # random A and B: a visibly different model
    adapter_dir = tmp_path / "noisy-adapter"
    get_peft_model(base, config).save_pretrained(str(adapter_dir))

    client = vllm_server.client()
    client.load_adapter("noisy-adapter", str(adapter_dir))
    try:
        assert "noisy-adapter" in client.models()
        plain = client.chat(QUESTION, model=DEFAULT_MODEL, max_tokens=16, temperature=0).text
        adapted = client.chat(QUESTION, model="noisy-adapter", max_tokens=16, temperature=0)
        assert adapted.model == "noisy-adapter"
        assert adapted.text != plain
        again = client.chat(QUESTION, model=DEFAULT_MODEL, max_tokens=16, temperature=0).text
        assert again == plain  # the base is untouched by the adapter
    finally:
        client.unload_adapter("noisy-adapter")


def test_unknown_model_names_what_the_server_serves(vllm_server: RunningServer) -> None:
    settings = Settings(api_base=vllm_server.api_base, model="gpt-17")
    with pytest.raises(ModelNotFound, match=f"it serves: {DEFAULT_MODEL}"):
        check_remote(settings)
    with pytest.raises(ModelNotFound, match="gpt-17"):
        vllm_server.client().chat(QUESTION, model="gpt-17", max_tokens=4)


def test_ctrl_c_stops_the_answer_and_the_server_stays_healthy(vllm_server: RunningServer) -> None:
    # at temperature 0 the model writes ~6,700 characters here (1,500 tokens, about 30 s), so
    # the interrupt always lands mid-answer (at 0.8 a short story once ended before it did)
    proc = litlab_cli("ask", "--prompt", "zero_shot", "--max-tokens", "1500", "--temperature", "0",
                      "Write a very long story about neural networks.", env=vllm_server.env())
    stdout = proc.stdout
    assert stdout is not None
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.extend(iter(lambda: stdout.read(1), "")),
                              daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(got) < 20:
        time.sleep(0.1)
    assert got, "no streamed output before the interrupt"
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    reader.join(timeout=5)
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert proc.returncode == 130
    assert "[stopped]" in err and "Traceback" not in err

    root = vllm_server.api_base.removesuffix("/v1")
    deadline = time.monotonic() + 10
    running = None
    while time.monotonic() < deadline:  # the aborted request leaves the engine
        metrics = httpx.get(f"{root}/metrics", timeout=5).text
        running = next(
            float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
            if line.startswith("vllm:num_requests_running")
        )
        if running == 0:
            break
        time.sleep(0.5)
    assert running == 0
    assert httpx.get(f"{root}/health", timeout=5).status_code == 200
    assert vllm_server.client().chat(QUESTION, model=DEFAULT_MODEL, max_tokens=4).text


# -- without the real server -------------------------------------------------------------------
def test_server_down_is_one_line_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITLAB_")}
    env["LITLAB_HOME"] = os.environ["LITLAB_HOME"]
    proc = litlab_cli("--api-base", url, "ask", "hello", env=env)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and url in lines[0] and lines[0].startswith("error:")
    assert "Traceback" not in err

    client = ModelClient(url, connect_retries=1)
    started = time.monotonic()
    with pytest.raises(ServerUnavailable, match="cannot reach the model server at " + url):
        client.chat(QUESTION, model=DEFAULT_MODEL)
    assert time.monotonic() - started < 10  # bounded retries, no hang


def test_several_servers_none_up_is_one_line_naming_them() -> None:
    """`api_base` listing several servers: none answering is one line naming every URL."""
    urls = [f"http://127.0.0.1:{free_port()}/v1" for _ in range(2)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITLAB_")}
    env["LITLAB_HOME"] = os.environ["LITLAB_HOME"]
    proc = litlab_cli("--api-base", ",".join(urls), "ask", "hello", env=env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and all(u in lines[0] for u in urls)
    assert "none of the model servers" in lines[0] and "Traceback" not in err


class _Foreign(BaseHTTPRequestHandler):
    """Another program on 'our' port, even claiming our model name."""

    def do_GET(self) -> None:  # noqa: N802
        body = json.dumps({"data": [{"id": DEFAULT_MODEL, "root": "/not/litlab"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def test_foreign_server_on_the_port_is_never_taken_for_ours(
    tmp_path: Path, prepared_models: Path
) -> None:
    foreign = HTTPServer(("127.0.0.1", 0), _Foreign)
    port = foreign.server_address[1]
    threading.Thread(target=foreign.serve_forever, daemon=True).start()
    try:
        home = home_with_models(tmp_path / "home", prepared_models)
        server = LocalServer(Settings(home=home, port=port))
        # Even a state file naming a live process on that port does not make it ours.
        server._write_state(ServerState(
            pid=os.getpid(), host="127.0.0.1", port=port, model=DEFAULT_MODEL,
            checkpoint=str(server.checkpoint), log="-", started_at=time.time()))
        assert server.running() is None

        notes: list[str] = []
        chosen = server._choose_port(notes.append)
        assert chosen != port
        assert notes and f"port {port} is held by another program" in notes[0]
    finally:
        foreign.shutdown()


def test_adapters_in_the_home_are_served_with_lora(tmp_path: Path, prepared_models: Path) -> None:
    home = home_with_models(tmp_path / "home", prepared_models)
    settings = Settings(home=home)
    assert "--enable-lora" not in LocalServer(settings).command(8000)  # no adapters: no cost

    adapter = settings.adapters_dir / "tutor"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps(
        {"base_model_name_or_path": str(prepared_models / DEFAULT_MODEL)}))
    cmd = LocalServer(settings).command(8000)
    assert "--enable-lora" in cmd
    assert f"tutor={adapter}" in cmd
    # Asking for the adapter by name resolves to its base model.
    assert LocalServer(Settings(home=home, model="tutor")).base == DEFAULT_MODEL


def test_the_server_starts_eager_in_one_engine_process_unless_told(
        tmp_path: Path, prepared_models: Path) -> None:
    # Measured on a 2-core CPU (README, bench/startup.py): eager mode and the model inside the
    # engine process start 2-5x sooner with no loss of tokens/s. Each can be turned back.
    home = home_with_models(tmp_path / "home", prepared_models)
    # The engine process is forked from the API server (vLLM and torch imported once); the
    # session's real server starts this way, so every server test runs through it.
    fast = LocalServer(Settings(home=home))
    assert "--enforce-eager" in fast.command(8000)
    assert fast.command(8000)[1:3] == ["-m", "agentlab.vllm_fork"]
    assert fast.environment()["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    vllm_way = LocalServer(Settings(home=home, compile_model=True, worker_process=True))
    assert "--enforce-eager" not in vllm_way.command(8000)
    assert "uni" not in vllm_way.command(8000)
    assert "VLLM_ENABLE_V1_MULTIPROCESSING" not in vllm_way.environment()
    assert vllm_way.command(8000)[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    spawned = LocalServer(Settings(home=home, fork_engine=False)).command(8000)
    assert spawned[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]


@pytest.mark.slow
def test_server_that_dies_while_starting_says_why(tmp_path: Path) -> None:
    home = tmp_path / "home"
    broken = home / "models" / DEFAULT_MODEL
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{not json")
    (broken / "litlab-model.json").write_text("{}")
    server = LocalServer(Settings(home=home, port=free_port(), startup_timeout=240))
    with pytest.raises(ServerUnavailable, match="exited with code") as info:
        server.ensure()
    assert str(server.log_path) in str(info.value)


def test_a_cpu_without_bfloat16_instructions_serves_in_float32(
        tmp_path: Path, prepared_models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Measured here (bench/cpu_serving.py): on an AVX2 CPU vLLM emulates bfloat16 and a cited
    # answer takes 3x longer than in float32; a CPU with AVX512-BF16 or AMX keeps bfloat16.
    import agentlab.server as server

    avx2 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
    assert not server.cpu_has_bf16(avx2)
    assert server.cpu_has_bf16(avx2.replace("avx2", "avx2 avx512f avx512_bf16"))
    assert server.cpu_has_bf16(avx2.replace("avx2", "avx2 amx_bf16 amx_tile"))
    home = home_with_models(tmp_path / "home", prepared_models)

    def dtype(settings: Settings) -> str:
        cmd = LocalServer(settings).command(8000)
        return cmd[cmd.index("--dtype") + 1]

    monkeypatch.setattr(server, "on_gpu", lambda: False)
    monkeypatch.setattr(server, "cpu_has_bf16", lambda: False)
    assert dtype(Settings(home=home)) == "float32"
    assert dtype(Settings(home=home, dtype="bfloat16")) == "bfloat16"  # a setting wins
    monkeypatch.setattr(server, "cpu_has_bf16", lambda: True)
    assert dtype(Settings(home=home)) == "auto"  # vLLM's auto: the checkpoint's bfloat16
    monkeypatch.setattr(server, "on_gpu", lambda: True)
    monkeypatch.setattr(server, "cpu_has_bf16", lambda: False)
    assert dtype(Settings(home=home)) == "auto"


def test_an_adapter_served_merged_is_a_server_of_its_own(
        tmp_path: Path, prepared_models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Suites and gates on a CPU serve an adapter merged into its base (4x faster answers than
    # vLLM's CPU LoRA kernels, bench/cpu_serving.py): a server of its own, under its name.
    import agentlab.server as server
    from evals.runner import needs_switch

    home = home_with_models(tmp_path / "home", prepared_models)
    adapter = home / "adapters" / "tutor"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps(
        {"base_model_name_or_path": str(prepared_models / DEFAULT_MODEL)}))
    merged = Settings(home=home, model="tutor", adapter_serving="merged")
    cmd = LocalServer(merged).command(8000)
    assert cmd[cmd.index("--model") + 1] == str(home / "models" / "merged" / "tutor")
    assert cmd[cmd.index("--served-model-name") + 1] == "tutor"
    assert "--enable-lora" not in cmd
    # the base beside it needs no LoRA either; with LoRA, the adapter rides on its base
    assert "--enable-lora" not in LocalServer(merged.model_copy(
        update={"model": DEFAULT_MODEL})).command(8000)
    lora = Settings(home=home, model="tutor", adapter_serving="lora")
    assert f"tutor={adapter}" in LocalServer(lora).command(8000)
    assert server.server_for(merged, "tutor") == "tutor"
    assert server.server_for(lora, "tutor") == DEFAULT_MODEL
    assert server.server_for(merged, DEFAULT_MODEL) == DEFAULT_MODEL
    assert server.server_for(merged, "someone-elses-model") is None
    assert needs_switch({DEFAULT_MODEL, "tutor"}) and needs_switch({"tutor"})
    assert not needs_switch({DEFAULT_MODEL, None})
    # 'auto': merged for many answers on litlab's own CPU server; lora on a GPU or a remote
    auto = Settings(home=home)
    monkeypatch.setattr(server, "on_gpu", lambda: False)
    assert server.for_many_answers(auto).adapter_serving == "merged"
    assert server.for_many_answers(lora).adapter_serving == "lora"
    assert server.for_many_answers(auto.model_copy(
        update={"api_base": "http://gpu-box:8000/v1"})).adapter_serving == "auto"
    monkeypatch.setattr(server, "on_gpu", lambda: True)
    assert server.for_many_answers(auto).adapter_serving == "auto"
