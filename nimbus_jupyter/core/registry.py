"""The one store of deployments, shared by magics, widgets and the sidebar.

A JSON file under the Nimbus home (``$NIMBUS_HOME``, default ``~/.nimbus_jupyter``). Every change is
read-modify-write under a file lock, written to a temp file and renamed, so two kernels writing at
once never lose each other's entries and a reader never sees half a file. Every write also refreshes
``registry.json.bak``: if the file is later found corrupt (a crash of the disk, an editor, a sync tool),
reads fall back to that copy with a warning and the next write repairs it. Older layouts are migrated;
a newer one is never overwritten.
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
from ..targets.local.files import write_json_atomic

SCHEMA_VERSION = 1
HOME_ENV = "NIMBUS_HOME"


def nimbus_home() -> Path:
    return _private_dir(Path(os.environ.get(HOME_ENV) or Path.home() / ".nimbus_jupyter"))


def nimbus_cache() -> Path:
    """Rebuildable artifacts (Lambda layers, the CDK CLI): ``$NIMBUS_CACHE``, default ``<home>/cache``."""
    path = Path(os.environ.get("NIMBUS_CACHE") or nimbus_home() / "cache")
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _private_dir(path: Path) -> Path:
    """Create ``path`` as 0700, and tighten it if it exists with group/other access: it holds API keys."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077 and path.stat().st_uid == os.getuid():
        os.chmod(path, 0o700)
    return path


class Registry:
    def __init__(self, home: Optional[Path] = None) -> None:
        self.home = _private_dir(Path(home)) if home else nimbus_home()
        self.path = self.home / "registry.json"
        self._lock = FileLock(str(self.home / "registry.lock"), timeout=30)

    def deployment_dir(self, name: str) -> Path:
        return self.home / "deployments" / name

    def lock_for(self, name: str, timeout: float = 0) -> FileLock:
        """A lock held for a whole deploy or destroy of ``name``, across kernels."""
        locks = self.home / "locks"
        locks.mkdir(exist_ok=True, mode=0o700)
        return FileLock(str(locks / f"{name}.lock"), timeout=timeout)

    def all(self) -> List[Dict[str, Any]]:
        return sorted(self._read().values(), key=lambda r: r.get("created", ""))

    def get(self, name: str) -> Optional[Dict[str, Any]]:
        return self._read().get(name)

    def put(self, record: Dict[str, Any]) -> None:
        with self.edit() as deployments:
            deployments[record["name"]] = record

    def remove(self, name: str) -> None:
        with self.edit() as deployments:
            deployments.pop(name, None)

    @contextmanager
    def edit(self) -> Iterator[Dict[str, Dict[str, Any]]]:
        """Yield the deployments dict under the lock; it is written back when the block ends."""
        try:
            with self._lock:
                deployments = self._read(for_write=True)
                yield deployments
                self._write(deployments)
        except Timeout:
            raise NimbusError(f"the registry {self.path} stayed locked for 30 s",
                              f"another process holds {self._lock.lock_file}; if none is running, delete that file",
                              where="registry")

    def _write(self, deployments: Dict[str, Dict[str, Any]]) -> None:
        """registry.json, then the same to registry.json.bak: the last good copy a corrupt file falls back to."""
        data = {"schema": SCHEMA_VERSION, "deployments": deployments}
        try:
            if self.path.exists() and _parse(self.path) is None:  # keep the corrupt file for a post-mortem
                os.replace(self.path, self.path.with_name(f"registry.json.corrupt-{int(time.time())}"))
            write_json_atomic(self.path, data)
            write_json_atomic(self.backup, data)
        except OSError as exc:
            raise NimbusError(f"could not write the registry {self.path}: {exc.strerror or exc}",
                              "the previous registry file is unchanged; free some disk space (or fix the "
                              "permission) and run this again", where="registry") from exc

    @property
    def backup(self) -> Path:
        return self.path.with_name("registry.json.bak")

    def _read(self, for_write: bool = False) -> Dict[str, Dict[str, Any]]:
        """The deployments, from registry.json, else its last good copy; migrated from older layouts."""
        if not self.path.exists():
            return {}
        data = _parse(self.path)
        if data is None:
            data = _parse(self.backup) if self.backup.exists() else None
            if data is None:
                raise NimbusError(f"the registry file {self.path} is not valid JSON or has an unknown layout, "
                                  "and there is no good copy in registry.json.bak",
                                  "move it aside; deployments' own files under deployments/ are intact",
                                  where="registry")
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


def _parse(path: Path) -> Optional[Tuple[int, Dict[str, Dict[str, Any]]]]:
    """``(schema, deployments)`` from a registry file of any known layout, or None if it is unreadable."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return migrate(data)


def migrate(data: Any) -> Optional[Tuple[int, Dict[str, Dict[str, Any]]]]:
    """Read every registry layout ever written. Schema 1: ``{"schema": 1, "deployments": {name: record}}``.
    Before the schema field (0.0.x), the file was the bare ``{name: record}`` dict. Newer schemas are read as
    far as they keep ``deployments`` (listing works), but never written (see ``Registry.edit``)."""
    if not isinstance(data, dict):
        return None
    if "schema" not in data and "deployments" not in data:  # pre-schema: a bare dict of records
        if all(isinstance(r, dict) and r.get("name", n) == n for n, r in data.items()):
            return 0, data
        return None
    schema = data.get("schema", 0)
    deployments = data.get("deployments")
    if not isinstance(schema, int) or not isinstance(deployments, dict):
        return None
    if not all(isinstance(r, dict) for r in deployments.values()):
        return None
    return schema, deployments
