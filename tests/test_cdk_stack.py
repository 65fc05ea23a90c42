"""The bundled CDK app, synthesized for real (aws-cdk-lib in-process, and as the CDK CLI runs it).

Two deployments cover both model modes and both architectures: ``inline`` on x86_64 (reserved concurrency
and a monthly quota set) and ``s3`` on arm64 (neither set). Each is synthesized once per module; the
tests read the CloudFormation template the way a reviewer of the stack would. A failed
``aws_cdk.assertions`` check raises (a jsii RuntimeError), so each of them fails its test.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
import spacy

pytest.importorskip("aws_cdk")
from aws_cdk import App  # noqa: E402
from aws_cdk.assertions import Match, Template  # noqa: E402

from nimbus_jupyter.core.bundle import build_bundle  # noqa: E402
from nimbus_jupyter.targets.aws.app_location import cdk_app_dir, import_cdk_app  # noqa: E402
from nimbus_jupyter.targets.aws.package import build_function_code  # noqa: E402
from nimbus_jupyter.targets.aws.spec import HANDLER, StackSpec  # noqa: E402

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
RUNTIME = f"python{PYTHON}"


def _dirs(root: Path, inline: bool) -> Dict[str, str]:
    """Small real inputs: a layer in Lambda's layout, a blank pipeline's bundle, its function code."""
    layer = root / "layer" / "python" / "fake_dep"
    layer.mkdir(parents=True)
    (layer / "__init__.py").write_text("VERSION = '1'\n")
    bundle = build_bundle(spacy.blank("en"), root / "bundle", "reviews", namespace={})
    code = build_function_code(bundle.path, root / "code", inline=inline)
    return {"layer_dir": str(root / "layer"), "code_dir": str(code), "model_dir": str(bundle.path)}


def _spec(root: Path, inline: bool) -> StackSpec:
    common = dict(name="reviews", version=3, bundle_hash="ab" * 32, python=PYTHON, **_dirs(root, inline))
    if inline:
        return StackSpec(**common, arch="x86_64", model_mode="inline", memory_mb=3008, timeout_s=30,
                         ephemeral_storage_mb=640, reserved_concurrency=5, log_retention_days=30,
                         throttle_rate=20.0, throttle_burst=40, quota_per_month=5000, tags={"team": "nlp"})
    return StackSpec(**common, arch="arm64", model_mode="s3", memory_mb=4096, timeout_s=90,
                     ephemeral_storage_mb=2048, reserved_concurrency=None, log_retention_days=7,
                     throttle_rate=10.0, throttle_burst=15, quota_per_month=None, tags={"team": "nlp"})


def _synth(tmp_path_factory: pytest.TempPathFactory, inline: bool, **changes: Any) -> Any:
    root = tmp_path_factory.mktemp("inline" if inline else "s3")
    spec = _spec(root, inline)
    for key, value in changes.items():
        setattr(spec, key, value)
    app_module = import_cdk_app()
    _, stack = app_module.build(App(outdir=str(root / "cdk.out")), spec)
    template = Template.from_stack(stack)
    return stack, template, template.to_json()


@pytest.fixture(scope="module")
def inline(tmp_path_factory):
    return _synth(tmp_path_factory, inline=True)


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    return _synth(tmp_path_factory, inline=False)


@pytest.fixture(scope="module")
def alarmed(tmp_path_factory):
    """The inline deployment with an alarm: 3 errors in 10 minutes email ops@example.com."""
    return _synth(tmp_path_factory, inline=True, alarm_email="ops@example.com", alarm_errors=3, alarm_period_minutes=10)


def _one(raw: Dict[str, Any], kind: str, prefix: str = "") -> tuple:
    """The one resource of ``kind`` (whose logical id starts with ``prefix``: the function's own log group
    is ``Logs...`` beside the API's ``AccessLogs...``, its role ``Role...`` beside ``ApiCloudWatchRole...``)."""
    found = [(k, r) for k, r in raw["Resources"].items() if r["Type"] == kind and k.startswith(prefix)]
    assert len(found) == 1, f"expected one {kind}, found {[k for k, _ in found]}"
    return found[0]


def _statements(raw: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [s for r in raw["Resources"].values() if r["Type"] == "AWS::IAM::Policy"
            for s in r["Properties"]["PolicyDocument"]["Statement"]]


def _actions(statement: Dict[str, Any]) -> List[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


# --------------------------------------------------------------------------- the function


def test_inline_function_runtime_handler_size_and_environment(inline):
    stack, template, raw = inline
    layer_id, _ = _one(raw, "AWS::Lambda::LayerVersion")
    logs_id, _ = _one(raw, "AWS::Logs::LogGroup", "Logs")
    template.resource_count_is("AWS::Lambda::Function", 1)
    template.has_resource_properties("AWS::Lambda::Function", {
        "Runtime": RUNTIME, "Handler": HANDLER, "Architectures": ["x86_64"],
        "MemorySize": 3008, "Timeout": 30, "EphemeralStorage": {"Size": 640}, "ReservedConcurrentExecutions": 5,
        "Layers": [{"Ref": layer_id}], "LoggingConfig": {"LogGroup": {"Ref": logs_id}},
        "Environment": {"Variables": Match.object_equals({
            "NIMBUS_DEPLOYMENT": "reviews", "NIMBUS_VERSION": "3", "NIMBUS_BUNDLE_DIR": "/var/task/bundle"})},
    })
    assert HANDLER == "nimbus_jupyter.runtime.lambda_entry.handler"


def test_s3_function_on_arm64_reads_its_model_location_from_env(s3):
    stack, template, raw = s3
    template.has_resource_properties("AWS::Lambda::Function", {
        "Runtime": RUNTIME, "Handler": HANDLER, "Architectures": ["arm64"],
        "MemorySize": 4096, "Timeout": 90, "EphemeralStorage": {"Size": 2048},
    })
    _, fn = _one(raw, "AWS::Lambda::Function")
    assert "ReservedConcurrentExecutions" not in fn["Properties"]  # unset: the account's pool
    env = fn["Properties"]["Environment"]["Variables"]
    assert set(env) == {"NIMBUS_DEPLOYMENT", "NIMBUS_VERSION", "NIMBUS_MODEL_BUCKET", "NIMBUS_MODEL_KEY"}
    assert env["NIMBUS_MODEL_KEY"] == stack.model.s3_object_key and env["NIMBUS_MODEL_KEY"].endswith(".zip")
    assert "assets" in json.dumps(env["NIMBUS_MODEL_BUCKET"])  # the bootstrap assets bucket


def test_layer_is_attached_compatible_and_destroyed_with_the_stack(inline, s3):
    for (_, template, raw), arch in ((inline, "x86_64"), (s3, "arm64")):
        template.has_resource("AWS::Lambda::LayerVersion", {
            "Properties": {"CompatibleRuntimes": [RUNTIME], "CompatibleArchitectures": [arch]},
            "DeletionPolicy": "Delete"})
        layer_id, _ = _one(raw, "AWS::Lambda::LayerVersion")
        template.has_resource_properties("AWS::Lambda::Function", {"Layers": [{"Ref": layer_id}]})


def test_log_group_has_retention_and_is_deleted_on_destroy(inline, s3):
    for (_, template, _), days in ((inline, 30), (s3, 7)):
        template.resource_count_is("AWS::Logs::LogGroup", 2)  # the function's and the API's access logs
        template.has_resource("AWS::Logs::LogGroup", {
            "Properties": {"RetentionInDays": days}, "DeletionPolicy": "Delete", "UpdateReplacePolicy": "Delete"})


# --------------------------------------------------------------------------- least privilege


def test_inline_role_writes_its_logs_and_has_no_s3_at_all(inline):
    _, template, raw = inline
    _, role = _one(raw, "AWS::IAM::Role", "Role")
    assert "ManagedPolicyArns" not in role["Properties"]
    statements = _statements(raw)
    assert statements, "the function's role has no policy"
    actions = {a for s in statements for a in _actions(s)}
    assert actions == {"logs:CreateLogStream", "logs:PutLogEvents"}
    logs_id, _ = _one(raw, "AWS::Logs::LogGroup", "Logs")
    assert all(s["Resource"] == {"Fn::GetAtt": [logs_id, "Arn"]} for s in statements)
    assert "s3:" not in json.dumps(raw)


def test_s3_role_reads_only_its_model_object(s3):
    stack, _, raw = s3
    s3_statements = [s for s in _statements(raw) if any(a.startswith("s3:") for a in _actions(s))]
    assert len(s3_statements) == 1
    (statement,) = s3_statements
    assert _actions(statement) == ["s3:GetObject"] and statement["Effect"] == "Allow"
    resource = statement["Resource"]
    assert isinstance(resource, dict), f"expected one object ARN, got {resource}"
    arn_parts = resource["Fn::Join"][1]
    assert arn_parts[-1] == "/" + stack.model.s3_object_key  # bucket/<key>: the object, not bucket/* nor the bucket
    assert "*" not in json.dumps(resource)
    actions = {a for s in _statements(raw) for a in _actions(s)}
    assert actions == {"logs:CreateLogStream", "logs:PutLogEvents", "s3:GetObject"}


# --------------------------------------------------------------------------- API Gateway


def test_exactly_the_handler_routes_each_needing_the_api_key(inline, s3):
    for _, template, raw in (inline, s3):
        paths = {k: r["Properties"]["PathPart"] for k, r in raw["Resources"].items() if r["Type"] == "AWS::ApiGateway::Resource"}
        methods = [r["Properties"] for r in raw["Resources"].values() if r["Type"] == "AWS::ApiGateway::Method"]
        routes = {(m["HttpMethod"], paths[m["ResourceId"]["Ref"]]) for m in methods}
        assert routes == {("POST", "predict"), ("GET", "health"), ("GET", "openapi.json")}
        assert len(methods) == 3
        assert all(m["ApiKeyRequired"] is True for m in methods)
        assert all(m["Integration"]["Type"] == "AWS_PROXY" for m in methods)
        template.has_resource_properties("AWS::ApiGateway::Stage", {"StageName": "v1"})
        template.has_resource_properties("AWS::ApiGateway::RestApi", {"EndpointConfiguration": {"Types": ["REGIONAL"]}})
        template.resource_count_is("AWS::ApiGateway::ApiKey", 1)


@pytest.fixture(scope="module")
def iam(tmp_path_factory):
    """The inline deployment with ``--auth iam``."""
    return _synth(tmp_path_factory, inline=True, auth="iam")


def test_auth_iam_methods_use_aws_iam_and_no_key_or_usage_plan(iam):
    _, template, raw = iam
    methods = [r["Properties"] for r in raw["Resources"].values() if r["Type"] == "AWS::ApiGateway::Method"]
    assert len(methods) == 3
    assert all(m["AuthorizationType"] == "AWS_IAM" and not m.get("ApiKeyRequired") for m in methods), methods
    for kind in ("AWS::ApiGateway::ApiKey", "AWS::ApiGateway::UsagePlan", "AWS::ApiGateway::UsagePlanKey"):
        template.resource_count_is(kind, 0)
    # no usage plan to meter a key: the stage throttles every caller
    template.has_resource_properties("AWS::ApiGateway::Stage", {"MethodSettings": Match.array_with([Match.object_like(
        {"HttpMethod": "*", "ResourcePath": "/*", "ThrottlingRateLimit": 20, "ThrottlingBurstLimit": 40})])})
    outputs = raw["Outputs"]
    assert "ApiKeyId" not in outputs and "UsagePlanId" not in outputs
    invoke_arn = json.dumps(outputs["InvokeArn"]["Value"])
    assert "execute-api" in invoke_arn and "/v1/*/*" in invoke_arn


def test_auth_key_methods_need_the_key_and_name_the_usage_plan(inline):
    _, template, raw = inline
    methods = [r["Properties"] for r in raw["Resources"].values() if r["Type"] == "AWS::ApiGateway::Method"]
    assert all(m["AuthorizationType"] == "NONE" and m["ApiKeyRequired"] is True for m in methods)
    plan_id, _ = _one(raw, "AWS::ApiGateway::UsagePlan")
    inline[1].has_output("UsagePlanId", {"Value": {"Ref": plan_id}})


def test_usage_plan_throttles_caps_the_month_and_holds_the_key(inline):
    _, template, raw = inline
    api_id, _ = _one(raw, "AWS::ApiGateway::RestApi")
    stage_id, _ = _one(raw, "AWS::ApiGateway::Stage")
    plan_id, _ = _one(raw, "AWS::ApiGateway::UsagePlan")
    key_id, _ = _one(raw, "AWS::ApiGateway::ApiKey")
    template.has_resource_properties("AWS::ApiGateway::UsagePlan", {
        "Throttle": {"RateLimit": 20, "BurstLimit": 40}, "Quota": {"Limit": 5000, "Period": "MONTH"},
        "ApiStages": [{"ApiId": {"Ref": api_id}, "Stage": {"Ref": stage_id}}]})
    template.has_resource_properties("AWS::ApiGateway::UsagePlanKey", {
        "KeyId": {"Ref": key_id}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": plan_id}})


def test_usage_plan_without_quota_when_the_spec_has_none(s3):
    _, template, raw = s3
    template.has_resource_properties("AWS::ApiGateway::UsagePlan", {"Throttle": {"RateLimit": 10, "BurstLimit": 15}})
    _, plan = _one(raw, "AWS::ApiGateway::UsagePlan")
    assert "Quota" not in plan["Properties"]
    template.resource_count_is("AWS::ApiGateway::UsagePlanKey", 1)


# --------------------------------------------------------------------------- versions, the alias, the alarm


def test_each_deploy_publishes_a_retained_version_described_by_nimbus_version_and_hash(inline, s3):
    for _, template, raw in (inline, s3):
        template.resource_count_is("AWS::Lambda::Version", 1)
        function_id, _ = _one(raw, "AWS::Lambda::Function")
        template.has_resource("AWS::Lambda::Version", {
            "Properties": {"FunctionName": {"Ref": function_id}, "Description": "nimbus v3 hash " + "ab" * 32},
            "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"})


def test_the_version_logical_id_changes_with_the_bundle(tmp_path_factory, inline):
    """A new logical id is what makes CloudFormation publish a new version (and retain the old one)."""
    _, _, other = _synth(tmp_path_factory, inline=True, bundle_hash="cd" * 32, version=4)
    old_id, _ = _one(inline[2], "AWS::Lambda::Version")
    new_id, new = _one(other, "AWS::Lambda::Version")
    assert old_id != new_id and new["Properties"]["Description"] == "nimbus v4 hash " + "cd" * 32


def test_alias_live_points_at_the_published_version(inline):
    _, template, raw = inline
    version_id, _ = _one(raw, "AWS::Lambda::Version")
    function_id, _ = _one(raw, "AWS::Lambda::Function")
    template.resource_count_is("AWS::Lambda::Alias", 1)
    template.has_resource_properties("AWS::Lambda::Alias", {
        "Name": "live", "FunctionName": {"Ref": function_id}, "FunctionVersion": {"Fn::GetAtt": [version_id, "Version"]}})


def test_api_methods_and_their_invoke_permissions_target_the_alias_not_latest(inline, s3):
    for _, _, raw in (inline, s3):
        alias_id, _ = _one(raw, "AWS::Lambda::Alias")
        methods = [r["Properties"] for r in raw["Resources"].values() if r["Type"] == "AWS::ApiGateway::Method"]
        for method in methods:
            uri = method["Integration"]["Uri"]["Fn::Join"][1]
            assert {"Ref": alias_id} in uri, uri  # .../functions/<alias ARN>/invocations
            assert not any("Function" in json.dumps(part) for part in uri), uri
        permissions = [r["Properties"] for r in raw["Resources"].values() if r["Type"] == "AWS::Lambda::Permission"]
        assert len(permissions) == 3
        assert all(p["FunctionName"] == {"Ref": alias_id} and p["Principal"] == "apigateway.amazonaws.com"
                   for p in permissions)


def test_no_alarm_and_no_topic_without_an_email(inline, s3):
    for stack, template, _ in (inline, s3):
        for kind in ("AWS::CloudWatch::Alarm", "AWS::SNS::Topic", "AWS::SNS::Subscription"):
            template.resource_count_is(kind, 0)
        assert stack.alarm is None and stack.alarm_topic is None


def test_alarm_on_the_alias_errors_emails_through_sns(alarmed):
    _, template, raw = alarmed
    topic_id, topic = _one(raw, "AWS::SNS::Topic")
    function_id, _ = _one(raw, "AWS::Lambda::Function")
    template.has_resource_properties("AWS::SNS::Subscription", {
        "Protocol": "email", "Endpoint": "ops@example.com", "TopicArn": {"Ref": topic_id}})
    template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "EvaluationPeriods": 1, "Threshold": 3, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching", "AlarmActions": [{"Ref": topic_id}]})
    _, alarm = _one(raw, "AWS::CloudWatch::Alarm")
    queries = {q["Id"]: q for q in alarm["Properties"]["Metrics"]}
    assert queries["expr_1"]["Expression"] == "FILL(lambda_errors, 0) + FILL(pipeline_errors, 0)"
    assert queries["expr_1"].get("ReturnData", True) is True
    lambda_errors = queries["lambda_errors"]["MetricStat"]
    assert lambda_errors["Metric"]["Namespace"] == "AWS/Lambda" and lambda_errors["Metric"]["MetricName"] == "Errors"
    assert (lambda_errors["Period"], lambda_errors["Stat"]) == (600, "Sum")
    assert lambda_errors["Metric"]["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": function_id}},
        {"Name": "Resource", "Value": {"Fn::Join": ["", [{"Ref": function_id}, ":live"]]}}]
    # the metric the handler's except branch writes (runtime/metrics.py emf_line), same names and dimension
    from nimbus_jupyter.runtime.metrics import emf_line

    emitted = json.loads(emf_line("reviews"))
    directive = emitted["_aws"]["CloudWatchMetrics"][0]
    pipeline = queries["pipeline_errors"]["MetricStat"]
    assert pipeline["Metric"] == {"Namespace": directive["Namespace"], "MetricName": directive["Metrics"][0]["Name"],
                                  "Dimensions": [{"Name": directive["Dimensions"][0][0], "Value": emitted["Deployment"]}]}
    assert (pipeline["Period"], pipeline["Stat"]) == (600, "Sum")
    # default policies: the stack's delete removes topic, subscription and alarm
    for kind in ("AWS::SNS::Topic", "AWS::CloudWatch::Alarm"):
        _, resource = _one(raw, kind)
        assert "DeletionPolicy" not in resource


def test_alarm_defaults_are_five_errors_in_five_minutes():
    from nimbus_jupyter.targets.aws.spec import StackSpec

    spec = StackSpec(name="r", version=1, bundle_hash="ab", python=PYTHON, arch="x86_64", layer_dir="l", code_dir="c")
    assert (spec.alarm_email, spec.alarm_errors, spec.alarm_period_minutes) == (None, 5, 5)


# --------------------------------------------------------------------------- outputs, tags, description


def test_outputs_name_everything_the_target_reads(inline, s3):
    expected = {"Url", "ApiKeyId", "FunctionName", "FunctionArn", "AliasName", "AliasArn", "LayerArn", "LogGroupName"}
    assert expected <= set(inline[1].find_outputs("*")) and "ModelObject" not in inline[2]["Outputs"]
    assert expected | {"ModelObject"} <= set(s3[1].find_outputs("*"))
    stage_id, _ = _one(inline[2], "AWS::ApiGateway::Stage")
    url_parts = inline[2]["Outputs"]["Url"]["Value"]["Fn::Join"][1]
    assert url_parts[0] == "https://" and url_parts[-1] == {"Ref": stage_id}  # .../v1, no trailing slash
    key_id, _ = _one(inline[2], "AWS::ApiGateway::ApiKey")
    inline[1].has_output("ApiKeyId", {"Value": {"Ref": key_id}})
    alias_id, _ = _one(inline[2], "AWS::Lambda::Alias")
    inline[1].has_output("AliasArn", {"Value": {"Ref": alias_id}})
    inline[1].has_output("AliasName", {"Value": "live"})


def test_tags_on_the_function_and_the_stack_and_a_description(inline):
    stack, template, raw = inline
    tags = {"nimbus:deployment": "reviews", "nimbus:version": "3", "nimbus:hash": "ab" * 6,
            "nimbus:managed-by": "nimbus-jupyter", "team": "nlp"}
    template.has_resource_properties("AWS::Lambda::Function", {
        "Tags": Match.array_with([{"Key": k, "Value": v} for k, v in sorted(tags.items())])})
    assert stack.tags.tag_values() == tags
    assert stack.stack_name == "nimbus-reviews"
    assert "Nimbus" in raw["Description"] and "reviews" in raw["Description"]


# --------------------------------------------------------------------------- run the way the CDK CLI runs it


def test_app_runs_as_a_script_and_writes_the_cloud_assembly(tmp_path):
    spec_file = _spec(tmp_path, inline=True).write(tmp_path / "spec.json")
    out = tmp_path / "cdk.out"
    env = {**os.environ, "CDK_OUTDIR": str(out), "CDK_CONTEXT_JSON": json.dumps({"nimbus_spec": str(spec_file)})}
    env.pop("NIMBUS_SPEC", None)
    proc = subprocess.run([sys.executable, str(cdk_app_dir() / "app.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    stack = manifest["artifacts"]["nimbus-reviews"]
    assert stack["type"] == "aws:cloudformation:stack"
    assert stack["properties"]["tags"]["nimbus:deployment"] == "reviews"
    template = json.loads((out / stack["properties"]["templateFile"]).read_text())
    handlers = [r["Properties"]["Handler"] for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert handlers == [HANDLER]


def test_app_without_a_spec_says_how_to_pass_one(tmp_path):
    env = {**os.environ, "CDK_OUTDIR": str(tmp_path / "cdk.out")}
    env.pop("NIMBUS_SPEC", None)
    env.pop("CDK_CONTEXT_JSON", None)
    proc = subprocess.run([sys.executable, str(cdk_app_dir() / "app.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "nimbus_spec" in proc.stderr and "NIMBUS_SPEC" in proc.stderr


def test_the_app_is_found_in_a_source_checkout_under_the_wheel_name():
    directory = cdk_app_dir()
    assert directory == Path(__file__).resolve().parents[1] / "cdk_app"
    module = import_cdk_app()
    assert module.__name__ == "nimbus_jupyter.cdk_app.app" and Path(module.__file__).parent == directory
