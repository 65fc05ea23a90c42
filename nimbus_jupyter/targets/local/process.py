"""Start, probe and stop the detached local server from the kernel side."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import psutil
import requests

from ...core.errors import DeployFailed
from .files import DeploymentFiles, read_json

START_TIMEOUT = 180.0


@dataclass
class Probe:
    alive: bool
    detail: str = ""
    health: Optional[Dict[str, Any]] = None
    status: Optional[Dict[str, Any]] = None


def probe(files: DeploymentFiles, timeout: float = 2.0) -> Probe:
    """Is this deployment's server running and answering as itself? Never trusts the pid alone."""
    status = read_json(files.status)
    if not status:
        return Probe(False, "the server never reported that it started", status=status)
    pid = status.get("pid")
    if status.get("state") != "ready":
        return Probe(False, f"the server is {status.get('state')}: {status.get('error') or 'see ' + str(files.log)}", status=status)
    if not _running(pid):
        return Probe(False, f"the server process {pid} is not running (see {files.log})", status=status)
    try:
        health = requests.get(f"http://127.0.0.1:{status['port']}/health", timeout=timeout).json()
    except (requests.RequestException, ValueError):
        return Probe(False, f"the server process {pid} does not answer on port {status['port']}", status=status)
    if health.get("instance") != status.get("instance"):
        return Probe(False, f"port {status['port']} is answered by another server (stale record)", status=status)
    return Probe(True, "", health=health, status=status)


def deployment_processes(files: DeploymentFiles) -> Dict[str, List[int]]:
    """The processes serving this deployment, by role: ``server`` (the HTTP front), ``hosts`` (each warm
    version's loaded host), ``workers``, and ``zygote`` (the home's base zygote, shared by every local
    deployment of this Python environment). Workers are not the server's children: they are forked
    by their version's host. For benches and tests that measure or kill them."""
    from pathlib import Path

    from .hosts import _zygote_pid

    status = read_json(files.status) or {}
    hosts = [int(h["pid"]) for h in (status.get("hosts") or {}).values() if h.get("pid")]
    zygote = _zygote_pid(Path(status["zygote"])) if status.get("zygote") else None
    return {"server": [int(status["pid"])] if status.get("pid") else [], "hosts": hosts,
            "workers": [int(p) for p in status.get("workers") or []], "zygote": [zygote] if zygote else []}


def _running(pid: Any) -> bool:
    try:
        return psutil.Process(int(pid)).status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, TypeError, ValueError):
        return False


def start_server(files: DeploymentFiles) -> Dict[str, Any]:
    """Spawn the server detached from the kernel (own session) and wait until it is ready."""
    if files.status.exists():
        files.status.unlink()
    # 0600: the log holds tracebacks of the user's pipeline, which are theirs alone
    log = os.fdopen(os.open(files.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")
    os.chmod(files.log, 0o600)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nimbus_jupyter.targets.local.server", str(files.root)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True, cwd=str(files.root),
        )
    finally:
        log.close()
    _children.append(proc)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        status = read_json(files.status)
        if status and status.get("pid") == proc.pid and status.get("state") in ("ready", "failed"):
            if status["state"] == "ready":
                return status
            _kill_group(proc.pid)
            raise DeployFailed(f"the pipeline did not load in the local worker: {status.get('error')}",
                               f"fix the error above (full log: {files.log}) and deploy again", where="start")
        if proc.poll() is not None:
            raise DeployFailed(f"the local server exited with code {proc.returncode} before it was ready:\n{_tail(files)}",
                               f"see {files.log}", where="start")
        time.sleep(0.02)
    _kill_group(proc.pid)
    raise DeployFailed(f"the local server was not ready after {START_TIMEOUT:.0f} s", f"see {files.log}", where="start")


def switch_version(files: DeploymentFiles, pid: int, version: int, timeout: float = START_TIMEOUT) -> Dict[str, Any]:
    """Ask a running server (SIGHUP) to serve ``version`` and wait until it does or says why not."""
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = read_json(files.status) or {}
        if status.get("version") == version and status.get("state") == "ready":
            return status
        failed = status.get("reload_error") or {}
        if failed.get("version") == version:
            raise DeployFailed(f"version {version} did not load in the local worker: {failed.get('error')}",
                               "the previous version is still serving; fix the error and deploy again", where="start")
        if not _running(pid):
            raise DeployFailed(f"the local server died while switching to version {version}:\n{_tail(files)}",
                               f"see {files.log}", where="start")
        time.sleep(0.02)
    raise DeployFailed(f"the local server did not switch to version {version} in {timeout:.0f} s",
                       f"see {files.log}", where="start")


def stop_server(files: DeploymentFiles, grace: float = 10.0) -> bool:
    """Stop the deployment's server (and its workers); True if one was running."""
    status = read_json(files.status) or {}
    pid = status.get("pid")
    if not pid or not _is_our_server(pid, files):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
        psutil.Process(pid).wait(grace)
    except psutil.TimeoutExpired:
        pass
    except (ProcessLookupError, psutil.NoSuchProcess):
        return True
    _kill_group(pid)
    return True


def _is_our_server(pid: int, files: DeploymentFiles) -> bool:
    try:
        cmdline = psutil.Process(pid).cmdline()
    except psutil.Error:
        return False
    return "nimbus_jupyter.targets.local.server" in cmdline and str(files.root) in cmdline


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for proc in list(_children):
        if proc.poll() is not None:
            _children.remove(proc)


def _tail(files: DeploymentFiles, lines: int = 15) -> str:
    try:
        return "\n".join(files.log.read_text("utf-8", "replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


_children: list = []  # Popen objects, kept so exited servers are reaped and not left as zombies
