"""chaosnet's modules import each other without cycles, at run time and for type checking.

Imports are read with ``ast``: the *runtime* graph has the imports a module runs
when it is imported (module level, outside ``if TYPE_CHECKING:``); the *typing*
graph adds those under ``if TYPE_CHECKING:`` and those inside functions. A cycle
in either means two modules cannot be understood (or tested) one without the
other, so both must be acyclic.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
Graph = dict[str, set[str]]


def modules(root: Path, package: str) -> dict[str, Path]:
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
    return name == "TYPE_CHECKING"


def _targets(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: Iterable[str]
) -> list[str]:
    """The modules an import statement names: ``from a import b`` is ``a.b`` if that is
    a module, else ``a`` (a submodule's own package is not counted as a dependency)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, base] if base else package)
    names = [f"{base}.{alias.name}" for alias in node.names]
    return [name if name in known else base for name in names]


def graphs(root: Path, package: str) -> tuple[Graph, Graph]:
    """(runtime, typing) import graphs among the modules of ``package`` under ``root``."""
    known = modules(root, package)
    runtime: Graph = {name: set() for name in known}
    typing: Graph = {name: set() for name in known}

    def visit(body: Iterable[ast.stmt], module: str, is_package: bool, deferred: bool) -> None:
        for node in body:
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                visit(node.body, module, is_package, True)
                visit(node.orelse, module, is_package, deferred)
                continue
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _targets(node, module, is_package, known):
                    if target in known and target != module:
                        typing[module].add(target)
                        if not deferred:
                            runtime[module].add(target)
                continue
            inner = deferred or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    visit(children, module, is_package, inner)

    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        visit(tree.body, module, path.name == "__init__.py", False)
    return runtime, typing


def cycles(graph: Graph) -> list[list[str]]:
    """Each set of modules that import each other, directly or not (Tarjan's SCCs)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def problems(root: Path, package: str) -> list[str]:
    runtime, typing = graphs(root, package)
    return [
        f"{kind} import cycle: {' <-> '.join(cycle)}"
        for kind, graph in (("runtime", runtime), ("TYPE_CHECKING", typing))
        for cycle in cycles(graph)
    ]


def test_chaosnet_has_no_import_cycle() -> None:
    assert problems(ROOT, "chaosnet") == []


def test_the_graphs_see_every_kind_of_import() -> None:
    runtime, typing = graphs(ROOT, "chaosnet")
    assert "chaosnet.proxy.toxics.base" in runtime["chaosnet.proxy.toxics.latency"]  # from-import
    assert "chaosnet.proxy.runtime" in typing["chaosnet.proxy.direction"]  # under TYPE_CHECKING
    assert "chaosnet.proxy.runtime" not in runtime["chaosnet.proxy.direction"]
    assert "chaosnet.proxy.bodies" in runtime["chaosnet.proxy.api"]  # from package import module


@pytest.fixture
def tangled(tmp_path: Path) -> Path:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("from .sub import c\n")
    (package / "sub" / "c.py").write_text("import pkg.a\n")
    (package / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.e import E\n"
    )
    (package / "e.py").write_text("def f():\n    from pkg import d\n")
    return tmp_path


def test_a_cycle_is_reported_with_its_modules(tangled: Path) -> None:
    assert problems(tangled, "pkg") == [
        "runtime import cycle: pkg.a <-> pkg.b <-> pkg.sub.c",
        "TYPE_CHECKING import cycle: pkg.a <-> pkg.b <-> pkg.sub.c",
        "TYPE_CHECKING import cycle: pkg.d <-> pkg.e",
    ]
