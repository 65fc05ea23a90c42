"""Operating an AWS deployment: versions and rollback (the ``live`` alias), CloudWatch metrics, cold
starts and cost, and following the log. ``AwsTarget`` delegates here; every AWS call goes through
``AwsClient``.

Why an alias: each deploy publishes a Lambda version and points ``live`` at it; API Gateway and
direct invokes call ``live``. Rolling back is one ``UpdateAlias`` call (seconds, no CloudFormation),
and the old versions stay because the stack retains them.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ...core.errors import UserInputError
from ...core.loglines import ERROR_WORDS, LogLine, is_error
from ...core.operate import HistoryRow, Metrics, RollbackOutcome, RollbackResult, WindowStats
from ...core.records import DEPLOY, DeploymentRecord, HistoryEntry
from .aws_client import AwsClient, LambdaVersion
from .cost import month_to_date
from .spec import parse_version_description
from .state import AwsState

WINDOWS = (("1h", 3600), ("24h", 86400))
COLD_START_PATTERN = '"Init Duration"'
COLD_START_LIMIT = 10_000  # REPORT lines read per status; past it the count says "at least"
_REPORT = re.compile(r"REPORT RequestId:\s*(?P<id>\S+)\s+Duration:\s*(?P<duration>[\d.]+) ms\s+"
                     r"Billed Duration:\s*(?P<billed>\d+) ms\s+Memory Size:\s*(?P<memory>\d+) MB\s+"
                     r"Max Memory Used:\s*(?P<used>\d+) MB(?:\s+Init Duration:\s*(?P<init>[\d.]+) ms)?")


def log_group_of(record: DeploymentRecord) -> str:
    return AwsState.of(record).log_group_name


def error_pattern(errors: bool) -> str:
    """A CloudWatch filter pattern for lines with any of ERROR_WORDS ("" for every line)."""
    return " ".join(f'?"{word}"' for word in ERROR_WORDS) if errors else ""


def log_line(event: Dict[str, Any]) -> LogLine:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event.get("timestamp", 0) / 1000))
    return LogLine(stamp, str(event.get("message", "")).rstrip())


def recent_logs(client: AwsClient, record: DeploymentRecord, start: float, errors: bool, limit: int) -> List[LogLine]:
    """The function's CloudWatch log lines since ``start``; with ``errors``, only failures."""
    lines = [log_line(e) for e in client.log_events(log_group_of(record), start, limit=limit, pattern=error_pattern(errors))]
    return [line for line in lines if not errors or is_error(line.message)]


# ----------------------------------------------------------------------------- versions and rollback
def nimbus_versions(versions: List[LambdaVersion]) -> Dict[int, LambdaVersion]:
    """nimbus version -> the newest Lambda version published for it (an options-only redeploy
    publishes a second Lambda version under the same nimbus version)."""
    found: Dict[int, LambdaVersion] = {}
    for version in versions:  # oldest first: the newest wins
        parsed = parse_version_description(version.description)
        if parsed:
            found[parsed[0]] = version
    return found


def _serving(client: AwsClient, record: DeploymentRecord, by_nimbus: Dict[int, LambdaVersion]) -> Tuple[int, Optional[str]]:
    """(nimbus version, Lambda version) the alias points at now; the record's when AWS cannot say."""
    state = AwsState.of(record)
    alias = client.alias(state.function_base, state.alias_name) if state.alias_name else None
    if alias is not None:
        for number, version in by_nimbus.items():
            if version.version == alias.version:
                return number, alias.version
        return record.version, alias.version
    return record.version, state.lambda_version


def history(client: AwsClient, record: DeploymentRecord) -> List[HistoryRow]:
    """Every deploy and rollback in the record, oldest first, after the versions Lambda has that the
    record does not (deployed from elsewhere, or trimmed from the history); ``available``: Lambda still
    has the version, ``serving``: the alias points at it (the last entry of that version)."""
    by_nimbus = nimbus_versions(client.lambda_versions(AwsState.of(record).function_base))
    serving, _ = _serving(client, record, by_nimbus)
    recorded = {e.version for e in record.history}
    rows = []
    for number in sorted(set(by_nimbus) - recorded):
        lam = by_nimbus[number]
        parsed = parse_version_description(lam.description)
        entry = HistoryEntry(DEPLOY, number, lam.last_modified, "", parsed[1] if parsed else "", ref=lam.version)
        rows.append(HistoryRow(entry, serving=number == serving, available=True))
    last_serving = max((i for i, e in enumerate(record.history) if e.version == serving), default=-1)
    rows += [HistoryRow(e, serving=i == last_serving, available=e.version in by_nimbus)
             for i, e in enumerate(record.history)]
    return rows


def rollback(client: AwsClient, record: DeploymentRecord, to_version: Optional[Any] = None,
             clock: Callable[[], float] = time.perf_counter) -> RollbackOutcome:
    """Move the alias to the previous (or the named) nimbus version's Lambda version."""
    state = AwsState.of(record)
    name, alias_name, function = record.name, state.alias_name, state.function_base
    if not alias_name:
        raise UserInputError(f"{name!r} was deployed before nimbus published Lambda versions behind an alias",
                             f"deploy it again once (%nimbus_deploy PIPELINE --name {name} --target aws); "
                             "versions deployed after that can be rolled back")
    by_nimbus = nimbus_versions(client.lambda_versions(function))
    serving, serving_lambda = _serving(client, record, by_nimbus)
    listing = ", ".join(f"v{n}" for n in sorted(by_nimbus)) or "none"
    if to_version is None:
        earlier = [n for n in by_nimbus if n < serving]
        if not earlier:
            raise UserInputError(f"{name!r} serves v{serving} and Lambda has no earlier version to go back to "
                                 f"(versions in Lambda: {listing})",
                                 "name one with --to VERSION, or deploy the pipeline you want")
        target = max(earlier)
    else:
        target = _version_number(to_version)
        if target not in by_nimbus:
            raise UserInputError(f"{name!r} has no v{target} in Lambda function {function} (versions in Lambda: {listing})",
                                 f"pick one of them: %nimbus_rollback {name} --to VERSION; %nimbus_history {name} lists them")
        if target == serving:
            raise UserInputError(f"{name!r} already serves v{target}", "nothing to do; %nimbus_history lists the others")
    lambda_version = by_nimbus[target].version
    started = clock()
    moved = client.update_alias(function, alias_name, lambda_version)
    seconds = clock() - started
    old = {e.version: e for e in record.history if e.kind == DEPLOY}.get(target)
    parsed = parse_version_description(by_nimbus[target].description)
    bundle_hash = old.hash if old and old.hash else (parsed[1] if parsed else "")
    components = list(old.components) if old else list(record.components)
    entry = HistoryEntry.rollback(target, serving, bundle_hash, components, client.identity().arn, ref=lambda_version)
    moved_state = AwsState(**{**state.data(), "lambda_version": moved.version, "alias_arn": moved.arn})
    new = record.with_entry(entry).evolve(version=target, hash=bundle_hash, components=components, updated=entry.when,
                                          status="ready", target_data=moved_state.data())
    how = (f"moved the Lambda alias {alias_name!r} from version {serving_lambda or '?'} to {lambda_version}; no redeploy. "
           f"CloudFormation still has the alias at the deployed version: the next deploy moves it to that deploy's version")
    return RollbackOutcome(new, RollbackResult(name, "aws", serving, target, seconds, how))


def _version_number(value: Any) -> int:
    text = str(value).strip().lower().lstrip("v")
    if not text.isdigit():
        raise UserInputError(f"--to {value!r} is not a version number", "write it as 3 or v3; %nimbus_history lists them")
    return int(text)


# ----------------------------------------------------------------------------- metrics and cost
@dataclass(frozen=True)
class Report:
    """One Lambda REPORT log line: the platform's own account of an invocation."""

    request_id: str
    duration_ms: float
    billed_ms: int
    memory_mb: int
    max_memory_used_mb: int
    init_ms: Optional[float]  # only on a cold start

    @property
    def cold_start(self) -> bool:
        return self.init_ms is not None


def parse_report(message: str) -> Optional[Report]:
    match = _REPORT.search(message or "")
    if not match:
        return None
    init = match.group("init")
    return Report(match.group("id"), float(match.group("duration")), int(match.group("billed")),
                  int(match.group("memory")), int(match.group("used")), float(init) if init else None)


def _query(qid: str, namespace: str, metric: str, dims: Dict[str, str], period: int, stat: str) -> Dict[str, Any]:
    return {"Id": qid, "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": namespace, "MetricName": metric,
                   "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]},
        "Period": period, "Stat": stat}}


def _queries(record: DeploymentRecord, period: int, percentiles: bool) -> List[Dict[str, Any]]:
    """Function-level Lambda metrics (all versions: what the deployment served and is billed for) and
    the REST API's (named after the stack)."""
    state = AwsState.of(record)
    fn = {"FunctionName": state.function_base}
    api = {"ApiName": state.stack_name}
    queries = [_query("invocations", "AWS/Lambda", "Invocations", fn, period, "Sum"),
               _query("errors", "AWS/Lambda", "Errors", fn, period, "Sum"),
               _query("throttles", "AWS/Lambda", "Throttles", fn, period, "Sum"),
               _query("duration", "AWS/Lambda", "Duration", fn, period, "Sum"),
               _query("api_count", "AWS/ApiGateway", "Count", api, period, "Sum"),
               _query("api_4xx", "AWS/ApiGateway", "4XXError", api, period, "Sum"),
               _query("api_5xx", "AWS/ApiGateway", "5XXError", api, period, "Sum")]
    if percentiles:
        queries += [_query("p50", "AWS/Lambda", "Duration", fn, period, "p50"),
                    _query("p99", "AWS/Lambda", "Duration", fn, period, "p99")]
    return queries


def window_stats(window: str, values: Dict[str, List[float]], cold_starts: Optional[int]) -> WindowStats:
    """One window from its metric sums. Lambda Errors are function errors (crashes, timeouts); through
    API Gateway each is also a 5XX, so the larger of the two counts is the lower bound of both."""
    total = {k: int(round(sum(v))) for k, v in values.items() if k not in ("p50", "p99", "duration")}
    return WindowStats(
        window=window, requests=total.get("invocations", 0) + total.get("throttles", 0),
        errors=max(total.get("errors", 0), total.get("api_5xx", 0)), client_errors=total.get("api_4xx", 0),
        throttled=total.get("throttles", 0), p50_ms=_one(values.get("p50")), p99_ms=_one(values.get("p99")),
        cold_starts=cold_starts)


def _one(values: Optional[List[float]]) -> Optional[float]:
    """A percentile over the whole window (one period spans it); the largest if CloudWatch split it."""
    return round(max(values), 2) if values else None


def cold_start_times(client: AwsClient, record: DeploymentRecord, since: float, until: float) -> List[float]:
    """Epoch seconds of the REPORT lines with an Init Duration (each is one new execution environment)."""
    stamps = []
    for event in client.log_events(log_group_of(record), since, limit=COLD_START_LIMIT, pattern=COLD_START_PATTERN,
                                   until=until):
        report = parse_report(str(event.get("message", "")))
        if report is not None and report.cold_start:
            stamps.append(event.get("timestamp", 0) / 1000)
    return stamps


def month_start(now: float) -> float:
    import calendar

    t = time.gmtime(now)
    return float(calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0)))


def metrics(client: AwsClient, record: DeploymentRecord, now: Optional[float] = None) -> Metrics:
    """Last hour, last day, the cost this month in USD and how it was computed, from CloudWatch."""
    now = float(now if now is not None else time.time())
    end = now - now % 60 + 60  # the current minute included
    colds = cold_start_times(client, record, end - 86400, end)
    stats = []
    for window, seconds in WINDOWS:
        values = client.metric_data(_queries(record, seconds, percentiles=True), end - seconds, end)
        stats.append(window_stats(window, values, sum(1 for t in colds if t >= end - seconds)))
    first = month_start(now)
    month = client.metric_data(_queries(record, 86400, percentiles=False), first, end)  # whole days from the 1st
    memory, arch = int(record.options.get("memory", 2048)), record.options.get("arch", "x86_64")
    cost = month_to_date(sum(month["duration"]), int(sum(month["invocations"])), int(sum(month["api_count"])), memory, arch)
    return Metrics(stats[0], stats[1], round(cost.usd, 6),
                   f"{cost.text()}; {memory} MB {arch}; CloudWatch since {time.strftime('%Y-%m-%d', time.gmtime(first))}")


# ----------------------------------------------------------------------------- following the log
def follow_logs(client: AwsClient, record: DeploymentRecord, start: float, errors: bool, poll_seconds: float = 2.0,
                max_poll_seconds: float = 10.0, lookback_seconds: float = 10.0,
                sleep: Callable[[float], None] = time.sleep) -> Iterator[LogLine]:
    """New log lines as they arrive, until the caller stops (KeyboardInterrupt, or closing the iterator).

    Polls ``FilterLogEvents`` from the newest time seen minus ``lookback_seconds`` (CloudWatch can
    deliver an event late, with an older time) and drops events already yielded by their id; waits
    ``poll_seconds``, doubling up to ``max_poll_seconds`` while nothing comes.
    """
    group = log_group_of(record)
    pattern = error_pattern(errors)
    newest, seen = start, {}  # seen: event id -> its time, pruned to the lookback
    delay = poll_seconds
    while True:
        fresh = 0
        for event in client.log_events(group, max(start, newest - lookback_seconds), limit=10_000, pattern=pattern):
            stamp = event.get("timestamp", 0) / 1000
            key = event.get("eventId") or f"{stamp}:{event.get('logStreamName')}:{event.get('message')}"
            if key in seen:
                continue
            seen[key] = stamp
            newest = max(newest, stamp)
            message = str(event.get("message", "")).rstrip()
            if errors and not is_error(message):
                continue
            fresh += 1
            yield LogLine(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp)), message)
        seen = {k: t for k, t in seen.items() if t >= newest - lookback_seconds}
        delay = poll_seconds if fresh else min(delay * 2, max_poll_seconds)
        sleep(delay)
