"""The registry under faults and upgrades: corrupt or half-written files, a full disk, older and newer
layouts, a private home, and two processes deploying, destroying and listing at once."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from nimbus_jupyter.core.errors import NimbusError
from nimbus_jupyter.core.records import DeploymentRecord
from nimbus_jupyter.core.registry import SCHEMA_VERSION, Registry, RegistryWarning

TESTS = Path(__file__).resolve().parent


def two(tmp_path: Path) -> Registry:
    registry = Registry(tmp_path)
    registry.put(DeploymentRecord("a", "local", created="1"))
    registry.put(DeploymentRecord("b", "local", created="2"))
    return registry


@pytest.mark.parametrize("damage", [
    lambda text: text[: len(text) // 2],  # half-written
    lambda text: "",  # truncated to nothing
    lambda text: "\x00" * 64,  # zeroed blocks after a crash
    lambda text: '{"schema": 1, "deployments": []}',  # valid JSON, wrong layout
])
def test_a_corrupt_registry_falls_back_to_its_last_good_copy_and_the_next_write_repairs_it(tmp_path, damage):
    registry = two(tmp_path)
    registry.path.write_text(damage(registry.path.read_text()))
    with pytest.warns(RegistryWarning, match="corrupt or half-written; using its last good copy"):
        assert [r.name for r in registry.all()] == ["a", "b"]
    with pytest.warns(RegistryWarning):
        registry.put(DeploymentRecord("c", "local", created="3"))
    assert [r.name for r in Registry(tmp_path).all()] == ["a", "b", "c"]
    assert json.loads(registry.path.read_text())["schema"] == SCHEMA_VERSION
    assert list(tmp_path.glob("registry.json.corrupt-*"))  # the damaged file is kept for a post-mortem


def test_corrupt_with_no_good_copy_is_a_clear_error(tmp_path):
    two(tmp_path).path.write_text("{")
    (tmp_path / "registry.json.bak").unlink()
    with pytest.raises(NimbusError, match="(?s)not valid JSON.*registry.json.bak.*move it aside"):
        Registry(tmp_path).all()


@pytest.mark.parametrize("where", ["fsync", "replace"])
def test_a_full_disk_leaves_the_old_file_intact_with_a_clear_error_and_the_next_write_recovers(tmp_path, monkeypatch, where):
    registry = two(tmp_path)
    before = registry.path.read_bytes()

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, where, full)
    with pytest.raises(NimbusError, match="(?s)No space left on device.*previous registry file is unchanged.*free some disk space"):
        registry.put(DeploymentRecord("c", "local", created="3"))
    monkeypatch.undo()
    assert registry.path.read_bytes() == before
    assert not list(tmp_path.glob(".registry.json.*.tmp"))  # no temp file left behind
    registry.put(DeploymentRecord("c", "local", created="3"))
    assert [r.name for r in registry.all()] == ["a", "b", "c"]


def test_a_pre_schema_registry_is_read_and_migrated_on_the_next_write(tmp_path):
    old = {"a": {"name": "a", "target": "local", "created": "1", "version": 2}}
    (tmp_path / "registry.json").write_text(json.dumps(old))
    registry = Registry(tmp_path)
    assert registry.get("a").version == 2
    registry.put(DeploymentRecord("b", "local", created="2"))
    data = json.loads(registry.path.read_text())
    assert data["schema"] == SCHEMA_VERSION and set(data["deployments"]) == {"a", "b"}


def test_a_newer_registry_is_listed_but_never_overwritten(tmp_path):
    newer = {"schema": SCHEMA_VERSION + 1, "deployments": {"a": {"name": "a", "target": "local", "a_new_field": 1}},
             "something_new": True}
    (tmp_path / "registry.json").write_text(json.dumps(newer))
    registry = Registry(tmp_path)
    assert [r.name for r in registry.all()] == ["a"]
    with pytest.raises(NimbusError, match=f"(?s)newer nimbus-jupyter \\(schema {SCHEMA_VERSION + 1}.*pip install -U nimbus-jupyter"):
        registry.put(DeploymentRecord("b", "local"))
    assert json.loads(registry.path.read_text()) == newer


def test_the_home_is_private_even_when_it_existed_open(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    Registry(home).put(DeploymentRecord("x", "local"))
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
    for name in ("registry.json", "registry.json.bak"):
        assert stat.S_IMODE(os.stat(home / name).st_mode) == 0o600


KERNEL = """
import sys, nimbus_jupyter as nj
from pipelines import sleepy_pipeline
who = sys.argv[1]
nlp = sleepy_pipeline(0.0)
for i in range(3):
    nj.deploy(nlp, f"{who}-{i}", workers=1, show=False)
    names = [d.name for d in nj.list_deployments()]
    assert len(names) == len(set(names)), names
    assert f"{who}-{i}" in names, names
nj.destroy(f"{who}-1")
names = [d.name for d in nj.list_deployments()]
assert f"{who}-1" not in names and len(names) == len(set(names)), names
print("ok", who)
"""


def test_two_kernels_deploying_destroying_and_listing_at_once_keep_the_registry_consistent(tmp_path):
    env = dict(os.environ, NIMBUS_HOME=str(tmp_path), PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    procs = [subprocess.Popen([sys.executable, "-c", KERNEL, who], env=env, cwd=TESTS, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for who in ("left", "right")]
    try:
        outs = [p.communicate(timeout=240) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
        os.environ["NIMBUS_HOME"], old = str(tmp_path), os.environ.get("NIMBUS_HOME")
        try:
            import nimbus_jupyter as nj

            listed = [(d.name, d.status) for d in nj.list_deployments()]
            assert sorted(listed) == sorted((f"{who}-{i}", "ready") for who in ("left", "right") for i in (0, 2))
            assert sorted(p.name for p in (tmp_path / "deployments").iterdir()) == sorted(n for n, _ in listed)
        finally:
            for name in [d.name for d in nj.list_deployments()]:
                nj.destroy(name)
            if old is None:
                os.environ.pop("NIMBUS_HOME")
            else:
                os.environ["NIMBUS_HOME"] = old
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
