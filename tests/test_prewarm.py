"""Warming the local target: loading the magics (or starting a deploy) starts the base zygote in the
background, so the first deploy forks from a process that already imported spaCy. What a user relies on:
the deploy uses that very zygote (not a second one), however many launchers race there is one zygote
per environment, a zygote nobody uses goes away by itself, and prewarm can be turned off."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import List

import psutil
import pytest

import nimbus_jupyter as nj
from nimbus_jupyter.core.registry import Registry
from nimbus_jupyter.faces.magics import NimbusMagics, load
from nimbus_jupyter.targets.local.files import DeploymentFiles
from nimbus_jupyter.targets.local.hosts import _zygote_pid, run_dir, stop_zygotes, warm_base_zygote
from nimbus_jupyter.targets.local.process import deployment_processes
from waiting import wait_for
from pipelines import sleepy_pipeline


def serving(home: Path) -> List[int]:
    """The pids answering on the home's zygote sockets."""
    return [pid for pid in (_zygote_pid(p) for p in run_dir(home).glob("zygote-*.sock")) if pid]


def zygote_processes(home: Path) -> List[int]:
    """Every live process that is, or launches, a base zygote of ``home`` (by its command line; the hosts
    and workers it forked carry the same one and are left out)."""
    marks = (str(home), str(run_dir(home)))
    found = {}
    for proc in psutil.process_iter(["cmdline", "status", "ppid"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if proc.info["status"] != psutil.STATUS_ZOMBIE and "nimbus_jupyter.targets.local.zygote" in cmd and any(m in cmd for m in marks):
            found[proc.pid] = proc.info["ppid"]
    return sorted(pid for pid, parent in found.items() if parent not in found)


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("NIMBUS_HOME", str(home))
    yield home
    for name in [r.name for r in Registry(home).all()]:
        nj.destroy(name, Registry(home))
    stop_zygotes(home)
    wait_for(lambda: not zygote_processes(home), "the zygotes of the test's home to exit", 30)


def test_loading_the_magics_warms_the_zygote_the_first_deploy_then_forks_from(home, ip, monkeypatch):
    monkeypatch.setenv("NIMBUS_PREWARM", "1")
    load(ip)
    (warm,) = wait_for(lambda: serving(home), "the warmed zygote to answer", 60)
    d = nj.deploy(sleepy_pipeline(0.0), "warmed", workers=2, show=False)
    procs = deployment_processes(DeploymentFiles(Registry().deployment_dir("warmed")))
    assert procs["zygote"] == [warm], "the deploy started its own zygote instead of using the warm one"
    assert [psutil.Process(h).ppid() for h in procs["hosts"]] == [warm]
    assert zygote_processes(home) == [warm]
    assert d.predict(["x"], ["cats"])


def test_prewarm_off_by_config_or_environment_starts_nothing(home, ip, monkeypatch):
    monkeypatch.setenv("NIMBUS_PREWARM", "1")
    ip.config.NimbusMagics.prewarm = False
    try:
        load(ip)
    finally:
        del ip.config.NimbusMagics["prewarm"]
    monkeypatch.setenv("NIMBUS_PREWARM", "0")
    load(ip)
    time.sleep(3)  # a launched zygote would be a live process by now (it answers after ~1 s)
    assert zygote_processes(home) == [] and serving(home) == []
    assert NimbusMagics.prewarm.default_value is True


def test_racing_launchers_and_a_deploy_leave_one_zygote(home):
    for _ in range(4):
        assert warm_base_zygote(home)
    d = nj.deploy(sleepy_pipeline(0.0), "raced", workers=1, show=False)  # its server's launcher races them too
    assert warm_base_zygote(home)
    (one,) = wait_for(lambda: serving(home), "a zygote to answer", 60)
    wait_for(lambda: zygote_processes(home) == [one], "the losing launchers to exit", 30)
    procs = deployment_processes(DeploymentFiles(Registry().deployment_dir("raced")))
    assert procs["zygote"] == [one] and d.predict(["x"], ["cats"])


def test_a_warmed_zygote_nobody_uses_exits_by_itself(home, monkeypatch):
    monkeypatch.setenv("NIMBUS_ZYGOTE_IDLE", "2")
    assert warm_base_zygote(home)
    (pid,) = wait_for(lambda: serving(home), "the warmed zygote to answer", 60)
    wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
             "the idle zygote to exit", 30)
    assert serving(home) == []


def test_a_dry_run_starts_no_zygote(home):
    nj.deploy(sleepy_pipeline(0.0), "dry", show=False, dry_run=True)
    time.sleep(3)
    assert zygote_processes(home) == []


def test_loading_the_magics_never_fails_for_a_home_it_cannot_use(ip, monkeypatch):
    import tempfile

    fd, name = tempfile.mkstemp(prefix="nimbus-home-file-", dir="/tmp")  # short: its run dir is inside it
    os.close(fd)
    not_a_dir = Path(name)
    try:
        monkeypatch.setenv("NIMBUS_HOME", str(not_a_dir))
        monkeypatch.setenv("NIMBUS_PREWARM", "1")
        assert warm_base_zygote(not_a_dir) is False  # its run dir cannot be made: nothing started
        load(ip)  # no exception: the deploy that needs the zygote is what says what is wrong with the home
    finally:
        not_a_dir.unlink()
