"""Cold commands: what a person waits for before litlab does anything, against the floor of
starting Python at all, in the same run.

Each command runs as a new process (the median of ``--repeat`` runs, after one run that warms
the file cache): `python -c pass` (the floor), `litlab --help`, `litlab config show`, and a cold
`litlab search` twice, on a fresh home holding litlab's shipped suite notes
(evals/suites/library/, with your home's models/ linked in): with the text embedder's ONNX export
(the default once `models prepare` ran) and with sentence-transformers (the export hidden).
Prints each against its goal (--help and config show 0.3 s, search 1.5 s) and the ratio to the
floor; writes bench/results/startup.json.

    .venv/bin/python bench/startup.py [--repeat 5] [--query "..."]

Your home needs `litlab models prepare` run (for the ONNX export).
Server start-up and the app's first paint are measured by bench/serving.py and bench/tui.py.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import write

LITLAB = str(Path(sys.executable).with_name("litlab"))


def timed(cmd: list[str], repeat: int) -> float:
    subprocess.run(cmd, capture_output=True, check=True)  # warm the file cache
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--query", default="How does Mamba scale with sequence length?")
    args = parser.parse_args()

    import tempfile

    from agentlab.settings import load_settings
    from retrievers.onnx_embedder import export_dir, is_exported

    mine = load_settings().settings
    onnx = export_dir(mine.home_dir, mine.embed_model)
    if not is_exported(onnx):
        sys.exit(f"no ONNX export in {onnx}: run `litlab models prepare` first")
    home = Path(tempfile.mkdtemp(prefix="litlab-startup-"))
    (home / "models").symlink_to(mine.models_dir, target_is_directory=True)
    os.environ["LITLAB_HOME"] = str(home)
    notes = Path(__file__).parents[1] / "evals" / "suites" / "library"
    subprocess.run([LITLAB, "index", "files", str(notes)], capture_output=True, check=True)
    floor = timed([sys.executable, "-c", "pass"], args.repeat)
    rows = {
        "help": (timed([LITLAB, "--help"], args.repeat), 0.3),
        "config_show": (timed([LITLAB, "config", "show"], args.repeat), 0.3),
        "search_onnx": (timed([LITLAB, "search", args.query], args.repeat), 1.5),
    }
    hidden = onnx.with_name(onnx.name + ".hidden")
    os.rename(onnx, hidden)
    try:
        rows["search_torch"] = (timed([LITLAB, "search", args.query], max(1, args.repeat // 2)),
                                1.5)
    finally:
        if hidden.exists():
            if onnx.exists():
                shutil.rmtree(onnx)
            os.rename(hidden, onnx)
    print(f"  {'python -c pass':22s} {floor:6.2f} s  (the floor)")
    for name, (seconds, goal) in rows.items():
        verdict = "met" if seconds <= goal else "missed"
        print(f"  {name:22s} {seconds:6.2f} s  goal {goal} s ({verdict}), {seconds / floor:5.1f}x "
              "the floor")
    speedup = rows["search_torch"][0] / rows["search_onnx"][0]
    print(f"\ncold search: ONNX embedder {speedup:.1f}x faster than sentence-transformers")
    shutil.rmtree(home, ignore_errors=True)
    write("startup", {
        "floor_python_s": round(floor, 3),
        "commands": {k: {"seconds": round(v, 3), "goal_s": g, "met": v <= g,
                         "ratio_to_floor": round(v / floor, 2)} for k, (v, g) in rows.items()},
        "ratio_search_torch_vs_onnx": round(speedup, 2), "repeat": args.repeat})


if __name__ == "__main__":
    main()
