"""The aws target against moto_server, with the real CDK CLI: plan, bootstrap, deploy, dry runs against
the deployed stack, discover, destroy.

As far as moto goes: it runs no Lambda code (so the smoke test cannot pass here and there is no
parity check) and ignores API keys, stages and usage plans (their properties are checked on the
synthesized template instead). It cannot update a CDK stack either, so "update" is seen as a plan only.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterator, List

import boto3
import pytest

from nimbus_jupyter.api import run_deploy
from nimbus_jupyter.core.errors import EndpointError
from nimbus_jupyter.core.plan import PlanMade
from nimbus_jupyter.core.progress import FAILED, MessageEvent, ProgressEvent, StageEvent
from nimbus_jupyter.core.records import HistoryEntry
from nimbus_jupyter.core.registry import Registry
from nimbus_jupyter.targets.registry import get_target
from pipelines import textcat_pipeline

pytestmark = pytest.mark.timeout(1200)
OPTIONS = {"memory": 1024, "throttle_rate": 5, "throttle_burst": 10}
SAMPLES = ["great phone", "arrived broken"]
ARN = "arn:aws:sts::123456789012:user/moto"


@pytest.fixture(scope="module")
def deployed(nimbus_home: Path, moto_env: str, textcat_nlp) -> Iterator[Dict[str, Any]]:
    """A dry run, then the deploy, through run_deploy as the magic runs it. moto runs no Lambda code, so
    the deploy stops at the smoke test, after the stack is made and the record written."""
    registry = Registry()
    dry = run_deploy(textcat_nlp, "reviews", "aws", samples=SAMPLES, dry_run=True, registry=registry, **OPTIONS)
    events: List[Any] = []
    with pytest.raises(EndpointError) as smoke:
        run_deploy(textcat_nlp, "reviews", "aws", samples=SAMPLES, registry=registry, listeners=[events.append], **OPTIONS)
    plan = next(e.plan for e in events if isinstance(e, PlanMade))
    yield {"record": registry.get("reviews"), "events": events, "plan": plan, "dry": dry, "smoke": smoke.value,
           "target": get_target("aws", registry), "registry": registry}


def test_the_dry_run_plan_is_the_plan_the_deploy_applied(deployed: Dict[str, Any]) -> None:
    dry, plan = deployed["dry"], deployed["plan"]
    assert json.dumps(dry.to_json(), sort_keys=True) == json.dumps(plan.to_json(), sort_keys=True)
    facts = plan.facts["preflight"]
    assert (facts["account"], facts["region"], facts["identity_arn"], facts["bootstrapped"]) == (
        "123456789012", "us-east-1", ARN, False)
    assert facts["cli"] and plan.facts["stack"] == "none" and not facts["unknown"]
    assert plan.artifacts["assembly"] == "aws/cdk.out" and not Path(plan.artifacts["assembly"]).is_absolute()
    assert plan.data["spec"]["code_dir"] == "aws/code" and plan.data["stack_options"]["memory"] == 1024


def test_the_deploy_made_the_stack_and_stopped_at_the_smoke_test(deployed: Dict[str, Any]) -> None:
    stages = [(e.stage, e.state) for e in deployed["events"] if isinstance(e, StageEvent)]
    assert ("deploy", "done") in stages and ("smoke test", FAILED) in stages
    assert deployed["smoke"].where == "endpoint" and "execute-api.us-east-1.amazonaws.com" in deployed["smoke"].what
    assert deployed["record"].status == "ready" and deployed["record"].version == 1


def test_plan_says_what_will_be_created(deployed: Dict[str, Any]) -> None:
    plan = deployed["plan"]
    assert plan.changes[0].action == "create" and "stack nimbus-reviews in 123456789012/us-east-1" in plan.changes[0].resource
    kinds = " ".join(c.resource for c in plan.changes)
    for kind in ("AWS::Lambda::Function", "AWS::Lambda::LayerVersion", "AWS::ApiGateway::RestApi", "AWS::ApiGateway::UsagePlan"):
        assert kind in kinds
    assert any("of Lambda's 250 MB limit" in note for note in plan.notes)


def test_deploy_bootstraps_then_reports_cloudformation_progress(deployed: Dict[str, Any]) -> None:
    events = deployed["events"]
    messages = [e.text for e in events if isinstance(e, MessageEvent)]
    assert any("bootstrapping CDK in 123456789012/us-east-1" in m for m in messages)
    stages = [(e.stage, e.state) for e in events if isinstance(e, StageEvent)]
    for stage in ("pre-flight", "layer", "package", "synthesize", "deploy"):
        assert (stage, "done") in stages
    progress = [e for e in events if isinstance(e, ProgressEvent) and e.stage == "deploy"]
    assert progress and progress[-1].total >= 10  # resources of the stack; moto reports few events


def test_function_layer_and_assets_exist(deployed: Dict[str, Any]) -> None:
    import sys

    record = deployed["record"]
    function = boto3.client("lambda").get_function(FunctionName=record.target_data["function_name"])["Configuration"]
    from importlib import metadata

    from nimbus_jupyter.targets.aws.runtime_select import select_runtime

    # the runtime is chosen (newest with wheels for every pin), not the kernel's: a 3.10/3.11 kernel with
    # numpy >= 2.3 gets an Amazon Linux 2023 runtime
    assert function["Runtime"] == select_runtime("x86_64")[0].runtime
    numpy_minor = tuple(int(p) for p in metadata.version("numpy").split(".")[:2])
    if sys.version_info[:2] < (3, 12) and numpy_minor >= (2, 3):
        assert function["Runtime"] not in ("python3.10", "python3.11")
    assert function["Handler"] == "nimbus_jupyter.runtime.lambda_entry.handler"
    assert function["MemorySize"] == 1024
    # moto's CloudFormation drops a function's Layers (the template test checks the attachment);
    # the layer version itself is created, for the chosen runtime.
    layers = boto3.client("lambda").list_layers()["Layers"]
    ours = [l for l in layers if l["LayerName"].startswith("nimbus-reviews-Dependencies")]
    assert len(ours) == 1 and ours[0]["LatestMatchingVersion"]["CompatibleRuntimes"] == [function["Runtime"]]
    buckets = [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]
    asset_bucket = next(b for b in buckets if b.startswith("cdk-hnb659fds-assets-"))
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=asset_bucket)["Contents"]]
    assert sum(k.endswith(".zip") for k in keys) >= 2  # the layer and the function code
    stack = boto3.client("cloudformation").describe_stacks(StackName="nimbus-reviews")["Stacks"][0]
    tags = {t["Key"]: t["Value"] for t in stack["Tags"]}
    assert tags["nimbus:deployment"] == "reviews" and tags["nimbus:managed-by"] == "nimbus-jupyter"
    assert record.url.startswith("https://") and "execute-api.us-east-1.amazonaws.com" in record.url


def test_the_deployed_layer_passes_the_lambda_harness(deployed: Dict[str, Any], textcat_nlp, tmp_path: Path) -> None:
    """The layer this kernel deployed (python3.14 for a 3.11 kernel with numpy 2.4: its runtime is chosen),
    run by the real awslambdaric in a clean interpreter of that runtime (tests/lambda_harness.py), with the
    deployed options, predicts what the kernel predicts."""
    import os

    import lambda_harness as lh
    from lambda_events import rest_v1
    from nimbus_jupyter.core.bundle import build_bundle
    from nimbus_jupyter.runtime.fields import doc_to_result
    from nimbus_jupyter.targets.aws.package import build_function_code

    spec = deployed["plan"].data["spec"]
    try:
        lh.interpreter(spec["python"], spec["arch"])
    except lh.HarnessUnavailable as exc:
        if "CI" in os.environ:
            raise
        pytest.skip(str(exc))
    bundle = build_bundle(textcat_nlp, tmp_path / "bundle", "reviews")
    code = build_function_code(bundle.path, tmp_path / "code", inline=True)
    env = lh.Environment(layer_dir=Path(spec["layer_dir"]), code_dir=code, python=spec["python"], arch=spec["arch"],
                         memory_mb=spec["memory_mb"], timeout_s=spec["timeout_s"], tmp_mb=spec["ephemeral_storage_mb"],
                         env={"NIMBUS_BUNDLE_DIR": "/var/task/bundle", "NIMBUS_DEPLOYMENT": "reviews", "NIMBUS_VERSION": "1"})
    with lh.RuntimeApi(timeout_s=env.timeout_s) as api:
        function = lh.LambdaFunction(env, api, tmp_path / "function.log")
        try:
            function.start()
            inv = function.invoke(rest_v1("POST", "/predict", {"texts": SAMPLES, "fields": ["cats", "ents"]}))
        finally:
            function.close()
    assert inv.status == "ok" and inv.payload["statusCode"] == 200, (inv.error_type, inv.payload)
    expected = [doc_to_result(doc, ["cats", "ents"]) for doc in textcat_nlp.pipe(SAMPLES)]
    assert json.loads(inv.payload["body"])["results"] == json.loads(json.dumps(expected))
    assert api.errors == 0 and spec["python"] not in ("3.10", "3.11")


def test_a_dry_run_of_the_unchanged_deployment_says_nothing_to_change(deployed: Dict[str, Any], textcat_nlp) -> None:
    plan = run_deploy(textcat_nlp, "reviews", "aws", samples=SAMPLES, dry_run=True, registry=deployed["registry"], **OPTIONS)
    assert plan.noop and plan.version == 1 and plan.facts["stack"] == "CREATE_COMPLETE"
    assert "nothing to change" in plan.text() and "keep  stack nimbus-reviews (CREATE_COMPLETE)" in plan.text()
    assert plan.artifacts == {}  # nothing to build for a stack that stays


def test_jobs_at_deploy_is_planned_then_creates_the_jobs_stack(deployed: Dict[str, Any], textcat_nlp) -> None:
    """``--jobs`` on the unchanged deployment: the dry run lists the jobs stack to create (and creates
    nothing); the deploy makes it in moto's CloudFormation from the synthesized jobs template, keeping the
    deployment's own stack; a dry run after that keeps both."""
    cfn = boto3.client("cloudformation")

    def stacks() -> List[str]:
        return [s["StackName"] for s in cfn.describe_stacks()["Stacks"] if s["StackStatus"] != "DELETE_COMPLETE"]

    dry = run_deploy(textcat_nlp, "reviews", "aws", samples=SAMPLES, dry_run=True, registry=deployed["registry"],
                     jobs=True, **OPTIONS)
    assert not dry.noop and [c.action for c in dry.changes] == ["keep", "create"]
    assert "create  stack nimbus-reviews-jobs: Step Functions state machine (Distributed Map), its role, a staging bucket" in dry.text()
    assert "nimbus-reviews-jobs" not in stacks(), "a dry run creates nothing"
    events: List[Any] = []
    with pytest.raises(EndpointError):  # moto runs no Lambda code: the smoke test fails, as in the fixture
        run_deploy(textcat_nlp, "reviews", "aws", samples=SAMPLES, registry=deployed["registry"], jobs=True,
                   listeners=[events.append], **OPTIONS)
    assert "nimbus-reviews-jobs" in stacks()
    jobs = cfn.describe_stacks(StackName="nimbus-reviews-jobs")["Stacks"][0]
    assert jobs["StackStatus"] == "CREATE_COMPLETE"
    kinds = {r["ResourceType"] for r in cfn.list_stack_resources(StackName="nimbus-reviews-jobs")["StackResourceSummaries"]}
    assert {"AWS::StepFunctions::StateMachine", "AWS::IAM::Role", "AWS::S3::Bucket"} <= kinds
    function = deployed["record"].target_data["lambda_function"]
    assert function in json.dumps(cfn.get_template(StackName="nimbus-reviews-jobs")["TemplateBody"]), "invokes its function"
    assert any(isinstance(e, MessageEvent) and "creating the jobs stack nimbus-reviews-jobs" in e.text for e in events)
    deploy_stage = [e for e in events if isinstance(e, StageEvent) and e.stage == "deploy" and e.state != "running"]
    assert deploy_stage and "jobs stack" in deploy_stage[-1].detail
    again = run_deploy(textcat_nlp, "reviews", "aws", samples=SAMPLES, dry_run=True, registry=deployed["registry"],
                       jobs=True, **OPTIONS)
    assert again.noop and "keep  stack nimbus-reviews-jobs (CREATE_COMPLETE)" in again.text()


def test_a_dry_run_of_a_changed_pipeline_or_options_says_update(deployed: Dict[str, Any], textcat_nlp) -> None:
    changed = run_deploy(textcat_pipeline(epochs=2), "reviews", "aws", samples=SAMPLES, dry_run=True,
                         registry=deployed["registry"], **OPTIONS)
    assert changed.version == 2 and changed.changes[0].action == "update"
    assert "update  stack nimbus-reviews in 123456789012/us-east-1" in changed.text() and "the pipeline changed" in changed.text()
    bigger = run_deploy(textcat_nlp, "reviews", "aws", samples=SAMPLES, dry_run=True, registry=deployed["registry"],
                        **{**OPTIONS, "memory": 2048})
    assert bigger.version == 1 and bigger.changes[0].action == "update" and "the options changed" in bigger.changes[0].why
    assert deployed["registry"].get("reviews").version == 1  # dry runs change nothing


def test_an_update_is_judged_against_the_live_functions_runtime(deployed: Dict[str, Any], textcat_nlp) -> None:
    """The live-state fact ``runtime`` (GetFunctionConfiguration of the stack's function) goes to the
    chooser: the plan says the stack moves off the runtime it runs, and an existing stack is judged by
    AWS's update-block date."""
    lam, function = boto3.client("lambda"), deployed["record"].target_data["lambda_function"]
    deployed_runtime = lam.get_function_configuration(FunctionName=function)["Runtime"]
    lam.update_function_configuration(FunctionName=function, Runtime="python3.12")
    try:
        plan = run_deploy(textcat_nlp, "reviews", "aws", samples=SAMPLES, dry_run=True, registry=deployed["registry"],
                          **{**OPTIONS, "memory": 2048})
    finally:
        lam.update_function_configuration(FunctionName=function, Runtime=deployed_runtime)
    choice = plan.data["runtime_choice"]
    assert plan.facts["runtime"] == "python3.12" and plan.data["stack_exists"] is True
    assert choice["runtime"] == deployed_runtime and choice["how"] == "chosen"
    assert f"the stack runs python3.12 now and moves to {deployed_runtime}" in choice["why"]
    assert plan.notes[0] == next(iter(choice_lines(choice)))


def choice_lines(choice: Dict[str, Any]) -> List[str]:
    from nimbus_jupyter.targets.aws.runtimes import RuntimeChoice

    return RuntimeChoice(**choice).lines()


def test_ten_dry_runs_leave_no_staging_behind_and_keep_the_layer_cache(deployed: Dict[str, Any], textcat_nlp,
                                                                        shared_cache: Path) -> None:
    registry = deployed["registry"]
    for i in range(10):
        plan = run_deploy(textcat_nlp, f"dry-{i}", "aws", samples=SAMPLES, dry_run=True, registry=registry, **OPTIONS)
        assert plan.changes[0].action == "create" and plan.artifacts["assembly"] == "aws/cdk.out"
    staging = registry.home / "staging"
    assert staging.is_dir() and list(staging.iterdir()) == []
    assert [p for p in (shared_cache / "layers").iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert [r.name for r in registry.all()] == ["reviews"]


def test_list_finds_the_stack_from_another_machine(deployed: Dict[str, Any], tmp_path: Path, monkeypatch) -> None:
    from nimbus_jupyter.api import list_deployments
    from nimbus_jupyter.targets.aws import discover

    discover._CACHE.clear()
    monkeypatch.setenv("NIMBUS_HOME", str(tmp_path / "other-machine"))
    found = {d.name: d for d in list_deployments()}
    assert found["reviews"].target == "aws" and found["reviews"].status == "ready"
    assert "deployed from another machine" in found["reviews"].detail


def test_status_is_read_from_cloudformation(deployed: Dict[str, Any]) -> None:
    from nimbus_jupyter.api import get_deployment

    deployment = get_deployment("reviews", deployed["registry"])
    assert deployment.status == "ready" and deployment.target == "aws"


def test_the_record_invokes_the_alias_live_on_a_described_version(deployed: Dict[str, Any]) -> None:
    record = deployed["record"]
    data = record.target_data
    function = data["lambda_function"]
    assert data["function_name"] == f"{function}:live" and data["alias_name"] == "live"
    alias = boto3.client("lambda").get_alias(FunctionName=function, Name="live")
    assert data["alias_arn"] == alias["AliasArn"] and data["lambda_version"] == alias["FunctionVersion"]
    versions = boto3.client("lambda").list_versions_by_function(FunctionName=function)["Versions"]
    described = {v["Version"]: v["Description"] for v in versions}
    assert described[alias["FunctionVersion"]] == f"nimbus v1 hash {record.hash}"
    (only,) = deployed["target"].history(record)
    assert (only.entry.kind, only.entry.version, only.serving, only.available, only.entry.who, only.entry.ref) == (
        "deploy", 1, True, True, ARN, alias["FunctionVersion"])


def test_rollback_moves_the_deployed_alias_back_to_the_stacks_version(deployed: Dict[str, Any]) -> None:
    """moto's CloudFormation cannot update a CDK stack (its update_stack fails on the BootstrapVersion
    parameter), so v2 is published and made live the way the next deploy's stack update would: a
    version described 'nimbus v2 hash ...' and the alias moved to it. Rollback then goes back to the
    version the real deploy published, with one Lambda call."""
    target, record = deployed["target"], deployed["record"]
    lam, function, v1 = boto3.client("lambda"), record.target_data["lambda_function"], record.target_data["lambda_version"]
    lam.update_function_configuration(FunctionName=function, Environment={"Variables": {"NIMBUS_VERSION": "2"}})
    v2 = lam.publish_version(FunctionName=function, Description=f"nimbus v2 hash {'e' * 64}")["Version"]
    lam.update_alias(FunctionName=function, Name="live", FunctionVersion=v2)
    current = record.with_entry(HistoryEntry("deploy", 2, "2026-11-30T00:00:00Z", ARN, "e" * 64, ref=v2)).evolve(
        version=2, hash="e" * 64, target_data={**record.target_data, "lambda_version": v2})

    outcome = target.rollback(current)
    back, result = outcome.record, outcome.result
    assert (result.from_version, result.to_version) == (2, 1)
    assert result.how.startswith(f"moved the Lambda alias 'live' from version {v2} to {v1}; no redeploy")
    assert lam.get_alias(FunctionName=function, Name="live")["FunctionVersion"] == v1
    assert back.version == 1 and back.hash == record.hash
    assert [(r.entry.kind, r.entry.version, r.serving, r.available) for r in target.history(back)] == [
        ("deploy", 1, False, True), ("deploy", 2, False, True), ("rollback", 1, True, True)]


def test_destroy_removes_the_stack_and_says_what_is_left(deployed: Dict[str, Any]) -> None:
    from nimbus_jupyter.api import destroy

    said = destroy("reviews", deployed["registry"])
    assert "deleted the stack nimbus-reviews" in said and "CDKToolkit" in said
    names = [s["StackName"] for s in boto3.client("cloudformation").describe_stacks()["Stacks"]
             if s["StackStatus"] != "DELETE_COMPLETE"]
    assert names == ["CDKToolkit"]
    functions = boto3.client("lambda").list_functions()["Functions"]
    assert functions == []
    assert deployed["registry"].get("reviews") is None


def test_a_failed_deploy_says_why_and_leaves_nothing(deployed: Dict[str, Any], textcat_nlp, tmp_path: Path) -> None:
    """The asset bucket is gone (someone emptied and deleted it): the deploy fails at upload, says so,
    and no stack and no registry entry are left."""
    from nimbus_jupyter.core.errors import DeployFailed

    s3 = boto3.client("s3")
    bucket = next(b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("cdk-hnb659fds-assets-"))
    for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    s3.delete_bucket(Bucket=bucket)
    with pytest.raises(DeployFailed) as caught:
        run_deploy(textcat_nlp, "broken", target="aws", samples=["good"], registry=deployed["registry"])
    assert caught.value.where == "deploy"
    assert "the deploy stopped before CloudFormation created nimbus-broken" in caught.value.what
    assert "No bucket named 'cdk-hnb659fds-assets-123456789012-us-east-1'" in caught.value.what
    assert "nothing was created" in caught.value.todo
    stacks = [s["StackName"] for s in boto3.client("cloudformation").describe_stacks()["Stacks"]
              if s["StackStatus"] != "DELETE_COMPLETE"]
    assert "nimbus-broken" not in stacks
    assert deployed["registry"].get("broken") is None
