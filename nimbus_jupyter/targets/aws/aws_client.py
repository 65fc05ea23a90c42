"""``AwsClient``: every AWS call the target makes, in one place (as chalice does).

One boto3 session (the standard credential chain: profile, environment, SSO), botocore's standard
retry mode for throttling, and AWS errors turned into errors that say what to do.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional

from ...core.errors import NimbusError, UserInputError
from .spec import TAG_PREFIX

BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"  # the CDK's default qualifier
BOOTSTRAP_STACK = "CDKToolkit"
MANAGED_TAG = f"{TAG_PREFIX}managed-by"
DEPLOYMENT_TAG = f"{TAG_PREFIX}deployment"


@dataclass(frozen=True)
class Identity:
    account: str
    arn: str
    region: str


@dataclass(frozen=True)
class StackEvent:
    logical_id: str
    resource_type: str
    status: str
    reason: str
    timestamp: float


@dataclass(frozen=True)
class StackInfo:
    name: str
    status: str
    reason: str
    outputs: Dict[str, str]
    tags: Dict[str, str]
    created: str
    updated: str

    @property
    def deployment(self) -> str:
        return self.tags.get(DEPLOYMENT_TAG, "")


@dataclass(frozen=True)
class LambdaVersion:
    version: str  # "1", "2", ... ($LATEST is left out)
    description: str
    last_modified: str
    memory_mb: int


@dataclass(frozen=True)
class AliasInfo:
    name: str
    version: str  # the Lambda version it points at
    arn: str


def make_session(profile: Optional[str] = None, region: Optional[str] = None) -> Any:
    """A boto3 session; a named profile that does not exist is the user's to fix."""
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        return boto3.Session(profile_name=profile, region_name=region)
    except ProfileNotFound:
        raise UserInputError(f"there is no AWS profile named {profile!r}",
                             f"create it with: aws configure --profile {profile}  (or aws configure sso --profile {profile})",
                             where="pre-flight")


class AwsClient:
    def __init__(self, session: Any, quick: bool = False) -> None:
        """``quick``: short timeouts and few retries, for looks that must not hold up a listing."""
        from botocore.config import Config

        self.session = session
        self.region: str = session.region_name or ""
        if quick:
            self._config = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=3, read_timeout=10,
                                  user_agent_extra="nimbus-jupyter")
        else:
            self._config = Config(retries={"mode": "standard", "max_attempts": 8}, user_agent_extra="nimbus-jupyter")
        self._clients: Dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, config=self._config)
        return self._clients[service]

    # -- identity and bootstrap --------------------------------------------------------------------
    def identity(self) -> Identity:
        answer = self.client("sts").get_caller_identity()
        return Identity(answer["Account"], answer["Arn"], self.region)

    def bootstrap_version(self) -> Optional[int]:
        """The CDK bootstrap version of this account/region, or None when it is not bootstrapped."""
        from botocore.exceptions import ClientError

        try:
            value = self.client("ssm").get_parameter(Name=BOOTSTRAP_VERSION_PARAMETER)["Parameter"]["Value"]
            return int(value)
        except ClientError as exc:
            if _code(exc) in ("ParameterNotFound", "AccessDeniedException"):
                return None if _code(exc) == "ParameterNotFound" else self._bootstrap_stack_version()
            raise

    def _bootstrap_stack_version(self) -> Optional[int]:
        stack = self.stack(BOOTSTRAP_STACK)
        if stack is None or not stack.status.endswith("_COMPLETE") or "ROLLBACK" in stack.status:
            return None
        return int(stack.outputs.get("BootstrapVersion", "0") or 0) or None

    # -- stacks -----------------------------------------------------------------------------------
    def stack(self, name: str) -> Optional[StackInfo]:
        from botocore.exceptions import ClientError

        try:
            stacks = self.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
        except ClientError as exc:
            if "does not exist" in str(exc):
                return None
            raise
        return _stack_info(stacks[0]) if stacks else None

    def nimbus_stacks(self) -> List[StackInfo]:
        """Every stack in this account/region that nimbus made (by tag), from any machine."""
        found = []
        for page in self.client("cloudformation").get_paginator("describe_stacks").paginate():
            for stack in page["Stacks"]:
                info = _stack_info(stack)
                if info.tags.get(MANAGED_TAG) == "nimbus-jupyter" and info.status != "DELETE_COMPLETE":
                    found.append(info)
        return found

    def stack_events(self, name: str, since: float = 0.0) -> List[StackEvent]:
        """Events of the stack newer than ``since`` (epoch seconds), oldest first."""
        from botocore.exceptions import ClientError

        events: List[StackEvent] = []
        try:
            pages = self.client("cloudformation").get_paginator("describe_stack_events").paginate(StackName=name)
            for page in pages:
                for raw in page["StackEvents"]:
                    stamp = raw["Timestamp"].timestamp()
                    if stamp < since:
                        return list(reversed(events))
                    events.append(StackEvent(raw["LogicalResourceId"], raw.get("ResourceType", ""),
                                             raw.get("ResourceStatus", ""), raw.get("ResourceStatusReason", ""), stamp))
        except ClientError as exc:
            if "does not exist" in str(exc):
                return list(reversed(events))
            raise
        return list(reversed(events))

    def delete_stack(self, name: str, timeout: float = 1800, poll: float = 2.0) -> StackInfo:
        """Delete and wait; returns the last state seen (status DELETE_COMPLETE when gone)."""
        cloudformation = self.client("cloudformation")
        before = self.stack(name)
        if before is None:
            return StackInfo(name, "DELETE_COMPLETE", "it did not exist", {}, {}, "", "")
        cloudformation.delete_stack(StackName=name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self.stack(name)
            if now is None or now.status == "DELETE_COMPLETE":
                return StackInfo(name, "DELETE_COMPLETE", "", before.outputs, before.tags, before.created, "")
            if now.status == "DELETE_FAILED":
                return now
            time.sleep(poll)
        raise NimbusError(f"the stack {name} was still being deleted after {timeout:.0f} s",
                          "check it again with %nimbus_list; CloudFormation keeps deleting in the background",
                          where="destroy")

    # -- the deployed things ---------------------------------------------------------------------
    def api_key_value(self, key_id: str) -> str:
        return self.client("apigateway").get_api_key(apiKey=key_id, includeValue=True)["value"]

    def api_key(self, key_id: str) -> Optional[Dict[str, Any]]:
        """The key's description (id, name, enabled, createdDate; not its value), or None when it is gone."""
        from botocore.exceptions import ClientError

        try:
            raw = self.client("apigateway").get_api_key(apiKey=key_id, includeValue=False)
        except ClientError as exc:
            if _code(exc) == "NotFoundException":
                return None
            raise
        return {k: v for k, v in raw.items() if k != "ResponseMetadata"}

    def rotated_key(self, deployment: str) -> Optional[str]:
        """The id of the enabled key ``rotate_key`` made for ``deployment`` (tagged), or None."""
        for page in self.client("apigateway").get_paginator("get_api_keys").paginate():
            for item in page.get("items", []):
                tags = item.get("tags") or {}
                if (item.get("enabled") and tags.get(DEPLOYMENT_TAG) == deployment
                        and f"{TAG_PREFIX}rotated-from" in tags):
                    return str(item["id"])
        return None

    def create_api_key(self, name: str, description: str, tags: Dict[str, str]) -> Dict[str, Any]:
        """A new enabled key with a value API Gateway generates: ``{"id", "value", ...}``."""
        return self.client("apigateway").create_api_key(name=name, description=description, enabled=True, tags=tags)

    def usage_plans_of(self, key_id: str) -> List[str]:
        """The ids of the usage plans ``key_id`` is attached to."""
        plans: List[str] = []
        for page in self.client("apigateway").get_paginator("get_usage_plans").paginate(keyId=key_id):
            plans += [p["id"] for p in page.get("items", [])]
        return plans

    def attach_key(self, usage_plan_id: str, key_id: str) -> None:
        self.client("apigateway").create_usage_plan_key(usagePlanId=usage_plan_id, keyId=key_id, keyType="API_KEY")

    def detach_key(self, usage_plan_id: str, key_id: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client("apigateway").delete_usage_plan_key(usagePlanId=usage_plan_id, keyId=key_id)
        except ClientError as exc:
            if _code(exc) != "NotFoundException":
                raise

    def disable_api_key(self, key_id: str) -> None:
        self.client("apigateway").update_api_key(
            apiKey=key_id, patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}])

    def delete_api_key(self, key_id: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client("apigateway").delete_api_key(apiKey=key_id)
        except ClientError as exc:
            if _code(exc) != "NotFoundException":
                raise

    def log_events(self, group: str, since: float, limit: int = 100, pattern: str = "",
                   until: Optional[float] = None) -> Iterator[Dict[str, Any]]:
        """Log events of ``group`` since ``since`` (epoch seconds, to ``until``), oldest first, at most ``limit``."""
        from botocore.exceptions import ClientError

        kwargs: Dict[str, Any] = {"logGroupName": group, "startTime": int(since * 1000)}
        if until is not None:
            kwargs["endTime"] = int(until * 1000)
        if pattern:
            kwargs["filterPattern"] = pattern
        count = 0
        try:
            for page in self.client("logs").get_paginator("filter_log_events").paginate(**kwargs):
                for event in page.get("events", []):
                    yield event
                    count += 1
                    if count >= limit:
                        return
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return
            raise

    def function_configuration(self, function: str) -> Optional[Dict[str, Any]]:
        """GetFunctionConfiguration of ``function`` (its Runtime, MemorySize, ...), or None when it is gone."""
        from botocore.exceptions import ClientError

        try:
            return dict(self.client("lambda").get_function_configuration(FunctionName=function))
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise

    def reserved_concurrency(self, function: str) -> int:
        """What ``function`` reserves of the account's concurrency now (0: nothing, or it is gone)."""
        from botocore.exceptions import ClientError

        try:
            answer = self.client("lambda").get_function_concurrency(FunctionName=function)
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return 0
            raise
        return int(answer.get("ReservedConcurrentExecutions") or 0)

    # -- versions and the alias (rollback) -------------------------------------------------------------
    def lambda_versions(self, function: str) -> List[LambdaVersion]:
        """The function's published versions, oldest first; [] when the function is gone."""
        from botocore.exceptions import ClientError

        found: List[LambdaVersion] = []
        try:
            for page in self.client("lambda").get_paginator("list_versions_by_function").paginate(FunctionName=function):
                for raw in page.get("Versions", []):
                    if raw.get("Version") != "$LATEST":
                        found.append(LambdaVersion(raw["Version"], raw.get("Description", "") or "",
                                                   raw.get("LastModified", "") or "", int(raw.get("MemorySize") or 0)))
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return []
            raise
        return sorted(found, key=lambda v: int(v.version))

    def alias(self, function: str, name: str) -> Optional[AliasInfo]:
        from botocore.exceptions import ClientError

        try:
            raw = self.client("lambda").get_alias(FunctionName=function, Name=name)
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise
        return AliasInfo(raw["Name"], raw["FunctionVersion"], raw["AliasArn"])

    def update_alias(self, function: str, name: str, version: str) -> AliasInfo:
        """Point the alias at ``version``: new invokes go there at once, no redeploy."""
        raw = self.client("lambda").update_alias(FunctionName=function, Name=name, FunctionVersion=version)
        return AliasInfo(raw["Name"], raw["FunctionVersion"], raw["AliasArn"])

    # -- metrics ----------------------------------------------------------------------------------
    def metric_data(self, queries: List[Dict[str, Any]], start: float, end: float) -> Dict[str, List[float]]:
        """CloudWatch ``get_metric_data``: each query's values (every page), by the query's Id."""
        import datetime as dt

        values: Dict[str, List[float]] = {q["Id"]: [] for q in queries}
        kwargs = {"MetricDataQueries": queries, "ScanBy": "TimestampAscending",
                  "StartTime": dt.datetime.fromtimestamp(start, dt.timezone.utc),
                  "EndTime": dt.datetime.fromtimestamp(end, dt.timezone.utc)}
        for page in self.client("cloudwatch").get_paginator("get_metric_data").paginate(**kwargs):
            for result in page.get("MetricDataResults", []):
                values.setdefault(result["Id"], []).extend(float(v) for v in result.get("Values", []))
        return values


def _stack_info(raw: Dict[str, Any]) -> StackInfo:
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in raw.get("Outputs", []) or []}
    tags = {t["Key"]: t["Value"] for t in raw.get("Tags", []) or []}
    created = raw.get("CreationTime")
    updated = raw.get("LastUpdatedTime") or created
    return StackInfo(raw["StackName"], raw.get("StackStatus", ""), raw.get("StackStatusReason", "") or "", outputs, tags,
                     _iso(created), _iso(updated))


def _iso(stamp: Any) -> str:
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ") if stamp is not None else ""


def _code(exc: Any) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
