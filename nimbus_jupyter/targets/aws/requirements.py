"""Which installed distributions a bundle needs on Lambda beyond spaCy's own stack.

Two sources: the manifest's ``packages`` (distributions that provide a pipeline component, e.g.
spacy-transformers), and the top-level imports of the component code captured from the notebook or
copied beside it. The standard library and the bundle's own modules are shipped already.
"""
from __future__ import annotations

import ast
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, List, Set

from ...core.errors import UserInputError
from ...runtime.loader import CODE_DIR

ALWAYS_THERE = {"spacy", "nimbus_jupyter"}


def imported_modules(code_dir: Path) -> Set[str]:
    """Top-level module names imported by the Python files under ``code_dir`` (absolute imports only)."""
    found: Set[str] = set()
    for path in sorted(code_dir.rglob("*.py")) if code_dir.exists() else []:
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def extra_distributions(bundle: Any) -> List[str]:
    """Distribution names to add to the layer for this bundle; an import nothing provides is an error."""
    code_dir = Path(bundle.path) / CODE_DIR
    local = {p.stem for p in code_dir.iterdir()} if code_dir.exists() else set()
    providers = metadata.packages_distributions()
    wanted: Set[str] = set(bundle.manifest.get("packages", {}))
    for module in sorted(imported_modules(code_dir) - local - ALWAYS_THERE):
        if module in sys.stdlib_module_names or module == "__future__":
            continue
        dists = providers.get(module)
        if not dists:
            raise UserInputError(
                f"the pipeline's component code imports {module!r}, which no installed package provides",
                f"pip install the package that provides {module!r} in the kernel, or remove the import", where="package")
        wanted.update(dists)
    return sorted(wanted)
