"""The import graph of a Python package read from its source (``ast``), every import counted: at module
level, inside functions and under ``if TYPE_CHECKING``. Used by ``test_layers.py``."""
from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

Edge = Tuple[str, str, int]  # importer, imported, line


def module_name(root: Path, path: Path, package: str) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def modules(root: Path, package: str) -> Dict[str, Path]:
    """Every module of the package under ``root`` (the package's own directory), by dotted name."""
    return {module_name(root, p, package): p for p in sorted(root.rglob("*.py")) if "node_modules" not in p.parts}


def imports(path: Path, name: str, is_package: bool) -> Iterator[Tuple[str, List[str], int]]:
    """(module, names imported from it, line) for every import statement in the file."""
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    here = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target, [a.name for a in node.names], node.lineno


def graph(root: Path, package: str, extra: Dict[str, Path] = {}) -> Tuple[Set[str], List[Edge], Dict[str, Set[str]]]:
    """The package's modules, the edges between them, and each module's imports from outside it (top names)."""
    found = {**modules(root, package), **extra}
    edges: List[Edge] = []
    outside: Dict[str, Set[str]] = {}
    for name, path in found.items():
        for target, names, line in imports(path, name, path.name == "__init__.py"):
            if target != package and not target.startswith(package + "."):
                outside.setdefault(name, set()).add(target.split(".")[0])
                continue
            hits = [f"{target}.{n}" for n in names if f"{target}.{n}" in found]  # from pkg import submodule
            if len(hits) < len(names) or not names:
                hits.append(target)
            for hit in hits:
                while hit not in found and "." in hit:  # import a.b.NAME: the module a.b
                    hit = hit.rpartition(".")[0]
                if hit in found and hit != name:
                    edges.append((name, hit, line))
    return set(found), edges, outside


def cycles(nodes: Set[str], edges: List[Edge]) -> List[List[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    succ: Dict[str, List[str]] = {n: [] for n in nodes}
    for a, b, _ in edges:
        succ[a].append(b)
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    found: List[List[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return found
