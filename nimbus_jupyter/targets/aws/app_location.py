"""Where the bundled CDK app is: ``nimbus_jupyter/cdk_app`` in a wheel, ``<checkout>/cdk_app`` in a source
or editable install (hatch's force-include copies it into the wheel only).

The CDK CLI runs ``<python> <cdk_app_dir()>/app.py``; in-process callers (tests, benches) use
``import_cdk_app()`` to get the same code under one module name in both layouts.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from ...core.errors import NimbusError

PACKAGE_NAME = "nimbus_jupyter.cdk_app"
_PACKAGE_DIR = Path(__file__).resolve().parents[2]  # nimbus_jupyter/


def cdk_app_dir() -> Path:
    """The directory holding the CDK app's ``app.py``: the wheel's copy first, then the checkout's."""
    candidates = (_PACKAGE_DIR / "cdk_app", _PACKAGE_DIR.parent / "cdk_app")
    for candidate in candidates:
        if (candidate / "app.py").is_file() and (candidate / "nimbus_stack.py").is_file():
            return candidate
    raise NimbusError(f"the bundled CDK app is missing (looked in {', '.join(map(str, candidates))})",
                      "reinstall nimbus-jupyter: pip install --force-reinstall nimbus-jupyter", where="aws target")


def import_cdk_app(module: str = "app") -> ModuleType:
    """``nimbus_jupyter.cdk_app.<module>``, registering the checkout's ``cdk_app`` under that name when the
    package is not installed from a wheel."""
    if PACKAGE_NAME not in sys.modules:
        directory = cdk_app_dir()
        spec = importlib.util.spec_from_file_location(PACKAGE_NAME, directory / "__init__.py",
                                                      submodule_search_locations=[str(directory)])
        assert spec is not None and spec.loader is not None
        package = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE_NAME] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"{PACKAGE_NAME}.{module}")
