"""``NimbusStack``: one deployment as one CloudFormation stack, built from a ``StackSpec`` (data only).

Lambda function (the runtime + maybe the bundle) with the spaCy layer, the model as an S3 asset when it
does not fit in the function, an API Gateway REST API whose every method needs the API key, a usage plan
(throttle + monthly quota) or, with ``auth`` iam, AWS_IAM authorization (SigV4) and the stage's throttle,
an explicit log group with retention, and a role that can write its own logs and read its own model
object, nothing else. ``cdk destroy`` removes all of it, logs included.

Each deploy publishes a Lambda version (kept: RETAIN) and points the alias ``live`` at it; API Gateway
and direct invokes call the alias, so a rollback moves the alias back to an older version with no
redeploy. With ``alarm_email``, a CloudWatch alarm on the alias's errors emails through an SNS topic.
"""
from __future__ import annotations

from typing import Any, Dict

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from nimbus_jupyter.core.errors import UserInputError
from nimbus_jupyter.runtime import metrics as runtime_metrics
from nimbus_jupyter.targets.aws.checks import check_snapstart as check_snapstart_limits
from nimbus_jupyter.targets.aws.runtimes import RUNTIMES
from nimbus_jupyter.targets.aws.spec import (ALIAS_NAME, ARCHITECTURES, AUTH_IAM, AUTHS, HANDLER, MODEL_INLINE, MODEL_S3,
                                             StackSpec)

STAGE_NAME = "v1"
ROUTES = (("POST", "predict"), ("GET", "health"), ("GET", "openapi.json"))
INLINE_BUNDLE_DIR = "/var/task/bundle"  # build_function_code puts the bundle in the code's bundle/
_ARCH = {"x86_64": lambda_.Architecture.X86_64, "arm64": lambda_.Architecture.ARM_64}
# Without this flag a change of the layer alone leaves the function's configuration hash unchanged, so
# current_version publishes no new version and the alias keeps serving the old layer.
RECOGNIZE_LAYER_VERSION = "@aws-cdk/aws-lambda:recognizeLayerVersion"


def acknowledge(construct: Any, rule: str, reason: str) -> None:
    """Acknowledge a cdk-nag AwsSolutions finding on ``construct`` with the reason it does not apply here
    (aws-cdk-lib's Validations API, which cdk-nag 3 reads; the stack itself needs no cdk-nag)."""
    validations = getattr(cdk, "Validations", None)
    if validations is not None:
        validations.of(construct).acknowledge(cdk.Acknowledgment(id=f"AwsSolutions::AwsSolutions-{rule}", reason=reason))


def check_snapstart(spec: StackSpec) -> None:
    """SnapStart for Python needs python3.12+ and at most 512 MB of /tmp (the planner checks it first)."""
    check_snapstart_limits(spec.snapstart, spec.python, spec.ephemeral_storage_mb, where="cdk_app")


def lambda_runtime(python: str) -> lambda_.Runtime:
    """The Lambda runtime for a Python minor version ("3.11" -> python3.11); the named constant when
    aws-cdk-lib knows it, so CDK's own checks apply, else the same name built by hand (a newer runtime)."""
    major, _, minor = python.partition(".")
    if not (major.isdigit() and minor.isdigit()):
        raise UserInputError(f"the spec's python {python!r} is not a minor version like '3.11'",
                             "rebuild the spec from the kernel's sys.version_info", where="cdk_app")
    named = getattr(lambda_.Runtime, f"PYTHON_{major}_{minor}", None)
    return named if named is not None else lambda_.Runtime(f"python{major}.{minor}", lambda_.RuntimeFamily.PYTHON)


# CloudWatch Logs' retention periods (days), in the order of aws_logs.RetentionDays' members.
_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                   3288, 3653)


def retention(days: int) -> logs.RetentionDays:
    """The RetentionDays member for ``days``; CloudWatch accepts only some periods, so name them otherwise."""
    members = [m for m in logs.RetentionDays if m.name != "INFINITE"]
    if days in _RETENTION_DAYS:
        return members[_RETENTION_DAYS.index(days)]
    raise UserInputError(f"CloudWatch Logs cannot keep logs for {days} days",
                         f"pick one of {list(_RETENTION_DAYS)}", where="cdk_app")


class NimbusStack(cdk.Stack):
    """The stack for one deployment. Attributes ``function``, ``version``, ``alias``, ``layer``, ``api``,
    ``api_key``, ``usage_plan``, ``log_group``, ``model`` (the S3 asset, or None inline) and ``alarm`` /
    ``alarm_topic`` (None without ``alarm_email``) are there for tests."""

    def __init__(self, scope: Construct, construct_id: str, spec: StackSpec, **kwargs: Any) -> None:
        if spec.arch not in ARCHITECTURES:
            raise UserInputError(f"architecture {spec.arch!r} is not one Lambda runs",
                                 f"use one of {ARCHITECTURES}", where="cdk_app")
        if spec.model_mode not in (MODEL_INLINE, MODEL_S3):
            raise UserInputError(f"model_mode {spec.model_mode!r} is unknown", "use 'inline' or 's3'", where="cdk_app")
        if spec.auth not in AUTHS:
            raise UserInputError(f"auth {spec.auth!r} is unknown", f"use one of {', '.join(AUTHS)}", where="cdk_app")
        if spec.model_mode == MODEL_S3 and not spec.model_dir:
            raise UserInputError("model_mode is 's3' but the spec has no model_dir",
                                 "set model_dir to the bundle directory", where="cdk_app")
        kwargs.setdefault("description", f"Nimbus for Jupyter: deployment '{spec.name}' (version {spec.version}), "
                                         "a spaCy pipeline behind API Gateway and Lambda")
        check_snapstart(spec)
        super().__init__(scope, construct_id, **kwargs)
        self.node.set_context(RECOGNIZE_LAYER_VERSION, True)  # before any construct reads it
        self.spec = spec
        runtime, arch = lambda_runtime(spec.python), _ARCH[spec.arch]

        self.log_group = logs.LogGroup(self, "Logs", retention=retention(spec.log_retention_days),
                                       removal_policy=cdk.RemovalPolicy.DESTROY)
        # Its own role rather than AWSLambdaBasicExecutionRole: writes to its own log group only.
        role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                        description=f"nimbus {spec.name}: write own logs, read own model")
        self.log_group.grant_write(role)

        self.layer = lambda_.LayerVersion(
            self, "Dependencies", code=lambda_.Code.from_asset(spec.layer_dir),
            compatible_runtimes=[runtime], compatible_architectures=[arch],
            description=f"spaCy and its dependencies for nimbus {spec.name} ({runtime.name}, {spec.arch})",
            removal_policy=cdk.RemovalPolicy.DESTROY)

        environment: Dict[str, str] = {"NIMBUS_DEPLOYMENT": spec.name, "NIMBUS_VERSION": str(spec.version)}
        if spec.snapstart:
            environment["NIMBUS_SNAPSTART"] = "1"  # lambda_entry registers its after-restore hook
        self.model = None
        if spec.model_mode == MODEL_S3:
            self.model = s3_assets.Asset(self, "Model", path=str(spec.model_dir))
            environment.update(NIMBUS_MODEL_BUCKET=self.model.s3_bucket_name, NIMBUS_MODEL_KEY=self.model.s3_object_key)
        else:
            environment["NIMBUS_BUNDLE_DIR"] = INLINE_BUNDLE_DIR

        self.function = lambda_.Function(
            self, "Function", runtime=runtime, architecture=arch, handler=HANDLER,
            code=lambda_.Code.from_asset(spec.code_dir), layers=[self.layer], role=role,
            memory_size=spec.memory_mb, timeout=cdk.Duration.seconds(spec.timeout_s),
            ephemeral_storage_size=cdk.Size.mebibytes(spec.ephemeral_storage_mb),
            reserved_concurrent_executions=spec.reserved_concurrency, environment=environment,
            log_group=self.log_group, description=f"nimbus {spec.name} v{spec.version}: spaCy pipeline endpoint",
            # current_version's logical id follows the function's whole configuration (code, memory, env
            # with NIMBUS_VERSION), so every deploy publishes a new version; RETAIN keeps the old ones
            # when CloudFormation replaces it, which is what rollback moves the alias back to.
            current_version_options=lambda_.VersionOptions(description=spec.version_description,
                                                           removal_policy=cdk.RemovalPolicy.RETAIN),
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if spec.snapstart else None)
        newest = RUNTIMES[-1].python
        if spec.python != newest:
            acknowledge(self.function, "L1", f"python{spec.python}, not python{newest}: nimbus picks the newest Lambda "
                        "runtime every pinned package of the kernel has wheels for (or the one --python asks for), and "
                        "refuses one AWS blocks (targets/aws/runtimes.py)")
        self.version = self.function.current_version
        self.alias = lambda_.Alias(self, "Live", alias_name=ALIAS_NAME, version=self.version,
                                   description=f"nimbus {spec.name}: the version that serves")
        if self.model is not None:
            # GetObject on the one object: Asset.grant_read would add List*/GetBucket* on the shared
            # bootstrap bucket, which would let the function list every other stack's assets.
            role.add_to_policy(iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[self.model.bucket.arn_for_objects(self.model.s3_object_key)]))

        self._api(spec)
        self._alarm(spec)
        self._outputs()
        for key, value in spec.all_tags().items():
            cdk.Tags.of(self).add(key, value)

    def _api(self, spec: StackSpec) -> None:
        """REST API with exactly the handler's routes, each behind the API key and a usage plan (``auth``
        key), or each with AWS_IAM authorization, SigV4-signed with the caller's credentials (``auth`` iam)."""
        iam_auth = spec.auth == AUTH_IAM
        # Access logs in a log group of the stack's own. API Gateway writes them with the account's
        # CloudWatch role (one per account and region): the stack sets it and keeps it on destroy, since
        # other APIs of the account may log through it too.
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=retention(spec.log_retention_days),
                                         removal_policy=cdk.RemovalPolicy.DESTROY)
        # With IAM there is no key for a usage plan to meter, so the throttle is the stage's own.
        stage_throttle = (dict(throttling_rate_limit=spec.throttle_rate, throttling_burst_limit=spec.throttle_burst)
                          if iam_auth else {})
        self.api = apigw.RestApi(
            self, "Api", rest_api_name=spec.stack_name, description=f"nimbus {spec.name}: spaCy pipeline endpoint",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True, cloud_watch_role_removal_policy=cdk.RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME, access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=iam_auth, http_method=True, ip=True, protocol=True, request_time=True, resource_path=True,
                    response_length=True, status=True, user=iam_auth), **stage_throttle))
        acknowledge(self.api, "APIG2", "the handler validates every request body itself and answers the JSON 4xx errors "
                    "the endpoint's OpenAPI documents; API Gateway's validator would answer another error shape")
        acknowledge(self.api.deployment_stage, "APIG3", ("AWS_IAM authorization and the stage's throttle" if iam_auth else
                    "the API key, the usage plan's throttle and its monthly quota") + " guard "
                    "the endpoint; a WAF web ACL (from $5 a month) can be attached to the stage by the account's owner")
        acknowledge(self.api.deployment_stage, "APIG6", "access logs of every request go to the stack's own log group with "
                    "retention; execution logs would go to a group API Gateway creates outside the stack, kept forever")
        role = self.api.node.try_find_child("CloudWatchRole")
        if role is not None:
            acknowledge(role, "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
                        "the managed policy AWS documents for API Gateway's account-wide logging role; CDK creates it "
                        "for the access logs")
        # The alias, not $LATEST: the integration URI and the invoke permissions name it.
        integration = apigw.LambdaIntegration(self.alias, proxy=True, allow_test_invoke=False)
        for method, path in ROUTES:
            if iam_auth:
                created = self.api.root.add_resource(path).add_method(
                    method, integration, authorization_type=apigw.AuthorizationType.IAM)
                acknowledge(created, "COG4", "AWS_IAM authorization: callers sign with SigV4 using AWS credentials "
                            "(notebooks and scripts), not Cognito users")
                continue
            created = self.api.root.add_resource(path).add_method(method, integration, api_key_required=True)
            for rule in ("APIG4", "COG4"):
                acknowledge(created, rule, "every method requires the deployment's API key (usage plan with throttle and "
                            "quota); the callers are notebooks and scripts, not Cognito users")
        self.api_key = self.usage_plan = None
        if iam_auth:
            return
        self.api_key = apigw.ApiKey(self, "ApiKey", description=f"nimbus {spec.name}: the endpoint's key")
        quota = (apigw.QuotaSettings(limit=spec.quota_per_month, period=apigw.Period.MONTH)
                 if spec.quota_per_month is not None else None)
        self.usage_plan = apigw.UsagePlan(
            self, "UsagePlan", name=spec.stack_name,
            throttle=apigw.ThrottleSettings(rate_limit=spec.throttle_rate, burst_limit=spec.throttle_burst),
            quota=quota, api_stages=[apigw.UsagePlanPerApiStage(api=self.api, stage=self.api.deployment_stage)])
        self.usage_plan.add_api_key(self.api_key)

    def _alarm(self, spec: StackSpec) -> None:
        """Errors of the alias at or above the threshold in the period email ``alarm_email`` (SNS)."""
        self.alarm_topic = self.alarm = None
        if not spec.alarm_email:
            return
        self.alarm_topic = sns.Topic(self, "AlarmTopic", display_name=f"nimbus {spec.name} alarm", enforce_ssl=True)
        self.alarm_topic.add_subscription(subscriptions.EmailSubscription(spec.alarm_email))
        period = cdk.Duration.minutes(spec.alarm_period_minutes)
        # Lambda's Errors (the function crashed or timed out) plus the handler's own count of pipeline
        # exceptions it answered with a JSON 500, which Lambda does not count (runtime/metrics.py).
        self.pipeline_errors = cloudwatch.Metric(
            namespace=runtime_metrics.NAMESPACE, metric_name=runtime_metrics.METRIC,
            dimensions_map={runtime_metrics.DIMENSION: spec.name}, period=period, statistic="Sum")
        self.alarm = cloudwatch.Alarm(
            self, "ErrorsAlarm",
            metric=cloudwatch.MathExpression(
                expression="FILL(lambda_errors, 0) + FILL(pipeline_errors, 0)", period=period,
                using_metrics={"lambda_errors": self.alias.metric_errors(period=period, statistic="Sum"),
                               "pipeline_errors": self.pipeline_errors},
                label="function errors + pipeline errors"),
            threshold=spec.alarm_errors, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=(f"nimbus {spec.name}: {spec.alarm_errors} or more errors (function errors plus pipeline "
                               f"exceptions answered 500) in {spec.alarm_period_minutes} minutes; "
                               f"see %nimbus_logs {spec.name} --errors"))
        self.alarm.add_alarm_action(cw_actions.SnsAction(self.alarm_topic))

    def _outputs(self) -> None:
        url = cdk.Fn.join("", ["https://", self.api.rest_api_id, ".execute-api.", cdk.Aws.REGION, ".",
                               cdk.Aws.URL_SUFFIX, "/", self.api.deployment_stage.stage_name])
        outputs = {"Url": url, "FunctionName": self.function.function_name,
                   "FunctionArn": self.function.function_arn, "AliasName": ALIAS_NAME,
                   "AliasArn": self.alias.function_arn, "LayerArn": self.layer.layer_version_arn,
                   "LogGroupName": self.log_group.log_group_name}
        if self.api_key is not None:
            outputs["ApiKeyId"] = self.api_key.key_id
            outputs["UsagePlanId"] = self.usage_plan.usage_plan_id  # where a rotated key is attached
        else:  # what a caller's IAM policy allows (execute-api:Invoke) to call every route of the stage
            outputs["InvokeArn"] = self.api.arn_for_execute_api(stage=STAGE_NAME)
        if self.model is not None:
            outputs["ModelObject"] = self.model.s3_object_url
        for name, value in outputs.items():
            cdk.CfnOutput(self, name, value=value)
