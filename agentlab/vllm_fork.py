"""vLLM's OpenAI server with its engine process forked rather than spawned.

On a CPU vLLM starts its engine core with ``spawn``: a fresh Python that imports vLLM and torch
again (about 9 s of a 2-core machine's start-up, the largest single share of a second start).
The API server has imported both already when it starts the engine, and nothing in it has run
a torch kernel or an OpenMP thread pool yet, so a ``fork`` child starts from that state at once.
Measured here (``bench/startup.py``): ready in 14-15 s instead of 23-25 s, tokens/s unchanged.

Used by ``LocalServer.command`` when ``fork_engine`` is on (the default) and the model runs in
the engine process (``worker_process`` off): a separate worker process, started from an engine
that has run the model, keeps vLLM's ``spawn``.

    python -m agentlab.vllm_fork <vllm.entrypoints.openai.api_server arguments>
"""

from __future__ import annotations

import os
import runpy
import sys
from typing import Any

SERVER = "vllm.entrypoints.openai.api_server"


def fork_engine() -> None:
    """Make vLLM's CPU platform leave the start method at ``fork`` after it configures."""
    from vllm.platforms import cpu

    configure = cpu.CpuPlatform.check_and_update_config.__func__  # type: ignore[attr-defined]

    def check_and_update_config(cls: Any, vllm_config: Any) -> None:
        configure(cls, vllm_config)
        os.environ["VLLM_WORKER_MULTIPROC_METHOD"] = "fork"

    cpu.CpuPlatform.check_and_update_config = classmethod(  # type: ignore[method-assign,assignment]
        check_and_update_config)


def main() -> None:
    fork_engine()
    sys.argv[0] = SERVER
    runpy.run_module(SERVER, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
