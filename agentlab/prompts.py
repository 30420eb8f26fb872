"""Prompt templates as data: TOML files with a description, declared variables and Jinja text.

The package ships zero-shot, few-shot, chain-of-thought, role (tutor, reviewer), RAG with
numbered citations, query rewriting, judge and agent templates; a file of the same name in
``LITLAB_HOME/prompts`` overrides a shipped one, and new files there add templates. A variable
used but not declared, declared but not given, or given but not declared is an error that
names it.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litcore.errors import UserError

PACKAGED = Path(__file__).parent / "prompts"


class PromptError(UserError):
    """A template that cannot be found, parsed or rendered."""


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    description: str
    variables: tuple[str, ...]
    system: str
    user: str
    path: Path
    examples_file: str | None = None

    @property
    def inputs(self) -> tuple[str, ...]:
        """The variables a caller gives (``examples`` comes from the examples file)."""
        return tuple(v for v in self.variables if not (v == "examples" and self.examples_file))

    def render(self, **values: Any) -> list[dict[str, str]]:
        """The chat messages for these values: a system message, then the user's, if any."""
        import jinja2

        unknown = sorted(set(values) - set(self.inputs))
        if unknown:
            raise PromptError(f"prompt '{self.name}' has no variable '{unknown[0]}'",
                              f"it takes: {', '.join(self.inputs) or 'nothing'}")
        missing = [v for v in self.inputs if v not in values]
        if missing:
            raise PromptError(f"prompt '{self.name}' needs variable '{missing[0]}'",
                              f"give it, e.g. --var {missing[0]}=...")
        if self.examples_file:
            values = {**values, "examples": self._examples()}
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False,
                                 keep_trailing_newline=False)
        messages = []
        for role, text in (("system", self.system), ("user", self.user)):
            if text.strip():
                messages.append({"role": role, "content": env.from_string(text).render(values)})
        return messages

    def _examples(self) -> list[dict[str, Any]]:
        path = self.path.parent / str(self.examples_file)
        try:
            lines = path.read_text().splitlines()
            return [json.loads(line) for line in lines if line.strip()]
        except (OSError, ValueError) as e:
            raise PromptError(f"prompt '{self.name}': cannot read examples {path} ({e})",
                              "fix the file: one JSON object per line") from e


def _load(path: Path) -> PromptTemplate:
    import jinja2
    import jinja2.meta

    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise PromptError(f"cannot read prompt {path} ({e})", "fix the TOML file") from e
    extra = sorted(set(data) - {"description", "variables", "system", "user", "examples_file"})
    if extra:
        raise PromptError(f"prompt {path}: unknown key '{extra[0]}'",
                          "keys are description, variables, system, user, examples_file")
    variables = tuple(data.get("variables", ()))
    system, user = str(data.get("system", "")), str(data.get("user", ""))
    env = jinja2.Environment()
    try:
        used = set().union(*(jinja2.meta.find_undeclared_variables(env.parse(t))
                             for t in (system, user)))
    except jinja2.TemplateSyntaxError as e:
        raise PromptError(f"prompt {path}: {e.message} (line {e.lineno})",
                          "fix the template text") from e
    undeclared = sorted(used - set(variables))
    if undeclared:
        raise PromptError(f"prompt {path} uses undeclared variable '{undeclared[0]}'",
                          "add it to `variables` or remove it from the text")
    return PromptTemplate(name=path.stem, description=str(data.get("description", "")),
                          variables=variables, system=system, user=user, path=path,
                          examples_file=data.get("examples_file"))


def _files(home: Path | None) -> dict[str, Path]:
    found = {p.stem: p for p in sorted(PACKAGED.glob("*.toml"))}
    if home is not None and (home / "prompts").is_dir():
        found.update({p.stem: p for p in sorted((home / "prompts").glob("*.toml"))})
    return found


def template_names(home: Path | None = None, taking: str | None = None) -> list[str]:
    """Template names (those taking the variable ``taking``), without validating any: cheap
    enough for a UI's start-up. An unreadable file is left out here and reported on use."""
    names = []
    for name, path in sorted(_files(home).items()):
        try:
            variables = tomllib.loads(path.read_text()).get("variables", [])
        except (OSError, tomllib.TOMLDecodeError):
            continue
        if taking is None or taking in variables:
            names.append(name)
    return names


def list_templates(home: Path | None = None) -> list[PromptTemplate]:
    return [_load(p) for _, p in sorted(_files(home).items())]


def load_template(name: str, home: Path | None = None) -> PromptTemplate:
    files = _files(home)
    if name not in files:
        raise PromptError(f"no prompt template '{name}'",
                          f"choose one of: {', '.join(sorted(files))} (`litlab prompts list`)")
    return _load(files[name])
