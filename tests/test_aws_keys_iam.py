"""``--auth iam`` and ``rotate_key`` on the aws target, against moto's API Gateway and a gateway stand-in.

moto stores API keys and usage plans (and answers every call rotation makes) but serves no stage, so the
HTTP front is ``tests/gateway_standin.py``: it decides as API Gateway does (the key must be one moto holds,
enabled, in the API's usage plan, and old enough to have propagated; or a valid SigV4 signature), then
invokes the REAL handler on a REAL bundle (``tests/lambda_standin.py``). The keys are what moto's API
Gateway holds, made by hand as the stack would (moto's CloudFormation makes no API keys).
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import boto3
import pytest
import requests

import nimbus_jupyter as nj
from gateway_standin import GatewayStandIn
from nimbus_jupyter.api import rotate_key
from nimbus_jupyter.api.deployment import Deployment
from nimbus_jupyter.core.bundle import build_bundle
from nimbus_jupyter.core.errors import DeployFailed, EndpointError, UserInputError
from nimbus_jupyter.core.files import write_secret
from nimbus_jupyter.core.operate import LiveStatus
from nimbus_jupyter.core.records import DeploymentRecord, now_iso
from nimbus_jupyter.core.registry import Registry
from nimbus_jupyter.runtime.fields import doc_to_result
from nimbus_jupyter.targets.aws.target import AwsTarget

HERE = Path(__file__).resolve().parent
FUNCTION = "nimbus-keyed-fn"
TEXTS = ["great phone", "arrived broken, avoid the laptop", "love it"]
pytestmark = pytest.mark.timeout(600)


def _clean_env() -> Dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


@pytest.fixture(scope="module")
def function(nimbus_home, moto_env, textcat_nlp, tmp_path_factory) -> Iterator[str]:
    """The Lambda stand-in running the real handler on the textcat bundle; yields its endpoint URL."""
    bundle = build_bundle(textcat_nlp, tmp_path_factory.mktemp("fn") / "bundle", "keyed")
    proc = subprocess.Popen([sys.executable, str(HERE / "lambda_standin.py"), str(bundle.path), FUNCTION],
                            stdout=subprocess.PIPE, text=True, env={**_clean_env(), "NIMBUS_VERSION": "1"})
    try:
        port = int(proc.stdout.readline().split()[1])
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def ready_status() -> Iterator[None]:
    """No CloudFormation stack stands behind these records: their live status reads ready."""
    patch = pytest.MonkeyPatch()
    patch.setattr(AwsTarget, "live_status", lambda self, record: LiveStatus("ready"))
    yield
    patch.undo()


def _lambda(url: str) -> Any:
    return boto3.client("lambda", endpoint_url=url, region_name="us-east-1")


@pytest.fixture(scope="module")
def keyed(function, ready_status) -> Iterator[Dict[str, Any]]:
    """What the stack's key part makes (REST API, usage plan on stage v1, the key in it) in moto's API
    Gateway, the gateway in front, and the registry record the aws target writes for it."""
    apigw = boto3.client("apigateway")
    api = apigw.create_rest_api(name="nimbus-keyed")
    plan = apigw.create_usage_plan(name="nimbus-keyed", apiStages=[{"apiId": api["id"], "stage": "v1"}],
                                   throttle={"rateLimit": 50, "burstLimit": 100})
    key = apigw.create_api_key(name="nimbus-keyed-ApiKey", enabled=True)
    apigw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    registry = Registry()
    key_file = write_secret(registry.deployment_dir("keyed") / "api_key", key["value"])
    with GatewayStandIn(FUNCTION, _lambda(function), "key", apigw, api["id"]) as gateway:
        now = now_iso()
        record = DeploymentRecord("keyed", "aws", url=gateway.url, version=1, status="ready", lang="en",
                                  components=["textcat", "entity_ruler"], created=now, updated=now,
                                  key_file=str(key_file), target_data={
                                      "region": "us-east-1", "stack_name": "nimbus-keyed", "api_key_id": key["id"],
                                      "usage_plan_id": plan["id"], "auth": "key"})
        registry.put(record)
        yield {"apigw": apigw, "gateway": gateway, "registry": registry, "stack_key": key, "plan": plan["id"]}
        registry.remove("keyed")


def _health(url: str, key: str) -> int:
    return requests.get(f"{url}/health", headers={"x-api-key": key}, timeout=10).status_code


def _key_ids(apigw: Any) -> List[str]:
    return sorted(k["id"] for k in apigw.get_api_keys()["items"])


def test_rotation_makes_a_new_key_work_before_the_old_one_goes(keyed) -> None:
    apigw, gateway, registry = keyed["apigw"], keyed["gateway"], keyed["registry"]
    old = keyed["stack_key"]
    gateway.propagate(3)  # a new key is refused for 3 s, as API Gateway's are for a few seconds
    said: List[str] = []
    old_key_while_waiting: List[int] = []

    def on_message(line: str) -> None:
        said.append(line)
        if "not accepted yet" in line:  # no downtime: the key file still holds the old key, which still works
            old_key_while_waiting.append(_health(gateway.url, Path(registry.get("keyed").key_file).read_text()))

    rotation = rotate_key("keyed", registry, on_message=on_message, timeout_s=30)
    record = registry.get("keyed")
    new_value = Path(record.key_file).read_text()
    assert new_value != old["value"] and old_key_while_waiting == [200]
    assert any("the new API key is not accepted yet (403); waiting up to 30 s for API Gateway" in line for line in said)
    assert rotation.waited_s >= 2 and rotation.old_key_id == old["id"] and "disabled" in rotation.old_key
    assert record.target_data["api_key_id"] == rotation.new_key_id and record.target_data["api_key_rotated"] is True
    assert _health(gateway.url, new_value) == 200 and _health(gateway.url, old["value"]) == 403
    # in API Gateway: the stack's own key disabled (CloudFormation still finds it), the new one in the usage plan
    assert apigw.get_api_key(apiKey=old["id"])["enabled"] is False
    in_plan = [k["id"] for k in apigw.get_usage_plan_keys(usagePlanId=keyed["plan"])["items"]]
    assert rotation.new_key_id in in_plan
    tags = apigw.get_api_key(apiKey=rotation.new_key_id)["tags"]
    assert tags["nimbus:deployment"] == "keyed" and tags["nimbus:rotated-from"] == old["id"]
    assert Deployment.from_record(record, registry=registry).client(via="http").predict(["great phone"])["results"]


def test_a_second_rotation_deletes_the_key_the_first_one_made(keyed) -> None:
    apigw, registry = keyed["apigw"], keyed["registry"]
    keyed["gateway"].propagate(0)
    first = registry.get("keyed").target_data["api_key_id"]
    rotation = rotate_key("keyed", registry, timeout_s=30)
    assert rotation.old_key_id == first and rotation.old_key == "deleted"
    assert first not in _key_ids(apigw) and keyed["stack_key"]["id"] in _key_ids(apigw)
    assert _health(keyed["gateway"].url, Path(registry.get("keyed").key_file).read_text()) == 200


def test_a_new_key_that_never_works_changes_nothing(keyed) -> None:
    apigw, gateway, registry = keyed["apigw"], keyed["gateway"], keyed["registry"]
    before, keys = registry.get("keyed"), _key_ids(apigw)
    value = Path(before.key_file).read_text()
    gateway.propagate(10_000)
    try:
        with pytest.raises(DeployFailed) as failed:
            rotate_key("keyed", registry, timeout_s=3)
    finally:
        gateway.propagate(0)
    assert "still refused (403)" in failed.value.what and "nothing changed" in failed.value.todo
    assert Path(before.key_file).read_text() == value and _key_ids(apigw) == keys
    assert registry.get("keyed").target_data == before.target_data and _health(gateway.url, value) == 200


def test_the_magic_rotates_and_says_each_step(keyed, ip, capsys) -> None:
    ip.run_line_magic("nimbus_rotate_key", "keyed --timeout 20")
    out = capsys.readouterr().out
    assert "created the API key" in out and "the key file" in out and "keyed: the API key is rotated" in out
    assert _health(keyed["gateway"].url, Path(keyed["registry"].get("keyed").key_file).read_text()) == 200


def test_another_machine_adopting_the_stack_gets_the_rotated_key(keyed, tmp_path, monkeypatch) -> None:
    """The stack still names its own key (now disabled): adopting finds the enabled key rotate_key tagged."""
    import json

    from nimbus_jupyter.targets.aws import discover

    registry, apigw = keyed["registry"], keyed["apigw"]
    current = registry.get("keyed")
    outputs = {"Url": keyed["gateway"].url, "ApiKeyId": keyed["stack_key"]["id"], "UsagePlanId": keyed["plan"],
               "FunctionName": FUNCTION}
    template = {"Resources": {"Marker": {"Type": "AWS::SSM::Parameter", "Properties": {"Name": "nimbus-keyed-marker", "Type": "String", "Value": "x"}}},
                "Outputs": {k: {"Value": v} for k, v in outputs.items()}}
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(StackName="nimbus-keyed", TemplateBody=json.dumps(template),
                                Tags=[{"Key": "nimbus:deployment", "Value": "keyed"},
                                      {"Key": "nimbus:managed-by", "Value": "nimbus-jupyter"}])
    try:
        monkeypatch.setenv("NIMBUS_HOME", str(tmp_path / "other-machine"))
        other = Registry()
        adopted = discover.adopt("keyed", other)
    finally:
        cloudformation.delete_stack(StackName="nimbus-keyed")
    assert adopted is not None and adopted.target_data["api_key_rotated"] is True
    assert adopted.target_data["api_key_id"] == current.target_data["api_key_id"]
    assert Path(adopted.key_file).read_text() == Path(current.key_file).read_text()
    assert adopted.target_data["auth"] == "key" and adopted.target_data["usage_plan_id"] == keyed["plan"]


def test_the_local_target_refuses_and_says_why_and_what_to_do(nimbus_home) -> None:
    registry = Registry()
    registry.put(DeploymentRecord("here", "local", url="http://127.0.0.1:1", version=1, status="ready",
                                  created=now_iso(), updated=now_iso()))
    try:
        with pytest.raises(UserInputError) as refused:
            rotate_key("here", registry)
        assert "cannot be rotated in place" in refused.value.what and "reads the key once" in refused.value.what
        assert "%nimbus_destroy here" in refused.value.todo and "rotate_key is for --target aws" in refused.value.todo
    finally:
        registry.remove("here")


def test_destroy_deletes_a_rotated_key_the_stack_does_not_know(keyed) -> None:
    """Last: the rotated key lives outside the stack, so destroy removes it after the stack (none here)."""
    apigw, registry = keyed["apigw"], keyed["registry"]
    record = registry.get("keyed")
    rotated = record.target_data["api_key_id"]
    said = AwsTarget(registry).destroy(record)
    assert "deleted the stack nimbus-keyed" in said and rotated not in _key_ids(apigw)


# ----------------------------------------------------------------------------------------------- --auth iam

@pytest.fixture(scope="module")
def signed(function, ready_status) -> Iterator[Dict[str, Any]]:
    with GatewayStandIn(FUNCTION, _lambda(function), "iam", secrets={"testing": "testing"}) as gateway:
        registry = Registry()
        now = now_iso()
        record = DeploymentRecord("signed", "aws", url=gateway.url, version=1, status="ready", lang="en",
                                  components=["textcat", "entity_ruler"], created=now, updated=now, key_file=None,
                                  target_data={"region": "us-east-1", "stack_name": "nimbus-signed", "auth": "iam",
                                               "function_name": FUNCTION})
        registry.put(record)
        yield {"gateway": gateway, "registry": registry, "record": record}
        registry.remove("signed")


def test_predict_over_http_is_signed_with_sigv4_and_answers_the_kernels_results(signed, textcat_nlp) -> None:
    deployment = Deployment.from_record(signed["record"], registry=signed["registry"])
    client = deployment.client(via="http")
    try:
        answer = client.predict(TEXTS, ["cats", "ents"])
    finally:
        client.close()
    expected = [doc_to_result(doc, ["cats", "ents"]) for doc in textcat_nlp.pipe(TEXTS)]
    assert answer["results"] == expected
    assert signed["gateway"].passed[-1] == "testing" and not signed["gateway"].refused


def test_batch_over_http_is_signed_on_every_request(signed, textcat_nlp) -> None:
    texts = [f"{t} #{i}" for i in range(150) for t in TEXTS[:1]]
    before = len(signed["gateway"].passed)
    frame = nj.batch(texts, "signed", via="http", chunk_size=32, progress=False, registry=signed["registry"],
                     resume=False)
    assert len(frame) == 150 and list(frame["cats"]) == [doc_to_result(d, ["cats"])["cats"] for d in textcat_nlp.pipe(texts)]
    assert len(signed["gateway"].passed) - before >= 5 and not signed["gateway"].refused  # 150 / 32 chunks, all signed


def test_a_wrong_secret_or_no_signature_is_refused_by_the_gateway(signed, monkeypatch) -> None:
    url = signed["gateway"].url
    unsigned = requests.post(f"{url}/predict", json={"texts": ["hi"]}, timeout=10)
    assert unsigned.status_code == 403 and unsigned.json() == {"message": "Missing Authentication Token"}
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    deployment = Deployment.from_record(signed["record"], registry=signed["registry"])
    with pytest.raises(EndpointError) as refused:
        deployment.client(via="http").predict(["hi"])
    assert "signature we calculated does not match" in str(refused.value)
    assert signed["gateway"].refused[-1][0] == "/predict"


def test_an_iam_deployment_has_no_key_to_rotate(signed) -> None:
    with pytest.raises(UserInputError) as refused:
        rotate_key("signed", signed["registry"])
    assert "uses IAM auth" in refused.value.what and "rotate the AWS credentials" in refused.value.todo


# ------------------------------------------------------------------- the deploy waits for a new key

def test_a_deploy_with_a_new_key_waits_for_it_before_the_smoke_test_and_says_so(keyed) -> None:
    from nimbus_jupyter.core.plan import BundleRef, Plan
    from nimbus_jupyter.core.progress import MessageEvent, Progress
    from nimbus_jupyter.targets.aws import apply
    from nimbus_jupyter.targets.aws.aws_client import AwsClient, StackInfo
    from nimbus_jupyter.targets.aws.preflight import PreflightFacts

    apigw, gateway = keyed["apigw"], keyed["gateway"]
    gateway.propagate(2)
    key = apigw.create_api_key(name="nimbus-fresh-ApiKey", enabled=True)
    apigw.create_usage_plan_key(usagePlanId=keyed["plan"], keyId=key["id"], keyType="API_KEY")
    stack = StackInfo("nimbus-fresh", "CREATE_COMPLETE", "", {"Url": gateway.url, "ApiKeyId": key["id"],
                                                              "UsagePlanId": keyed["plan"]}, {}, "", "")
    plan = Plan("fresh", "aws", 1, [], BundleRef("bundle", "f" * 64, 10, "en", ["textcat"]),
                data={"spec": {"model_mode": "inline", "timeout_s": 60, "auth": "key"}, "stack_options": {}})
    events: List[Any] = []
    registry = keyed["registry"]
    started = time.monotonic()
    try:
        record = apply._record(registry, plan, stack, AwsClient(boto3.Session()),
                               PreflightFacts(None, "us-east-1", "123456789012", "arn:aws:sts::123456789012:user/moto"),
                               "aws", Progress(["deploy"], [events.append]))
    finally:
        gateway.propagate(0)
    messages = [e.text for e in events if isinstance(e, MessageEvent)]
    assert messages == ["the new API key is not accepted yet (403); waiting up to 60 s for API Gateway"]
    assert time.monotonic() - started >= 1.5 and Path(record.key_file).read_text() == key["value"]
    assert _health(gateway.url, key["value"]) == 200
    # deployed again after a rotation: the key rotate_key made is kept, not the stack's; once it is
    # disabled (say, by hand), the stack's key is written back
    client, path = AwsClient(boto3.Session()), Path(record.key_file)
    other = apigw.create_api_key(name="nimbus-fresh-rotated", enabled=True)
    write_secret(path, other["value"])
    before = apply.AwsState(**{**apply.AwsState.of(record).data(), "api_key_id": other["id"], "api_key_rotated": True})
    assert apply._save_key(path, stack, client, before, iam=False) == (path, other["id"], True)
    assert path.read_text() == other["value"]
    apigw.update_api_key(apiKey=other["id"], patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}])
    assert apply._save_key(path, stack, client, before, iam=False) == (path, key["id"], False)
    assert path.read_text() == key["value"]
