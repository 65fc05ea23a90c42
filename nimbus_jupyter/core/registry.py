"""The one store of deployments, shared by magics, widgets and the sidebar.

A JSON file under the Nimbus home (``$NIMBUS_HOME``, default ``~/.nimbus_jupyter``) holding one
``DeploymentRecord`` per name. Every change is read-modify-write under a file lock, written to a temp
file and renamed, so two kernels writing at once never lose each other's entries and a reader never
sees half a file. Every write also refreshes ``registry.json.bak``: if the file is later found corrupt
(a crash of the disk, an editor, a sync tool), reads fall back to that copy with a warning and the
next write repairs it. Each record is also kept in its deployment's folder (``deployments/NAME/record.json``,
where that folder exists): when both registry files are corrupt, the registry is rebuilt from those, with
a warning. Older layouts are migrated (``records.migrate``); a newer one is never overwritten.
"""
from __future__ import annotations

import json
import os
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from filelock import FileLock, Timeout

from .errors import NimbusError
from .files import write_json_atomic
from .paths import nimbus_home, private_dir
from .records import RECORD_SCHEMA, DeploymentRecord, migrate as migrate_record

SCHEMA_VERSION = RECORD_SCHEMA  # the registry file's schema: {"schema": N, "deployments": {name: record}}
__all__ = ["Registry", "RegistryWarning", "SCHEMA_VERSION", "migrate"]


RECORD_FILE = "record.json"  # a deployment's own copy of its record, in its folder


class Registry:
    def __init__(self, home: Optional[Path] = None, lock_timeout: float = 30.0) -> None:
        self.home = private_dir(Path(home)) if home else nimbus_home()
        self.path = self.home / "registry.json"
        self.lock_timeout = lock_timeout
        self._lock = FileLock(str(self.home / "registry.lock"), timeout=lock_timeout)

    def deployment_dir(self, name: str) -> Path:
        return self.home / "deployments" / name

    def lock_for(self, name: str, timeout: float = 0) -> FileLock:
        """A lock held for a whole deploy or destroy of ``name``, across kernels."""
        locks = self.home / "locks"
        locks.mkdir(exist_ok=True, mode=0o700)
        return FileLock(str(locks / f"{name}.lock"), timeout=timeout)

    def all(self) -> List[DeploymentRecord]:
        return sorted(self._read().values(), key=lambda r: r.created)

    def get(self, name: str) -> Optional[DeploymentRecord]:
        return self._read().get(name)

    def put(self, record: DeploymentRecord) -> None:
        with self.edit() as deployments:
            deployments[record.name] = record

    def remove(self, name: str) -> None:
        with self.edit() as deployments:
            deployments.pop(name, None)

    @contextmanager
    def edit(self) -> Iterator[Dict[str, DeploymentRecord]]:
        """Yield the records by name under the lock; they are written back when the block ends."""
        try:
            with self._lock:
                deployments = self._read(for_write=True)
                before = {name: record.to_json() for name, record in deployments.items()}
                yield deployments
                self._write(deployments)
                self._mirror(before, deployments)
        except Timeout:
            raise NimbusError(f"the registry {self.path} stayed locked for {self.lock_timeout:.0f} s",
                              f"another process holds {self._lock.lock_file}; if none is running, delete that file",
                              where="registry")

    def _write(self, deployments: Dict[str, DeploymentRecord]) -> None:
        """registry.json, then the same to registry.json.bak: the last good copy a corrupt file falls back to."""
        data = {"schema": SCHEMA_VERSION, "deployments": {n: r.to_json() for n, r in deployments.items()}}
        try:
            if self.path.exists() and _parse(self.path) is None:  # keep the corrupt file for a post-mortem
                os.replace(self.path, self.path.with_name(f"registry.json.corrupt-{int(time.time())}"))
            write_json_atomic(self.path, data)
            write_json_atomic(self.backup, data)
        except OSError as exc:
            raise NimbusError(f"could not write the registry {self.path}: {exc.strerror or exc}",
                              "the previous registry file is unchanged; free some disk space (or fix the "
                              "permission) and run this again", where="registry") from exc

    def _mirror(self, before: Dict[str, Any], after: Dict[str, DeploymentRecord]) -> None:
        """Each changed record into its deployment's folder (only where the folder exists): what the registry
        is rebuilt from when both of its files are lost. Best effort: the registry itself was written."""
        for name, record in after.items():
            data = record.to_json()
            folder = self.deployment_dir(name)
            if before.get(name) != data and folder.is_dir():
                try:
                    write_json_atomic(folder / RECORD_FILE, data)
                except OSError:
                    pass

    def _rebuilt(self) -> Optional[Dict[str, DeploymentRecord]]:
        """The records kept in the deployment folders, or None when there are none."""
        found: Dict[str, DeploymentRecord] = {}
        folders = self.home / "deployments"
        for path in sorted(folders.glob(f"*/{RECORD_FILE}")) if folders.is_dir() else []:
            try:
                data = json.loads(path.read_text("utf-8"))
                record = migrate_record(data, RECORD_SCHEMA)
            except (OSError, ValueError, TypeError, KeyError):
                continue
            if record.name == path.parent.name:
                found[record.name] = record
        return found or None

    def _keep_rebuilt(self, rebuilt: Dict[str, DeploymentRecord], for_write: bool) -> None:
        """Write a rebuilt registry at once (best effort), so it is rebuilt and said only once; inside
        ``edit`` (``for_write``) the edit's own write does it."""
        if self.backup.exists():
            try:
                os.replace(self.backup, self.backup.with_name(f"registry.json.bak.corrupt-{int(time.time())}"))
            except OSError:
                pass
        if for_write:
            return
        try:
            with self._lock.acquire(timeout=1):
                if _parse(self.path) is None:
                    self._write(rebuilt)
        except (Timeout, NimbusError):
            pass

    @property
    def backup(self) -> Path:
        return self.path.with_name("registry.json.bak")

    def _read(self, for_write: bool = False) -> Dict[str, DeploymentRecord]:
        """The records, from registry.json, else its last good copy; migrated from older layouts."""
        if not self.path.exists():
            return {}
        data = _parse(self.path)
        if data is None:
            data = _parse(self.backup) if self.backup.exists() else None
            if data is None:
                rebuilt = self._rebuilt()
                if rebuilt is None:
                    raise NimbusError(f"the registry file {self.path} is not valid JSON or has an unknown layout, "
                                      "and there is no good copy in registry.json.bak nor a record in any deployment folder",
                                      "move it aside; deployments' own files under deployments/ are intact (%nimbus_list "
                                      "shows running servers as orphans, %nimbus_destroy NAME stops one)",
                                      where="registry")
                warnings.warn(f"the registry file {self.path} and its copy {self.backup.name} are both corrupt; rebuilt "
                              f"from the records in {len(rebuilt)} deployment folder(s) ({', '.join(sorted(rebuilt))}); "
                              "the corrupt files are kept beside it", RegistryWarning, stacklevel=3)
                self._keep_rebuilt(rebuilt, for_write)
                return rebuilt
            warnings.warn(f"the registry file {self.path} is corrupt or half-written; using its last good copy "
                          f"{self.backup.name}. The next change rewrites it (the corrupt file is kept beside it).",
                          RegistryWarning, stacklevel=3)
        schema, deployments = data
        if schema > SCHEMA_VERSION and for_write:
            raise NimbusError(f"the registry {self.path} was written by a newer nimbus-jupyter (schema {schema}; "
                              f"this one knows up to {SCHEMA_VERSION}), so this version will not overwrite it",
                              "upgrade: pip install -U nimbus-jupyter (in this kernel's environment)", where="registry")
        return deployments


class RegistryWarning(UserWarning):
    """The registry was recovered from its last good copy."""


def _parse(path: Path) -> Optional[Tuple[int, Dict[str, DeploymentRecord]]]:
    """``(schema, records)`` from a registry file of any known layout, or None if it is unreadable."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return migrate(data)


def migrate(data: Any) -> Optional[Tuple[int, Dict[str, DeploymentRecord]]]:
    """Read every registry layout ever written, as ``(schema of the file, records)``. Schema 1 and 2:
    ``{"schema": N, "deployments": {name: record}}``. Before the schema field (0.0.x), the file was the bare
    ``{name: record}`` dict. Newer schemas are read as far as they keep ``deployments`` (listing works), but
    never written (see ``Registry.edit``). Each record is migrated by ``records.migrate``."""
    if not isinstance(data, dict):
        return None
    if "schema" not in data and "deployments" not in data:  # pre-schema: a bare dict of records
        if all(isinstance(r, dict) and r.get("name", n) == n for n, r in data.items()):
            return 0, _records(data, 0)
        return None
    schema = data.get("schema", 0)
    deployments = data.get("deployments")
    if not isinstance(schema, int) or not isinstance(deployments, dict):
        return None
    if not all(isinstance(r, dict) for r in deployments.values()):
        return None
    try:
        return schema, _records(deployments, schema)
    except (TypeError, ValueError):
        return None


def _records(raw: Dict[str, Dict[str, Any]], schema: int) -> Dict[str, DeploymentRecord]:
    return {name: migrate_record({"name": name, "target": "", **record}, schema) for name, record in raw.items()}
