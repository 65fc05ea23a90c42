"""History and rollback of a local deployment: the registry record's ``history`` plus the bundles kept
on disk (the last KEEP_VERSIONS), and the server's in-place version switch (SIGHUP) to go back."""
from __future__ import annotations

import time
from typing import List, Optional

from ...core.errors import UserInputError
from ...core.operate import HistoryRow, RollbackOutcome, RollbackResult
from ...core.records import DeploymentRecord, HistoryEntry, current_user, now_iso
from ...runtime.loader import read_manifest
from .files import DeploymentFiles, read_json, write_json_atomic
from .process import probe, start_server, switch_version
from .state import LocalState


def kept_versions(files: DeploymentFiles) -> List[int]:
    """Versions whose bundle is still on disk (with its manifest), oldest first."""
    if not files.versions.exists():
        return []
    return sorted(int(p.name) for p in files.versions.iterdir()
                  if p.name.isdigit() and (p / "manifest.json").exists())


def history(record: DeploymentRecord, files: DeploymentFiles) -> List[HistoryRow]:
    """One row per deploy or rollback, oldest first; the last one of the served version is ``serving``."""
    kept = set(kept_versions(files))
    entries = record.history
    serving_index = max((i for i, e in enumerate(entries) if e.version == record.version), default=-1)
    return [HistoryRow(e, serving=i == serving_index, available=e.version in kept) for i, e in enumerate(entries)]


def choose(record: DeploymentRecord, files: DeploymentFiles, to_version: Optional[int]) -> int:
    """The version to go back to: ``to_version``, else the newest kept one older than the current."""
    name, current = record.name, record.version
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


def rollback(record: DeploymentRecord, files: DeploymentFiles, to_version: Optional[int]) -> RollbackOutcome:
    """Point server.json at the chosen version and switch the running server to it (new workers load
    first, in-flight requests finish on the old ones); start the server when it is not running. On
    failure server.json is put back and the current version keeps serving."""
    target = choose(record, files, to_version)
    current = record.version
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
    entry = HistoryEntry.rollback(target, current, manifest["hash"], manifest["components"], current_user())
    state = LocalState(int(status["port"]), int(status["pid"]), LocalState.of(record).workers)
    new = record.with_entry(entry).evolve(
        version=target, hash=manifest["hash"], lang=manifest["lang"], components=list(manifest["components"]),
        size_bytes=manifest["size_bytes"], url=f"http://127.0.0.1:{status['port']}", status="ready",
        updated=now_iso(), target_data=state.data())
    return RollbackOutcome(new, RollbackResult(record.name, "local", current, target, round(seconds, 3), how))
