"""The files of one local deployment, shared by the kernel side and the detached server."""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional


def write_json_atomic(path: Path, data: Dict[str, Any], mode: int = 0o600) -> None:
    """Write to a temp file in the same directory, then rename: readers see old or new, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json(path: Path) -> Optional[Dict[str, Any]]:
    try:
        return json.loads(path.read_text("utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


@dataclass(frozen=True)
class DeploymentFiles:
    root: Path

    @property
    def api_key(self) -> Path:
        return self.root / "api_key"

    @property
    def server_config(self) -> Path:
        return self.root / "server.json"

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def versions(self) -> Path:
        return self.root / "versions"

    def version_dir(self, version: int) -> Path:
        return self.versions / str(version)

    def read_key(self) -> str:
        return self.api_key.read_text("utf-8").strip()

    def write_key(self, key: str) -> None:
        fd = os.open(self.api_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(key)
        os.chmod(self.api_key, 0o600)
