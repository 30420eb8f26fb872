"""The layering the README's layout section states, held for every module of the project:

    litlab -> tui -> finetune -> evals -> agentlab -> retrievers -> litcore

A package imports only itself and the packages after it, never one before it; a module named
in a string (a lazily mounted command, "retrievers.cli:index") counts as an import. Inside
``retrievers`` the sub-packages are layered the same way, and no two modules import each
other in a circle.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["litlab", "tui", "finetune", "evals", "agentlab", "retrievers", "litcore"]
# Inside retrievers: the facade and its adapters, then search, index, parsing, sources, and the
# records and errors everything shares.
RETRIEVERS = [("library", "cli", "halfblocks", "for_langchain", "for_llamaindex"), ("search",),
              ("index",),
              ("parsing",), ("sources",), ("records", "errors")]
_MOUNTED = re.compile(r"^([\w.]+):\w+$")  # "retrievers.cli:index"


def _modules() -> dict[str, Path]:
    out = {}
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES: dict[str, Path] = {}


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def imports(path: Path, runtime_only: bool = False) -> set[str]:
    """The project modules a file imports (at any depth; with ``runtime_only``, not those
    under ``if TYPE_CHECKING:``), and those it names in a string."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and runtime_only and _is_type_checking(node):
            for branch in node.orelse:
                visit(branch)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and not runtime_only:
            m = _MOUNTED.match(node.value)
            name = m.group(1) if m else node.value
            if name in MODULES and "." in name:  # a module named to be imported later
                found.add(name)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m for m in found if m.split(".")[0] in LAYERS}


MODULES.update(_modules())


def _rank(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def _retrievers_rank(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "retrievers" or len(parts) < 2:
        return None
    return next(i for i, names in enumerate(RETRIEVERS) if parts[1] in names)



@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_points_up(module: str) -> None:
    upward = sorted(m for m in imports(MODULES[module]) if _rank(m) < _rank(module))
    assert not upward, f"{module} imports {upward}: dependencies point down {LAYERS}"
    mine = _retrievers_rank(module)
    if mine is not None:
        up = sorted(m for m in imports(MODULES[module])
                    if (r := _retrievers_rank(m)) is not None and r < mine)
        assert not up, f"{module} imports {up}: inside retrievers they point down {RETRIEVERS}"


def test_no_circle_between_modules() -> None:
    """No module imports, at import time, one that imports it back (directly or not)."""
    graph = {m: {i for i in imports(p, runtime_only=True) if i in MODULES and i != m}
             for m, p in MODULES.items()}
    done: set[str] = set()

    def walk(m: str, path: list[str]) -> None:
        if m in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(m):] + [m]))
        if m in done:
            return
        for n in graph[m]:
            walk(n, [*path, m])
        done.add(m)

    for m in sorted(graph):
        walk(m, [])


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: an import of the app from below, a lazily mounted module named in a
    string and a function-level import are all seen."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from tui.app import run\n    return 'evals.cli:eval_group'\n"
                   "NAME = 'litlab.toml'\n")
    assert imports(bad) == {"tui.app", "tui.app.run", "evals.cli"}
