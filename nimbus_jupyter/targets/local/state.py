"""What the local target keeps in a record's ``target_data``: the running server's port, pid and workers."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional

from ...core.records import DeploymentRecord


@dataclass(frozen=True)
class LocalState:
    port: int = 0
    pid: int = 0
    workers: int = 0  # worker processes the server was started with

    @classmethod
    def of(cls, record: Optional[DeploymentRecord]) -> "LocalState":
        data: Dict[str, Any] = record.target_data if record is not None else {}
        return cls(int(data.get("port") or 0), int(data.get("pid") or 0), int(data.get("workers") or 0))

    def data(self) -> Dict[str, Any]:
        return asdict(self)
