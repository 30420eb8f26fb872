"""Datasets under ``LITLAB_HOME/datasets/NAME/``: ``train.jsonl``, ``eval.jsonl`` and a
``manifest.json`` (source, kind, counts, hash, split).

A dataset is written into place only when complete (files renamed in, the manifest last), so a
killed build never leaves a dataset that looks finished. A library build that stops early (a
teacher server that went down, Ctrl-C) keeps what it built, and building the same name again
continues from there instead of repeating it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune.records import DataError, Kind, iter_jsonl, kind_of, read_jsonl, write_jsonl
from litcore.errors import UserError

Progress = Callable[[int, int, str], None]  # kept, wanted, last note
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def check_name(name: str, what: str = "dataset") -> str:
    if not name or not set(name) <= NAME_CHARS or name.startswith("."):
        raise UserError(f"'{name}' is not a usable {what} name",
                        "use letters, digits, '-', '_' and '.'")
    return name


@dataclass
class Dataset:
    name: str
    path: Path
    manifest: dict[str, Any]

    @property
    def kind(self) -> Kind:
        return self.manifest["kind"]

    def rows(self, split: str = "train") -> list[dict[str, Any]]:
        f = self.path / f"{split}.jsonl"
        return list(iter_jsonl(f)) if f.exists() else []

    @property
    def sha256(self) -> str:
        return str(self.manifest.get("sha256", ""))


@dataclass
class BuildReport:
    dataset: Dataset
    added: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    stopped: str | None = None  # why the build ended early, if it did


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()


class DatasetStore:
    def __init__(self, home: Path) -> None:
        self.root = Path(home) / "datasets"

    def path(self, name: str) -> Path:
        return self.root / check_name(name)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "manifest.json").is_file())

    def get(self, name: str) -> Dataset:
        path = self.path(name)
        try:
            manifest = json.loads((path / "manifest.json").read_text())
        except (OSError, ValueError):
            known = ", ".join(self.names()) or "none yet"
            raise UserError(f"no dataset '{name}' (datasets: {known})",
                            "build one with `litlab finetune data build`") from None
        return Dataset(name, path, manifest)

    def exists(self, name: str) -> bool:
        return (self.path(name) / "manifest.json").is_file()

    def remove(self, name: str) -> None:
        self.get(name)
        shutil.rmtree(self.path(name))

    def write(self, name: str, kind: Kind, train: list[dict[str, Any]],
              eval_rows: list[dict[str, Any]], source: str, **more: Any) -> Dataset:
        """Write a complete dataset in place of any earlier one of that name."""
        path = self.path(name)
        path.mkdir(parents=True, exist_ok=True)
        (path / "manifest.json").unlink(missing_ok=True)  # incomplete until the manifest is back
        write_jsonl(path / "train.jsonl", train)
        write_jsonl(path / "eval.jsonl", eval_rows)
        kinds = Counter(str(r["meta"]["kind"]) for r in train + eval_rows
                        if r.get("meta", {}).get("kind"))
        manifest = {
            "name": name, "kind": kind, "source": source, "created": time.time(),
            "counts": {"train": len(train), "eval": len(eval_rows), **dict(kinds)},
            "sha256": _digest([path / "train.jsonl", path / "eval.jsonl"]), **more,
        }
        tmp = path / "manifest.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=2))
        tmp.replace(path / "manifest.json")
        return Dataset(name, path, manifest)

    # -- builders ------------------------------------------------------------------------------
    def from_file(self, name: str, file: Path, *, eval_share: float = 0.1,
                  seed: int = 0) -> Dataset:
        rows = read_jsonl(file)
        kind = kind_of(rows[0])
        n_eval = int(len(rows) * eval_share) if len(rows) >= 10 else 0
        order = sorted(range(len(rows)),
                       key=lambda i: hashlib.sha1(f"{seed}:{i}".encode()).hexdigest())
        held = set(order[:n_eval])
        return self.write(name, kind, [r for i, r in enumerate(rows) if i not in held],
                          [r for i, r in enumerate(rows) if i in held], f"file:{file.resolve()}")

    def from_feedback(self, name: str, chats: Any, library: Any, kind: Kind,
                      home: Any = None) -> tuple[Dataset, dict[str, int]]:
        from finetune import feedback

        built = feedback.build(chats, library, home)
        rows = built.dpo if kind == "dpo" else built.sft
        if not rows:
            what = "preference pairs (a corrected answer, or thumbs up and down on answers to " \
                "the same question)" if kind == "dpo" else "thumbs-up or corrected answers"
            raise DataError(f"feedback holds no {what}",
                            "rate answers in the app (+ / - on an answer, e to correct it)")
        return self.write(name, kind, rows, [], "feedback",
                          skipped=built.skipped), built.skipped

    def from_library(self, name: str, builder: Any, *, examples: int, eval_share: float = 0.2,
                     progress: Progress | None = None,
                     stop: threading.Event | None = None) -> BuildReport:
        """Build (or continue building) a grounded dataset of ``examples`` examples."""
        from finetune.grounded import eval_papers

        lib = builder.library
        papers = lib.catalog.papers(state="indexed")
        if not papers:
            raise DataError("the library is empty",
                            "index papers first: `litlab index files DIR` or `litlab index arxiv`")
        train, eval_rows = [], []
        if self.exists(name):
            old = self.get(name)
            if old.manifest.get("source") != "library":
                raise UserError(f"dataset '{name}' was not built from the library",
                                "choose another name, or remove it first")
            train, eval_rows = old.rows("train"), old.rows("eval")
        held = eval_papers([p.key for p in papers], eval_share, builder.seed)
        done = {r["meta"]["chunk_id"] for r in train + eval_rows}
        report = BuildReport(Dataset(name, self.path(name), {}))
        have = len(train) + len(eval_rows)
        refusals = sum(1 for r in train + eval_rows if r["meta"]["kind"] == "refusal")
        try:
            for paper, chunk in builder.candidates(done):
                if have >= examples:
                    break
                if stop is not None and stop.is_set():
                    report.stopped = "stopped"
                    break
                refusal = refusals < builder.refusal_share * (have + 1)
                made = builder.make(paper, chunk, refusal)
                if made.row is None and refusal:  # (a library of one paper has no refusals)
                    report.rejected[f"refusal: {made.rejected}"] += 1
                    refusal = False
                    made = builder.make(paper, chunk, refusal)
                if made.row is None:
                    report.rejected[str(made.rejected)] += 1
                    continue
                (eval_rows if paper.key in held else train).append(made.row)
                have += 1
                report.added += 1
                refusals += refusal
                if progress:
                    progress(have, examples, made.row["meta"]["question"])
        except KeyboardInterrupt:
            report.stopped = "interrupted"
        except UserError as e:  # the teacher's server: keep what was built, say which URL
            report.stopped = str(e)
        if not train and not eval_rows:
            if report.stopped:
                raise UserError(f"no example was built: {report.stopped}")
            raise DataError("no chunk of the library gave a usable example "
                            f"({_reasons(report.rejected)})",
                            "index more papers, or use a teacher model (--teacher)")
        report.dataset = self.write(
            name, "sft", train, eval_rows, "library",
            split={"eval_papers": sorted(held)},
            settings={"k": builder.k, "refusal_share": builder.refusal_share,
                      "teacher": builder.teacher.model if builder.teacher else None,
                      "seed": builder.seed, "threshold": builder.threshold},
            rejected=dict(report.rejected))
        return report


def _reasons(c: Counter[str]) -> str:
    return "; ".join(f"{n}× {why}" for why, n in c.most_common(3)) or "no candidates"


def stats(ds: Dataset, tokenizer: Any = None) -> dict[str, Any]:
    """Counts and lengths of a dataset (tokens when a tokenizer is given, else words)."""
    out: dict[str, Any] = {"name": ds.name, "kind": ds.kind, **ds.manifest.get("counts", {})}
    for split in ("train", "eval"):
        rows = ds.rows(split)
        if not rows:
            continue
        field_ = "chosen" if ds.kind == "dpo" else "completion"

        def size(text: str) -> int:
            return len(tokenizer(text)["input_ids"]) if tokenizer else len(text.split())

        prompts = [size("\n".join(m["content"] for m in r["prompt"])) for r in rows]
        replies = [size(r[field_][-1]["content"]) for r in rows]
        unit = "tokens" if tokenizer else "words"
        out[split] = {"examples": len(rows), f"prompt_{unit}_mean": sum(prompts) / len(rows),
                      f"prompt_{unit}_max": max(prompts),
                      f"reply_{unit}_mean": sum(replies) / len(rows)}
    return out
