"""Batch scoring and the endpoint client over direct ``lambda.invoke``.

Lambda cannot run here, so the function is ``tests/lambda_standin.py``: a stand-in for the Lambda
service on 127.0.0.1 that runs the REAL handler on a REAL bundle of a small trained pipeline, in
its own process. boto3 reaches it through ``AWS_ENDPOINT_URL_LAMBDA`` with dummy credentials, so
signing, serialization, error parsing and botocore's retries all run for real. The AWS target's
live status is stood in too (no CloudFormation stack stands behind these records): they read as ready.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from IPython.core.error import UsageError

import nimbus_jupyter as nj
from nimbus_jupyter.api.checkpoints import CheckpointStore
from nimbus_jupyter.api.deployment import Deployment
from nimbus_jupyter.core.bundle import build_bundle
from nimbus_jupyter.core.errors import EndpointError, UserInputError
from nimbus_jupyter.core.operate import LiveStatus
from nimbus_jupyter.core.records import DeploymentRecord
from nimbus_jupyter.core.registry import Registry
from nimbus_jupyter.endpoint.invoke import LambdaInvokeTransport
from nimbus_jupyter.endpoint.transport import HttpTransport
from nimbus_jupyter.runtime.fields import doc_to_result
from nimbus_jupyter.targets.aws.target import AwsTarget

HERE = Path(__file__).resolve().parent
FUNCTION = "nimbus-reviews-aws"
NAME = "reviews-aws"
WORDS = ["great", "phone", "broken", "laptop", "love", "avoid", "fine", "slow", "fast", "cheap"]
NO_FAULTS = {"throttle": 0, "unhandled": 0, "unhandled_when": None, "max_payload": 6 * 1024 * 1024,
             "gone_after": None, "deny": False}


def reviews(n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 12)))) + f" #{i}" for i in range(n)]


def aws_record(name: str, bundle_hash: str, function_name: str, **target_data: object) -> DeploymentRecord:
    """A registry record as the aws target writes it: the fields this transport reads are the target's
    ``function_name``, ``region``, ``profile`` and ``timeout_s``."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    data = {"function_name": function_name, "region": "us-east-1", "profile": None, "timeout_s": 60, **target_data}
    return DeploymentRecord(name, "aws", url="https://abc123.execute-api.us-east-1.amazonaws.com/prod", version=1,
                            status="ready", hash=bundle_hash, lang="en", components=["textcat", "entity_ruler"],
                            created=now, updated=now, key_file=None, target_data=data)


class StandIn:
    def __init__(self, url: str, proc: subprocess.Popen, bundle_hash: str) -> None:
        self.url, self.proc, self.bundle_hash = url, proc, bundle_hash

    def faults(self, **faults: object) -> None:
        requests.post(f"{self.url}/_standin/faults", json=faults, timeout=5).raise_for_status()

    def stats(self) -> dict:
        return requests.get(f"{self.url}/_standin/stats", timeout=5).json()


def _ready(self: AwsTarget, record: DeploymentRecord) -> LiveStatus:
    """The aws target's live status, stood in: no stack stands behind these records."""
    return LiveStatus("ready")


AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
           "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture(scope="module")
def lam(nimbus_home, textcat_nlp, tmp_path_factory):
    bundle = build_bundle(textcat_nlp, tmp_path_factory.mktemp("function") / "bundle", NAME)
    proc = subprocess.Popen([sys.executable, str(HERE / "lambda_standin.py"), str(bundle.path), FUNCTION],
                            stdout=subprocess.PIPE, text=True, env={**_clean_env(), "NIMBUS_VERSION": "1"})
    port = int(proc.stdout.readline().split()[1])
    url = f"http://127.0.0.1:{port}"
    patch = pytest.MonkeyPatch()
    for key, value in {**AWS_ENV, "AWS_ENDPOINT_URL_LAMBDA": url}.items():
        patch.setenv(key, value)
    patch.delenv("AWS_PROFILE", raising=False)
    patch.setattr(AwsTarget, "live_status", _ready)
    registry = Registry()
    registry.put(aws_record(NAME, bundle.hash, FUNCTION))
    registry.put(aws_record("gone-aws", bundle.hash, "nimbus-gone-aws"))
    try:
        yield StandIn(url, proc, bundle.hash)
    finally:
        registry.remove(NAME)
        registry.remove("gone-aws")
        patch.undo()
        proc.terminate()
        proc.wait(timeout=10)


def _clean_env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


@pytest.fixture(autouse=True)
def no_faults(request):
    if "lam" in request.fixturenames:
        request.getfixturevalue("lam").faults(**NO_FAULTS)


def test_results_equal_the_kernels_in_order_with_the_index_kept(lam, textcat_nlp):
    texts = reviews(200)
    index = np.random.default_rng(1).permutation([f"id-{i}" for i in range(200)])
    before = lam.stats()["predict"]
    df = nj.batch(pd.Series(texts, index=index), NAME, chunk_size=16, progress=False)
    assert df.attrs["nimbus"].via == "invoke"  # the default for an AWS deployment
    assert list(df.index) == list(index) and list(df.text) == texts and (df.error == "").all()
    expected = [doc_to_result(doc, ["ents", "cats"]) for doc in textcat_nlp.pipe(texts)]
    assert df.ents.tolist() == [e["ents"] for e in expected]
    for got, want in zip(df.cats, expected):
        assert got == pytest.approx(want["cats"], abs=1e-5)
    stats = lam.stats()
    assert stats["predict"] - before == 13  # one invoke per chunk: nothing sent twice
    assert stats["unsigned"] == 0  # every invoke was SigV4-signed by botocore
    new = slice(before, None)
    assert set(stats["transport_headers"][new]) == {"invoke"}
    assert len(set(stats["request_ids"][new])) == 13 and None not in stats["request_ids"][new]


def test_throttles_are_retried_by_botocore_and_no_row_is_lost(lam):
    lam.faults(throttle=3)
    df = nj.batch(reviews(64, seed=2), NAME, chunk_size=16, concurrency=2, progress=False)
    summary = df.attrs["nimbus"]
    assert len(df) == 64 and (df.error == "").all()
    assert summary.throttled == 3 and summary.retries >= 3
    assert "(3 throttled)" in summary.text() and "via invoke" in summary.text()
    assert lam.stats()["throttled"] == 3


def test_a_throttle_that_outlasts_the_retries_fails_its_rows_and_is_not_saved(lam):
    texts = reviews(20, seed=3)
    lam.faults(throttle=1000)
    first = nj.batch(texts, NAME, chunk_size=10, concurrency=1, retries=1, progress=False)
    assert first.error.str.startswith("gave up after 1 retries: 429 Lambda throttled").all()
    lam.faults(throttle=0)
    second = nj.batch(texts, NAME, chunk_size=10, progress=False)
    assert (second.error == "").all() and second.attrs["nimbus"].chunks_reused == 0


def test_an_unhandled_function_error_is_retried_then_fails_only_its_chunk(lam):
    lam.faults(unhandled=1)
    df = nj.batch(reviews(30, seed=4), NAME, chunk_size=10, concurrency=1, progress=False)
    assert (df.error == "").all() and df.attrs["nimbus"].retries == 1
    texts = reviews(12, seed=5)
    texts[6] = "this one EXPLODEs the function"
    lam.faults(unhandled_when="EXPLODE")
    before = lam.stats()["unhandled"]
    df = nj.batch(texts, NAME, chunk_size=4, concurrency=1, retries=2, progress=False)
    failed = df.error != ""
    assert failed.tolist() == [False] * 4 + [True] * 4 + [False] * 4  # the chunk holding it
    assert df.error[5].startswith("gave up after 2 retries: 502 the function failed (Unhandled: Runtime.ExitError")
    assert lam.stats()["unhandled"] - before == 3  # first try + 2 retries


def test_a_413_from_lambda_splits_the_chunk_until_the_big_row_is_alone(lam):
    texts = reviews(8, seed=6)
    texts[5] = "long " * 1000  # 5 kB: alone it still breaks the (lowered) payload limit below
    lam.faults(max_payload=4000)
    df = nj.batch(texts, NAME, fields=["ents"], chunk_size=8, progress=False)
    assert (df.error.drop(5) == "").all()
    assert df.error[5].startswith("413: the request is over Lambda's payload limit for a synchronous invoke")
    assert lam.stats()["too_large"] >= 4  # 8 -> 4 -> 2 -> 1


def test_bad_rows_get_their_own_errors(lam):
    values = ["great phone", None, 7, "a" * 1_100_000, "avoid this laptop"]  # 1.1 MB: over spaCy's max_length
    df = nj.batch(values, NAME, fields=["cats"], progress=False)
    assert df.error[0] == df.error[4] == ""
    assert df.error[1] == "missing value (None/NaN): nothing to score" and "a int is not text" in df.error[2]
    assert df.error[3].startswith("413: ") and "max_length" in df.error[3]


def test_a_record_naming_the_alias_invokes_the_alias(lam):
    """The aws target records ``function_name`` as ``<function>:live``: direct invokes reach the
    alias, so a rollback (which moves the alias) moves batch traffic too."""
    registry = Registry()
    registry.put(aws_record("aliased-aws", lam.bundle_hash, f"{FUNCTION}:live", alias_name="live"))
    try:
        before = len(lam.stats()["qualifiers"])
        df = nj.batch(reviews(20, seed=9), "aliased-aws", chunk_size=10, progress=False)
        assert (df.error == "").all() and df.attrs["nimbus"].via == "invoke"
        called = lam.stats()["qualifiers"][before:]
        assert set(called) == {"live"} and len(called) >= 2  # the 2 chunks, and any check before them
    finally:
        registry.remove("aliased-aws")


def test_invokes_are_pinned_to_the_lambda_version_the_record_names(lam):
    """The record names the Lambda version its alias pointed at (target_data.lambda_version): every invoke
    of a batch, the checks before it included, goes to that version as the qualifier, so a rollback or a
    deploy elsewhere (which moves the alias) cannot change the version mid-batch."""
    registry = Registry()
    registry.put(aws_record("pinned-aws", lam.bundle_hash, f"{FUNCTION}:live", alias_name="live",
                            lambda_function=FUNCTION, lambda_version="7"))
    try:
        before = len(lam.stats()["qualifiers"])
        df = nj.batch(reviews(30, seed=11), "pinned-aws", chunk_size=10, progress=False)
        summary = df.attrs["nimbus"]
        assert (df.error == "").all() and summary.version == "1" and summary.bundle_hash == lam.bundle_hash
        called = lam.stats()["qualifiers"][before:]
        assert set(called) == {"7"} and len(called) == 3 + 2  # 3 chunks, /health and /openapi.json
    finally:
        registry.remove("pinned-aws")


def test_a_pinned_version_deleted_mid_batch_stops_it_with_what_was_done(lam):
    registry = Registry()
    registry.put(aws_record("pinned-gone", lam.bundle_hash, f"{FUNCTION}:live", alias_name="live",
                            lambda_function=FUNCTION, lambda_version="7"))
    try:
        lam.faults(gone_after=lam.stats()["predict"] + 2)
        with pytest.warns(Warning, match="went away after 20 of 50 rows"):
            df = nj.batch(reviews(50, seed=12), "pinned-gone", chunk_size=10, concurrency=1, progress=False)
        assert (df.error[:20] == "").all()
        assert df.error[20:].str.startswith("not sent: version 7 of the Lambda function").all()
        assert "%nimbus_history pinned-gone" in df.attrs["nimbus"].stopped
    finally:
        registry.remove("pinned-gone")


def test_a_missing_function_fails_before_any_row_with_what_to_do(lam):
    before = lam.stats()["predict"]
    with pytest.raises(EndpointError) as caught:
        nj.batch(reviews(10), "gone-aws", progress=False)
    message = str(caught.value)
    assert "the Lambda function 'nimbus-gone-aws' of 'gone-aws' does not exist in us-east-1" in message
    assert "%nimbus_deploy PIPELINE --name gone-aws --target aws" in message and "no row was sent" in message
    assert lam.stats()["predict"] == before


def test_access_denied_names_the_missing_permission_before_any_row(lam):
    before = lam.stats()["predict"]
    lam.faults(deny=True)
    with pytest.raises(EndpointError) as caught:
        nj.batch(reviews(10), NAME, progress=False)
    message = str(caught.value)
    assert f"grant lambda:InvokeFunction on the function's ARN (arn:aws:lambda:us-east-1:ACCOUNT:function:{FUNCTION})" in message
    assert "--via http" in message and "no row was sent" in message
    assert lam.stats()["predict"] == before and lam.stats()["denied"] == 1  # the first check stopped it


def test_a_function_deleted_mid_batch_stops_sending_and_a_rerun_resumes(lam):
    texts = reviews(100, seed=7)
    lam.faults(gone_after=lam.stats()["predict"] + 3)
    first = nj.batch(texts, NAME, chunk_size=10, concurrency=1, progress=False)
    assert (first.error[:30] == "").all() and (first.error[30:] != "").all()
    assert first.error[30:].str.contains("does not exist").all()
    lam.faults(gone_after=None)  # deployed again
    before = lam.stats()["predict"]
    second = nj.batch(texts, NAME, chunk_size=10, concurrency=1, progress=False)
    assert (second.error == "").all() and second.text.tolist() == texts
    assert second.attrs["nimbus"].chunks_reused == 3 and lam.stats()["predict"] - before == 7


INTERRUPTED_RUN = textwrap.dedent("""
    import nimbus_jupyter as nj
    from nimbus_jupyter.core.operate import LiveStatus
    from nimbus_jupyter.targets.aws.target import AwsTarget
    AwsTarget.live_status = lambda self, record: LiveStatus("ready")
    texts = [f"text number {i}" for i in range(3000)]
    nj.batch(texts, "reviews-aws", chunk_size=10, concurrency=1, progress=False)
""")


def test_interrupt_then_rerun_sends_only_the_unfinished_chunks(lam):
    import os

    before = lam.stats()["predict"]
    store = CheckpointStore(Registry().home / "checkpoints.sqlite")
    saved_before = store.count(NAME)
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED_RUN], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ))
    deadline = time.time() + 120
    while lam.stats()["predict"] - before < 10 and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "Interrupted: batch: batch on 'reviews-aws' interrupted: " in err
    assert "the finished chunks are saved" in err and "to resume" in err
    saved = store.count(NAME) - saved_before
    store.close()
    assert 0 < saved < 300
    sent = lam.stats()["predict"]
    df = nj.batch([f"text number {i}" for i in range(3000)], NAME, chunk_size=10, progress=False)
    assert (df.error == "").all() and len(df) == 3000
    assert df.attrs["nimbus"].chunks_reused == saved and lam.stats()["predict"] - sent == 300 - saved


def test_the_invoke_client_answers_like_the_http_client(lam, textcat_nlp):
    d = nj.get_deployment(NAME)
    client = d.client()
    assert isinstance(client.transport, LambdaInvokeTransport) and isinstance(d.client(via="http").transport, HttpTransport)
    health = client.health()
    assert health["status"] == "ok" and health["version"] == "1" and health["default_fields"] == ["ents", "cats"]
    assert "PredictRequest" in client.openapi()["components"]["schemas"]
    answer = client.predict(["great phone", "broken laptop"], ["ents"])
    assert answer["fields"] == ["ents"] and answer["version"] == "1"
    assert answer["results"] == [doc_to_result(doc, ["ents"]) for doc in textcat_nlp.pipe(["great phone", "broken laptop"])]
    assert d.predict("great phone", ["ents"]) == answer["results"][:1]
    with pytest.raises(EndpointError, match="answered 400: unknown field 'colour'"):
        client.predict(["x"], ["colour"])
    with pytest.raises(EndpointError, match="does not exist in us-east-1"):
        nj.get_deployment("gone-aws").client().health()


def test_how_a_deployment_chooses_its_transport(nimbus_home):
    aws = Deployment.from_record(aws_record("r", "h", "fn"))
    assert aws.transport().kind == "invoke" and aws.transport("http").kind == "http"
    invoke = aws.transport("invoke")
    assert (invoke.function_name, invoke.region, invoke.deployment) == ("fn", "us-east-1", "r")
    no_function = Deployment.from_record(aws_record("r", "h", None))
    assert no_function.transport().kind == "http"
    with pytest.raises(UserInputError, match="names no Lambda function"):
        no_function.transport("invoke")
    local = Deployment.from_record(DeploymentRecord("loc", "local", url="http://127.0.0.1:1"))
    assert local.transport().kind == "http" and local.transport().where == "http://127.0.0.1:1"
    with pytest.raises(UserInputError, match="runs on the local target, which has no Lambda function to invoke"):
        local.transport("invoke")
    with pytest.raises(UserInputError, match="via must be 'invoke' or 'http', not 'pigeon'"):
        aws.transport("pigeon")


def test_via_in_the_batch_magic(lam, ip, capsys):
    ip.user_ns["df"] = pd.DataFrame({"review": reviews(20)}, index=[f"r{i}" for i in range(20)])
    result = ip.run_cell(f'%%nimbus_batch {NAME} --via invoke --out scored\ndf["review"]')
    assert result.success, result.error_in_exec
    assert list(ip.user_ns["scored"].index) == [f"r{i}" for i in range(20)] and (ip.user_ns["scored"].error == "").all()
    assert "via invoke" in capsys.readouterr().out
    result = ip.run_cell(f'%%nimbus_batch {NAME} --via pigeon\ndf["review"]')
    assert isinstance(result.error_in_exec, UsageError) and "--via pigeon: choose invoke or http" in str(result.error_in_exec)
    Registry().put(DeploymentRecord("loc", "local", url="http://127.0.0.1:9", version=1, hash="h"))
    try:
        result = ip.run_cell('%%nimbus_batch loc --via invoke\ndf["review"]')
        assert isinstance(result.error_in_exec, UsageError)
        assert "runs on the local target, which has no Lambda function to invoke" in str(result.error_in_exec)
    finally:
        Registry().remove("loc")
