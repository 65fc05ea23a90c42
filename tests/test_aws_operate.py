"""Operating an AWS deployment against moto_server: rollback by the alias, history, CloudWatch metrics,
cold starts from REPORT lines, month-to-date cost, following the log.

The function, its versions and the alias are made with boto3 as the stack would leave them (moto
runs no code, but versions and aliases behave); metrics and log lines are put as Lambda and API
Gateway would publish them. moto_server is ``tests/moto_plus.py``: moto plus CloudFormation's Lambda
alias and nearest-rank percentiles, which moto lacks. What moto still cannot answer: filter patterns
with ``?`` terms (it matches every line; ``follow_logs`` filters errors itself as well).
"""
from __future__ import annotations

import calendar
import datetime as dt
import io
import time
import zipfile
from pathlib import Path
from typing import Any, Dict, List

import boto3
import pytest

from nimbus_jupyter.core.errors import UserInputError
from nimbus_jupyter.core.records import DeploymentRecord, HistoryEntry
from nimbus_jupyter.core.registry import Registry
from nimbus_jupyter.targets.registry import check_options, get_target
from nimbus_jupyter.targets.aws.cost import month_to_date
from nimbus_jupyter.targets.aws.operations import follow_logs, parse_report

FUNCTION = "nimbus-reviews-Function76856677-abc"
GROUP = "/aws/lambda/nimbus-reviews-logs"
ARN = "arn:aws:sts::123456789012:user/moto"  # the caller moto_server reports
H1, H2, H3 = "a1" * 32, "b2" * 32, "c3" * 32

pytestmark = pytest.mark.timeout(300)


def _zip(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", text)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def function(moto_env: str) -> Dict[str, Any]:
    """A function with versions 1 and 2 (described as the stack describes them) and 'live' at 2."""
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="nimbus-reviews-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = boto3.client("lambda")
    lam.create_function(FunctionName=FUNCTION, Runtime="python3.11", Role=role, Handler="handler.handler",
                        Code={"ZipFile": _zip("v = 1")}, MemorySize=2048)
    v1 = lam.publish_version(FunctionName=FUNCTION, Description=f"nimbus v1 hash {H1}")["Version"]
    lam.update_function_code(FunctionName=FUNCTION, ZipFile=_zip("v = 2"))
    v2 = lam.publish_version(FunctionName=FUNCTION, Description=f"nimbus v2 hash {H2}")["Version"]
    alias = lam.create_alias(FunctionName=FUNCTION, Name="live", FunctionVersion=v2)
    return {"v1": v1, "v2": v2, "alias_arn": alias["AliasArn"]}


def _record(function: Dict[str, Any], history: Any = None, **changes: Any) -> DeploymentRecord:
    """A record as the aws target writes it after deploying v1 then v2; ``changes`` go to its
    ``target_data`` (the aws target's own fields) or, for the common ones, to the record."""
    if history is None:
        history = [HistoryEntry("deploy", 1, "2026-11-01T10:00:00Z", ARN, H1, ["textcat"], ref=function["v1"]),
                   HistoryEntry("deploy", 2, "2026-11-02T10:00:00Z", ARN, H2, ["textcat", "ner"], ref=function["v2"])]
    data = {"region": "us-east-1", "profile": None, "stack_name": "nimbus-reviews",
            "function_name": f"{FUNCTION}:live", "lambda_function": FUNCTION, "alias_name": "live",
            "alias_arn": function["alias_arn"], "lambda_version": function["v2"], "log_group": GROUP}
    common = {"version": 2, "hash": H2, "components": ["textcat", "ner"]}
    for key, value in changes.items():
        (common if key in common else data)[key] = value
    return DeploymentRecord("reviews", "aws", status="ready", options={"memory": 2048, "arch": "x86_64"},
                            history=list(history), target_data=data, **common)


@pytest.fixture(scope="module")
def target(nimbus_home: Path) -> Any:
    return get_target("aws", Registry())


def _alias_version() -> str:
    return boto3.client("lambda").get_alias(FunctionName=FUNCTION, Name="live")["FunctionVersion"]


# --------------------------------------------------------------------------- rollback and history


def test_rollback_moves_the_alias_to_the_previous_version_and_records_it(target, function) -> None:
    record = _record(function)
    outcome = target.rollback(record)
    new, result = outcome.record, outcome.result
    assert _alias_version() == function["v1"]
    assert (result.name, result.target, result.from_version, result.to_version) == ("reviews", "aws", 2, 1)
    assert result.seconds >= 0
    assert f"moved the Lambda alias 'live' from version {function['v2']} to {function['v1']}; no redeploy" in result.how
    assert "the next deploy" in result.how
    assert (new.version, new.hash, new.components, new.target_data["lambda_version"]) == (1, H1, ["textcat"], function["v1"])
    last = new.history[-1]
    assert (last.kind, last.version, last.from_version, last.who, last.hash, last.ref) == (
        "rollback", 1, 2, ARN, H1, function["v1"])
    assert len(new.history) == 3 and record.version == 2  # the caller's record is left as it was

    outcome = target.rollback(new, to_version="v2")  # a named version, as --to v2 gives it
    back, result = outcome.record, outcome.result
    assert _alias_version() == function["v2"] and (result.from_version, result.to_version) == (1, 2)
    assert back.version == 2 and back.hash == H2


def test_rollback_to_a_version_lambda_does_not_have_lists_what_exists(target, function) -> None:
    with pytest.raises(UserInputError) as caught:
        target.rollback(_record(function), to_version=7)
    assert "has no v7 in Lambda function" in caught.value.what and "versions in Lambda: v1, v2" in caught.value.what
    assert "%nimbus_rollback reviews --to VERSION" in caught.value.todo
    with pytest.raises(UserInputError) as caught:
        target.rollback(_record(function), to_version=2)
    assert "already serves v2" in caught.value.what
    assert _alias_version() == function["v2"]


def test_rollback_from_the_first_version_has_nowhere_to_go(target, function) -> None:
    boto3.client("lambda").update_alias(FunctionName=FUNCTION, Name="live", FunctionVersion=function["v1"])
    try:
        with pytest.raises(UserInputError) as caught:
            target.rollback(_record(function, version=1, hash=H1))
        assert "serves v1 and Lambda has no earlier version" in caught.value.what
    finally:
        boto3.client("lambda").update_alias(FunctionName=FUNCTION, Name="live", FunctionVersion=function["v2"])


def test_a_record_from_before_the_alias_says_to_deploy_once_more(target, function) -> None:
    old = _record(function, function_name=FUNCTION, alias_name=None, lambda_function=None)
    with pytest.raises(UserInputError) as caught:
        target.rollback(old)
    assert "before nimbus published Lambda versions behind an alias" in caught.value.what


def test_history_merges_the_record_with_the_versions_lambda_still_has(target, function) -> None:
    full = _record(function)
    gone = HistoryEntry("deploy", 3, "2026-11-03T10:00:00Z", ARN, H3, ["textcat"])
    record = full.evolve(history=[full.history[1], gone])  # v1's deploy is not in this record (e.g. trimmed)
    rows = target.history(record)
    assert [r.entry.version for r in rows] == [1, 2, 3]
    v1, v2, v3 = rows
    assert (v1.available, v1.entry.hash, v1.entry.who, v1.serving, v1.entry.ref) == (True, H1, "", False, function["v1"])
    assert v1.entry.when and v1.entry.kind == "deploy"  # known from Lambda alone: its LastModified
    assert (v2.available, v2.entry.hash, v2.entry.who, v2.serving, v2.entry.components) == (True, H2, ARN, True, ["textcat", "ner"])
    assert (v3.available, v3.serving) == (False, False)  # in the record, no longer in Lambda
    assert [r.row()["kind"] for r in target.history(full)] == ["deploy", "deploy"]  # the same columns as local


# --------------------------------------------------------------------------- metrics and cost

NOW = calendar.timegm((2026, 11, 20, 12, 0, 0))  # a fixed "now": the windows and the month are known


def _put(namespace: str, dims: Dict[str, str], when: float, **values: Any) -> None:
    """One datum per value (a list: one per invocation, as Duration is)."""
    stamp = dt.datetime.fromtimestamp(when, dt.timezone.utc)
    boto3.client("cloudwatch").put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": name.replace("x4", "4XX").replace("x5", "5XX"), "Timestamp": stamp, "Value": value,
         "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
         "Unit": "Milliseconds" if name == "Duration" else "Count"}
        for name, many in values.items() for value in (many if isinstance(many, list) else [many])])


HOUR_DURATIONS = [30.0, 32.0, 35.0, 38.0, 40.0, 42.0, 45.0, 50.0, 60.0, 3628.0]  # sum 4,000 ms; one cold


def test_metrics_windows_and_month_to_date_cost_from_cloudwatch(function, moto_env) -> None:
    from nimbus_jupyter.targets.aws.aws_client import AwsClient, make_session
    from nimbus_jupyter.targets.aws.operations import metrics

    fn, api = {"FunctionName": FUNCTION}, {"ApiName": "nimbus-reviews"}
    _put("AWS/Lambda", fn, NOW - 600, Invocations=40, Errors=2, Throttles=3, Duration=HOUR_DURATIONS)  # last hour
    _put("AWS/ApiGateway", api, NOW - 600, Count=30, x4Error=4, x5Error=1)
    _put("AWS/Lambda", fn, NOW - 5 * 3600, Invocations=60, Errors=1, Throttles=0, Duration=6_000)  # last day
    _put("AWS/ApiGateway", api, NOW - 5 * 3600, Count=50, x4Error=6, x5Error=3)
    early = calendar.timegm((2026, 11, 3, 8, 0, 0))  # this month, before the last day
    _put("AWS/Lambda", fn, early, Invocations=900, Duration=1_000_000)
    _put("AWS/ApiGateway", api, early, Count=500)
    last_month = calendar.timegm((2026, 10, 31, 23, 0, 0))
    _put("AWS/Lambda", fn, last_month, Invocations=5000, Duration=9_000_000)
    _put("AWS/Lambda", {"FunctionName": "someone-else"}, NOW - 600, Invocations=777)

    found = metrics(AwsClient(make_session()), _record(function), now=NOW)
    hour, day, cost, detail = found.last_hour, found.last_day, found.cost_this_month_usd, found.cost_detail

    # requests = invocations + throttles; errors = max(Lambda Errors, API 5XX); client errors = API 4XX
    assert (hour.window, hour.requests, hour.errors, hour.client_errors, hour.throttled) == ("1h", 43, 2, 4, 3)
    assert (day.window, day.requests, day.errors, day.client_errors, day.throttled) == ("24h", 103, 4, 10, 3)
    # nearest rank: p50 of 10 values is the 5th, p99 the 10th; of 11 (with the 6,000 ms one) the 6th and the 11th
    assert (hour.p50_ms, hour.p99_ms) == (40.0, 3628.0)
    assert (day.p50_ms, day.p99_ms) == (42.0, 6000.0)
    assert hour.cold_starts == 0 and day.cold_starts == 0  # no REPORT lines around this "now"
    # Month to date, 2048 MB x86_64, prices of cost.py:
    #   duration 4,000 + 6,000 + 1,000,000 ms = 1,010 s x 2 GB = 2,020 GB-s x $0.0000166667 = $0.033666734
    #   invocations 40 + 60 + 900 = 1,000 x $0.20 / 1M                                     = $0.000200000
    #   API Gateway 30 + 50 + 500 = 580 x $3.50 / 1M                                       = $0.002030000
    #   total                                                                              = $0.035896734
    assert cost == 0.035897
    assert "2,020.0 GB-s" in detail and "1,000 Lambda requests" in detail and "580 API Gateway requests" in detail
    assert "read 2026-11-30" in detail and "2048 MB x86_64" in detail and "since 2026-11-01" in detail


def test_cost_arithmetic_against_hand_computed_figures() -> None:
    # arm64, 1024 MB: 3,600,000 ms = 3,600 s x 1 GB = 3,600 GB-s x $0.0000133334 = $0.04800024
    #   + 10,000 invocations x $0.0000002 = $0.002; + 0 API Gateway requests      = $0.05000024
    arm = month_to_date(3_600_000, 10_000, 0, 1024, "arm64")
    assert round(arm.compute_usd, 8) == 0.04800024 and round(arm.lambda_requests_usd, 8) == 0.002
    assert round(arm.usd, 8) == 0.05000024 and arm.gb_seconds == 3600.0
    # x86_64, 512 MB: 200,000 ms = 200 s x 0.5 GB = 100 GB-s x $0.0000166667 = $0.00166667
    #   + 1,000,000 invocations x $0.0000002 = $0.20; + 1,000,000 API calls x $0.0000035 = $3.50
    x86 = month_to_date(200_000, 1_000_000, 1_000_000, 512, "x86_64")
    assert round(x86.usd, 8) == 3.70166667 and round(x86.api_gateway_usd, 8) == 3.5


# --------------------------------------------------------------------------- logs: cold starts and follow

REPORT = ("REPORT RequestId: {rid}\tDuration: {ms} ms\tBilled Duration: {billed} ms\tMemory Size: 2048 MB\t"
          "Max Memory Used: 412 MB\t{init}")


def _report(rid: str, ms: float, init: float = 0.0) -> str:
    return REPORT.format(rid=rid, ms=ms, billed=int(ms) + 1, init=f"Init Duration: {init} ms\t" if init else "")


def _log(stream: str, events: List[tuple]) -> None:
    logs = boto3.client("logs")
    try:
        logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    logs.put_log_events(logGroupName=GROUP, logStreamName=stream,
                        logEvents=[{"timestamp": int(t * 1000), "message": m} for t, m in events])


@pytest.fixture(scope="module")
def log_group(moto_env: str) -> float:
    """Lambda's log as it looks: START/END/REPORT around the handler's lines; 3 cold starts, 2 of them
    in the last hour. Returns the "now" the lines were written around."""
    boto3.client("logs").create_log_group(logGroupName=GROUP)
    now = time.time()
    _log("2026/11/20/[$LATEST]aaa", [
        (now - 3 * 3600, "START RequestId: r1 Version: 1"),
        (now - 3 * 3600 + 1, _report("r1", 2210.5, init=3120.75)),
        (now - 2 * 3600, _report("r2", 35.2)),
        (now - 600, "START RequestId: r3 Version: 2"),
        (now - 599, "[ERROR] ValueError: boom\nTraceback (most recent call last):"),
        (now - 598, _report("r3", 1800.0, init=2999.1)),
        (now - 300, _report("r4", 40.0)),
    ])
    _log("2026/11/20/[$LATEST]bbb", [(now - 120, _report("r5", 1500.25, init=2800.0))])
    return now


def test_report_lines_parse_into_their_fields() -> None:
    warm = parse_report(_report("abc-1", 35.2))
    assert warm is not None and (warm.request_id, warm.duration_ms, warm.billed_ms, warm.memory_mb,
                                 warm.max_memory_used_mb, warm.init_ms, warm.cold_start) == ("abc-1", 35.2, 36, 2048, 412, None, False)
    cold = parse_report(_report("abc-2", 1800.0, init=2999.1))
    assert cold is not None and cold.cold_start and cold.init_ms == 2999.1
    assert parse_report("START RequestId: abc Version: 2") is None


def test_cold_starts_are_counted_from_report_lines(target, function, log_group) -> None:
    found = target.metrics(_record(function))
    assert (found.last_hour.cold_starts, found.last_day.cold_starts) == (2, 3)


def test_follow_logs_yields_new_lines_once_each_and_waits_within_bounds(function, log_group) -> None:
    from nimbus_jupyter.targets.aws.aws_client import AwsClient, make_session

    now = log_group
    waits: List[float] = []

    def sleep(seconds: float) -> None:
        """Stands in for the wait: more lines arrive during the first; the user stops it at the fifth."""
        waits.append(seconds)
        if len(waits) == 1:
            _log("2026/11/20/[$LATEST]ccc", [(now + 1, "START RequestId: r6 Version: 2"), (now + 2, _report("r6", 41.0))])
        if len(waits) == 5:
            raise KeyboardInterrupt

    lines = follow_logs(AwsClient(make_session()), _record(function), now - 400, errors=False, poll_seconds=1.0,
                        max_poll_seconds=4.0, sleep=sleep)
    seen: List[str] = []
    with pytest.raises(KeyboardInterrupt):
        for line in lines:
            seen.append(line.message)
    assert seen[:3] == [_report("r4", 40.0).rstrip(), _report("r5", 1500.25, init=2800.0).rstrip(),
                        "START RequestId: r6 Version: 2"]
    assert seen[3] == _report("r6", 41.0).rstrip() and len(seen) == 4  # the old lines are not repeated on later polls
    assert waits == [1.0, 1.0, 2.0, 4.0, 4.0]  # back to the short wait after news, doubling to the bound
    assert all(line.startswith(("REPORT", "START")) for line in seen)


def test_follow_logs_with_errors_keeps_only_failures(function, log_group) -> None:
    from nimbus_jupyter.targets.aws.aws_client import AwsClient, make_session

    lines = follow_logs(AwsClient(make_session()), _record(function), log_group - 4000, errors=True,
                        sleep=lambda seconds: None)
    first = next(lines)
    lines.close()
    assert first.message.startswith("[ERROR] ValueError: boom")


# --------------------------------------------------------------------------- the alarm option


def test_alarm_email_is_checked_and_reaches_the_options(nimbus_home: Path, ip) -> None:
    from IPython.core.magic_arguments import parse_argstring

    assert check_options("aws", {"alarm_email": "ops@example.com"})["alarm_email"] == "ops@example.com"
    assert check_options("aws", {})["alarm_email"] is None
    for bad in ("ops", "ops@example", "a@b.c, d@e.f", "@example.com"):
        with pytest.raises(UserInputError) as caught:
            check_options("aws", {"alarm_email": bad})
        assert "does not look like an email address" in caught.value.what and "--alarm-email" in caught.value.todo

    magic = ip.find_line_magic("nimbus_deploy")
    magic.getdoc()  # the parser with every target's flags, as %nimbus_deploy builds it
    args = parse_argstring(magic, "nlp --target aws --alarm-email ops@example.com")
    assert args.alarm_email == "ops@example.com" and args.target == "aws" and args.memory is None
