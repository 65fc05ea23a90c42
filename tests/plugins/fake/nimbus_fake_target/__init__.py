"""``fake``: a third deployment target, as another package would write one against nimbus-jupyter's
target contract (``nimbus_jupyter.targets.base``) and register by entry point. It uses nothing of
nimbus-jupyter but the contract, the core's records and plans, and the endpoint's HTTP transport.

A deployment is the real runtime handler (``nimbus_jupyter.runtime.handler``) behind a small
``http.server`` in a process of its own (``server.py``), on 127.0.0.1, with the API key checked on every
route but ``/health``; each answered request is one JSON line in ``requests.log``. Versions are kept
as bundle directories, so it can roll back (the ``Operable`` capability): metrics and logs come from
that log. It declares an option of every type.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import requests

from nimbus_jupyter.core.errors import DeployFailed, UserInputError
from nimbus_jupyter.core.files import read_json, write_json_atomic, write_secret
from nimbus_jupyter.core.loglines import LogLine
from nimbus_jupyter.core.operate import (HistoryRow, LiveStatus, Metrics, RollbackOutcome, RollbackResult,
                                         WindowStats)
from nimbus_jupyter.core.plan import CREATE, KEEP, START, Change, Plan
from nimbus_jupyter.core.records import DeploymentRecord, HistoryEntry, current_user, now_iso
from nimbus_jupyter.targets.base import DeployRequest, TargetOption, http_endpoint

PLUGIN_DIR = Path(__file__).resolve().parents[1]


def _threads(value: int) -> int:
    if not 1 <= value <= 16:
        raise UserInputError(f"fake_threads must be from 1 to 16, not {value}", "e.g. --fake-threads 4")
    return value


class FakeTarget:
    name = "fake"
    title = "Fake (a test plugin: the runtime handler behind http.server)"
    stages = ("serialize", "package", "start", "smoke test")
    options = (
        TargetOption("fake_threads", "int", 4, "requests the fake server reads and writes at once (default 4)", metavar="N", validate=_threads),
        TargetOption("fake_label", "str", None, "a label the deployment keeps", metavar="TEXT"),
        TargetOption("fake_color", "choice", "blue", "a color the deployment keeps (default blue)", choices=("blue", "green")),
        TargetOption("fake_quiet", "bool", None, "leave the request log empty"),
    )

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def root(self, name: str) -> Path:
        return self.registry.deployment_dir(name)

    # -- plan and apply ------------------------------------------------------------------------------
    def plan(self, request: DeployRequest) -> Plan:
        current, bundle = request.current, request.bundle
        options = dict(request.options)
        alive = current is not None and self.live_status(current).ready
        facts = {"server": "running" if alive else "not running"}
        if current is not None and current.hash == bundle.hash and alive and current.options == options:
            changes = [Change(KEEP, f"fake server at {current.url}", "unchanged and running")]
            return Plan(request.name, self.name, current.version, changes, bundle, current, options, facts,
                        staging=request.staging)
        version = 1 if current is None else (current.version if current.hash == bundle.hash
                                             else max(current.versions_seen()) + 1)
        changes = [Change(CREATE if current is None else START, f"fake server for v{version} ({options['fake_color']})",
                          "new deployment" if current is None else "changed, or not running")]
        return Plan(request.name, self.name, version, changes, bundle, current, options, facts, staging=request.staging)

    def apply(self, plan: Plan, progress: Any) -> DeploymentRecord:
        root = self.root(plan.name)
        with progress.stage("package") as stage:
            (root / "versions").mkdir(parents=True, exist_ok=True)
            if not (root / "api_key").exists():
                write_secret(root / "api_key", "fake_" + secrets.token_urlsafe(24))
            target = root / "versions" / str(plan.version)
            if not target.exists():
                shutil.move(str(plan.path("bundle")), str(target))
            stage.detail = f"v{plan.version}"
        with progress.stage("start") as stage:
            port = self._start(plan.name, plan.version, plan.options)
            stage.detail = f"port {port}"
        now = now_iso()
        record = plan.current or DeploymentRecord(plan.name, self.name, created=now)
        if not record.history or record.history[-1].version != plan.version:
            record = record.with_entry(HistoryEntry.deploy(plan.version, plan.bundle.hash, plan.bundle.components,
                                                           current_user(), ref=f"fake-{plan.version}"))
        return record.evolve(status="ready", version=plan.version, hash=plan.bundle.hash, lang=plan.bundle.lang,
                             components=list(plan.bundle.components), size_bytes=plan.bundle.size_bytes,
                             url=f"http://127.0.0.1:{port}", key_file=str(root / "api_key"), updated=now,
                             options=dict(plan.options), target_data={"port": port})

    def _start(self, name: str, version: int, options: Dict[str, Any]) -> int:
        root = self.root(name)
        self._stop(root)
        write_json_atomic(root / "server.json", {"name": name, "version": version, "threads": options["fake_threads"],
                                                 "quiet": bool(options.get("fake_quiet")),
                                                 "bundle_dir": str(root / "versions" / str(version))})
        (root / "state.json").unlink(missing_ok=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGIN_DIR), os.environ.get("PYTHONPATH", "")])}
        with open(root / "server.out", "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "nimbus_fake_target.server", str(root)], stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = read_json(root / "state.json")
            if state and state.get("pid") == proc.pid:
                return int(state["port"])
            if proc.poll() is not None:
                raise DeployFailed(f"the fake server exited with code {proc.returncode}", f"see {root / 'server.out'}")
            time.sleep(0.05)
        proc.kill()
        raise DeployFailed("the fake server did not start in 120 s", f"see {root / 'server.out'}")

    def _stop(self, root: Path) -> bool:
        state = read_json(root / "state.json") or {}
        pid = state.get("pid")
        if not pid:
            return False
        try:
            os.killpg(int(pid), signal.SIGTERM)
        except ProcessLookupError:
            return False
        for _ in range(200):
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)
        try:
            os.waitpid(int(pid), os.WNOHANG)
        except ChildProcessError:
            pass
        return True

    # -- the deployment ------------------------------------------------------------------------------
    def live_status(self, record: DeploymentRecord) -> LiveStatus:
        try:
            health = requests.get(f"{record.url}/health", timeout=2).json()
        except (requests.RequestException, ValueError):
            return LiveStatus("dead", "the fake server does not answer; deploy again")
        if str(health.get("version")) != str(record.version):
            return LiveStatus("stale", f"it serves v{health.get('version')}")
        return LiveStatus("ready")

    def logs(self, record: DeploymentRecord, start: float, errors: bool, limit: int) -> List[LogLine]:
        return [line for line, failed in self._lines(record, start) if failed or not errors][-limit:]

    def endpoint(self, record: DeploymentRecord, via: Optional[str] = None, *, retries: int = 8,
                 concurrency: int = 10) -> Any:
        return http_endpoint(record, via, retries)

    def destroy(self, record: DeploymentRecord) -> str:
        root = self.root(record.name)
        stopped = self._stop(root)
        shutil.rmtree(root, ignore_errors=True)
        return "stopped the fake server and removed its files" if stopped else "removed its files"

    # -- Operable -----------------------------------------------------------------------------------
    def metrics(self, record: DeploymentRecord) -> Metrics:
        now = time.time()
        entries = self._entries(record)

        def window(label: str, seconds: int) -> WindowStats:
            chosen = [e for e in entries if e["time"] >= now - seconds and e["path"] == "/predict"]
            return WindowStats(label, requests=len(chosen), errors=sum(e["status"] >= 500 for e in chosen),
                               client_errors=sum(400 <= e["status"] < 500 for e in chosen))
        return Metrics(window("1h", 3600), window("24h", 86400), None, "fake target: free")

    def history(self, record: DeploymentRecord) -> List[HistoryRow]:
        kept = {int(p.name) for p in (self.root(record.name) / "versions").iterdir() if p.name.isdigit()}
        last = max((i for i, e in enumerate(record.history) if e.version == record.version), default=-1)
        return [HistoryRow(e, serving=i == last, available=e.version in kept) for i, e in enumerate(record.history)]

    def rollback(self, record: DeploymentRecord, to_version: Optional[int] = None) -> RollbackOutcome:
        kept = sorted(r.entry.version for r in self.history(record) if r.available)
        older = [v for v in kept if v < record.version]
        target = to_version if to_version is not None else (max(older) if older else None)
        if target is None or target not in kept or target == record.version:
            raise UserInputError(f"{record.name!r} cannot go to v{target} (kept: {kept}, serving v{record.version})",
                                 "name a kept version: %nimbus_history lists them")
        started = time.monotonic()
        port = self._start(record.name, target, record.options)
        old = next(e for e in record.history if e.version == target)
        entry = HistoryEntry.rollback(target, record.version, old.hash, old.components, current_user(), ref=f"fake-{target}")
        new = record.with_entry(entry).evolve(version=target, hash=old.hash, url=f"http://127.0.0.1:{port}",
                                              updated=entry.when, target_data={"port": port})
        return RollbackOutcome(new, RollbackResult(record.name, self.name, record.version, target,
                                                   time.monotonic() - started, "restarted the fake server on it"))

    def follow_logs(self, record: DeploymentRecord, start: float, errors: bool) -> Iterator[LogLine]:
        seen = 0
        while True:
            lines = [line for line, failed in self._lines(record, start) if failed or not errors]
            yield from lines[seen:]
            seen = len(lines)
            time.sleep(0.1)

    # -- the request log --------------------------------------------------------------------------------
    def _entries(self, record: DeploymentRecord) -> List[Dict[str, Any]]:
        path = self.root(record.name) / "requests.log"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]

    def _lines(self, record: DeploymentRecord, start: float) -> List[Any]:
        return [(LogLine(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e["time"])),
                         f"{e['method']} {e['path']} {e['status']} {e['ms']} ms", e["id"]), e["status"] >= 400)
                for e in self._entries(record) if e["time"] >= start]
