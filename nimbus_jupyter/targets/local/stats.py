"""The local server's own counters: what ``%nimbus_status`` and ``GET /metrics`` show.

Two views of the same requests, because they answer different questions:

- ``Windows``: per-minute buckets (bounded to a day plus one bucket) of /predict answers by status
  class and a log-scale latency histogram, so "the last hour" and "the last day" are exact in counts
  and within one histogram bin (about 10%) in p50/p99, at a fixed memory cost whatever the traffic.
- ``ServerMetrics``: cumulative Prometheus counters and a histogram since the server started, in the
  exposition format of ``prometheus_client`` (its own registry, not the process-wide default one).

Both live in the server process only: a server restart starts them again (a version switch does not).
"""
from __future__ import annotations

import bisect
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, List, Optional

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST  # noqa: F401  (re-exported for the server)

BUCKET_SECONDS = 60
DAY_BUCKETS = 24 * 60 + 1  # one more: the current minute is partial
# Latency bins: 0.5 ms * 1.1**i up to ~2 minutes; bin i holds durations in (bound[i-1], bound[i]].
_RATIO = 1.1
_BOUNDS_MS: List[float] = [0.5 * _RATIO ** i for i in range(131)]
ROUTES = ("/predict", "/health", "/openapi.json", "/metrics", "/stats")
# Prometheus latency buckets (seconds): the defaults are web-page sized; NLP requests reach seconds.
_PROM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def route_label(path: str) -> str:
    """A bounded label set: known routes by name, anything else as "other" (paths are attacker-chosen)."""
    return path if path in ROUTES else "other"


def status_class(status: int) -> str:
    """The WindowStats field a /predict answer counts in, besides ``requests``."""
    if status == 429:
        return "throttled"
    if status >= 500:
        return "errors"
    if status >= 400:
        return "client_errors"
    return "ok"


@dataclass
class _Bucket:
    minute: int
    counts: Dict[str, int] = field(default_factory=dict)
    latency: Dict[int, int] = field(default_factory=dict)  # bin index -> count


class Windows:
    """Per-minute buckets of /predict answers; memory is bounded by DAY_BUCKETS whatever the rate."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.buckets: Deque[_Bucket] = deque(maxlen=DAY_BUCKETS)

    def record(self, status: int, duration_ms: float, pipeline_failed: bool = False) -> None:
        """``pipeline_failed``: a 200 in which some rows are their text's pipeline error; it counts
        in ``errors`` (the pipeline raised), as a function error does on AWS."""
        minute = int(self.clock() // BUCKET_SECONDS)
        if not self.buckets or self.buckets[-1].minute != minute:
            self.buckets.append(_Bucket(minute))
        bucket = self.buckets[-1]
        for key in ("requests", "errors" if pipeline_failed else status_class(status)):
            bucket.counts[key] = bucket.counts.get(key, 0) + 1
        index = min(bisect.bisect_left(_BOUNDS_MS, duration_ms), len(_BOUNDS_MS) - 1)
        bucket.latency[index] = bucket.latency.get(index, 0) + 1

    def window(self, name: str, seconds: int) -> Dict[str, Any]:
        """Counts and p50/p99 (ms, the middle of their histogram bin) over the last ``seconds``, in WindowStats' fields."""
        first = int(self.clock() // BUCKET_SECONDS) - math.ceil(seconds / BUCKET_SECONDS) + 1
        counts: Dict[str, int] = {}
        latency: Dict[int, int] = {}
        for bucket in self.buckets:
            if bucket.minute < first:
                continue
            for key, n in bucket.counts.items():
                counts[key] = counts.get(key, 0) + n
            for index, n in bucket.latency.items():
                latency[index] = latency.get(index, 0) + n
        return {
            "window": name, "requests": counts.get("requests", 0), "errors": counts.get("errors", 0),
            "client_errors": counts.get("client_errors", 0), "throttled": counts.get("throttled", 0),
            "p50_ms": _quantile(latency, 0.50), "p99_ms": _quantile(latency, 0.99),
        }


def _quantile(histogram: Dict[int, int], q: float) -> Optional[float]:
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = q * total, 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return _middle(index)
    return _middle(max(histogram))


def _middle(index: int) -> float:
    """The bin's geometric middle: within ~5% of any duration in it."""
    return round(_BOUNDS_MS[index] / _RATIO ** 0.5, 2)


class ServerMetrics:
    """The Prometheus view: counters by route and status, a latency histogram, throttles, workers, version."""

    def __init__(self, workers: Callable[[], Dict[str, int]], version: Callable[[], str], started: float) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("nimbus_requests", "HTTP answers by route and status code",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram("nimbus_request_duration_seconds", "time from request to answer, by route",
                                 ["route"], buckets=_PROM_BUCKETS, registry=self.registry)
        self.throttled = Counter("nimbus_throttled", "429 answers: every worker was busy", registry=self.registry)
        self.row_errors = Counter("nimbus_row_errors", "rows answered as their own error: the pipeline raised on "
                                  "the text (the other rows of the request were answered)", registry=self.registry)
        gauge = Gauge("nimbus_workers", "worker processes by state", ["state"], registry=self.registry)
        for state in ("size", "busy", "queued", "replaced"):
            gauge.labels(state).set_function(lambda s=state: workers().get(s, 0))
        self.version = Gauge("nimbus_version_info", "the version being served (value 1)", ["version"],
                             registry=self.registry)
        self._version_fn = version
        self._shown: Optional[str] = None
        uptime = Gauge("nimbus_uptime_seconds", "seconds since the server started", registry=self.registry)
        uptime.set_function(lambda: time.time() - started)

    def observe(self, route: str, status: int, seconds: float, row_errors: int = 0) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        if status == 429:
            self.throttled.inc()
        if row_errors:
            self.row_errors.inc(row_errors)

    def exposition(self) -> bytes:
        current = self._version_fn()
        if current != self._shown:  # one series: the old version's line goes when the version changes
            if self._shown is not None:
                self.version.remove(self._shown)
            self.version.labels(current).set(1)
            self._shown = current
        return generate_latest(self.registry)
