"""Training examples in TRL's standard conversational formats, read and checked line by line.

Three shapes, as TRL's trainers take them:

- ``messages``: ``{"messages": [{"role": ..., "content": ...}, ...]}`` (SFT; the last message
  is the assistant's);
- ``prompt``/``completion``: the prompt a list of messages (or a string), the completion the
  assistant's reply (a list with one assistant message, or a string) (SFT; loss on the
  completion only);
- ``prompt``/``chosen``/``rejected``: one prompt, two replies, the first preferred (DPO).

Every error names the file and line, so a person fixes the row instead of guessing. A row may
carry a ``meta`` object (where it came from, its oracle source); it is kept in the dataset and
dropped before training. GRPO trains on prompts only and hands the other columns (``oracle``,
``n_sources``, ``answerable``) to the reward functions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from litcore.errors import UserError

Kind = Literal["sft", "dpo"]
ROLES = {"system", "user", "assistant"}


class DataError(UserError):
    """A dataset row that TRL could not train on."""


def _messages(value: Any, where: str, field: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        return [{"role": "user" if field == "prompt" else "assistant", "content": value}]
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: '{field}' must be a non-empty list of messages or a string")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str) \
                or m.get("role") not in ROLES:
            raise DataError(f"{where}: {field}[{i}] must be {{\"role\": system|user|assistant, "
                            "\"content\": text}")
        out.append({"role": str(m["role"]), "content": str(m["content"])})
    return out


def _reply(value: Any, where: str, field: str) -> list[dict[str, str]]:
    msgs = _messages(value, where, field)
    if msgs[-1]["role"] != "assistant" or not msgs[-1]["content"].strip():
        raise DataError(f"{where}: '{field}' must end in a non-empty assistant reply")
    return msgs


def normalise(row: Any, where: str, kind: Kind | None = None) -> dict[str, Any]:
    """One row in its canonical conversational form, or a :class:`DataError` naming ``where``.

    ``kind`` requires a shape: "sft" takes messages or prompt/completion, "dpo" takes
    prompt/chosen/rejected. Shapes are converted only within a kind: messages become
    prompt/completion (everything before the last assistant message is the prompt).
    """
    if not isinstance(row, dict):
        raise DataError(f"{where}: a row must be a JSON object")
    meta = row.get("meta") if isinstance(row.get("meta"), dict) else {}
    extra = {k: row[k] for k in ("oracle", "n_sources", "answerable") if k in row}
    if "chosen" in row or "rejected" in row:
        if kind == "sft":
            raise DataError(f"{where}: a preference pair (chosen/rejected) in an SFT dataset",
                            "use it for `litlab finetune dpo`")
        for f in ("prompt", "chosen", "rejected"):
            if f not in row:
                raise DataError(f"{where}: a preference pair needs '{f}'")
        prompt = _messages(row["prompt"], where, "prompt")
        chosen, rejected = _reply(row["chosen"], where, "chosen"), \
            _reply(row["rejected"], where, "rejected")
        if chosen[-1]["content"].strip() == rejected[-1]["content"].strip():
            raise DataError(f"{where}: 'chosen' and 'rejected' are the same reply",
                            "a pair teaches nothing unless the replies differ")
        return {"prompt": prompt, "chosen": chosen[-1:], "rejected": rejected[-1:],
                "meta": meta, **extra}
    if kind == "dpo":
        raise DataError(f"{where}: DPO needs prompt, chosen and rejected",
                        "see the README's dataset formats")
    if "messages" in row:
        msgs = _reply(row["messages"], where, "messages")
        if len(msgs) < 2:
            raise DataError(f"{where}: 'messages' needs a prompt before the assistant reply")
        return {"prompt": msgs[:-1], "completion": msgs[-1:], "meta": meta, **extra}
    if "prompt" in row and "completion" in row:
        return {"prompt": _messages(row["prompt"], where, "prompt"),
                "completion": _reply(row["completion"], where, "completion")[-1:],
                "meta": meta, **extra}
    raise DataError(f"{where}: unknown row shape (keys: {', '.join(sorted(row)) or 'none'})",
                    "expected messages, prompt/completion or prompt/chosen/rejected")


def kind_of(row: dict[str, Any]) -> Kind:
    return "dpo" if "chosen" in row else "sft"


def read_jsonl(path: Path, kind: Kind | None = None) -> list[dict[str, Any]]:
    """Every row of a JSONL file, normalised; the first bad row raises with file:line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text", "save the file as UTF-8 JSONL") from e
    rows: list[dict[str, Any]] = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{i}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{where}: not JSON ({e.msg} at column {e.colno})",
                            "one JSON object a line") from e
        row = normalise(data, where, kind)
        kind = kind or kind_of(row)  # the first row decides; the rest must match it
        rows.append(row)
    if not rows:
        raise DataError(f"{path} holds no examples")
    return rows


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows atomically (a temporary file renamed into place); returns how many."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(path)
    return n


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def for_trainer(rows: Iterable[dict[str, Any]], keep: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Rows as a trainer takes them: the conversational fields, plus ``keep`` columns."""
    fields = ("prompt", "completion", "chosen", "rejected", *keep)
    return [{k: r[k] for k in fields if k in r} for r in rows]
