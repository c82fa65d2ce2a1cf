"""The package's layering, read from the source (AST): what may import what, and how large a module may grow.

The rules are ``../shared/STYLE.md``'s, section 1: imports point one way (``_runtime`` and ``data`` below
``solvers``, below the estimators, below the CLI), ``ensemble`` never reaches into ``solvers``, ``fusion``
never into ``ensemble``, ``monitoring`` is a leaf on the runtime floor, and there are no import cycles. Every
``import`` statement counts, including those inside functions: a function-level import hides a cycle, it
does not remove it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "daskml_lab"
README = PACKAGE_ROOT.parent / "README.md"
MAX_MODULE_LINES = 700

#: Subpackages that may import nothing of the package but these (besides themselves).
FLOORS = {
    "_runtime": {"_compat", "exceptions"},
    "monitoring": {"_runtime", "_compat", "exceptions"},
}
#: The packages holding estimators (or the command line built on them).
ESTIMATOR_PACKAGES = {
    "linear_model",
    "ensemble",
    "solvers",
    "fusion",
    "model_selection",
    "cli",
    "persistence",
    "preprocessing",
    "compose",
}
#: (importer, imported): never.
FORBIDDEN = {
    ("ensemble", "solvers"),
    ("fusion", "ensemble"),
    ("fusion", "solvers"),
    ("solvers", "linear_model"),
    ("solvers", "ensemble"),
    ("metrics", "linear_model"),
    ("metrics", "ensemble"),
    ("metrics", "solvers"),
    ("metrics", "fusion"),
    ("preprocessing", "linear_model"),
    ("preprocessing", "ensemble"),
    ("preprocessing", "solvers"),
    ("preprocessing", "fusion"),
    # compose/ builds on preprocessing/ (its transformers' statistics protocol), never the reverse
    ("preprocessing", "compose"),
    ("compose", "solvers"),
    ("compose", "linear_model"),
    ("compose", "ensemble"),
    # model_selection/ sits above the estimators (it cross-validates and searches them), like compose/ above
    # preprocessing/: nothing below it may import it
    *(
        (below, "model_selection")
        for below in (
            "linear_model",
            "ensemble",
            "solvers",
            "fusion",
            "metrics",
            "preprocessing",
            "compose",
            "data",
            "persistence",
        )
    ),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE_ROOT.rglob("*.py"))}


def _imported(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, str]]:
    """``(target module, imported name or "")`` for each name an import statement brings in."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name, ""
        return
    if node.level:
        base = module.split(".")
        if MODULES[module].name != "__init__.py":
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        yield (submodule, "") if submodule in MODULES else (source, alias.name)


def _nearest_module(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> Iterator[tuple[str, str, int]]:
    """Every import of a ``daskml_lab`` module in ``module``: ``(module, name, line)``."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for target, name in _imported(module, node):
                if target == "daskml_lab" or target.startswith("daskml_lab."):
                    nearest = _nearest_module(target)
                    if nearest is not None and nearest != module:
                        yield nearest, name, node.lineno


GRAPH: dict[str, set[str]] = {m: {target for target, _, _ in _imports(m)} for m in MODULES}


def _package(module: str) -> str:
    """The top-level subpackage (or module) of ``daskml_lab`` that ``module`` belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _cycles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(GRAPH[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    return found


def test_the_graph_sees_the_package():
    # a test that could not fail would be worthless: the graph must contain what we know is there
    assert {"daskml_lab._runtime.memory", "daskml_lab.solvers._problem", "daskml_lab.cli"} <= set(MODULES)
    assert "daskml_lab._runtime.memory" in GRAPH["daskml_lab.solvers._problem"]


def test_the_cycle_finder_finds_a_cycle(monkeypatch):
    monkeypatch.setitem(GRAPH, "daskml_lab._runtime.memory", {"daskml_lab.solvers._problem"})
    assert any("daskml_lab.solvers._problem" in cycle for cycle in _cycles())


def test_there_are_no_import_cycles():
    assert _cycles() == []


@pytest.mark.parametrize("floor", sorted(FLOORS))
def test_the_floors_import_only_what_lies_below(floor):
    allowed = FLOORS[floor] | {floor}
    wrong = sorted(
        f"{module} -> {target}"
        for module in MODULES
        if _package(module) == floor
        for target in GRAPH[module]
        if _package(target) not in allowed
    )
    assert wrong == []


def test_data_imports_no_estimator_package():
    wrong = sorted(
        f"{module} -> {target}"
        for module in MODULES
        if _package(module) == "data"
        for target in GRAPH[module]
        if _package(target) in ESTIMATOR_PACKAGES
    )
    assert wrong == []


def test_forbidden_directions():
    wrong = sorted(
        f"{module} -> {target}"
        for module in MODULES
        for target in GRAPH[module]
        if (_package(module), _package(target)) in FORBIDDEN
    )
    assert wrong == []


def test_the_cli_uses_only_public_names():
    wrong = []
    for module in MODULES:
        if _package(module) != "cli":
            continue
        for target, name, line in _imports(module):
            if _package(target) == "cli":
                continue
            private_module = any(part.startswith("_") for part in target.split(".")[1:])
            private_name = name.startswith("_") and not (name.startswith("__") and name.endswith("__"))
            if private_module or private_name:
                wrong.append(f"{module}:{line} imports {target}{'.' + name if name else ''}")
    assert wrong == []


#: Packages whose private modules every package may use: the floors under everything.
SHARED_FLOORS = {"_runtime", "_compat", "_version"}


def test_packages_use_each_others_public_names_only():
    # What two packages share belongs one floor down, or in the public API of the lower one: a private module
    # or name of another package is an implementation detail that may change with it.
    wrong = []
    for module in MODULES:
        for target, name, line in _imports(module):
            if _package(target) in ({_package(module)} | SHARED_FLOORS):
                continue
            private_module = any(part.startswith("_") for part in target.split(".")[2:])
            private_name = name.startswith("_") and not (name.startswith("__") and name.endswith("__"))
            if private_module or private_name:
                wrong.append(f"{module}:{line} imports {target}{'.' + name if name else ''}")
    assert wrong == []


def test_no_module_is_too_long():
    lengths = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in MODULES.items()}
    assert {m: n for m, n in lengths.items() if n > MAX_MODULE_LINES} == {}


def test_the_readme_layout_names_every_subpackage():
    layout = README.read_text(encoding="utf-8").split("## Layout", 1)[1].split("\n## ", 1)[0]
    folders = sorted(p.name for p in PACKAGE_ROOT.iterdir() if (p / "__init__.py").exists())
    missing = [name for name in folders if not re.search(rf"(?<![\w.]){re.escape(name)}/", layout)]
    assert missing == []
