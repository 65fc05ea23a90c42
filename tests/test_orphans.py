"""No server without a record: the record is written ("starting") before the local server starts, and the
server is stopped when the final record cannot be written; a deploy killed in between leaves a record
the list shows and destroy cleans up; a server whose record was lost is listed as an orphan and
destroyed by its folder; both registry files corrupt: rebuilt from the deployment folders.

Faults injected at the registry write: its lock held by another process, the disk full at the final
write, the deploying process SIGKILLed right after its server started."""
from __future__ import annotations

import errno
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import psutil
import pytest

import nimbus_jupyter as nj
import nimbus_jupyter.core.registry as registry_module
from nimbus_jupyter.core.errors import NimbusError
from nimbus_jupyter.core.registry import Registry, RegistryWarning
from pipelines import versioned_pipeline

HERE = Path(__file__).resolve().parent


def servers_of(folder: Path) -> list:
    """Local server processes running from ``folder`` (by their command line, as destroy finds them)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if "nimbus_jupyter.targets.local.server" in cmdline and str(folder) in cmdline:
            found.append(proc.pid)
    return found


def gone(folder: Path, within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while servers_of(folder) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not servers_of(folder)


def listed(name: str):
    return {d.name: d for d in nj.list_deployments(remote=False)}.get(name)


LOCK_HOLDER = textwrap.dedent("""
    import sys, time
    from filelock import FileLock
    lock = FileLock(sys.argv[1])
    lock.acquire()
    print("holding", flush=True)
    time.sleep(120)
""")


def test_a_registry_locked_at_the_first_write_starts_no_server(nimbus_home):
    registry = Registry(nimbus_home, lock_timeout=1)
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(nimbus_home / "registry.lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(NimbusError, match="stayed locked for 1 s"):
            nj.deploy(versioned_pipeline("ONE"), "never-started", workers=1, show=False, registry=registry)
    finally:
        holder.kill()
        holder.wait(10)
    folder = registry.deployment_dir("never-started")
    assert not servers_of(folder) and not folder.exists() and registry.get("never-started") is None


def test_a_full_disk_at_the_final_write_stops_the_new_server(nimbus_home, monkeypatch):
    real = registry_module.write_json_atomic

    def full_at_ready(path, data, *args, **kwargs):
        record = (data.get("deployments") or {}).get("no-room") or {}
        if path.name == "registry.json" and record.get("status") == "ready":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data, *args, **kwargs)

    monkeypatch.setattr(registry_module, "write_json_atomic", full_at_ready)
    folder = Registry().deployment_dir("no-room")
    with pytest.raises(NimbusError, match="could not write the registry .*No space left on device"):
        nj.deploy(versioned_pipeline("ONE"), "no-room", workers=1, show=False)
    assert gone(folder)  # it had started, and was stopped: nothing runs that nobody can find
    monkeypatch.undo()
    assert Registry().get("no-room") is None and listed("no-room") is None and not folder.exists()


KILLED_DEPLOY = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {here!r})
    import nimbus_jupyter as nj
    from nimbus_jupyter.core.registry import Registry
    from pipelines import versioned_pipeline
    put = Registry.put
    def put_then_die(self, record):
        if record.status == "ready":  # the server runs; the kernel dies before it can record it
            os.kill(os.getpid(), signal.SIGKILL)
        put(self, record)
    Registry.put = put_then_die
    nj.deploy(versioned_pipeline("ONE"), "killed-mid-deploy", workers=1, show=False)
""")


def test_a_deploy_killed_after_its_server_started_leaves_a_record_that_list_and_destroy_find(nimbus_home):
    folder = Registry().deployment_dir("killed-mid-deploy")
    done = subprocess.run([sys.executable, "-c", KILLED_DEPLOY.format(here=str(HERE))], capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert servers_of(folder)  # its server outlived it
    record = Registry().get("killed-mid-deploy")
    assert record is not None and record.status == "starting"
    shown = listed("killed-mid-deploy")
    assert shown.status == "interrupted" and "%nimbus_destroy killed-mid-deploy stops what it started" in shown.detail
    again = nj.deploy(versioned_pipeline("ONE"), "killed-mid-deploy", workers=1, show=False)  # deploying again cleans up
    assert again.status == "ready" and len(servers_of(folder)) == 1
    assert nj.destroy("killed-mid-deploy").startswith("destroyed 'killed-mid-deploy'")
    assert gone(folder) and listed("killed-mid-deploy") is None


def test_a_server_whose_record_was_lost_is_listed_as_an_orphan_and_destroyed_by_its_folder(nimbus_home):
    d = nj.deploy(versioned_pipeline("ONE"), "lost-record", workers=1, show=False)
    folder = Registry().deployment_dir("lost-record")
    Registry().remove("lost-record")  # as a failed write or a lost registry would leave it
    shown = listed("lost-record")
    assert shown is not None and shown.status == "orphan" and shown.url == d.url
    assert f"runs from {folder} with no registry record" in shown.detail and "%nimbus_destroy lost-record" in shown.detail
    assert nj.get_deployment("lost-record").status == "orphan"
    done = nj.destroy("lost-record")
    assert "(an orphan: it had no registry record)" in done and "stopped the server" in done
    assert gone(folder) and not folder.exists() and listed("lost-record") is None


def test_both_registry_files_corrupt_are_rebuilt_from_the_deployment_folders(nimbus_home):
    first = nj.deploy(versioned_pipeline("ONE"), "kept-one", workers=1, show=False)
    nj.deploy(versioned_pipeline("ONE"), "kept-two", workers=1, show=False)
    registry = Registry()
    registry.path.write_text("{ half a file", "utf-8")
    registry.backup.write_text("\x00\x00", "utf-8")
    with pytest.warns(RegistryWarning, match=r"both corrupt; rebuilt from the records in \d+ deployment folder\(s\)"):
        shown = {d.name: d for d in nj.list_deployments(remote=False)}
    assert shown["kept-one"].status == shown["kept-two"].status == "ready" and shown["kept-one"].url == first.url
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RegistryWarning)
        df = nj.batch(["a phone"], "kept-one", progress=False)
        assert (df.error == "").all()
        nj.destroy("kept-two")  # the first change writes the registry again
    with warnings.catch_warnings():
        warnings.simplefilter("error", RegistryWarning)
        assert [r.name for r in Registry().all() if r.name.startswith("kept-")] == ["kept-one"]
    assert list(registry.home.glob("registry.json.corrupt-*"))  # the corrupt file kept for a post-mortem
    nj.destroy("kept-one")
