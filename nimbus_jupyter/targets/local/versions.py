"""History and rollback of a local deployment: the registry record's ``history`` plus the bundles kept
on disk (the last KEEP_VERSIONS), and the server's in-place version switch (SIGHUP) to go back."""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Tuple

from ...core.errors import UserInputError
from ...core.operate import RollbackResult, VersionInfo
from ...runtime.loader import read_manifest
from .files import DeploymentFiles, read_json, write_json_atomic
from .process import probe, start_server, switch_version


def kept_versions(files: DeploymentFiles) -> List[int]:
    """Versions whose bundle is still on disk (with its manifest), oldest first."""
    if not files.versions.exists():
        return []
    return sorted(int(p.name) for p in files.versions.iterdir()
                  if p.name.isdigit() and (p / "manifest.json").exists())


def history(record: Dict[str, Any], files: DeploymentFiles) -> List[VersionInfo]:
    """One entry per deploy or rollback, oldest first; the last one of the served version is ``serving``."""
    kept = set(kept_versions(files))
    entries = record.get("history") or []
    current = int(record.get("version", 0))
    serving_index = max((i for i, h in enumerate(entries) if int(h["version"]) == current), default=-1)
    return [VersionInfo(version=int(h["version"]), created=h.get("created", ""), by=h.get("by", ""),
                        hash=h.get("hash", ""), components=list(h.get("components", [])),
                        serving=i == serving_index, available=int(h["version"]) in kept,
                        note=h.get("note", ""))
            for i, h in enumerate(entries)]


def choose(record: Dict[str, Any], files: DeploymentFiles, to_version: Optional[int]) -> int:
    """The version to go back to: ``to_version``, else the newest kept one older than the current."""
    name, current = record["name"], int(record["version"])
    kept = kept_versions(files)
    listing = ", ".join(f"v{v}" + (" (serving)" if v == current else "") for v in kept) or "none"
    if to_version is None:
        older = [v for v in kept if v < current]
        if not older:
            raise UserInputError(f"{name!r} serves v{current} and keeps no older version to roll back to (kept: {listing})",
                                 "deploy the pipeline you want instead (the last 3 versions are kept)")
        return max(older)
    if to_version == current:
        raise UserInputError(f"{name!r} already serves v{current}", f"choose another version (kept: {listing})")
    if to_version not in kept:
        raise UserInputError(f"v{to_version} of {name!r} is not on disk: never deployed, or pruned (the last 3 versions are kept)",
                             f"roll back to one that is: {listing} (%nimbus_history {name} lists them)")
    return to_version


def rollback(record: Dict[str, Any], files: DeploymentFiles,
             to_version: Optional[int]) -> Tuple[Dict[str, Any], RollbackResult]:
    """Point server.json at the chosen version and switch the running server to it (new workers load
    first, in-flight requests finish on the old ones); start the server when it is not running. On
    failure server.json is put back and the current version keeps serving."""
    from .target import user

    target = choose(record, files, to_version)
    current = int(record["version"])
    config = read_json(files.server_config) or {}
    running = probe(files)
    started = time.monotonic()
    write_json_atomic(files.server_config, {**config, "version": target, "bundle_dir": str(files.version_dir(target))})
    try:
        if running.alive:
            status = switch_version(files, running.status["pid"], target)  # type: ignore[index]
            how = "switched the local server's workers in place"
        else:
            status = start_server(files)
            how = "started the local server on it (it was not running)"
    except BaseException:
        write_json_atomic(files.server_config, config)
        raise
    seconds = time.monotonic() - started
    manifest = read_manifest(files.version_dir(target))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    entry = {"version": target, "hash": manifest["hash"], "created": now, "components": manifest["components"],
             "by": user(), "note": f"rollback from v{current}"}
    new_record = {**record, "version": target, "hash": manifest["hash"], "lang": manifest["lang"],
                  "components": manifest["components"], "size_bytes": manifest["size_bytes"],
                  "url": f"http://127.0.0.1:{status['port']}", "port": status["port"], "pid": status["pid"],
                  "status": "ready", "updated": now, "history": (list(record.get("history") or []) + [entry])[-20:]}
    return new_record, RollbackResult(record["name"], "local", current, target, round(seconds, 3), how)
