"""The suite format: a YAML file of targets × prompts × cases, with assertions.

```yaml
description: Grounded answers with valid citations
library: [papers/]            # files the suite indexes itself (relative to the suite file)
targets:
  - {name: base, kind: ask, model: smollm2-135m-instruct, temperature: 0, max_tokens: 96}
prompts: [rag, few_shot]      # template names, or {name: ..., system: ..., user: ...} inline
assert:                       # applied to every case
  - {type: citations, weight: 2}
cases:
  - question: How does Mamba scale with sequence length?
    reference: linearly
    papers: [mamba.md]        # expected papers (file name, arXiv id or key), for recall/MRR
    tags: [mamba]
    assert: [{type: icontains, value: linear}]
  - file: cases.jsonl         # more cases, one JSON object a line (or a .csv, or another
                              # suite's .yaml: its cases)
```

Every key is checked: an unknown key or a bad value is one :class:`SuiteError` naming the file,
the line and what is wrong.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)

from litcore.errors import UserError


class SuiteError(UserError):
    """A suite file that cannot be run as written."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Assertion(_Strict):
    """One check of an output. ``weight`` counts it in the case's score; ``threshold`` is the
    score at which a scored check passes."""

    type: Literal["equals", "contains", "icontains", "not_contains", "regex", "json_schema",
                  "rouge_l", "token_f1", "refusal", "no_refusal", "citations", "supported", "cites_expected",
                  "recall_at_k", "mrr", "ndcg", "faithfulness", "answer_relevancy", "rubric",
                  "latency", "max_tokens", "tool"]
    value: Any = Field(None, description="What the check compares with (text, regex, schema, "
                                         "rubric, seconds, tokens, tool name).")
    k: int = Field(5, description="Cut-off for recall@k and nDCG.")
    threshold: float | None = Field(None, description="Score needed to pass (scored checks).")
    weight: float = Field(1.0, ge=0, description="Weight in the case's score; 0: reported, "
                                                 "not required for the case to pass.")
    name: str | None = Field(None, description="Label in reports (default: the type).")

    @property
    def label(self) -> str:
        return self.name or self.type


class Target(_Strict):
    """What is evaluated, on which model."""

    name: str
    kind: Literal["search", "prompt", "ask", "agent"] = Field(
        "ask", description="search: retrieval only (no model); prompt: a template sent to the "
                           "model; ask: retrieval + template + answer + citation check; agent: "
                           "the research agent.")
    model: str | None = Field(None, description="Model or adapter (default: the settings').")
    temperature: float = 0.0
    max_tokens: int = 128
    k: int = Field(5, description="Passages retrieved (ask).")
    attribution: bool | None = Field(None, description="Sentence attribution after the answer "
                                                        "(ask; default: the settings').")
    citation_grammar: bool | None = Field(None, description="Citation format held by decoding "
                                                             "(ask; default: the settings').")
    answer_line: bool | None = Field(None, description="Lead with the sources' best sentence, "
                                                        "quoted (ask; default: the settings').")
    repetition_penalty: float | None = Field(
        None, ge=1.0, le=2.0, description="vLLM's repetition penalty (ask; default: the "
                                          "settings').")


class InlinePrompt(_Strict):
    name: str
    system: str = ""
    user: str = "{{ question }}"


class Case(_Strict):
    """One input with what a good output looks like."""

    id: str | None = None
    question: str = ""
    vars: dict[str, Any] = Field(default_factory=dict)
    reference: str | None = None
    papers: list[str] = Field(default_factory=list, description="Expected papers.")
    chunks: list[int] = Field(default_factory=list, description="Expected chunk ids.")
    should_refuse: bool = False
    tags: list[str] = Field(default_factory=list)
    assert_: list[Assertion] = Field(default_factory=list, alias="assert")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CaseFile(_Strict):
    file: str


def _case_kind(v: Any) -> str:
    return "file" if isinstance(v, dict) and "file" in v or isinstance(v, CaseFile) else "case"


class Suite(_Strict):
    description: str = ""
    library: list[str] = Field(default_factory=list, description="Files or folders to index.")
    targets: list[Target]
    prompts: list[str | InlinePrompt] = Field(default_factory=lambda: list[str | InlinePrompt](["rag"]))
    assert_: list[Assertion] = Field(default_factory=list, alias="assert")
    cases: list[Annotated[Annotated[Case, Tag("case")] | Annotated[CaseFile, Tag("file")],
                          Discriminator(_case_kind)]]
    judge: str | None = Field(None, description="Model that judges (default: each target's).")
    gate: list[str] = Field(default_factory=list, description="The targets a fine-tuning gate "
                            "compares base and adapter on, the first deciding the headline "
                            "(default: the first model target).")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # set by load_suite
    path: Path = Field(Path("."), exclude=True)
    digest: str = Field("", exclude=True)

    @field_validator("targets")
    @classmethod
    def _unique_targets(cls, v: list[Target]) -> list[Target]:
        names = [t.name for t in v]
        if len(set(names)) != len(names):
            raise ValueError("target names must be unique")
        return v

    def all_cases(self) -> list[Case]:
        """Inline cases and those from case files, each with an id."""
        out: list[Case] = []
        for item in self.cases:
            if isinstance(item, CaseFile):
                out += load_cases(self.path.parent / item.file)
            else:
                out.append(item)
        for i, c in enumerate(out, start=1):
            if c.id is None:
                c.id = f"case-{i}"
        ids = [c.id for c in out]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise SuiteError(f"{self.path}: case ids repeat: {', '.join(sorted(map(str, dup)))}",
                             "give every case its own id")
        return out

    def prompt_names(self) -> list[str]:
        return [p if isinstance(p, str) else p.name for p in self.prompts]


def load_suite(path: Path) -> Suite:
    """Read and check a suite file; every mistake is one line with the file and line."""
    try:
        text = path.read_text()
    except OSError as e:
        raise SuiteError(f"cannot read suite {path}: {e.strerror}", "check the path") from e
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise SuiteError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', e)})",
                         "fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise SuiteError(f"{path}:1: a suite is a mapping with targets and cases",
                         "start from `litlab eval init`")
    try:
        suite = Suite.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        line, loc = _locate(node, list(err["loc"]))
        what = ".".join(str(x) for x in loc) or "suite"
        raise SuiteError(f"{path}:{line}: {what}: {_message(err)}",
                         "see the suite format in the README") from None
    suite.path = path.resolve()
    suite.digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return suite


def _message(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required"
    return str(err["msg"])


def _locate(node: Any, loc: list[Any]) -> tuple[int, list[Any]]:
    """The 1-based line of the YAML node at pydantic's error ``loc``, and the part of ``loc``
    that names keys in the file (pydantic adds the names of union members, which the file
    does not have)."""
    line = node.start_mark.line + 1 if node is not None else 1
    named: list[Any] = []
    for i, key in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == key), None)
            if match is None:
                if not last:
                    continue  # a union member's name, not a key of the file
                named.append(key)  # an unknown or missing key: the mapping's line
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) \
                and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        elif isinstance(key, str) and (key[:1].isupper() or key in ("str", "int")):
            continue
        named.append(key)
    return line, named


_INCLUDING: set[Path] = set()  # suites whose cases are being read, to catch a loop


def load_cases(path: Path) -> list[Case]:
    """Cases from JSONL (one object a line), CSV (a header row; ``tags`` and ``papers``
    separated by ``;``) or another suite (``.yaml``: its cases, with their own assertions;
    its targets and suite-wide assertions are not taken)."""
    if not path.exists():
        raise SuiteError(f"no case file {path}", "check the path (relative to the suite)")
    if path.suffix in (".yaml", ".yml"):
        resolved = path.resolve()
        if resolved in _INCLUDING:
            raise SuiteError(f"{path} takes its cases from itself (through case files)",
                             "remove the loop of case files")
        _INCLUDING.add(resolved)
        try:
            return load_suite(path).all_cases()
        finally:
            _INCLUDING.discard(resolved)
    rows: list[tuple[int, dict[str, Any]]] = []
    if path.suffix == ".csv":
        with path.open(newline="") as f:
            for i, row in enumerate(csv.DictReader(f), start=2):
                r: dict[str, Any] = {k: v for k, v in row.items() if v not in (None, "")}
                for key in ("tags", "papers"):
                    if key in r:
                        r[key] = [x.strip() for x in str(r[key]).split(";") if x.strip()]
                if "should_refuse" in r:
                    r["should_refuse"] = str(r["should_refuse"]).lower() in ("1", "true", "yes")
                rows.append((i, r))
    else:
        for i, raw in enumerate(path.read_text().splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as e:
                raise SuiteError(f"{path}:{i}: not JSON ({e.msg})", "one JSON object a line") \
                    from None
            if not isinstance(obj, dict):
                raise SuiteError(f"{path}:{i}: a case is a JSON object", "one object a line")
            rows.append((i, obj))
    out = []
    for line, row in rows:
        try:
            out.append(Case.model_validate(row))
        except ValidationError as e:
            err = e.errors()[0]
            what = ".".join(str(x) for x in err["loc"])
            raise SuiteError(f"{path}:{line}: {what}: {_message(err)}",
                             "see the suite format in the README") from None
    return out
