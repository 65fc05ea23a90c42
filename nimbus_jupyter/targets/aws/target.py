"""The aws target: one CloudFormation stack per deployment, ``nimbus-<name>``, made by the bundled CDK app
from a ``StackSpec``. The planner reads AWS and builds the artifacts (``planner``), ``apply`` deploys
them (``apply``); operating the deployment is in ``operations``, finding ones made elsewhere in
``discover``. This class only wires them to the target contract.
"""
from __future__ import annotations

import shutil
from typing import Any, Callable, Iterator, List, Optional, Set

from ...core.errors import DeployFailed, UserInputError
from ...core.loglines import LogLine
from ...core.operate import Discovered, HistoryRow, KeyRotation, LiveStatus, Metrics, RollbackOutcome
from ...core.plan import Plan
from ...core.progress import Progress
from ...core.records import DeploymentRecord
from ...core.registry import Registry
from ...endpoint.invoke import LambdaInvokeTransport
from ...endpoint.transport import HttpTransport, Transport, check_via
from ..base import DeployRequest, read_key
from . import apply as applying
from . import discover, operations, planner
from .aws_client import AwsClient, make_session
from .jobs import AwsJobs, destroy_jobs
from .options import OPTIONS
from .spec import AUTH_IAM
from .state import AwsState, stack_status


class AwsTarget(AwsJobs):  # AwsJobs: the Jobs capability (Step Functions Distributed Map, targets/aws/jobs.py)
    name = "aws"
    title = "AWS Lambda behind API Gateway (CDK)"
    stages = ("serialize", "pre-flight", "layer", "package", "synthesize", "deploy", "smoke test")
    options = OPTIONS

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    # -- plan and apply ---------------------------------------------------------------------------
    def plan(self, request: DeployRequest) -> Plan:
        """Pre-flight, the live stack, the layer (cached), the function package and the synthesized
        stack; creates nothing in AWS. The kernel's measured speed gives the cost lines."""
        return planner.plan(request, self.name)

    def apply(self, plan: Plan, progress: Progress) -> DeploymentRecord:
        return applying.apply(self.registry, plan, progress, self.name)

    # -- the deployment ------------------------------------------------------------------------------
    def client_for(self, record: DeploymentRecord) -> AwsClient:
        state = AwsState.of(record)
        return AwsClient(make_session(state.profile, state.region))

    def live_status(self, record: DeploymentRecord) -> LiveStatus:
        """From CloudFormation now: ready, updating, failed or gone (never assumed from the registry)."""
        try:
            stack = self.client_for(record).stack(AwsState.of(record).stack_name)
        except Exception as exc:  # no credentials, no network: say so instead of guessing
            return LiveStatus("unknown", f"could not ask AWS ({type(exc).__name__}: {str(exc)[:120]})")
        return stack_status(stack)

    def logs(self, record: DeploymentRecord, start: float, errors: bool, limit: int) -> List[LogLine]:
        """The function's CloudWatch log lines since ``start``; with ``errors``, only failures."""
        return operations.recent_logs(self.client_for(record), record, start, errors, limit)

    def endpoint(self, record: DeploymentRecord, via: Optional[str] = None, *, retries: int = 8,
                 concurrency: int = 10) -> Transport:
        """Direct ``lambda.invoke`` of the alias by default: no API Gateway 29 s timeout or 10 MB limit, no
        API Gateway price per request ($3.50 per million), no usage-plan throttle or quota spent, and
        the notebook has AWS credentials already, since it deployed from them. Lambda's own 6 MB payload
        limit and concurrency limit still apply. ``via="http"`` goes through API Gateway with the key
        instead (say, for a user with the key but no ``lambda:InvokeFunction``); with ``--auth iam`` its
        requests are SigV4-signed with the same credentials (``endpoint.sigv4``) and carry no key."""
        state = AwsState.of(record)
        if check_via(via) == "http" or (via is None and not state.function_name):
            if state.auth == AUTH_IAM:
                return HttpTransport.for_api_gateway(record.url, "", auth=self._signer(state))
            return HttpTransport.for_api_gateway(record.url, read_key(record))
        if not state.function_name:
            raise UserInputError(f"the registry record of {record.name!r} names no Lambda function",
                                 f"use --via http, or deploy again: %nimbus_deploy PIPELINE --name {record.name} --target aws")
        # The Lambda version the record names, as the qualifier: every invoke reaches the version the
        # record describes, whatever the alias points at meanwhile (a batch is pinned to it).
        function, qualifier = state.function_name, None
        if state.lambda_version and state.lambda_function:
            function, qualifier = state.lambda_function, str(state.lambda_version)
        return LambdaInvokeTransport(function, region=state.region, profile=state.profile, deployment=record.name,
                                     concurrency=concurrency, function_timeout=state.timeout_s, qualifier=qualifier)

    def _signer(self, state: AwsState) -> Any:
        from ...endpoint.sigv4 import SigV4Auth

        session = make_session(state.profile, state.region)
        return SigV4Auth(session.get_credentials(), state.region or session.region_name or "")

    def destroy(self, record: DeploymentRecord) -> str:
        client = self.client_for(record)
        state = AwsState.of(record)
        stack_name = state.stack_name
        jobs = destroy_jobs(client, self.registry, record)  # first: its policy sits on the function's role
        final = client.delete_stack(stack_name)
        if final.status != "DELETE_COMPLETE":
            raise DeployFailed(f"CloudFormation could not delete {stack_name}: {final.reason or final.status}",
                               f"see the stack's events, fix the cause, then run %nimbus_destroy {record.name} again",
                               where="destroy")
        if state.api_key_rotated and state.api_key_id:  # made by rotate_key, outside the stack
            client.delete_api_key(state.api_key_id)
        shutil.rmtree(self.registry.deployment_dir(record.name), ignore_errors=True)
        return (f"deleted the stack {stack_name} (function and its versions, alias, layer, API, key, usage plan, log group, role, alarm and its SNS topic if any) in "
                f"{AwsState.of(record).region or client.region}. Left in place: the CDK bootstrap stack CDKToolkit and its "
                "asset bucket, which every CDK app in this account and region shares (it costs cents a month for the "
                "uploaded zips); remove it only if nothing else uses CDK here." + jobs)

    # -- operating it (Operable; operations.py holds the how) ------------------------------------------
    def metrics(self, record: DeploymentRecord) -> Metrics:
        """Last hour, last day (CloudWatch metrics; cold starts from REPORT lines) and this month's cost."""
        return operations.metrics(self.client_for(record), record)

    def history(self, record: DeploymentRecord) -> List[HistoryRow]:
        """The record's deploys and rollbacks, after the Lambda versions the record does not have."""
        return operations.history(self.client_for(record), record)

    def rollback(self, record: DeploymentRecord, to_version: Optional[Any] = None) -> RollbackOutcome:
        """Serve the previous (or ``to_version``) version again by moving the alias ``live``: no
        redeploy, no CloudFormation. CloudFormation still believes the alias is at the version it
        deployed; the next deploy publishes a new version and moves the alias there, so nothing drifts
        for long, but a stack update that leaves the function unchanged does not move it back."""
        return operations.rollback(self.client_for(record), record, to_version)

    def follow_logs(self, record: DeploymentRecord, start: float, errors: bool) -> Iterator[LogLine]:
        """New log lines until the caller stops (KeyboardInterrupt)."""
        return operations.follow_logs(self.client_for(record), record, start, errors)

    # -- the API key (KeyRotating; keys.py holds the how) --------------------------------------------
    def rotate_key(self, record: DeploymentRecord, save: Callable[[DeploymentRecord], None],
                   say: Callable[[str], None], timeout_s: float = 60.0) -> KeyRotation:
        """A new key beside the old one, proven on /health, the key file switched, then the old one gone."""
        from . import keys

        return keys.rotate(self.client_for(record), record, save, say, timeout_s)

    # -- made elsewhere (Discoverable) --------------------------------------------------------------
    def remote_deployments(self, known: Set[str]) -> List[Discovered]:
        """Nimbus stacks (by tag) in the default account/region that ``known`` does not name."""
        return discover.remote_deployments(known, self.name)

    def adopt(self, name: str) -> Optional[DeploymentRecord]:
        return discover.adopt(name, self.registry, self.name)
