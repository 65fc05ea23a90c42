"""Shared fixtures: an isolated Nimbus home per test module, and real trained pipelines."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from pipelines import core_pipeline, textcat_pipeline


def _destroy_all(home: Path) -> None:
    from nimbus_jupyter.api import destroy
    from nimbus_jupyter.registry import Registry

    registry = Registry(home)
    for record in registry.all():
        try:
            destroy(record["name"], registry)
        except Exception:
            pass


@pytest.fixture(scope="module")
def nimbus_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """NIMBUS_HOME in a fresh directory; every server started in it is stopped afterwards."""
    home = tmp_path_factory.mktemp("nimbus_home")
    old = os.environ.get("NIMBUS_HOME")
    os.environ["NIMBUS_HOME"] = str(home)
    try:
        yield home
    finally:
        _destroy_all(home)
        if old is None:
            os.environ.pop("NIMBUS_HOME", None)
        else:
            os.environ["NIMBUS_HOME"] = old


@pytest.fixture(scope="session")
def textcat_nlp():
    return textcat_pipeline()


@pytest.fixture(scope="session")
def core_nlp():
    return core_pipeline()


@pytest.fixture(scope="session")
def ip():
    """A real IPython shell; cells run through it are registered in linecache as in a notebook."""
    from IPython.testing.globalipapp import start_ipython

    shell = start_ipython()
    shell.run_cell("%load_ext nimbus_jupyter")
    return shell
