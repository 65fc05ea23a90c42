"""One bad text fails one row: when the pipeline raises on a chunk, the runtime re-runs it text by text
and answers every row in the same 200, the failing ones as ``{"error": {"type", "message"}}`` (never the
text). The batch client puts those errors on their rows without retrying or splitting anything."""
from __future__ import annotations

import json
import math

import pytest
import requests

import nimbus_jupyter as nj
from nimbus_jupyter.core.bundle import build_bundle
from nimbus_jupyter.runtime import handler as runtime
from pipelines import fails_on_pipeline

SECRET = "Zanzibar-7f3e91 card 4111 1111 1111 1111"


def event(texts, fields=None):
    body = {"texts": texts, **({"fields": fields} if fields else {})}
    return {"path": "/predict", "httpMethod": "POST", "headers": {"Content-Type": "application/json"},
            "body": json.dumps(body), "requestContext": {"requestId": "req-rows-1"}}


@pytest.fixture(scope="module")
def touchy_runtime(tmp_path_factory):
    bundle = build_bundle(fails_on_pipeline(), tmp_path_factory.mktemp("b") / "touchy", "touchy", namespace={})
    runtime._loaded = None
    yield runtime.load(str(bundle.path))
    runtime._loaded = None


def test_a_raising_text_is_its_rows_error_and_the_others_are_answered(touchy_runtime, capfd):
    texts = ["fine", f"{SECRET} EXPLODE", "also fine", "it will EXPLODE now"]
    answer = runtime.handler(event(texts), None)
    assert answer["statusCode"] == 200
    body = json.loads(answer["body"])
    assert body["errors"] == 2 and len(body["results"]) == 4
    assert body["results"][0] == body["results"][2] == {"cats": {"OK": 1.0}}
    for i in (1, 3):
        assert set(body["results"][i]) == {"error"}
        error = body["results"][i]["error"]
        assert error["type"] == "ValueError" and "it contains EXPLODE" in error["message"]
    assert "<the text: " in body["results"][1]["error"]["message"]  # the component quoted it; we did not
    assert "Zanzibar" not in answer["body"] and "4111" not in answer["body"]
    log = capfd.readouterr().err
    assert "request req-rows-1 failed on texts[1]" in log and "ValueError" in log and "Zanzibar" not in log
    assert runtime.rows_failed_in_last_request() == 2


def test_an_answer_without_failures_says_zero_errors(touchy_runtime):
    body = json.loads(runtime.handler(event(["fine", "good"]), None)["body"])
    assert body["errors"] == 0 and body["results"] == [{"cats": {"OK": 1.0}}] * 2
    assert runtime.rows_failed_in_last_request() == 0


@pytest.fixture(scope="module")
def touchy(nimbus_home):
    return nj.deploy(fails_on_pipeline(), "one-bad", workers=2, samples=["fine"], show=False)


def answered(d) -> int:
    """The server's own count of /predict requests it answered."""
    return sum(requests.get(f"{d.url}/health", timeout=5).json()["requests"].values())


def test_one_bad_text_in_300_fails_one_row_with_no_retry_and_no_resend(touchy):
    texts = [f"review number {i}, a fine product" for i in range(300)]
    texts[137] = f"{SECRET}: this one makes the component EXPLODE"
    before = answered(touchy)
    df = nj.batch(texts, touchy, progress=False)
    summary = df.attrs["nimbus"]
    assert len(df) == 300 and list(df.text) == texts
    errors = df.error[df.error != ""]
    assert list(errors.index) == [137]
    assert errors[137].startswith("ValueError: ") and "it contains EXPLODE" in errors[137]
    assert "Zanzibar" not in errors[137] and "redacted" in errors[137]
    assert df.cats.drop(index=137).tolist() == [{"OK": 1.0}] * 299 and df.cats[137] is None
    assert (summary.failed, summary.retries) == (1, 0)
    assert answered(touchy) - before == math.ceil(300 / 64)  # one request per chunk: nothing re-sent, nothing split
    health = requests.get(f"{touchy.url}/health", timeout=5).json()
    assert health["row_errors"] >= 1 and not [c for c in health["requests"] if c.startswith("5")]


def test_a_chunk_where_every_text_fails_is_still_one_request(touchy):
    before = answered(touchy)
    df = nj.batch([f"EXPLODE {i}" for i in range(10)], touchy, chunk_size=10, progress=False)
    assert df.error.str.startswith("ValueError: ").all() and df.attrs["nimbus"].retries == 0
    assert answered(touchy) - before == 1


def test_a_sample_the_pipeline_fails_on_fails_the_smoke_test_with_the_components_message(nimbus_home):
    from nimbus_jupyter.core.errors import DeployFailed

    with pytest.raises(DeployFailed) as caught:
        nj.deploy(fails_on_pipeline(), "bad-sample", workers=1, samples=["fine", "this one will EXPLODE"], show=False)
    message = str(caught.value)
    assert message.startswith("smoke test: the pipeline failed on 1 of 2 sample(s) at the endpoint (v1 is deployed and serving)")
    assert "sample 2: ValueError: cannot score '<the text: 21 characters, redacted>': it contains EXPLODE" in message
    assert "%nimbus_rollback bad-sample" in message and "%nimbus_logs bad-sample --errors" in message
    nj.destroy("bad-sample")
