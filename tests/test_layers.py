"""The package's layers, from its own source: no import cycle anywhere (imports inside functions count),
and no import that runs upward.

    runtime -> core -> endpoint -> targets -> api -> faces -> nimbus_jupyter (the facade)

Each layer imports only itself and the layers before it. Inside ``targets``, ``local`` and ``aws`` never
import each other, and the contract (``base``, ``registry``) imports neither: targets are found by
entry point, by name. The bundled CDK app (``cdk_app/``, shipped as ``nimbus_jupyter.cdk_app``) belongs
to the aws target. ``runtime`` is what ships to Lambda: spaCy and the standard library only (and
boto3 in ``lambda_entry``, for an S3 model; boto3 and pyarrow in ``jobs_shard``, an AWS job's shard work).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from import_graph import cycles, graph, modules

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "nimbus_jupyter"
LAYERS = ("runtime", "core", "endpoint", "targets", "api", "faces")
TARGET_CONTRACT = ("nimbus_jupyter.targets.base", "nimbus_jupyter.targets.registry", "nimbus_jupyter.targets")


def layer_of(module: str) -> int:
    """The rank of a module's layer; the facade (nimbus_jupyter/__init__.py) is above every layer."""
    if module == "nimbus_jupyter":
        return len(LAYERS)
    part = module.split(".")[1]
    if part == "cdk_app":
        return LAYERS.index("targets")
    assert part in LAYERS, f"{module} is in no layer: put it in one of {', '.join(LAYERS)}"
    return LAYERS.index(part)


def target_of(module: str) -> str:
    """"local", "aws" or "" for a module of a target's own folder (the CDK app is the aws target's)."""
    parts = module.split(".")
    if len(parts) < 2:
        return ""
    if parts[1] == "cdk_app":
        return "aws"
    if parts[1] == "targets" and len(parts) > 2 and parts[2] not in ("base", "registry"):
        return parts[2]
    return ""


def package_graph():
    cdk_app = {f"nimbus_jupyter.cdk_app.{p.stem}" if p.stem != "__init__" else "nimbus_jupyter.cdk_app": p
               for p in (ROOT / "cdk_app").glob("*.py")}
    return graph(PACKAGE, "nimbus_jupyter", cdk_app)


def upward(edges):
    return [(a, b, line) for a, b, line in edges if layer_of(b) > layer_of(a)]


def across_targets(edges):
    found = []
    for a, b, line in edges:
        mine, theirs = target_of(a), target_of(b)
        if theirs and (a in TARGET_CONTRACT or (mine and mine != theirs) or layer_of(a) != layer_of(b)):
            found.append((a, b, line))
    return found


def test_every_module_is_in_a_layer() -> None:
    for module in modules(PACKAGE, "nimbus_jupyter"):
        layer_of(module)


def test_no_import_cycle_anywhere_counting_imports_inside_functions() -> None:
    nodes, edges, _ = package_graph()
    found = cycles(nodes, edges)
    assert found == [], "import cycles:\n" + "\n".join(
        " <-> ".join(c) + "\n    " + "\n    ".join(f"{a}:{line} imports {b}" for a, b, line in edges if a in c and b in c)
        for c in found)


def test_no_import_runs_upward_through_the_layers() -> None:
    _, edges, _ = package_graph()
    assert upward(edges) == [], "\n".join(
        f"{a}:{line} ({LAYERS[layer_of(a)] if layer_of(a) < len(LAYERS) else 'facade'}) imports {b} "
        f"({LAYERS[layer_of(b)]}): allowed order {' -> '.join(LAYERS)}" for a, b, line in upward(edges))


def test_targets_are_reached_by_name_only() -> None:
    """No code outside a target's folder imports it: the api, the faces and the target contract find it
    through the registry (entry points), and local and aws do not know each other."""
    _, edges, _ = package_graph()
    assert across_targets(edges) == []


def test_the_runtime_imports_spacy_and_the_standard_library_only() -> None:
    _, _, outside = package_graph()
    for module, names in outside.items():
        if not module.startswith("nimbus_jupyter.runtime"):
            continue
        # lambda_entry runs only on Lambda, whose managed Python runtime ships boto3 and (with awslambdaric)
        # snapshot_restore_py, the SnapStart hook registry; the layer carries neither
        lambda_only = {"boto3", "snapshot_restore_py"}
        allowed = {"spacy"} | (lambda_only if module == "nimbus_jupyter.runtime.lambda_entry" else set())
        if module == "nimbus_jupyter.runtime.jobs_shard":  # an AWS job's shard: S3 in, Parquet out
            allowed |= {"boto3", "pyarrow"}
        strangers = {n for n in names if n not in sys.stdlib_module_names and n != "__future__"} - allowed
        assert not strangers, f"{module} imports {sorted(strangers)}"


# -- the checks themselves find what they look for ----------------------------------------------------------
def _package(tmp_path: Path, files: dict) -> Path:
    root = tmp_path / "nimbus_jupyter"
    for name, text in {**{f"{layer}/__init__.py": "" for layer in LAYERS}, "__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_a_cycle_closed_inside_a_function_is_found(tmp_path: Path) -> None:
    root = _package(tmp_path, {"core/a.py": "from .b import thing\n",
                               "core/b.py": "def later():\n    from . import a\n    return a\nthing = 1\n"})
    nodes, edges, _ = graph(root, "nimbus_jupyter")
    assert cycles(nodes, edges) == [["nimbus_jupyter.core.a", "nimbus_jupyter.core.b"]]


def test_an_upward_import_and_one_across_targets_are_found(tmp_path: Path) -> None:
    root = _package(tmp_path, {"core/registry.py": "def f():\n    from ..targets.local.target import LocalTarget\n",
                               "targets/local/__init__.py": "", "targets/local/target.py": "from ..aws import spec\n",
                               "targets/aws/__init__.py": "", "targets/aws/spec.py": "X = 1\n"})
    _, edges, _ = graph(root, "nimbus_jupyter")
    assert upward(edges) == [("nimbus_jupyter.core.registry", "nimbus_jupyter.targets.local.target", 2)]
    assert ("nimbus_jupyter.targets.local.target", "nimbus_jupyter.targets.aws.spec", 1) in across_targets(edges)


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_is_a_folder_with_a_docstring(layer: str) -> None:
    init = PACKAGE / layer / "__init__.py"
    assert init.is_file() and init.read_text("utf-8").lstrip().startswith('"""'), f"{layer}/__init__.py says what it holds"
