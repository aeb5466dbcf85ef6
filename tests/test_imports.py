"""The modules of logistics/ import each other without a cycle: every import that runs counts, the ones inside
functions too, since an import moved into a function to dodge a cycle still ties the two modules together.
Imports under ``if TYPE_CHECKING:`` never run: they name a type for the checker, and are left out."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "logistics"


def module_name(path: Path, root: Path) -> str:
    """``logistics/cli/__init__.py`` → ``logistics.cli``; ``logistics/cli/dev.py`` → ``logistics.cli.dev``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` (their ``else:`` runs, and counts)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def imported_names(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Every dotted name ``module`` imports, anywhere in it; ``from x import y`` gives both x and x.y, since y
    may be a module. Relative imports are resolved against ``module``."""
    names: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module → the modules of ``package`` it imports (each name resolved to the module that defines it)."""
    files = {module_name(p, root): p for p in sorted((root / package).rglob("*.py")) if "__pycache__" not in p.parts}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets = set()
        for name in imported_names(tree, module, path.name == "__init__.py"):
            # `from logistics.cli import CliError` names a module only up to logistics.cli.
            while name and name not in files:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as the path a → b → … → a, or None; depth-first, so stable for a given graph."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt in on_path:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in done:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done:
            found = visit(start)
            if found:
                return found
    return None


def test_logistics_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph(ROOT, PACKAGE))
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_the_graph_sees_imports_inside_functions_and_from_imports_of_modules() -> None:
    graph = import_graph(ROOT, PACKAGE)
    # __main__ imports `main` from logistics.cli; the graph holds the module, not the function.
    assert "logistics.cli" in graph["logistics.__main__"]
    assert all(target.startswith(f"{PACKAGE}.") or target == PACKAGE for deps in graph.values() for target in deps)


def test_a_planted_cycle_is_found_and_named() -> None:
    graph = {
        "logistics.cli": {"logistics.cli.labels"},
        "logistics.cli.labels": {"logistics.storage.db", "logistics.cli.common"},
        "logistics.cli.common": {"logistics.cli"},
        "logistics.storage.db": set(),
    }
    assert find_cycle(graph) == ["logistics.cli", "logistics.cli.labels", "logistics.cli.common", "logistics.cli"]


def test_an_acyclic_graph_with_shared_dependencies_passes() -> None:
    graph = {"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}
    assert find_cycle(graph) is None


def test_a_cycle_through_an_import_inside_a_function_is_found(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def late() -> None:\n    from . import a\n")
    assert find_cycle(import_graph(tmp_path, "pkg")) == ["pkg.a", "pkg.b", "pkg.a"]


def test_imports_only_for_the_type_checker_are_no_edge(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import B\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import A\n")
    assert import_graph(tmp_path, "pkg") == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": set()}
