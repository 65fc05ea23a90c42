"""Local deployments without a registry record (orphans), found by their folders under
``NIMBUS_HOME/deployments``: a deploy whose record could not be written (or whose kernel was killed at
that moment), a registry that was lost. The list shows them as such and ``destroy NAME`` stops their
server and removes their files, so nothing runs that nobody can find."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Set

from ...core.operate import Discovered, LiveStatus
from ...core.records import DeploymentRecord, migrate
from ...core.registry import RECORD_FILE, Registry
from ...runtime.loader import read_manifest
from .files import DeploymentFiles, read_json
from .process import probe
from .state import LocalState

ORPHAN = "orphan"


def orphans(registry: Registry, known: Set[str], target: str) -> List[Discovered]:
    folders = registry.home / "deployments"
    found = []
    for root in sorted(folders.iterdir()) if folders.is_dir() else []:
        if root.name in known or not root.is_dir():
            continue
        record = orphan_record(registry, root.name, target)
        if record is not None:
            found.append(Discovered(record, orphan_status(DeploymentFiles(root))))
    return found


def orphan_record(registry: Registry, name: str, target: str) -> Optional[DeploymentRecord]:
    """What the folder of ``name`` tells of it (its record.json if any, else its server's files), as an
    ``orphan`` record; None when the folder is not a local deployment's."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None  # not a deployment's folder name (deployment names are checked when deploying)
    files = DeploymentFiles(registry.deployment_dir(name))
    config = read_json(files.server_config)
    if not files.root.is_dir() or (config is None and not files.status.exists()):
        return None
    kept = read_json(files.root / RECORD_FILE)
    if kept and kept.get("target") == target:
        return migrate(kept, int(kept.get("schema", 2))).evolve(status=ORPHAN)
    config = config or {}
    status = read_json(files.status) or {}
    version = int(config.get("version") or status.get("version") or 0)
    manifest = _manifest(files.version_dir(version)) if version else {}
    port = int(status.get("port") or config.get("port") or 0)
    return DeploymentRecord(
        name, target, status=ORPHAN, version=version, hash=str(manifest.get("hash", "")), lang=str(manifest.get("lang", "")),
        components=list(manifest.get("components") or []), size_bytes=int(manifest.get("size_bytes") or 0),
        url=f"http://127.0.0.1:{port}" if port else "", key_file=str(files.api_key) if files.api_key.exists() else None,
        options={k: config[k] for k in ("workers", "max_queue") if k in config},
        target_data=LocalState(port, int(status.get("pid") or 0), int(config.get("workers") or 0)).data())


def orphan_status(files: DeploymentFiles) -> LiveStatus:
    name = files.root.name
    running = probe(files)
    if running.alive:
        pid = (running.status or {}).get("pid")
        return LiveStatus(ORPHAN, f"a local server (pid {pid}) runs from {files.root} with no registry record (a deploy "
                                  f"could not record it, or the registry was lost); %nimbus_destroy {name} stops it "
                                  "and removes its files")
    return LiveStatus(ORPHAN, f"files of a local deployment in {files.root} have no registry record and no server "
                              f"runs; %nimbus_destroy {name} removes them")


def _manifest(bundle_dir: Path) -> dict:
    try:
        return read_manifest(bundle_dir)
    except (OSError, ValueError):
        return {}
