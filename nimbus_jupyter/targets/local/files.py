"""The files of one local deployment, shared by the kernel side and the detached server."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...core.files import read_json, write_json_atomic, write_secret

__all__ = ["DeploymentFiles", "read_json", "write_json_atomic"]  # the server imports the file helpers from here


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
        write_secret(self.api_key, key)
