"""Applying an aws plan: bootstrap CDK when the plan's facts say so, deploy the synthesized stack with the
CDK CLI while watching CloudFormation's events, and write the record. Uses nothing but the plan (and
the AWS credentials of the environment, which a plan never holds).

A new API key answers 403 for the seconds API Gateway takes to accept it, so before the smoke test the
deploy waits for it a bounded time (``checks.wait_for_key``), saying so. A key that ``rotate_key``
made (outside the stack) is kept across redeploys: the record names it, not the stack's output."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Tuple

from ...core.errors import DeployFailed
from ...core.files import write_secret
from ...core.plan import Plan
from ...core.progress import Progress, ProgressEvent
from ...core.records import ROLLBACK, DeploymentRecord, HistoryEntry, now_iso
from ...core.registry import Registry
from . import cdk_cli
from .aws_client import AwsClient, StackInfo, make_session
from .preflight import PreflightFacts
from .spec import AUTH_IAM
from .state import READY_STATES, AwsState

KEY_WAIT_S = 60.0  # how long a deploy waits for API Gateway to accept a new key before the smoke test


def apply(registry: Registry, plan: Plan, progress: Progress, target_name: str) -> DeploymentRecord:
    from .stack_watch import StackWatcher

    facts = PreflightFacts.from_json(plan.facts["preflight"])
    if not facts.complete:
        raise DeployFailed(f"this plan was made without everything a deploy needs ({facts.unknown or 'pre-flight incomplete'})",
                           "fix that, then deploy (not --dry-run): a deploy plans again with a full pre-flight",
                           where="deploy")
    client = AwsClient(make_session(facts.profile, facts.region))
    stack_name, existed = plan.data["stack_name"], bool(plan.data["stack_exists"])
    env = {"AWS_REGION": facts.region or "", "AWS_DEFAULT_REGION": facts.region or ""}
    if facts.profile:
        env["AWS_PROFILE"] = facts.profile
    with progress.stage("deploy") as stage:
        if not facts.bootstrapped:
            progress.message(f"bootstrapping CDK in {facts.account}/{facts.region} "
                             "(once per account and region: a stack named CDKToolkit with an asset bucket)")
            cdk_cli.bootstrap(str(facts.cli), str(facts.account), str(facts.region), env,
                              lambda line: _cli_line(progress, line))

        def report(done: int, total: int, detail: str) -> None:
            progress.emit(ProgressEvent("deploy", done, total, detail))

        if not plan.data.get("keep_stack"):  # kept: only the jobs stack is new (--jobs on an unchanged deployment)
            watcher = StackWatcher(client, stack_name, int(plan.data["resources"]), report)
            try:
                with watcher:
                    cdk_cli.deploy(str(facts.cli), plan.path("assembly"), stack_name, plan.path("outputs"), env,
                                   lambda line: _cli_line(progress, line))
            except DeployFailed as exc:
                raise _failed(exc, watcher.failure_reason(), stack_name, existed, client)
        stack = client.stack(stack_name)
        if stack is None or stack.status not in READY_STATES:
            raise _failed(DeployFailed("the stack is not complete", "", where="deploy"),
                          stack.reason if stack else "it is missing", stack_name, existed, client)
        stage.detail = f"{stack.name} {stack.status}"
        if plan.data.get("create_jobs"):
            from .jobs_deploy import create_jobs_stack

            try:
                create_jobs_stack(client, registry, plan.name, stack.outputs.get("FunctionName", ""), str(facts.region),
                                  str(facts.account or ""), progress)
                stage.detail += " + jobs stack"
            except DeployFailed as exc:  # the deployment serves all the same; the first submit tries again
                progress.message(f"{exc.what}; the deployment is made, and the first job will try the jobs stack again")
    if plan.data.get("keep_stack") and plan.current is not None:
        return plan.current  # its stack is as it was: the record serves on
    return _record(registry, plan, stack, client, facts, target_name, progress)


def _failed(exc: DeployFailed, reason: Optional[str], stack: str, existed: bool, client: AwsClient) -> DeployFailed:
    """Say CloudFormation's reason; a new stack that failed is deleted so nothing is left half made."""
    if existed:
        return DeployFailed(f"CloudFormation could not update {stack}: {reason or exc.what}",
                            "CloudFormation rolled the stack back: the previous version still serves. "
                            "Fix the cause and deploy again", where="deploy")
    left = client.stack(stack)
    if left is None or left.status == "DELETE_COMPLETE":
        return DeployFailed(f"the deploy stopped before CloudFormation created {stack}: {reason or exc.what}",
                            "nothing was created; fix the cause and deploy again", where="deploy")
    client.delete_stack(stack)
    return DeployFailed(f"CloudFormation could not create {stack}: {reason or exc.what}",
                        "the stack was rolled back and deleted; fix the cause and deploy again", where="deploy")


def _record(registry: Registry, plan: Plan, stack: StackInfo, client: AwsClient, facts: PreflightFacts,
            target_name: str, progress: Optional[Progress] = None) -> DeploymentRecord:
    spec = plan.data["spec"]
    now = now_iso()
    before = AwsState.of(plan.current) if plan.current is not None else None
    key_file, key_id, rotated = _save_key(registry.deployment_dir(plan.name) / "api_key", stack, client, before,
                                          spec.get("auth") == AUTH_IAM)
    url = stack.outputs.get("Url", "").rstrip("/")
    if key_file is not None and progress is not None and (before is None or before.api_key_id != key_id):
        try:  # a new key: the smoke test after this would see API Gateway's 403 while it propagates
            wait_until_key_works(url, key_file.read_text("utf-8").strip(), progress.message)
        except DeployFailed as exc:  # the stack is made: record it; the smoke test says what the endpoint answers
            progress.message(f"{exc.what}; {exc.todo}")
    function, alias_name = stack.outputs.get("FunctionName", ""), stack.outputs.get("AliasName", "")
    alias = client.alias(function, alias_name) if function and alias_name else None
    lambda_version = alias.version if alias else None
    b = plan.bundle
    record = plan.current or DeploymentRecord(plan.name, target_name, created=now)
    last = record.history[-1] if record.history else None
    if last is None or last.version != plan.version or last.kind == ROLLBACK:
        record = record.with_entry(HistoryEntry.deploy(plan.version, b.hash, b.components, str(facts.identity_arn),
                                                       ref=lambda_version))
    state = AwsState(
        region=facts.region, account=facts.account, profile=facts.profile, stack_name=stack.name,
        # function_name is what invokes call: the alias ("fn:live"), so a rollback moves batch traffic too
        function_name=f"{function}:{alias_name}" if function and alias_name else function,
        lambda_function=function, alias_name=alias_name or None,
        alias_arn=stack.outputs.get("AliasArn") or (alias.arn if alias else None), lambda_version=lambda_version,
        log_group=stack.outputs.get("LogGroupName", ""), api_key_id=key_id,
        model_mode=spec["model_mode"], timeout_s=int(spec["timeout_s"]), auth=spec.get("auth") or "key",
        usage_plan_id=stack.outputs.get("UsagePlanId", ""), api_key_rotated=rotated)
    return record.evolve(status="ready", version=plan.version, hash=b.hash, lang=b.lang, components=list(b.components),
                         size_bytes=b.size_bytes, url=url, key_file=str(key_file) if key_file else None, updated=now,
                         options=dict(plan.data["stack_options"]), target_data=state.data())


def _save_key(path: Path, stack: StackInfo, client: AwsClient, before: Optional[AwsState],
              iam: bool) -> Tuple[Optional[Path], str, bool]:
    """``(key file, key id, rotated)``. The stack's key, unless ``rotate_key`` replaced it by one the record
    names (still enabled): that one stays. With IAM auth there is no key, and a rotated one is deleted."""
    from botocore.exceptions import ClientError

    if before is not None and before.api_key_rotated and before.api_key_id:
        if iam:
            client.delete_api_key(before.api_key_id)
        else:
            kept = client.api_key(before.api_key_id)
            if kept is not None and kept.get("enabled") and path.is_file():
                return path, before.api_key_id, True
    key_id = stack.outputs.get("ApiKeyId")
    if not key_id:
        return None, "", False
    try:
        value = client.api_key_value(key_id)
    except ClientError:
        return None, key_id, False
    return write_secret(path, value), key_id, False


def wait_until_key_works(url: str, key: str, say: Callable[[str], None], timeout_s: float = KEY_WAIT_S,
                         interval_s: float = 2.0) -> int:
    """Wait (bounded, saying so) until API Gateway stops answering 403 to ``key`` on GET /health; the
    status it answered then (0: nothing answered, which the smoke test reports)."""
    from ...endpoint.transport import HttpTransport, TransportDown
    from .checks import wait_for_key

    transport = HttpTransport(url, key, retries=0)
    seen = {"status": 0}

    def probe() -> int:
        try:
            seen["status"] = transport.check("GET", "/health").status
        except TransportDown:
            seen["status"] = 0
        return seen["status"]

    try:
        wait_for_key(probe, timeout_s=timeout_s, interval_s=interval_s, on_wait=say)
    finally:
        transport.close()
    return seen["status"]


def _cli_line(progress: Progress, line: str) -> None:
    """Forward the CLI's lines that a user wants to see (asset uploads, bootstrap, errors); drop the noise."""
    keep = ("Publishing", "Published", "Bootstrapping", "bootstrapped", "❌", "Error", "failed")
    if any(k in line for k in keep):
        progress.message(line.strip())
