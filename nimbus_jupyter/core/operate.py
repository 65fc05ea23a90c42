"""What operating a deployment shows: health, traffic, latency, cost, versions. Data only.

Targets fill these from where the truth is (the local server's own counters; CloudWatch on AWS); the
magics, the status widget and the sidebar render them. No logic of a target lives here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from .records import DeploymentRecord, HistoryEntry

READY = "ready"


@dataclass(frozen=True)
class LiveStatus:
    """A deployment's state as its target sees it now (probed, never assumed from the registry)."""

    state: str  # ready | stale | dead | updating | failed | gone | unknown
    detail: str = ""  # why it is not ready, and what to do

    @property
    def ready(self) -> bool:
        return self.state == READY


@dataclass
class WindowStats:
    """Traffic over one window (the last hour, the last day)."""

    window: str  # "1h" | "24h"
    requests: int = 0
    errors: int = 0  # 5xx answers and function errors (not the caller's 4xx)
    client_errors: int = 0  # 4xx answers other than throttling
    throttled: int = 0  # 429 answers (local: saturated; AWS: Lambda or API Gateway throttles)
    p50_ms: Optional[float] = None
    p99_ms: Optional[float] = None
    cold_starts: Optional[int] = None  # AWS only; None where it does not apply

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Metrics:
    """What a target's ``metrics`` reads: two windows and the cost so far this month."""

    last_hour: WindowStats
    last_day: WindowStats
    cost_this_month_usd: Optional[float] = None  # None: not applicable (local) or not known
    cost_detail: str = ""  # how the cost was computed, or why there is none


@dataclass
class StatusReport:
    name: str
    target: str
    version: int
    health: str  # "ok" (the endpoint answered its /health) | "down" | "unknown"
    health_detail: str = ""
    health_ms: Optional[float] = None  # how long the probe took
    last_hour: Optional[WindowStats] = None
    last_day: Optional[WindowStats] = None
    cost_this_month_usd: Optional[float] = None  # None: not applicable (local) or not known
    cost_detail: str = ""  # how the cost was computed, or why there is none
    metrics_detail: str = ""  # why last_hour/last_day are missing (server down, no credentials, ...)
    checked_at: str = ""  # ISO 8601 UTC
    url: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def __repr__(self) -> str:  # short: the magic shows the full report as a widget or text already
        hour = self.last_hour
        traffic = f", last hour {hour.requests} requests / {hour.errors} errors" if hour else ""
        return f"StatusReport(name={self.name!r}, target={self.target!r}, version={self.version}, health={self.health!r}{traffic})"


@dataclass(frozen=True)
class HistoryRow:
    """One deploy or rollback as ``%nimbus_history`` lists it: the recorded entry and what only the
    target can say now (is it the one serving; can it be served again)."""

    entry: HistoryEntry
    serving: bool = False
    available: bool = True  # its bundle (local) or Lambda version (aws) still exists

    COLUMNS = ("kind", "version", "from_version", "when", "who", "hash", "components", "note", "ref", "serving",
               "available")

    def row(self) -> Dict[str, Any]:
        e = self.entry
        return {"kind": e.kind, "version": e.version, "from_version": e.from_version, "when": e.when, "who": e.who,
                "hash": e.hash, "components": list(e.components), "note": e.note, "ref": e.ref,
                "serving": self.serving, "available": self.available}


@dataclass
class RollbackResult:
    name: str
    target: str
    from_version: int
    to_version: int
    seconds: float
    how: str  # e.g. "switched the local server's workers" / "moved the Lambda alias 'live'"

    def text(self) -> str:
        verb = "rolled {!r} back" if self.to_version < self.from_version else "moved {!r} forward"
        return (f"{verb.format(self.name)} from v{self.from_version} to v{self.to_version} in {self.seconds:.1f} s "
                f"({self.how})")


@dataclass(frozen=True)
class RollbackOutcome:
    """What a target's ``rollback`` returns: the record to store and what to tell the user."""

    record: DeploymentRecord
    result: RollbackResult


@dataclass(frozen=True)
class KeyRotation:
    """What a target's ``rotate_key`` did: the record to store, the keys (ids, never values) and its steps."""

    record: DeploymentRecord
    old_key_id: str
    new_key_id: str
    old_key: str  # what became of the old key: "deleted", "disabled (the stack's own; destroy removes it)"
    waited_s: float  # how long the new key took to be accepted
    steps: List[str] = field(default_factory=list)

    def text(self) -> str:
        return (f"{self.record.name}: the API key is rotated: new key {self.new_key_id} works "
                f"(accepted after {self.waited_s:.0f} s), in {self.record.key_file}; old key {self.old_key_id} "
                f"{self.old_key}")

    def __repr__(self) -> str:
        return self.text()


@dataclass(frozen=True)
class Discovered:
    """A deployment a target found that this machine's registry does not hold (made elsewhere)."""

    record: DeploymentRecord
    status: LiveStatus

