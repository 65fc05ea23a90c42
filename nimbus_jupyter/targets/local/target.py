"""The local target: plan (read only) and apply (files, server) for one deployment on 127.0.0.1."""
from __future__ import annotations

import os
import secrets
import shutil
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ...core.errors import UserInputError
from ...core.operate import RollbackResult, VersionInfo, WindowStats
from ...core.plan import CREATE, KEEP, START, UPDATE, Change, Plan
from ...core.progress import Progress
from ...core.registry import Registry
from .. import STAGES, check_same_pipeline
from .files import DeploymentFiles, write_json_atomic
from . import requestlog, versions
from .process import probe, start_server, stop_server, switch_version

KEEP_VERSIONS = 3  # bundles kept on disk per deployment, for rollback


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


class LocalTarget:
    name = "local"
    stages = STAGES["local"]

    def __init__(self, registry: Registry, workers: Optional[int] = None, max_queue: Optional[int] = None) -> None:
        self.registry = registry
        self.workers = workers
        self.max_queue = max_queue

    def files(self, name: str) -> DeploymentFiles:
        return DeploymentFiles(self.registry.deployment_dir(name))

    # -- plan: reads only --------------------------------------------------------------------------
    def plan(self, name: str, bundle: Any, current: Optional[Dict[str, Any]], force: bool = False,
             progress: Optional[Progress] = None, dry_run: bool = False) -> Plan:
        workers = self.workers or (current or {}).get("workers") or default_workers()
        max_queue = self.max_queue if self.max_queue is not None else workers
        size_mb = bundle.size_bytes / 1e6
        options = {"workers": workers, "max_queue": max_queue}
        if current is None:
            return Plan(name, self.name, 1, [
                Change(CREATE, f"bundle v1 ({size_mb:.1f} MB, {', '.join(bundle.manifest['components']) or 'no components'})", "new deployment"),
                Change(CREATE, f"API key for {name!r}", "new deployment"),
                Change(CREATE, f"local server on 127.0.0.1 with {workers} worker(s)", "new deployment"),
            ], bundle, None, options)
        if current.get("target") != self.name:
            raise UserInputError(f"{name!r} is deployed on target {current.get('target')!r}",
                                 f"destroy it first (%nimbus_destroy {name}) or choose another --name")
        check_same_pipeline(name, bundle, current, force)
        alive = probe(self.files(name)).alive
        version = int(current["version"])
        changes = [Change(KEEP, f"API key for {name!r}", "keys survive redeploys")]
        if bundle.hash == current.get("hash"):
            changes.insert(0, Change(KEEP, f"bundle v{version}", "the pipeline is unchanged"))
            if not alive:
                changes.append(Change(START, f"local server for v{version} with {workers} worker(s)", "it is not running"))
            elif workers != current.get("workers"):
                changes.append(Change(START, f"local server for v{version} with {workers} worker(s)", f"workers {current.get('workers')} -> {workers}"))
            else:
                changes.append(Change(KEEP, f"local server at {current.get('url')}", "running and healthy"))
            return Plan(name, self.name, version, changes, bundle, current, options)
        version = self._next_version(name, current)
        changes.insert(0, Change(CREATE, f"bundle v{version} ({size_mb:.1f} MB)", f"the pipeline changed (hash {bundle.hash[:12]})"))
        if alive and workers == current.get("workers"):
            changes.append(Change(UPDATE, f"local server at {current.get('url')}: v{current['version']} -> v{version}",
                                  "in-flight requests finish on the old version; new ones go to the new"))
        else:
            changes.append(Change(START, f"local server for v{version} with {workers} worker(s)",
                                  "it is not running" if not alive else f"workers {current.get('workers')} -> {workers}"))
        return Plan(name, self.name, version, changes, bundle, current, options)

    def _next_version(self, name: str, current: Dict[str, Any]) -> int:
        """One past every version ever made: after a rollback to v1, the next deploy is v4, not v2
        (which would overwrite a kept bundle and reuse a number the history already has)."""
        seen = [int(current["version"])] + [int(h["version"]) for h in current.get("history", [])]
        versions = self.files(name).versions
        if versions.exists():
            seen += [int(p.name) for p in versions.iterdir() if p.name.isdigit()]
        return max(seen) + 1

    # -- apply ---------------------------------------------------------------------------------------
    def apply(self, plan: Plan, progress: Progress) -> Dict[str, Any]:
        """Carry out ``plan``; on failure, leave the previous version serving and no new files behind."""
        files = self.files(plan.name)
        created_dir = not files.root.exists()
        new_version = not (plan.current and plan.current.get("hash") == plan.bundle.hash)
        try:
            with progress.stage("package") as stage:
                files.root.mkdir(parents=True, exist_ok=True, mode=0o700)
                files.versions.mkdir(exist_ok=True)
                if not files.api_key.exists():
                    files.write_key("nmb_" + secrets.token_urlsafe(32))
                target_dir = files.version_dir(plan.version)
                if new_version:
                    shutil.rmtree(target_dir, ignore_errors=True)
                    shutil.move(str(plan.bundle.path), str(target_dir))
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
        previous_port = (plan.current or {}).get("port") or 0
        config = {
            "name": plan.name, "version": plan.version, "bundle_dir": str(files.version_dir(plan.version)),
            "workers": plan.options["workers"], "max_queue": plan.options["max_queue"], "port": previous_port,
        }
        running = probe(files)
        same_workers = plan.current and plan.current.get("workers") == plan.options["workers"]
        write_json_atomic(files.server_config, config)
        if running.alive and same_workers:
            status = switch_version(files, running.status["pid"], plan.version)
            stage.detail = f"switched to v{plan.version} in place"
        else:
            if running.alive or (running.status or {}).get("pid"):
                stop_server(files)
            status = start_server(files)
            stage.detail = f"{plan.options['workers']} worker(s) on port {status['port']}"
        return status

    def _restore_config(self, plan: Plan, files: DeploymentFiles) -> None:
        current = plan.current or {}
        if current.get("version"):
            config = {"name": plan.name, "version": current["version"],
                      "bundle_dir": str(files.version_dir(current["version"])),
                      "workers": current.get("workers"), "max_queue": plan.options["max_queue"],
                      "port": current.get("port") or 0}
            write_json_atomic(files.server_config, config)

    def _prune_versions(self, files: DeploymentFiles, current: int) -> None:
        versions = sorted((int(p.name) for p in files.versions.iterdir() if p.name.isdigit()), reverse=True)
        for old in versions[KEEP_VERSIONS:]:
            if old != current:
                shutil.rmtree(files.version_dir(old), ignore_errors=True)

    def _record(self, plan: Plan, files: DeploymentFiles, status: Dict[str, Any]) -> Dict[str, Any]:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        manifest = plan.bundle.manifest
        history = list((plan.current or {}).get("history", []))
        if not history or history[-1]["version"] != plan.version:
            history.append({"version": plan.version, "hash": manifest["hash"], "created": now,
                            "components": manifest["components"], "by": user()})
        return {
            "name": plan.name, "target": self.name, "status": "ready", "version": plan.version,
            "hash": manifest["hash"], "lang": manifest["lang"], "components": manifest["components"],
            "size_bytes": manifest["size_bytes"], "url": f"http://127.0.0.1:{status['port']}",
            "port": status["port"], "pid": status["pid"], "workers": plan.options["workers"],
            "key_file": str(files.api_key), "dir": str(files.root),
            "created": (plan.current or {}).get("created", now), "updated": now, "history": history[-20:],
        }

    # -- other operations ------------------------------------------------------------------------------
    def live_status(self, record: Dict[str, Any]) -> Tuple[str, str]:
        result = probe(self.files(record["name"]))
        if result.alive:
            served = str(result.health.get("version"))
            if served != str(record.get("version")):
                return "stale", f"the server serves v{served}, the registry says v{record.get('version')}; deploy again"
            return "ready", ""
        return "dead", f"{result.detail}; run %nimbus_deploy again to restart it"

    def logs(self, record: Dict[str, Any], start: float, errors: bool, limit: int) -> List[Any]:
        """server.log's lines from ``start`` on (by their times), only failures with ``errors``."""
        return requestlog.recent(self.files(record["name"]).log, start, errors, limit)

    def follow_logs(self, record: Dict[str, Any], start: float, errors: bool) -> Iterator[Any]:
        """Tails server.log: the lines from ``start``, then each new one, until the caller stops."""
        return requestlog.follow(self.files(record["name"]).log, start, errors)

    # -- operate: metrics, history, rollback ------------------------------------------------------------
    def metrics(self, record: Dict[str, Any]) -> Tuple[WindowStats, WindowStats, Optional[float], str]:
        """The server's own counters (GET /stats with the key): they start again when the server restarts."""
        from ...endpoint.client import EndpointClient

        stats = EndpointClient(record["url"], self.files(record["name"]).read_key()).get_json("/stats", timeout=5.0)
        return (WindowStats(**stats["last_hour"]), WindowStats(**stats["last_day"]), None,
                "local target: no cost")

    def history(self, record: Dict[str, Any]) -> List[VersionInfo]:
        """Every deploy and rollback, oldest first; ``available``: its bundle is still on disk."""
        return versions.history(record, self.files(record["name"]))

    def rollback(self, record: Dict[str, Any], to_version: Optional[int] = None) -> Tuple[Dict[str, Any], RollbackResult]:
        """Serve a kept earlier version through the server's in-place switch (no request fails)."""
        return versions.rollback(record, self.files(record["name"]), to_version)

    def destroy(self, record: Dict[str, Any]) -> str:
        files = self.files(record["name"])
        stopped = stop_server(files)
        shutil.rmtree(files.root, ignore_errors=True)
        return "stopped the server and removed its files" if stopped else "removed its files (the server was not running)"

    def restart(self, record: Dict[str, Any]) -> Dict[str, Any]:
        return start_server(self.files(record["name"]))


def user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:
        return "unknown"
