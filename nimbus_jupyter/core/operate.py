"""What operating a deployment shows: health, traffic, latency, cost, versions. Data only.

Targets fill these from where the truth is (the local server's own counters; CloudWatch on AWS); the
magics, the status widget and the sidebar render them. No logic of a target lives here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from .display import ERROR_COLOR, MUTED, OK_COLOR, Displayable, esc, html_table, seconds_text, text_table
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


def _ms(value: Optional[float]) -> str:
    return "—" if value is None else (f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms")


WINDOW_HEADERS = ("window", "requests", "errors (5xx)", "4xx", "throttled", "p50", "p99", "cold starts")


def window_cells(w: Optional[WindowStats]) -> List[str]:
    """requests, errors, 4xx, throttled, p50, p99, cold starts: the columns of a window's row."""
    if w is None:
        return ["—"] * 7
    return [f"{w.requests:,}", f"{w.errors:,}" + (f" ({w.error_rate:.1%})" if w.errors else ""), f"{w.client_errors:,}",
            f"{w.throttled:,}", _ms(w.p50_ms), _ms(w.p99_ms), "n/a" if w.cold_starts is None else f"{w.cold_starts:,}"]


@dataclass
class StatusReport(Displayable):
    """Health probed now, traffic and latency over the last hour and day, cost: ``%nimbus_status`` shows it
    (a table in a notebook, aligned text elsewhere)."""

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

    def __repr__(self) -> str:  # short, for logs and debuggers; IPython shows text() or html()
        hour = self.last_hour
        traffic = f", last hour {hour.requests} requests / {hour.errors} errors" if hour else ""
        return f"StatusReport(name={self.name!r}, target={self.target!r}, version={self.version}, health={self.health!r}{traffic})"

    def cost_text(self) -> str:
        if self.cost_this_month_usd is None:
            return f"n/a ({self.cost_detail})" if self.cost_detail else "n/a"
        return f"${self.cost_this_month_usd:,.2f} this month" + (f" ({self.cost_detail})" if self.cost_detail else "")

    def _windows(self) -> List[List[str]]:
        return [[label] + window_cells(w) for label, w in (("last hour", self.last_hour), ("last day", self.last_day))]

    def text(self) -> str:
        took = f" in {_ms(self.health_ms)}" if self.health_ms is not None else ""
        lines = [f"{self.name}: {self.health}{took} on {self.target}, v{self.version}, {self.url}"]
        if self.health_detail:
            lines.append(f"  {self.health_detail}")
        lines.append(text_table(WINDOW_HEADERS, self._windows(), numeric=range(1, 8)))
        if self.metrics_detail:
            lines.append(f"  {self.metrics_detail}")
        lines.append(f"  cost: {self.cost_text()}")
        lines.append(f"  checked at {self.checked_at}")
        return "\n".join(lines)

    def html(self) -> str:
        color = {"ok": OK_COLOR, "down": ERROR_COLOR}.get(self.health, "inherit")
        took = f" ({_ms(self.health_ms)})" if self.health_ms is not None else ""
        head = (f"<div><b>{esc(self.name)}</b> <span style='color:{color}'>● {esc(self.health)}{took}</span>"
                f" · {esc(self.target)} · v{self.version} · <code>{esc(self.url)}</code></div>")
        if self.health_detail:
            head += f"<div style='color:{ERROR_COLOR};overflow-wrap:anywhere'>{esc(self.health_detail)}</div>"
        foot = f"<div>{esc(self.metrics_detail)}</div>" if self.metrics_detail else ""
        foot += f"<div>cost: {esc(self.cost_text())}</div><div style='{MUTED}'>checked at {esc(self.checked_at)}</div>"
        return f"<div>{head}{html_table(WINDOW_HEADERS, self._windows(), numeric=range(1, 8))}{foot}</div>"


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
class RollbackResult(Displayable):
    """What a rollback did: from which version to which, how, and how long the switch took."""

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

    def html(self) -> str:
        verb = "rolled back" if self.to_version < self.from_version else "moved forward"
        return (f"<div><span style='color:{OK_COLOR}'>✔</span> <b>{esc(self.name)}</b> {verb} from "
                f"v{self.from_version} to <b>v{self.to_version}</b> in {esc(seconds_text(self.seconds) or '0 ms')} "
                f"<span style='{MUTED}'>({esc(self.how)}, {esc(self.target)})</span></div>")


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

