"""AWS jobs without an AWS account: the jobs stack's template (aws_cdk.assertions), its state machine
definition (cfn-lint's ASL schema check on the rendered definition; moto's Step Functions runs the
execution API over it), the target's plan against moto, and ``submit`` against moto: refused over
``max_cost`` with nothing written; else the jobs stack created in moto's CloudFormation from the
synthesized template, the input staged, the execution started, and status, cost and cancel read from
moto's Step Functions. The shard function itself runs under the Lambda harness: tests/test_jobs_lambda.py.

What moto (5.2) cannot do here: run Lambda code (its invoke needs Docker), so no execution goes through
the map: an execution stays RUNNING with no map run (ListMapRuns answers none, so progress and cost so far
come from the result shards in the output prefix, the fallback the target has for that) until it is
stopped; it has no RedriveExecution, so ``resume`` is tested only on a running execution
(nothing to resume, Step Functions not asked) (an aborted one's redrive is AWS's own call); and the batch client's pre-flight (two
invokes) is answered in the submit test by a stand-in of the endpoint's fields.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nimbus_jupyter.core.errors import UserInputError
from nimbus_jupyter.core.jobs import CANCELLED, JobSource, JobSpec, new_job_id
from nimbus_jupyter.core.records import DeploymentRecord
from nimbus_jupyter.core.registry import Registry
from nimbus_jupyter.targets.aws.jobs_spec import Grant, JobsStackSpec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "cdk_app"))
ACCOUNT = "123456789012"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:nimbus-reviews-Fn"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/nimbus-reviews-Role"


@pytest.fixture(scope="module")
def template():
    import aws_cdk as cdk
    from aws_cdk.assertions import Template
    from jobs_stack import NimbusJobsStack

    spec = JobsStackSpec("reviews", FUNCTION_ARN, ROLE_ARN, "us-east-1", ACCOUNT,
                         inputs=[Grant("user-bucket", "in/")], outputs=[Grant("user-bucket", "out/")])
    app = cdk.App()
    stack = NimbusJobsStack(app, spec.stack_name, spec, env=cdk.Environment(account=ACCOUNT, region="us-east-1"))
    return Template.from_stack(stack)


def definition(template, rendered: bool = True) -> dict:
    machine = next(iter(template.find_resources("AWS::StepFunctions::StateMachine").values()))
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else ("aws" if p.get("Ref") == "AWS::Partition" else "staging-bucket") for p in parts)
    return json.loads(text) if rendered else text


def test_the_state_machine_maps_over_the_shard_list_invoking_the_pinned_version(template):
    asl = definition(template)
    shards = asl["States"]["Shards"]
    assert asl["StartAt"] == "Shards" and shards["Next"] == "WriteManifest"
    assert shards["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"}
    assert shards["ItemReader"]["Parameters"] == {"Bucket": "staging-bucket", "Key.$": "$.shard_list"}
    assert shards["MaxConcurrencyPath"] == "$.concurrency"
    score = shards["ItemProcessor"]["States"]["ScoreShard"]
    assert score["Parameters"]["FunctionName.$"] == "$.job.function"  # "<function>:<version>" from submit
    retry = score["Retry"][0]
    assert "Lambda.TooManyRequestsException" in retry["ErrorEquals"] and "Lambda.ServiceException" in retry["ErrorEquals"]
    assert retry["BackoffRate"] == 2 and retry["JitterStrategy"] == "FULL"
    assert score["Catch"][0]["Next"] == "ShardFailed"
    failed = shards["ItemProcessor"]["States"]["ShardFailed"]["Parameters"]
    assert failed["number.$"] == "$.shard.number" and failed["reason.$"] == "$.failure.Cause"
    assert "nimbus_manifest.$" in asl["States"]["WriteManifest"]["Parameters"]["Payload"]


def test_roles_are_least_privilege_and_the_bucket_is_private(template):
    from aws_cdk.assertions import Match

    policies = template.find_resources("AWS::IAM::Policy")
    machine = next(p for k, p in policies.items() if k.startswith("StateMachineAccess"))
    statements = machine["Properties"]["PolicyDocument"]["Statement"]
    invoke = [s for s in statements if s["Action"] == "lambda:InvokeFunction"]
    assert [s["Resource"] for s in invoke] == [f"{FUNCTION_ARN}:*"], "versions of that function only"
    reads = [s for s in statements if s["Action"] == "s3:GetObject"]
    assert len(reads) == 1 and reads[0]["Resource"]["Fn::Join"][1][1] == "/jobs/*/shards.json"
    assert not [s for s in statements if s["Action"] in ("s3:*", "*", "s3:PutObject")]
    function = next(p for k, p in policies.items() if k.startswith("FunctionJobsAccess"))
    assert function["Properties"]["Roles"] == ["nimbus-reviews-Role"]
    by_action = {s["Action"]: json.dumps(s["Resource"]) for s in function["Properties"]["PolicyDocument"]["Statement"]}
    assert set(by_action) == {"s3:GetObject", "s3:PutObject"}
    assert "/jobs/*/input/*" in by_action["s3:GetObject"] and "user-bucket/in/*" in by_action["s3:GetObject"]
    assert "/jobs/*/output/*" in by_action["s3:PutObject"] and "user-bucket/out/*" in by_action["s3:PutObject"]
    assert "/jobs/*/output/*" not in by_action["s3:GetObject"]
    template.has_resource_properties("AWS::S3::Bucket", {
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
                                           "RestrictPublicBuckets": True}})
    template.has_resource_properties("AWS::S3::BucketPolicy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})])}})
    template.resource_count_is("AWS::Lambda::Function", 0)  # no custom resource: created with CloudFormation directly
    assert "Parameters" not in template.to_json(), "no bootstrap version parameter: needs no CDK bootstrap"


def test_cfn_lint_checks_the_rendered_definition_and_finds_a_broken_one(template, tmp_path):
    def lint(text: str) -> str:
        data = template.to_json()
        for resource in data["Resources"].values():
            if resource["Type"] == "AWS::StepFunctions::StateMachine":
                resource["Properties"]["DefinitionString"] = text
        path = tmp_path / "t.json"
        path.write_text(json.dumps(data))
        done = subprocess.run([str(Path(sys.executable).with_name("cfn-lint")), str(path)], capture_output=True, text=True)
        return done.stdout + done.stderr

    good = lint(definition(template, rendered=False))
    assert not [line for line in good.splitlines() if line.startswith("E")], good
    broken = lint(definition(template, rendered=False).replace('"Type":"Map"', '"Type":"Mapp"'))
    assert "E3601" in broken


def test_moto_step_functions_take_the_definition_and_report_status_cancel_and_cost(moto_env, template, tmp_path):
    from nimbus_jupyter.targets.aws.target import AwsTarget

    iam = boto3.client("iam")
    role = iam.create_role(RoleName="jobs-sm", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(name="nimbus-reviews-jobs", definition=json.dumps(definition(template)),
                                       roleArn=role["Role"]["Arn"])["stateMachineArn"]
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="staging-bucket")
    spec = JobSpec(new_job_id(), "reviews", "aws", 1, "abc", JobSource("parquet", "x", "text"), "s3://staging-bucket/out/",
                   ["ents"], 4, 100, "2026-12-01T00:00:00Z", rows_total=400)
    execution = sfn.start_execution(stateMachineArn=machine, name=spec.id,
                                    input=json.dumps({"job": {}, "spec": spec.to_json()}))["executionArn"]
    spec = spec.evolve(target_data={"region": "us-east-1", "execution_arn": execution, "output_bucket": "staging-bucket",
                                    "output_prefix": "out/", "shard_rows": [100, 100, 100, 100], "per_shard_usd": 0.0025})
    for n in (0, 1):
        s3.put_object(Bucket="staging-bucket", Key=f"out/part-{n:05d}.parquet", Body=b"...")
    target = AwsTarget(Registry(tmp_path / "home"))
    status = target.job_status(spec)
    assert status.state == "running" and status.shards_done == 2 and status.rows_done == 200
    assert status.cost_usd == pytest.approx(0.005)
    assert target.resume_job(spec).state == "running"  # nothing to resume: moto has no redrive, so it was not asked
    status = target.cancel_job(spec)
    assert status.state == CANCELLED and "ABORTED" in status.detail
    assert sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"
    found = target.remote_jobs(set())
    assert [s.id for s in found] == [spec.id]  # from the execution's input: any machine with the credentials


@pytest.fixture(scope="module")
def function_in_moto(moto_env):
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    lam = boto3.client("lambda")
    code = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(code, "w") as z:
        z.writestr("x.py", "def handler(e, c): return {}")
    lam.create_function(FunctionName="nimbus-reviews-Fn", Runtime="python3.11", Role=role["Role"]["Arn"], Handler="x.handler",
                        Code={"ZipFile": code.getvalue()}, MemorySize=2048, Description="nimbus v3 hash abc")
    version = lam.publish_version(FunctionName="nimbus-reviews-Fn", Description="nimbus v3 hash abc")["Version"]
    lam.create_alias(FunctionName="nimbus-reviews-Fn", Name="live", FunctionVersion=version)
    record = DeploymentRecord("reviews", "aws", version=3, hash="abc",
                              target_data={"region": "us-east-1", "stack_name": "nimbus-reviews",
                                           "function_name": "nimbus-reviews-Fn:live", "lambda_function": "nimbus-reviews-Fn",
                                           "alias_name": "live"})
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="in-bucket")
    s3.put_object(Bucket="in-bucket", Key="reviews/a.parquet", Body=b"x" * 30000)
    s3.put_object(Bucket="in-bucket", Key="reviews/b.csv", Body=b"x" * 15000)
    s3.create_bucket(Bucket="eu-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.create_bucket(Bucket="out-bucket")
    s3.put_object(Bucket="out-bucket", Key="done/part-00000.parquet", Body=b"old")
    return record, version


def test_plan_pins_the_version_behind_the_alias_and_estimates_before_anything_runs(function_in_moto, tmp_path):
    from nimbus_jupyter.targets.aws.target import AwsTarget

    record, version = function_in_moto
    target = AwsTarget(Registry(tmp_path / "home"))
    spec = JobSpec(new_job_id(), "reviews", "aws", 3, "abc", JobSource("s3", "s3://in-bucket/reviews/", "review"), "",
                   ["ents"], None, 0, "2026-12-01T00:00:00Z")
    plan = target.plan_job(record, spec, overwrite=False)
    assert plan.spec.version_ref == version and plan.data["function"] == "nimbus-reviews-Fn"
    assert [i["key"] for i in plan.data["items"]] == ["reviews/a.parquet", "reviews/b.csv"]
    assert plan.estimate_usd and plan.estimate_usd > 0 and "estimated cost" in plan.lines[2]
    assert "creates the stack nimbus-reviews-jobs" in plan.lines[-1]
    assert plan.data["concurrency"] == 2  # no more than the shards
    stacks = boto3.client("cloudformation").list_stacks().get("StackSummaries", [])
    assert "nimbus-reviews-jobs" not in [s["StackName"] for s in stacks], "a plan creates nothing"
    assert not boto3.client("s3").list_objects_v2(Bucket="in-bucket", Prefix="jobs/").get("Contents")


@pytest.mark.parametrize("source, output, message", [
    ("s3://nosuch-bucket/x/", "", "does not exist"),
    ("s3://eu-bucket/x/", "", "is in eu-west-1, the deployment in us-east-1"),
    ("s3://in-bucket/empty/", "", "no CSV, JSONL or Parquet files"),
    ("s3://in-bucket/reviews/", "s3://out-bucket/done/", "already holds results"),
    ("s3://in-bucket/reviews/", "s3://eu-bucket/out/", "is in eu-west-1"),
    ("s3://in-bucket/reviews/", "local/dir", "not in S3"),
])
def test_bad_sources_and_outputs_are_refused_before_anything_runs(function_in_moto, tmp_path, source, output, message):
    from nimbus_jupyter.targets.aws.target import AwsTarget

    record, _ = function_in_moto
    spec = JobSpec(new_job_id(), "reviews", "aws", 3, "abc", JobSource("s3", source, "review"), output, ["ents"], None, 0, "")
    with pytest.raises(UserInputError, match=message):
        AwsTarget(Registry(tmp_path / "home")).plan_job(record, spec, overwrite=False)


def _objects(s3) -> list:
    return [f"{b['Name']}/{o['Key']}" for b in s3.list_buckets()["Buckets"]
            for o in s3.list_objects_v2(Bucket=b["Name"]).get("Contents", [])]


def test_submit_to_aws_refuses_over_max_cost_before_anything_is_written_then_creates_the_jobs_stack(
        function_in_moto, tmp_path, monkeypatch, capsys):
    """The public ``submit`` against moto: the deployment's stack and function in moto's CloudFormation and
    Lambda. One stand-in: moto runs no Lambda code, so the batch client's empty pre-flight (health, OpenAPI:
    two invokes of the function) answers the fields itself; everything after it is nimbus against moto.
    Over ``max_cost``: refused, nothing in S3, no jobs stack, no job left. Under it: the jobs stack is
    created in moto's CloudFormation from the synthesized template (state machine, role, bucket), the
    input staged as shards, the execution started; status, cost and cancel read from moto's Step Functions."""
    import pandas as pd

    import nimbus_jupyter as nj
    from nimbus_jupyter.api import jobs as api_jobs
    from nimbus_jupyter.core.jobs import JobStore

    record, version = function_in_moto
    registry = Registry(tmp_path / "home")
    registry.put(record)
    cfn, s3 = boto3.client("cloudformation"), boto3.client("s3")
    cfn.create_stack(StackName="nimbus-reviews", TemplateBody=json.dumps(
        {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}))  # the deployment's stack: CREATE_COMPLETE = ready
    probes = []

    def preflight(texts, deployment, **kwargs):  # what the endpoint would answer: the fields, no row
        assert list(texts) == [], "the pre-flight sends no row"
        probes.append(deployment)
        return pd.DataFrame(columns=["text", "ents", "cats", "label", "score", "error"])

    monkeypatch.setattr(api_jobs, "batch", preflight)
    source = tmp_path / "reviews.parquet"
    pq.write_table(pa.table({"review": [f"great phone {i}" for i in range(2500)]}), source)
    objects_before = _objects(s3)
    with pytest.raises(UserInputError, match=r"would cost about \$[\d.]+, over max_cost=\$0\.0000"):
        nj.submit(str(source), "reviews", column="review", max_cost=0.0, registry=registry)
    assert "estimated cost" in capsys.readouterr().out, "the estimate is shown before the refusal"
    assert probes == ["reviews"]
    assert _objects(s3) == objects_before, "a refused job wrote to S3"
    assert "nimbus-reviews-jobs" not in [s["StackName"] for s in cfn.describe_stacks()["Stacks"]]
    assert JobStore(registry.home).all() == [] and not list((registry.home / "jobs").iterdir())

    job = nj.submit(str(source), "reviews", column="review", max_cost=5.0, shard_rows=1000, registry=registry, quiet=True)
    stack = cfn.describe_stacks(StackName="nimbus-reviews-jobs")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    made = {r["ResourceType"] for r in cfn.list_stack_resources(StackName="nimbus-reviews-jobs")["StackResourceSummaries"]}
    assert {"AWS::StepFunctions::StateMachine", "AWS::IAM::Role", "AWS::S3::Bucket"} <= made, made
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    sfn = boto3.client("stepfunctions")
    machine = sfn.describe_state_machine(stateMachineArn=outputs["StateMachineArn"])
    assert json.loads(machine["definition"])["States"]["Shards"]["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    staged = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=outputs["BucketName"], Prefix=f"jobs/{job.id}/")["Contents"])
    assert staged == [f"jobs/{job.id}/input/part-{n:05d}.parquet" for n in range(3)] + [f"jobs/{job.id}/shards.json"]
    execution = sfn.describe_execution(executionArn=job.spec.target_data["execution_arn"])
    sent = json.loads(execution["input"])
    assert sent["job"]["function"] == f"nimbus-reviews-Fn:{version}", "the map invokes the pinned version, not the alias"
    assert sent["concurrency"] == 3  # no more than the shards
    status = job.status()  # moto's execution runs no map: RUNNING, no shard done yet
    assert status.state in ("queued", "running") and status.rows_done == 0 and status.cost_usd == 0.0
    assert status.rows_total == 2500
    s3.put_object(Bucket=outputs["BucketName"], Key=f"jobs/{job.id}/output/part-00000.parquet", Body=b"...")
    status = job.status()
    assert status.shards_done == 1 and status.rows_done == 1000
    assert status.cost_usd == pytest.approx(job.spec.estimate["usd"] / 3, rel=1e-3)
    status = job.cancel()
    assert status.state == CANCELLED
    assert sfn.describe_execution(executionArn=job.spec.target_data["execution_arn"])["status"] == "ABORTED"


def test_jobs_is_a_declared_deploy_option_that_shapes_no_stack_option():
    """``--jobs`` reaches the magic, the CLI and the sidebar from its declaration; it is not one of the
    options recorded as the deployment's stack shape (adding it to a deploy is not an update of that stack)."""
    from click.testing import CliRunner

    from nimbus_jupyter.faces.cli import cli
    from nimbus_jupyter.targets.aws.options import stack_options
    from nimbus_jupyter.targets.aws.target import AwsTarget
    from nimbus_jupyter.targets.registry import check_options

    info = {o.name: o.info() for o in AwsTarget.options}["jobs"]
    assert (info["flag"], info["type"], info["default"]) == ("--jobs", "bool", False)
    assert "jobs stack" in info["help"]
    assert check_options("aws", {"jobs": True})["jobs"] is True
    assert "jobs" not in stack_options({"jobs": True})
    help_text = CliRunner().invoke(cli, ["deploy", "--help"]).output
    assert "--jobs" in help_text
