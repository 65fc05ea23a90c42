"""Operating what is deployed: ``status_report``, ``history``, ``rollback``, on every target that has the
``Operable`` capability (and health, which every target has, on all of them)."""
from __future__ import annotations

import time
from typing import Any, List, Optional, Union

from ..core.errors import UserInputError
from ..core.operate import HistoryRow, StatusReport
from ..core.records import DeploymentRecord
from ..core.registry import Registry
from ..targets.base import Operable
from ..targets.registry import get_target
from .deployment import Deployment
from .deployments import acquire, get_record


def _operable(record: DeploymentRecord, registry: Registry, todo: str) -> Any:
    """The record's target, or a UserInputError naming the target that cannot operate deployments."""
    target = get_target(record.target, registry)
    if not isinstance(target, Operable):
        raise UserInputError(f"the {record.target} target of {record.name!r} cannot {todo} yet",
                             "use the target's own console for now, or a local deployment")
    return target


def status_report(name: str, registry: Optional[Registry] = None) -> StatusReport:
    """Health (the endpoint's /health answered now, with the key, timed) and the target's metrics.

    Metrics that cannot be read (server down, no AWS credentials) leave the windows empty and say why
    in ``metrics_detail``; the health probe is never skipped because of them.
    """
    registry = registry or Registry()
    record = get_record(name, registry)
    target = get_target(record.target, registry)
    report = StatusReport(name=name, target=record.target, version=record.version, health="unknown", url=record.url,
                          checked_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    started = time.perf_counter()
    try:
        client = Deployment.from_record(record, registry=registry).client(via="http")
        try:
            answer = client.health()
        finally:
            client.close()
        report.health = "ok" if answer.get("status") == "ok" else "down"
        served = answer.get("version")
        if served is not None and str(served) != str(report.version):
            report.health_detail = f"the endpoint serves v{served}, the registry says v{report.version}"
    except Exception as exc:  # EndpointError, or a missing key file: the endpoint is not usable either way
        report.health, report.health_detail = "down", str(getattr(exc, "what", exc))
    report.health_ms = round((time.perf_counter() - started) * 1000, 1)
    if report.health != "ok":  # the target says why and what to do (dead server, failed stack)
        status = target.live_status(record)
        report.health_detail = "; ".join(x for x in (report.health_detail, status.detail or status.state) if x)
    if not isinstance(target, Operable):  # health alone is still worth showing
        report.metrics_detail = f"the {record.target} target does not report metrics yet"
        return report
    try:
        metrics = target.metrics(record)
        report.last_hour, report.last_day = metrics.last_hour, metrics.last_day
        report.cost_this_month_usd, report.cost_detail = metrics.cost_this_month_usd, metrics.cost_detail
    except Exception as exc:  # the status must still show health when metrics cannot be read
        report.metrics_detail = f"metrics unavailable: {getattr(exc, 'what', None) or f'{type(exc).__name__}: {exc}'}"
    return report


def history_rows(name: str, registry: Optional[Registry] = None) -> List[HistoryRow]:
    """Every deploy and rollback of ``name``, oldest first, as the target knows them."""
    registry = registry or Registry()
    record = get_record(name, registry)
    return _operable(record, registry, "list its versions").history(record)


def history(name: str, registry: Optional[Registry] = None) -> Any:
    """Every deploy and rollback of ``name``, oldest first, as a DataFrame with the same columns on every
    target: kind, version, from_version, when, who, hash, components, note, ref, serving, available."""
    import pandas as pd

    rows = history_rows(name, registry)
    return pd.DataFrame([r.row() for r in rows], columns=list(HistoryRow.COLUMNS))


def parse_version(value: Union[int, str, None]) -> Optional[int]:
    """2, "2" or "v2" -> 2; None stays None."""
    if value is None or isinstance(value, int):
        return value
    text = str(value).strip().lower().lstrip("v")
    if not text.isdigit():
        raise UserInputError(f"{value!r} is not a version", "give a version number as %nimbus_history lists it, e.g. --to 2")
    return int(text)


def rollback(name: str, to: Union[int, str, None] = None, registry: Optional[Registry] = None) -> Any:
    """Serve the previous kept version of ``name`` (or ``to``); under the deployment's lock, like a
    deploy or destroy, and the registry records the new version and a history entry."""
    registry = registry or Registry()
    version = parse_version(to)
    record = get_record(name, registry)
    target = _operable(record, registry, "roll back")
    lock = acquire(registry, name, 5, f"a deploy, destroy or rollback of {name!r} is running",
                   "wait for it to finish, then roll back")
    try:
        record = get_record(name, registry)  # read again under the lock: a deploy may have just finished
        outcome = target.rollback(record, version)
        registry.put(outcome.record)
    finally:
        lock.release()
    return outcome.result
