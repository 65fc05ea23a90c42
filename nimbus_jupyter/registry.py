"""The one store of deployments, shared by magics, widgets and the sidebar.

A JSON file under the Nimbus home (``$NIMBUS_HOME``, default ``~/.nimbus_jupyter``). Every change is
read-modify-write under a file lock, written to a temp file and renamed, so two kernels writing at
once never lose each other's entries and a reader never sees half a file.
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from filelock import FileLock, Timeout

from .errors import NimbusError
from .targets.local.files import write_json_atomic

SCHEMA_VERSION = 1
HOME_ENV = "NIMBUS_HOME"


def nimbus_home() -> Path:
    home = Path(os.environ.get(HOME_ENV) or Path.home() / ".nimbus_jupyter")
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home


class Registry:
    def __init__(self, home: Optional[Path] = None) -> None:
        self.home = Path(home) if home else nimbus_home()
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
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
                deployments = self._read()
                yield deployments
                write_json_atomic(self.path, {"schema": SCHEMA_VERSION, "deployments": deployments})
        except Timeout:
            raise NimbusError(f"the registry {self.path} stayed locked for 30 s",
                              f"another process holds {self._lock.lock_file}; if none is running, delete that file",
                              where="registry")

    def _read(self) -> Dict[str, Dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError as exc:
            raise NimbusError(f"the registry file {self.path} is not valid JSON ({exc.msg})",
                              "move it aside; deployments' own files under deployments/ are intact",
                              where="registry")
        if not isinstance(data, dict) or not isinstance(data.get("deployments"), dict):
            raise NimbusError(f"the registry file {self.path} has an unknown layout",
                              "upgrade nimbus-jupyter, or move the file aside", where="registry")
        return data["deployments"]
