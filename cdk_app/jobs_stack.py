"""``NimbusJobsStack``: detached jobs for one deployment on AWS Step Functions Distributed Map.

- a staging bucket (SSE-S3, public access blocked, TLS only) for input shards, shard lists, the
  trimmed pyarrow the shard function loads, and default outputs;
- the state machine: a Distributed Map reads the job's shard list (``jobs/<id>/shards.json``, an S3
  JSON ItemReader), runs one EXPRESS child per shard (idempotent: a shard's result has a fixed key, so
  at-least-once is safe and a tenth of STANDARD's price) that invokes the function *version* named in
  the execution input (pinned at submit, never the alias), retries Lambda's throttles and service
  errors with backoff and jitter, and turns a shard that still fails into an item saying its shard and
  reason; ``MaxConcurrencyPath`` takes the job's concurrency; then one invoke writes the manifest;
- its role: invoke that function's versions, read the shard lists; no more (Distributed Map adds
  what it needs to run its own child executions);
- a policy on the function's role: read the job inputs, write the job outputs (staging prefixes and
  the users' prefixes in the spec), read the pyarrow object.

No asset, so the template needs no CDK bootstrap: it is created with CloudFormation directly.
"""
from __future__ import annotations

from typing import Any, Dict

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from nimbus_jupyter.targets.aws.jobs_spec import (JOBS_PREFIX, LAMBDA_RETRY_ERRORS, MANIFEST_EVENT, PYARROW_KEY,
                                                  SHARD_EVENT, Grant, JobsStackSpec)


def _invoke(payload: Dict[str, Any], retry: bool) -> Dict[str, Any]:
    state: Dict[str, Any] = {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName.$": "$.job.function", "Payload": payload},
        "ResultSelector": {"result.$": "$.Payload"}, "OutputPath": "$.result",
    }
    if retry:
        state["Retry"] = [{"ErrorEquals": list(LAMBDA_RETRY_ERRORS), "IntervalSeconds": 1, "MaxAttempts": 8,
                           "BackoffRate": 2, "MaxDelaySeconds": 60, "JitterStrategy": "FULL"}]
    return state


class NimbusJobsStack(cdk.Stack):
    """Attributes ``bucket``, ``state_machine``, ``role`` and ``function_policy`` are there for tests."""

    def __init__(self, scope: Construct, construct_id: str, spec: JobsStackSpec, **kwargs: Any) -> None:
        kwargs.setdefault("description", f"Nimbus for Jupyter: batch jobs of deployment '{spec.name}' (Step Functions "
                                         "Distributed Map over S3 shards)")
        kwargs.setdefault("synthesizer", cdk.BootstraplessSynthesizer())
        super().__init__(scope, construct_id, **kwargs)
        self.bucket = s3.Bucket(self, "Staging", encryption=s3.BucketEncryption.S3_MANAGED,
                                block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True,
                                removal_policy=cdk.RemovalPolicy.DESTROY,  # destroy empties it first
                                lifecycle_rules=[s3.LifecycleRule(prefix=JOBS_PREFIX, expiration=cdk.Duration.days(30))])
        # Its statements are exactly the ones below: CDK's own grants (its S3 reader would read the whole
        # bucket, outputs included) are not added (without_policy_updates).
        self.role = iam.Role(self, "StateMachineRole", assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
                             description=f"nimbus {spec.name} jobs: invoke the function's versions, read shard lists")
        self.log_group = logs.LogGroup(self, "Logs", retention=logs.RetentionDays.TWO_WEEKS,
                                       removal_policy=cdk.RemovalPolicy.DESTROY)

        failed = sfn.Pass(self, "ShardFailed", parameters={
            "number.$": "$.shard.number", "file": None, "rows.$": "$.shard.rows", "failed.$": "$.shard.rows",
            "error.$": "$.failure.Error", "reason.$": "$.failure.Cause"})
        score = sfn.CustomState(self, "ScoreShard", state_json=_invoke(
            {f"{SHARD_EVENT}.$": "$.shard", "job.$": "$.job"}, retry=True))
        score.add_catch(failed, errors=["States.ALL"], result_path="$.failure")
        shards = sfn.DistributedMap(
            self, "Shards", item_reader=sfn.S3JsonItemReader(bucket=self.bucket, key=f"{JOBS_PREFIX}placeholder"),
            item_selector={"shard.$": "$$.Map.Item.Value", "job.$": "$.job"},
            max_concurrency_path="$.concurrency", map_execution_type=sfn.StateMachineType.EXPRESS,
            result_path="$.shards")
        shards.item_processor(score)
        manifest = sfn.CustomState(self, "WriteManifest", state_json=_invoke(
            {f"{MANIFEST_EVENT}.$": "$.shards", "job.$": "$.job"}, retry=True))
        self.state_machine = sfn.StateMachine(
            self, "Jobs", state_machine_name=spec.stack_name, definition_body=sfn.DefinitionBody.from_chainable(shards.next(manifest)),
            role=self.role.without_policy_updates(), state_machine_type=sfn.StateMachineType.STANDARD,
            comment=f"nimbus {spec.name}: score a job's shards with the pinned function version",
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ERROR))
        self._reader_from_input()
        self.role_policy = self._role_policy(spec)
        self.function_policy = self._function_policy(spec)
        for key, value in {"nimbus:deployment": spec.name, "nimbus:managed-by": "nimbus-jupyter",
                           "nimbus:part": "jobs", **spec.tags}.items():
            cdk.Tags.of(self).add(key, value)
        cdk.CfnOutput(self, "StateMachineArn", value=self.state_machine.state_machine_arn)
        cdk.CfnOutput(self, "BucketName", value=self.bucket.bucket_name)

    def _reader_from_input(self) -> None:
        """The shard list is per job: its key comes from the execution input (``Key.$``); CDK's reader
        takes a fixed key only, so the placeholder is replaced in the rendered definition."""
        cfn = self.state_machine.node.default_child
        rendered = self.resolve(cfn.definition_string)
        parts = rendered["Fn::Join"][1] if isinstance(rendered, dict) else [rendered]
        placeholder = f'"Key":"{JOBS_PREFIX}placeholder"'
        if sum(isinstance(p, str) and placeholder in p for p in parts) != 1:
            raise RuntimeError("the Distributed Map's ItemReader is not where jobs_stack expects it")
        fixed = [p.replace(placeholder, '"Key.$":"$.shard_list"') if isinstance(p, str) else p for p in parts]
        cfn.add_property_override("DefinitionString", {"Fn::Join": ["", fixed]})

    def _role_policy(self, spec: JobsStackSpec) -> iam.Policy:
        machine = self.state_machine.state_machine_arn
        executions = cdk.Fn.join("", [cdk.Fn.select(0, cdk.Fn.split(":stateMachine:", machine)), ":execution:",
                                      cdk.Fn.select(1, cdk.Fn.split(":stateMachine:", machine)), ":*"])
        statements = [
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[f"{spec.function_arn}:*"]),  # versions only
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[self.bucket.arn_for_objects(f"{JOBS_PREFIX}*/shards.json")]),
            # Distributed Map runs its children as executions of this state machine
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[machine]),
            iam.PolicyStatement(actions=["states:DescribeExecution", "states:StopExecution"], resources=[executions]),
            # what Step Functions needs to deliver its logs to CloudWatch Logs (these actions take no resource)
            iam.PolicyStatement(actions=["logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                                         "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                                         "logs:DescribeResourcePolicies", "logs:DescribeLogGroups"], resources=["*"]),
        ]
        return iam.Policy(self, "StateMachineAccess", statements=statements, roles=[self.role])

    def _function_policy(self, spec: JobsStackSpec) -> iam.Policy:
        function_role = iam.Role.from_role_arn(self, "FunctionRole", spec.function_role_arn, mutable=True)
        reads = [self.bucket.arn_for_objects(f"{JOBS_PREFIX}*/input/*"), self.bucket.arn_for_objects(f"{PYARROW_KEY}*")]
        writes = [self.bucket.arn_for_objects(f"{JOBS_PREFIX}*/output/*")]
        reads += [_object_arn(g) for g in spec.inputs]
        writes += [_object_arn(g) for g in spec.outputs]
        statements = [iam.PolicyStatement(actions=["s3:GetObject"], resources=reads),
                      iam.PolicyStatement(actions=["s3:PutObject"], resources=writes)]
        policy = iam.Policy(self, "FunctionJobsAccess", statements=statements)
        policy.attach_to_role(function_role)
        return policy


def _object_arn(grant: Grant) -> str:
    return f"arn:{cdk.Aws.PARTITION}:s3:::{grant.bucket}/{grant.prefix}*"
