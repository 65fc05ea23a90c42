"""The local target: plan (read only) and apply (files, server) for one deployment on 127.0.0.1."""
from __future__ import annotations

import os
import secrets
import shutil
from typing import Any, Dict, Iterator, List, Optional, Set

from ...core.errors import UserInputError
from ...core.loglines import LogLine
from ...core.operate import Discovered, HistoryRow, LiveStatus, Metrics, RollbackOutcome, WindowStats
from ...core.plan import CREATE, KEEP, START, UPDATE, Change, Plan
from ...core.progress import Progress
from ...core.records import DeploymentRecord, HistoryEntry, current_user, now_iso
from ...core.registry import Registry
from ...endpoint.client import EndpointClient
from ...endpoint.transport import Transport
from ..base import DeployRequest, TargetOption, http_endpoint, read_key
from . import orphans, requestlog, versions
from .files import DeploymentFiles, write_json_atomic
from .hosts import stop_zygotes, warm_base_zygote
from .jobs_host import warm_job_host
from .jobs import LocalJobs
from .process import probe, start_server, stop_server, switch_version
from .state import LocalState

KEEP_VERSIONS = 3  # bundles kept on disk per deployment, for rollback


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def _whole(name: str, low: int, todo: str) -> Any:
    def check(value: int) -> int:
        if value < low:
            raise UserInputError(f"{name} must be a whole number of at least {low}, not {value!r}", todo)
        return value
    return check


class LocalTarget(LocalJobs):  # LocalJobs: the Jobs capability (detached runners, targets/local/jobs.py)
    name = "local"
    title = "Local (127.0.0.1)"
    stages = ("serialize", "package", "start", "smoke test")
    # rotate_key: refused, with why. The server reads the key file once, when it starts, and accepts that
    # key alone, so there is no moment with two keys; the key never leaves this machine (127.0.0.1, 0600).
    key_rotation_refusal = (
        "a local deployment's API key cannot be rotated in place: its server reads the key once, when it starts, "
        "and accepts that key alone (the key never leaves this machine: the server binds 127.0.0.1 and the key "
        "file is readable by you only)",
        "for a new key, destroy and deploy again (%nimbus_destroy NAME, then %nimbus_deploy PIPELINE --name NAME): "
        "the endpoint is down in between; rotate_key is for --target aws")
    options = (
        TargetOption("workers", "int", None, "worker processes on the local target (default: the machine's cores)",
                     metavar="N", validate=_whole("workers", 1, "e.g. workers=2")),
        TargetOption("max_queue", "int", None, "requests that may wait for a busy worker before the server answers "
                     "429 (default: as many as workers)", metavar="N", validate=_whole("max_queue", 0, "e.g. max_queue=4")),
    )

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def files(self, name: str) -> DeploymentFiles:
        return DeploymentFiles(self.registry.deployment_dir(name))

    def warm(self) -> None:
        """The base zygote (spaCy and the runtime imported, ~1 s) started now, so a deploy's start stage
        forks from it instead of waiting for the import (the Warmable capability); and the job host
        (pandas, pyarrow and the batch client imported), so a job's runner starts in milliseconds."""
        warm_base_zygote(self.registry.home)
        warm_job_host(self.registry.home)

    # -- plan: reads only --------------------------------------------------------------------------
    def plan(self, request: DeployRequest) -> Plan:
        name, bundle, current = request.name, request.bundle, request.current
        state = LocalState.of(current)
        workers = request.options.get("workers") or state.workers or default_workers()
        max_queue = request.options.get("max_queue")
        options = {"workers": workers, "max_queue": workers if max_queue is None else max_queue}
        size_mb = bundle.size_bytes / 1e6

        def plan(version: int, changes: List[Change], facts: Dict[str, Any]) -> Plan:
            return Plan(name, self.name, version, changes, bundle, current, options, facts, staging=request.staging)

        if current is None:
            return plan(1, [
                Change(CREATE, f"bundle v1 ({size_mb:.1f} MB, {', '.join(bundle.components) or 'no components'})", "new deployment"),
                Change(CREATE, f"API key for {name!r}", "new deployment"),
                Change(CREATE, f"local server on 127.0.0.1 with {workers} worker(s)", "new deployment"),
            ], {"server": "none yet"})
        running = probe(self.files(name))
        facts = {"server": "running" if running.alive else f"not running: {running.detail}"}
        version = current.version
        changes = [Change(KEEP, f"API key for {name!r}", "keys survive redeploys")]
        if bundle.hash == current.hash:
            changes.insert(0, Change(KEEP, f"bundle v{version}", "the pipeline is unchanged"))
            if not running.alive:
                changes.append(Change(START, f"local server for v{version} with {workers} worker(s)", "it is not running"))
            elif workers != state.workers:
                changes.append(Change(START, f"local server for v{version} with {workers} worker(s)", f"workers {state.workers} -> {workers}"))
            else:
                changes.append(Change(KEEP, f"local server at {current.url}", "running and healthy"))
            return plan(version, changes, facts)
        version = self._next_version(name, current)
        changes.insert(0, Change(CREATE, f"bundle v{version} ({size_mb:.1f} MB)", f"the pipeline changed (hash {bundle.hash[:12]})"))
        if running.alive and workers == state.workers:
            changes.append(Change(UPDATE, f"local server at {current.url}: v{current.version} -> v{version}",
                                  "in-flight requests finish on the old version; new ones go to the new"))
        else:
            changes.append(Change(START, f"local server for v{version} with {workers} worker(s)",
                                  "it is not running" if not running.alive else f"workers {state.workers} -> {workers}"))
        return plan(version, changes, facts)

    def _next_version(self, name: str, current: DeploymentRecord) -> int:
        """One past every version ever made: after a rollback to v1, the next deploy is v4, not v2
        (which would overwrite a kept bundle and reuse a number the history already has)."""
        seen = current.versions_seen()
        kept = self.files(name).versions
        if kept.exists():
            seen += [int(p.name) for p in kept.iterdir() if p.name.isdigit()]
        return max(seen) + 1

    # -- apply ---------------------------------------------------------------------------------------
    def apply(self, plan: Plan, progress: Progress) -> DeploymentRecord:
        """Carry out ``plan``; on failure, leave the previous version serving and no new files behind."""
        files = self.files(plan.name)
        created_dir = not files.root.exists()
        new_version = not (plan.current and plan.current.hash == plan.bundle.hash)
        try:
            with progress.stage("package") as stage:
                files.root.mkdir(parents=True, exist_ok=True, mode=0o700)
                files.versions.mkdir(exist_ok=True)
                if not files.api_key.exists():
                    files.write_key("nmb_" + secrets.token_urlsafe(32))
                target_dir = files.version_dir(plan.version)
                if new_version:
                    shutil.rmtree(target_dir, ignore_errors=True)
                    shutil.move(str(plan.path("bundle")), str(target_dir))
                stage.detail = f"v{plan.version}, {plan.bundle.size_bytes / 1e6:.1f} MB"
            with progress.stage("start") as stage:
                status = self._start(plan, files, stage)
        except BaseException:
            if created_dir:
                stop_server(files)
                shutil.rmtree(files.root, ignore_errors=True)
            elif new_version:
                self._restore_config(plan, files)
                shutil.rmtree(files.version_dir(plan.version), ignore_errors=True)
            raise
        self._prune_versions(files, plan.version)
        return self._record(plan, files, status)

    def _start(self, plan: Plan, files: DeploymentFiles, stage: Any) -> Dict[str, Any]:
        before = LocalState.of(plan.current)
        config = {
            "name": plan.name, "version": plan.version, "bundle_dir": str(files.version_dir(plan.version)),
            "workers": plan.options["workers"], "max_queue": plan.options["max_queue"], "port": before.port,
        }
        running = probe(files)
        same_workers = plan.current is not None and before.workers == plan.options["workers"]
        write_json_atomic(files.server_config, config)
        if running.alive and same_workers:
            status = switch_version(files, running.status["pid"], plan.version)  # type: ignore[index]
            stage.detail = f"switched to v{plan.version} in place"
        else:
            if running.alive or (running.status or {}).get("pid"):
                stop_server(files)
            status = start_server(files)
            stage.detail = f"{plan.options['workers']} worker(s) on port {status['port']}"
        return status

    def _restore_config(self, plan: Plan, files: DeploymentFiles) -> None:
        current = plan.current
        if current is not None and current.version:
            before = LocalState.of(current)
            config = {"name": plan.name, "version": current.version, "bundle_dir": str(files.version_dir(current.version)),
                      "workers": before.workers, "max_queue": plan.options["max_queue"], "port": before.port}
            write_json_atomic(files.server_config, config)

    def _prune_versions(self, files: DeploymentFiles, current: int) -> None:
        kept = sorted((int(p.name) for p in files.versions.iterdir() if p.name.isdigit()), reverse=True)
        for old in kept[KEEP_VERSIONS:]:
            if old != current:
                shutil.rmtree(files.version_dir(old), ignore_errors=True)

    def _record(self, plan: Plan, files: DeploymentFiles, status: Dict[str, Any]) -> DeploymentRecord:
        now = now_iso()
        b = plan.bundle
        record = plan.current or DeploymentRecord(plan.name, self.name, created=now)
        if not record.history or record.history[-1].version != plan.version:
            record = record.with_entry(HistoryEntry.deploy(plan.version, b.hash, b.components, current_user()))
        state = LocalState(int(status["port"]), int(status["pid"]), int(plan.options["workers"]))
        return record.evolve(status="ready", version=plan.version, hash=b.hash, lang=b.lang, components=list(b.components),
                             size_bytes=b.size_bytes, url=f"http://127.0.0.1:{status['port']}",
                             key_file=str(files.api_key), updated=now, options=dict(plan.options),
                             target_data=state.data())

    # -- other operations ------------------------------------------------------------------------------
    def live_status(self, record: DeploymentRecord) -> LiveStatus:
        result = probe(self.files(record.name))
        if result.alive:
            served = str((result.health or {}).get("version"))
            if served != str(record.version):
                return LiveStatus("stale", f"the server serves v{served}, the registry says v{record.version}; deploy again")
            return LiveStatus("ready")
        return LiveStatus("dead", f"{result.detail}; run %nimbus_deploy again to restart it")

    def logs(self, record: DeploymentRecord, start: float, errors: bool, limit: int) -> List[LogLine]:
        """server.log's lines from ``start`` on (by their times), only failures with ``errors``."""
        return requestlog.recent(self.files(record.name).log, start, errors, limit)

    def endpoint(self, record: DeploymentRecord, via: Optional[str] = None, *, retries: int = 8,
                 concurrency: int = 10) -> Transport:
        """HTTP with the API key: a local deployment has no Lambda function to invoke."""
        return http_endpoint(record, via, retries)

    def destroy(self, record: DeploymentRecord) -> str:
        files = self.files(record.name)
        stopped = stop_server(files)
        shutil.rmtree(files.root, ignore_errors=True)
        if not [r for r in self.registry.all() if r.target == self.name and r.name != record.name]:
            stop_zygotes(self.registry.home)  # the last local deployment: nothing left to fork for
        return "stopped the server and removed its files" if stopped else "removed its files (the server was not running)"

    # -- operate: metrics, history, rollback, follow (the Operable capability) ---------------------------
    def metrics(self, record: DeploymentRecord) -> Metrics:
        """The server's own counters (GET /stats with the key): they start again when the server restarts."""
        stats = EndpointClient.over_http(record.url, read_key(record)).get_json("/stats")
        return Metrics(WindowStats(**stats["last_hour"]), WindowStats(**stats["last_day"]), None, "local target: no cost")

    def history(self, record: DeploymentRecord) -> List[HistoryRow]:
        """Every deploy and rollback, oldest first; ``available``: its bundle is still on disk."""
        return versions.history(record, self.files(record.name))

    def rollback(self, record: DeploymentRecord, to_version: Optional[int] = None) -> RollbackOutcome:
        """Serve a kept earlier version through the server's in-place switch (no request fails)."""
        return versions.rollback(record, self.files(record.name), to_version)

    def follow_logs(self, record: DeploymentRecord, start: float, errors: bool) -> Iterator[LogLine]:
        """Tails server.log: the lines from ``start``, then each new one, until the caller stops."""
        return requestlog.follow(self.files(record.name).log, start, errors)

    # -- orphans (the Recoverable safety net) --------------------------------------------------------
    def orphans(self, known: Set[str]) -> List[Discovered]:
        """Deployment folders with no registry record, with whether a server still runs from them."""
        return orphans.orphans(self.registry, known, self.name)

    def orphan(self, name: str) -> Optional[DeploymentRecord]:
        return orphans.orphan_record(self.registry, name, self.name)
