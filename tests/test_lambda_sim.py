"""The Lambda stand-in of the scale bench (bench/lambda_sim.py) behaves as its docstring says, through
boto3's real lambda client, the project's ``LambdaInvokeTransport`` and ``nimbus_jupyter.batch`` unchanged:
the Invoke wire and the handler's answers, 429 ``TooManyRequestsException`` past the concurrency limit and
past the scaling rate, a cold start per new environment and none for a warm one, both payload limits. And
``batch(arrow=True)`` gives the same values as the default in a fraction of the memory's columns.

Bounded: small stand-ins (limits of 2-4), a few hundred rows; no assertion on a time.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import boto3
import pandas as pd
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

import nimbus_jupyter as nj
from nimbus_jupyter.api.result_columns import ResultColumns
from nimbus_jupyter.core.operate import LiveStatus
from nimbus_jupyter.core.records import DeploymentRecord, now_iso
from nimbus_jupyter.core.registry import Registry
from nimbus_jupyter.endpoint.invoke import LambdaInvokeTransport, proxy_event
from nimbus_jupyter.targets.aws.target import AwsTarget

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))
from lambda_sim import fake_ents, reviews  # noqa: E402

FUNCTION = "nimbus-sim"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
           "AWS_EC2_METADATA_DISABLED": "true"}

# the stand-in's flags per test: small limits, short times
WIRE = ("--ms-per-text", "1", "--init-s", "0.2", "--rtt-ms", "5", "--version", "3", "--hash", "h3")
LIMITED = ("--ms-per-text", "100", "--init-s", "0.2", "--rtt-ms", "5", "--limit", "3")
SCALING = ("--ms-per-text", "50", "--init-s", "0.1", "--rtt-ms", "5", "--limit", "10", "--scaling", "2")
PAYLOADS = ("--ms-per-text", "0.01", "--init-s", "0", "--rtt-ms", "1")
BATCH = ("--ms-per-text", "5", "--init-s", "0.05", "--rtt-ms", "5", "--limit", "3", "--hash", "sim-hash")


class Sim:
    def __init__(self, *flags: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(BENCH / "lambda_sim.py"), "--function", FUNCTION, *flags],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("port "), line
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def stats(self) -> dict:
        return requests.get(f"{self.url}/_sim/stats", timeout=5).json()

    def lambda_client(self, pool: int = 10):
        return boto3.client("lambda", endpoint_url=self.url, config=Config(
            retries={"total_max_attempts": 1}, max_pool_connections=pool, read_timeout=60))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def aws_env(monkeypatch):
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def sim(request, aws_env) -> Iterator[Sim]:
    s = Sim(*request.param)
    try:
        yield s
    finally:
        s.stop()


def _predict_payload(texts, **headers) -> bytes:
    return json.dumps(proxy_event("POST", "/predict", json.dumps({"texts": texts}).encode(), headers)).encode()


def _invoke_all(client, payloads):
    """Invoke each payload from its own thread, all released together; the answers or the errors."""
    barrier, out = threading.Barrier(len(payloads)), [None] * len(payloads)

    def one(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            out[i] = client.invoke(FunctionName=FUNCTION, Payload=payloads[i])
        except ClientError as exc:
            out[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(payloads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return out


@pytest.mark.parametrize("sim", [WIRE], indirect=True, ids=["sim"])
def test_the_invoke_wire_answers_what_the_handler_answers_and_a_warm_environment_has_no_cold_start(sim):
    client = sim.lambda_client()
    health = client.invoke(FunctionName=f"{FUNCTION}:3", Payload=json.dumps(proxy_event("GET", "/health", None)))
    envelope = json.loads(health["Payload"].read())
    assert health["StatusCode"] == 200 and "FunctionError" not in health and health["ExecutedVersion"] == "3"
    assert envelope["statusCode"] == 200 and json.loads(envelope["body"])["version"] == "3"
    texts = reviews(5)
    answer = client.invoke(FunctionName=FUNCTION, Qualifier="3", Payload=_predict_payload(texts))
    body = json.loads(json.loads(answer["Payload"].read())["body"])
    assert body["results"] == [{"ents": fake_ents(t)} for t in texts] and body["version"] == "3"
    assert all(r["ents"] for r in body["results"])  # entities of the size a review has
    pinned = client.invoke(FunctionName=FUNCTION, Payload=_predict_payload(texts, **{"x-nimbus-expect-version": "2"}))
    refused = json.loads(pinned["Payload"].read())
    assert refused["statusCode"] == 409 and json.loads(refused["body"])["error"] == "version_changed"
    with pytest.raises(ClientError) as gone:
        client.invoke(FunctionName="nimbus-other", Payload=_predict_payload(texts))
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"
    stats = sim.stats()
    # one environment, used one invoke at a time: one cold start, the others warm
    assert stats["cold_starts"] == 1 and stats["environments"] == 1
    assert stats["invokes"] == 4 and stats["predict"] == 1 and stats["not_found"] == 1  # the 409 ran no pipeline
    assert stats["qualifiers"] == {"3": 2, "$LATEST": 2} and stats["unsigned"] == 0  # boto3 signed every one


@pytest.mark.parametrize("sim", [LIMITED], indirect=True, ids=["sim"])
def test_past_the_concurrency_limit_an_invoke_is_throttled_as_lambda_does_and_nothing_runs(sim):
    client = sim.lambda_client(pool=8)
    answers = _invoke_all(client, [_predict_payload(reviews(10, seed=i)) for i in range(8)])
    throttled = [a for a in answers if isinstance(a, ClientError)]
    assert throttled and len(throttled) + sum(1 for a in answers if isinstance(a, dict)) == 8
    for exc in throttled:
        response = exc.response
        assert response["Error"]["Code"] == "TooManyRequestsException"
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "TooManyRequestsException"
        assert response["Reason"] == "ConcurrentInvocationLimitExceeded" and response["Type"] == "User"
    stats = sim.stats()
    assert stats["max_running"] <= 3 and stats["environments"] <= 3
    assert stats["predict"] == 8 - len(throttled)  # a throttled invoke ran nothing
    # through the project's transport, a throttle is a 429 that says nothing ran: the three environments kept
    # busy (30 texts of 100 ms each), the transport's invoke meets the limit
    long = [threading.Thread(target=client.invoke, kwargs={"FunctionName": FUNCTION,
                                                            "Payload": _predict_payload(reviews(30))}) for _ in range(3)]
    for t in long:
        t.start()
    for _ in range(200):  # bounded: until the three run (a few hundred ms)
        if sim.stats()["running"] == 3:
            break
        time.sleep(0.05)
    transport = LambdaInvokeTransport(FUNCTION, region="us-east-1", concurrency=4)
    transport.client = client
    reply = transport.send("POST", "/predict", json.dumps({"texts": ["x"]}).encode(), {"Content-Type": "application/json"})
    assert reply.status == 429 and "TooManyRequestsException" in reply.message
    for t in long:
        t.join(timeout=60)


@pytest.mark.parametrize("sim", [SCALING], indirect=True, ids=["sim"])
def test_past_the_scaling_rate_an_invoke_is_throttled_until_environments_are_made(sim):
    answers = _invoke_all(sim.lambda_client(pool=6), [_predict_payload(reviews(10, seed=i)) for i in range(6)])
    throttled = [a for a in answers if isinstance(a, ClientError)]
    stats = sim.stats()
    # 2 new environments per 10 s: the first two invokes made them, the others found none to be had
    assert stats["environments"] <= 3 and stats["cold_starts"] == stats["environments"]
    assert len(throttled) >= 3 and all(t.response["Error"]["Code"] == "TooManyRequestsException" for t in throttled)


@pytest.mark.parametrize("sim", [PAYLOADS], indirect=True, ids=["sim"])
def test_both_payload_limits_reach_the_transport_as_lambda_and_the_handler_say_them(sim, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", sim.url)
    transport = LambdaInvokeTransport(FUNCTION, region="us-east-1")
    big = json.dumps({"texts": ["x" * 1000] * 6500}).encode()  # 6.5 MB: over the request limit
    reply = transport.send("POST", "/predict", big, {"Content-Type": "application/json"})
    assert reply.status == 413 and "payload limit" in reply.message
    # an answer over 6,291,556 bytes as the runtime serializes it: the handler's own 413
    many = json.dumps({"texts": [" ".join(["Berlin"] * 2000)] * 90}).encode()  # 1.1 MB in, ~9 MB of entities out
    reply = transport.send("POST", "/predict", many, {"Content-Type": "application/json"})
    assert reply.status == 413 and reply.code == "response_too_large"
    stats = sim.stats()
    assert stats["too_large"] == 1 and stats["response_too_large"] == 1


def _record(name: str) -> DeploymentRecord:
    data = {"function_name": f"{FUNCTION}:live", "lambda_function": FUNCTION, "lambda_version": "1",
            "region": "us-east-1", "profile": None, "timeout_s": 60}
    return DeploymentRecord(name, "aws", url="https://abc.execute-api.us-east-1.amazonaws.com/prod", version=1,
                            status="ready", hash="sim-hash", lang="en", components=["ner"], created=now_iso(),
                            updated=now_iso(), target_data=data)


@pytest.mark.parametrize("sim", [BATCH], indirect=True, ids=["sim"])
def test_the_real_batch_drives_it_throttles_are_retried_and_arrow_columns_hold_the_same_values(sim, nimbus_home,
                                                                                              monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", sim.url)
    monkeypatch.setattr(AwsTarget, "live_status", lambda self, record: LiveStatus("ready"))  # no stack behind it
    registry = Registry()
    registry.put(_record("sim"))
    try:
        texts = reviews(300, seed=5) + [None]
        plain = nj.batch(texts, "sim", chunk_size=10, concurrency=8, progress=False)
        summary = plain.attrs["nimbus"]
        assert summary.via == "invoke" and summary.failed == 1 and summary.throttled > 0  # 8 in flight, 3 allowed
        assert plain.ents[:300].tolist() == [fake_ents(t) for t in texts[:300]] and plain.ents[300] is None
        # every invoke (health, openapi, each request and each retry) named the record's Lambda version
        assert sim.stats()["qualifiers"] == {"1": summary.requests + summary.retries + 2}
        compact = nj.batch(texts, "sim", chunk_size=10, concurrency=8, progress=False, resume=False, arrow=True)
        assert isinstance(compact.ents.dtype, pd.ArrowDtype) and not isinstance(plain.ents.dtype, pd.ArrowDtype)
        assert compact.ents[:300].tolist() == plain.ents[:300].tolist() and pd.isna(compact.ents[300])
        assert compact.error.tolist() == plain.error.tolist() and compact.text.tolist() == plain.text.tolist()
    finally:
        registry.remove("sim")


def test_a_value_outside_the_contracts_shape_keeps_its_field_as_python_objects():
    columns = ResultColumns(3, ["ents"], arrow=True)
    columns.place([0], [{"result": {"ents": [{"text": "A", "label": "ORG", "start": 0, "end": 1}]}}], "1")
    odd = [{"text": "B", "label": "ORG", "start": 0, "end": 1, "kb_id": "Q1"}]  # a key the contract does not have
    columns.place([2, 1], [{"result": {"ents": odd}}, {"error": "boom"}], "1")
    frame = columns.frame(pd, pd.RangeIndex(3), ["a", "b", "c"])
    assert not isinstance(frame.ents.dtype, pd.ArrowDtype)
    assert frame.ents.tolist() == [[{"text": "A", "label": "ORG", "start": 0, "end": 1}], None, odd]
    assert frame.error.tolist() == ["", "boom", ""]


@pytest.mark.parametrize("sim", [BATCH], indirect=True, ids=["sim"])
def test_an_arrow_batch_saves_its_chunks_and_a_second_run_reuses_every_one(sim, nimbus_home, monkeypatch):
    """arrow=True makes each chunk's rows Arrow arrays in the worker that decoded them: the checkpoint still
    gets every finished chunk, and the same batch again sends nothing and gives the same frame."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", sim.url)
    monkeypatch.setattr(AwsTarget, "live_status", lambda self, record: LiveStatus("ready"))
    registry = Registry()
    registry.put(_record("sim"))
    try:
        texts = reviews(200, seed=9) + [None] + reviews(40, seed=10)
        first = nj.batch(texts, "sim", chunk_size=10, concurrency=4, progress=False, arrow=True)
        requests_before = sim.stats()["qualifiers"]["1"]
        again = nj.batch(texts, "sim", chunk_size=10, concurrency=4, progress=False, arrow=True)
        summary = again.attrs["nimbus"]
        assert summary.chunks_reused == summary.chunks == first.attrs["nimbus"].chunks and summary.requests == 0
        assert sim.stats()["qualifiers"]["1"] == requests_before + 2  # only /health and /openapi.json
        assert first.ents.tolist()[:200] == [fake_ents(t) for t in texts[:200]] and pd.isna(first.ents[200])
        assert again.ents.tolist()[:200] == first.ents.tolist()[:200] and again.ents.tolist()[201:] == first.ents.tolist()[201:]
        assert again.dtypes.to_dict() == first.dtypes.to_dict() and again.error.tolist() == first.error.tolist()
        assert isinstance(again.ents.dtype, pd.ArrowDtype)
    finally:
        registry.remove("sim")
