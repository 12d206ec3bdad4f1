"""The import graph: the contract at the bottom, no cycles, a simulator that knows only the wire.

Read from the source with `ast` (every import, also those inside functions and under
TYPE_CHECKING), so a late import cannot hide a cycle.
"""

from __future__ import annotations

import ast
import tomllib
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The installed import packages, as pyproject.toml lists them for setuptools.
PACKAGES: tuple[str, ...] = tuple(
    pattern.rstrip("*")
    for pattern in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[str]:
    """Every module name `path` imports, relative imports resolved."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            yield target
            # `from pkg import module` imports pkg.module when that is a module.
            yield from (f"{target}.{alias.name}" for alias in node.names)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
        if "__pycache__" not in path.parts
    }


def _graph(level: str) -> dict[str, set[str]]:
    """Edges between top-level packages (`package`) or between modules (`module`)."""
    modules = _modules()
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for target in _imports(path):
            if target.split(".")[0] not in PACKAGES:
                continue
            if level == "package":
                a, b = name.split(".")[0], target.split(".")[0]
            else:
                a, b = name, target
                if b not in modules:
                    continue  # `from pkg import name` where name is not a module
            if a != b:
                edges[a].add(b)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(set(edges) | {b for bs in edges.values() for b in bs}):
        if node not in index:
            visit(node)
    return found


def test_the_scan_sees_the_packages_and_their_imports() -> None:
    """Guard against a scan that finds nothing (and so no cycle)."""
    edges = _graph("package")
    assert {"contract", "ingest", "rules", "devices", "dispatch", "sigap"} <= set(PACKAGES)
    assert "contract" in edges["ingest"]
    assert "ingest" in edges["rules"]
    assert {"ingest", "rules", "dashboard_api"} <= edges["sigap"]


def test_no_import_cycle_between_top_level_packages() -> None:
    """A cycle between stages means neither can be read, tested or moved alone."""
    assert _cycles(_graph("package")) == []


def test_no_import_cycle_between_modules() -> None:
    """Nor inside a stage: a late import that breaks a cycle at run time still counts."""
    assert _cycles(_graph("module")) == []


def test_contract_imports_nothing_of_sigap() -> None:
    """The contract is the bottom of the graph: every stage may import it."""
    assert _graph("package").get("contract", set()) == set()


@pytest.mark.parametrize("package", ["simulators"])
def test_simulator_knows_only_the_wire_contract(package: str) -> None:
    """The simulator is an outside client: it may import the contract and nothing else."""
    assert _graph("package").get(package, set()) <= {"contract"}


def test_cycle_finder_finds_cycles() -> None:
    """The checker itself: a two-node and a three-node cycle are found, a chain is not."""
    assert _cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}}) == []
