"""Does fine-tuning make answers better on questions people ask? SFT alone (the default recipe,
`litlab finetune run`, chosen by this benchmark) and SFT then GRPO (rewards checked against the
library),
trained on the dev papers but those held out (default: S2ORC alone) and gated on the
hand-written key-fact questions (evals/suites/keyfacts.yaml) about the held-out papers, which
training never saw, plus the questions no paper answers, on two targets: the answer as `ask`
gives it (the answer line first) and the model's own words. Each check's base → adapter figures with the exact McNemar p-value, and the wall
time of the whole loop (index, build the data, train, gate).

    .venv/bin/python bench/finetune_quality.py [--shared ../shared]
        [--unseen papermage,2206.10883] [--examples 48] [--k 3] [--refusals 0.15]
        [--steps 30] [--grpo-steps 10] [--recipes "sft;sft,grpo"] [--smoke]

The baseline is the base model answering the same questions in the same run (the gate's
first side). Writes bench/results/finetune_quality.json. ``--smoke`` trains one step of each
stage on the tests' small papers and skips the gate (it needs the model server).
"""

from __future__ import annotations

import random
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from common import ROOT, arguments, settings, test_papers_library, write


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gate_suite(folder: Path, unseen: list[str], papers: list[Path]) -> Path:
    """keyfacts.yaml with only the cases about the unseen papers and those no paper answers,
    gated on the answer line (as `ask` answers) and on the model's own words (what
    fine-tuning changes: the answer line is litlab's, not the model's)."""
    src = yaml.safe_load((ROOT / "evals" / "suites" / "keyfacts.yaml").read_text())
    names = [p.name for p in papers if any(u in p.name for u in unseen)]
    cases = [c for c in src["cases"] if c.get("should_refuse") or c.get("papers", [None])[0]
             in names]
    targets = [t for t in src["targets"] if t["name"] in ("answer-line", "model")]
    suite = {"description": f"keyfacts.yaml on {', '.join(names)} (unseen in training)",
             "targets": targets, "gate": [t["name"] for t in targets],
             "prompts": src["prompts"], "assert": src["assert"], "cases": cases}
    path = folder / "gate.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def split_rows(store: Any, name: str, share: float = 0.2, seed: int = 0) -> dict[str, int]:
    """Hold out ``share`` of the rows (of every training paper) for the eval loss: the
    unseen papers are the gate's, and holding out a training paper too would leave too
    little to learn from."""
    ds = store.get(name)
    rows = ds.rows("train") + ds.rows("eval")
    random.Random(seed).shuffle(rows)
    cut = max(1, round(share * len(rows)))
    store.write(name, "sft", rows[cut:], rows[:cut], "library",
                split={"eval_rows": cut, "seed": seed})
    return {"train": len(rows) - cut, "eval": cut}


def checks(gate: dict[str, Any]) -> dict[str, Any]:
    """Each gated target's checks: base → adapter and the McNemar p."""
    return {name: {d["assertion"]: {"base": round(d["pass_a"], 3),
                                    "adapter": round(d["pass_b"], 3),
                                    "p": round(d["p_value"], 4)}
                   for d in v["comparison"]["deltas"]}
            for name, v in gate["targets"].items()}


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--unseen", default="papermage,2206.10883",
                        help="the dev papers (parts of their file names, comma-separated) "
                             "held out of training; the gate asks about them")
    parser.add_argument("--examples", type=int, default=48)
    parser.add_argument("--k", type=int, default=3, help="sources in a training example")
    parser.add_argument("--refusals", type=float, default=0.15,
                        help="share of refusal examples")
    parser.add_argument("--steps", type=int, default=30, help="SFT steps")
    parser.add_argument("--grpo-steps", type=int, default=10)
    parser.add_argument("--recipes", default="sft;sft,grpo",
                        help="recipes to train and gate, separated by ';'")
    args = parser.parse_args()
    from finetune.data import DatasetStore
    from finetune.grounded import Builder
    from finetune.workflow import gate_adapter, recipe

    mine = settings()
    folder = Path(tempfile.mkdtemp(prefix="litlab-ftq-"))
    started = time.perf_counter()
    try:
        if args.smoke:
            home, lib = test_papers_library(folder)
            papers: list[Path] = []
            args.examples, args.steps, args.grpo_steps = 4, 1, 1
        else:
            papers = sorted((args.shared / "papers" / "dev").glob("*.pdf"))
            unseen_parts = [u for u in args.unseen.split(",") if u]
            if len(papers) < 3 or not all(any(u in p.name for p in papers)
                                          for u in unseen_parts):
                raise SystemExit(f"no dev papers with '{args.unseen}' under {args.shared}: "
                                 "give --shared and --unseen")
            home = folder / "home"
            home.mkdir()
            from common import library

            lib = library(home)
            training = [p for p in papers if not any(u in p.name for u in unseen_parts)]
            print(f"indexing the training papers: {', '.join(p.name for p in training)}")
            assert lib.index_files(training).ok
        (home / "models").mkdir(exist_ok=True)
        prepared = Path(mine.models_dir)
        for m in prepared.iterdir() if prepared.is_dir() else []:  # linked, not copied
            if not (home / "models" / m.name).exists():
                (home / "models" / m.name).symlink_to(m, target_is_directory=m.is_dir())
        s = mine.model_copy(update={"home": home, "port": free_port(), "keep_alive": 0.0})
        store = DatasetStore(home)
        print(f"building {args.examples} examples from the library")
        store.from_library("lib", Builder(lib, k=args.k, refusal_share=args.refusals, home=home),
                           examples=args.examples, eval_share=0)
        counts = split_rows(store, "lib")
        lib.close()
        stages: dict[str, Any] = {}
        training_steps = {"sft": {"max_steps": args.steps},
                          "grpo": {"max_steps": args.grpo_steps}}
        from finetune.workflow import parse_recipe

        for stages_ in (parse_recipe(r) for r in args.recipes.split(";") if r.strip()):
            t0 = time.perf_counter()
            out = recipe(s, "lib", stages=stages_, name="q", training=training_steps,  # type: ignore[arg-type]
                         load=False, say=print)
            last = out.stages[-1]
            stages[",".join(stages_)] = {"adapter": out.adapter, "steps": last.steps,
                                         "seconds": round(time.perf_counter() - t0, 1),
                                         "losses": last.losses[-3:]}
        rows = store.get("lib").rows("train")
        result: dict[str, Any] = {
            "examples": counts, "unseen": args.unseen, "k": args.k, "refusals": args.refusals,
            "asked_for_a_fact": sum(1 for r in rows if r["meta"].get("key")),
            "recipes": stages}
        if args.smoke:
            print("gate: skipped in a smoke run (it needs the model server)")
        else:
            unseen = [p for p in papers if any(u in p.name for u in unseen_parts)]
            lib = library(home)
            assert lib.index_files(unseen).ok  # now the gate's questions can reach it
            lib.close()
            suite = gate_suite(folder, unseen_parts, papers)
            for recipe_name, info in stages.items():
                t0 = time.perf_counter()
                gate = gate_adapter(s, info["adapter"], str(suite), say=print)
                info.update(gate_seconds=round(time.perf_counter() - t0, 1),
                            passed=gate["passed"], regressions=gate["regressions"],
                            checks=checks(gate),
                            cases=len(yaml.safe_load(suite.read_text())["cases"]))
                print(f"\n{recipe_name}: gate {'passed' if gate['passed'] else 'failed'}")
                for target, rows_ in info["checks"].items():
                    print(f"  {target}")
                    for check, row in rows_.items():
                        print(f"    {check:<16} {row['base']:>5.0%} → {row['adapter']:>5.0%}  "
                              f"p = {row['p']:.3g}")
            from agentlab.server import LocalServer

            LocalServer(s).stop()
        result["wall_seconds"] = round(time.perf_counter() - started, 1)
        print(f"\nthe whole loop: {result['wall_seconds']:.0f} s")
        write("finetune_quality", result, smoke=args.smoke)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
