"""One fine-tuning run as several data-parallel processes (`litlab finetune sft|dpo|grpo
--processes N`).

The run is launched through torchrun (``python -m torch.distributed.run --standalone``): each
process runs :func:`finetune.train.run` with the same spec and settings; the trainer (Hugging
Face's, through accelerate) joins them into one DDP job — NCCL on GPUs, gloo on CPU — each
taking its share of every batch, so ``per_device_train_batch_size`` is per process. Rank 0
alone writes the run (run.json, metrics.jsonl, checkpoints, the adapter); this process watches
its metrics for the progress bar and returns the finished run as a one-process run would. A run
interrupted here (Ctrl-C, a stop) is resumed with ``--resume`` like any other.

Run as a module (``python -m finetune.distributed JOB.json``), it is one of those processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from finetune.config import RunSpec
from finetune.train import OnLog, RunResult, _prepare, losses, read_metrics, read_run, runs_dir
from litcore.errors import UserError


def launch(spec: RunSpec | None, settings: Any, processes: int, *, resume: str | None,
           register: bool = True, on_log: OnLog | None = None,
           stop: threading.Event | None = None) -> RunResult:
    """Run ``spec`` (or continue run ``resume``) as ``processes`` torchrun processes; the
    finished run. Every mistake in the spec is one line here, before anything starts."""
    spec, _, name, _ = _prepare(spec, settings, resume)
    spec = spec.with_name(name)
    folder = runs_dir(Path(settings.home_dir)) / name
    folder.mkdir(parents=True, exist_ok=True)
    job = {"spec": spec.to_dict(), "settings": settings.model_dump(mode="json"),
           "resume": resume, "register": register}
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=folder, delete=False) as f:
        json.dump(job, f)
    log = folder / "processes.log"
    threads = max(1, (os.cpu_count() or 1) // processes)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={processes}", "-m", "finetune.distributed", f.name]
    started = time.perf_counter()
    metrics = folder / "metrics.jsonl"
    seen = len(read_metrics(folder)) if resume else 0
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        try:
            while proc.poll() is None:
                time.sleep(0.5)
                if stop is not None and stop.is_set():
                    os.killpg(proc.pid, signal.SIGINT)
                if on_log is not None and metrics.exists():
                    entries = read_metrics(folder)
                    for entry in entries[seen:]:
                        on_log(int(entry["step"]), int(entry.get("max_steps", 0)), entry)
                    seen = max(seen, len(entries))
        except KeyboardInterrupt:
            os.killpg(proc.pid, signal.SIGINT)  # rank 0 marks the run interrupted
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            raise
        finally:
            Path(f.name).unlink(missing_ok=True)
    info = read_run(folder)
    if proc.returncode != 0 and not (stop is not None and stop.is_set()):
        tail = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()][-1:]
        raise UserError(f"the {processes}-process run {name} failed"
                        + (f": {tail[0].strip()[:300]}" if tail else ""),
                        f"its processes' output is in {log}")
    try:
        done = json.loads((folder / "run.json").read_text()).get("metrics", {})
    except (OSError, ValueError):
        done = {}
    entries = read_metrics(folder)
    last = max((int(e["step"]) for e in entries), default=0)
    planned = max((int(e.get("max_steps", 0)) for e in entries), default=last)
    return RunResult(name, folder, info.adapter, int(done.get("steps", last)), planned,
                     time.perf_counter() - started, losses(entries),
                     tokens=max((int(e.get("num_tokens", 0)) for e in entries), default=0),
                     stopped=info.state != "finished", spec=spec)


def main(job_path: str) -> None:
    """One process of a launched run."""
    from agentlab.settings import Settings
    from finetune.train import run

    job = json.loads(Path(job_path).read_text())
    settings = Settings(**job["settings"])
    try:
        run(RunSpec.from_dict(job["spec"]), settings, resume=job["resume"],
            register=job["register"])
    except UserError as e:
        print(f"rank {os.environ.get('RANK', '?')}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1])
