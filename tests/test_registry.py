"""The registry: one store, safe for several processes writing at once, with readable failures."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nimbus_jupyter.core.errors import NimbusError
from nimbus_jupyter.core.records import DeploymentRecord
from nimbus_jupyter.core.registry import Registry

WRITER = """
import sys
from nimbus_jupyter.core.records import DeploymentRecord
from nimbus_jupyter.core.registry import Registry
registry = Registry(sys.argv[1])
for i in range(int(sys.argv[3])):
    registry.put(DeploymentRecord(f"{sys.argv[2]}-{i}", "local", created=str(i)))
"""


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), who, "60"]) for who in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    names = {r.name for r in Registry(tmp_path).all()}
    assert names == {f"{who}-{i}" for who in ("a", "b") for i in range(60)}


def test_registry_file_is_private(tmp_path):
    Registry(tmp_path).put(DeploymentRecord("x", "local"))
    assert oct(os.stat(tmp_path / "registry.json").st_mode & 0o777) == "0o600"


def test_a_corrupt_registry_gives_a_clear_error(tmp_path):
    (tmp_path / "registry.json").write_text('{"schema": 1, "deployments": {"x": ')
    with pytest.raises(NimbusError, match="not valid JSON"):
        Registry(tmp_path).all()


def test_a_failed_edit_writes_nothing(tmp_path):
    registry = Registry(tmp_path)
    registry.put(DeploymentRecord("keep", "local"))
    with pytest.raises(RuntimeError):
        with registry.edit() as deployments:
            deployments.clear()
            raise RuntimeError("interrupted")
    assert [r.name for r in registry.all()] == ["keep"]


def test_a_home_that_cannot_be_a_folder_is_a_user_error_that_says_what_to_do(tmp_path, monkeypatch):
    import nimbus_jupyter as nj
    from nimbus_jupyter.core.errors import UserInputError

    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a folder")
    monkeypatch.setenv("NIMBUS_HOME", str(in_the_way))
    with pytest.raises(UserInputError, match="cannot use .*a-file as its folder") as caught:
        nj.list_deployments()
    assert "point NIMBUS_HOME at a folder you can write" in caught.value.todo
    monkeypatch.setenv("NIMBUS_HOME", str(in_the_way / "below"))  # a parent that is a file
    with pytest.raises(UserInputError, match="as its folder"):
        nj.list_deployments()
