"""Lambda's response limit is measured where Lambda measures it: the proxy envelope the handler returns,
as the runtime client serializes it (6,291,556 bytes), not the inner body, which is about 1.3x smaller.
An answer over it is a 413 ``response_too_large`` (never a crashed runtime client and 8 retries), the
local target answers the same, and batch splits the chunk and returns every row."""
from __future__ import annotations

import json

import pytest
import requests
import spacy

import nimbus_jupyter as nj
from nimbus_jupyter.core.bundle import build_bundle
from nimbus_jupyter.runtime import handler as runtime
from nimbus_jupyter.runtime.fields import doc_to_result
from nimbus_jupyter.runtime.limits import MAX_PAYLOAD_BYTES

MAX_RESPONSE_BYTES = 6_291_556  # Lambda: "6 MB each for request and response", measured on the serialized response

N_TEXTS = 1500


def blank():
    return spacy.blank("en")


def body_of(texts) -> str:
    """The body the handler would answer for ``texts`` with fields=["tokens"] (before any limit)."""
    results = [doc_to_result(doc, ["tokens"]) for doc in blank().pipe(texts)]
    return json.dumps({"results": results, "fields": ["tokens"], "version": "x" * 12, "errors": 0}, separators=(",", ":"))


def texts_just_under_six_mb():
    """1,500 texts whose tokens answer has a body just under 6 MB, so only the envelope is over."""
    for words in range(30, 60):
        texts = [" ".join(f"w{i}x{j}" for j in range(words)) for i in range(N_TEXTS)]
        size = len(body_of(texts))
        if size > MAX_PAYLOAD_BYTES - 150_000:
            assert size < MAX_PAYLOAD_BYTES, size
            return texts, size
    raise AssertionError("no word count gives a body just under 6 MB")


@pytest.fixture(scope="module")
def calibrated():
    texts, body_size = texts_just_under_six_mb()
    envelope = len(json.dumps({"statusCode": 200, "headers": {"Content-Type": "application/json"},
                               "body": body_of(texts), "isBase64Encoded": False}).encode())
    assert body_size < MAX_PAYLOAD_BYTES < MAX_RESPONSE_BYTES < envelope  # the case the body-only check let through
    return texts, body_size, envelope


def predict_event(texts):
    return {"path": "/predict", "httpMethod": "POST", "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"texts": texts, "fields": ["tokens"]})}


def test_the_handler_refuses_an_envelope_over_the_limit_with_a_413_naming_both_sizes(calibrated, tmp_path):
    texts, body_size, envelope = calibrated
    bundle = build_bundle(blank(), tmp_path / "blank", "blank", namespace={})
    runtime._loaded = None
    try:
        runtime.load(str(bundle.path))
        answer = runtime.handler(predict_event(texts), None)
        assert answer["statusCode"] == 413
        error = json.loads(answer["body"])
        assert error["error"] == "response_too_large"
        assert f"{MAX_RESPONSE_BYTES:,}-byte response limit" in error["message"] and "fewer texts" in error["message"]
        half = runtime.handler(predict_event(texts[: N_TEXTS // 2]), None)
        assert half["statusCode"] == 200
        measured = runtime.envelope_bytes(half)
        assert measured == len(json.dumps(half).encode()) and measured > len(half["body"]) * 1.2
    finally:
        runtime._loaded = None


@pytest.fixture(scope="module")
def blank_endpoint(nimbus_home):
    return nj.deploy(blank(), "blank-tokens", workers=1, samples=["a b c"], show=False)


def answered(d) -> int:
    return sum(requests.get(f"{d.url}/health", timeout=5).json()["requests"].values())


def test_the_local_target_answers_the_same_413_and_batch_splits_it_and_returns_every_row(blank_endpoint, calibrated):
    texts, _, _ = calibrated
    d = blank_endpoint
    answer = requests.post(f"{d.url}/predict", json={"texts": texts, "fields": ["tokens"]},
                           headers={"x-api-key": d.api_key}, timeout=120)
    assert answer.status_code == 413 and answer.json()["error"] == "response_too_large"
    before = answered(d)
    df = nj.batch(texts, d, fields=["tokens"], chunk_size=N_TEXTS, progress=False)
    summary = df.attrs["nimbus"]
    assert len(df) == N_TEXTS and (df.error == "").all() and (summary.failed, summary.retries) == (0, 0)
    expected = [doc_to_result(doc, ["tokens"])["tokens"] for doc in blank().pipe(texts[:3] + texts[-3:])]
    assert df.tokens.tolist()[:3] + df.tokens.tolist()[-3:] == expected
    assert answered(d) - before == 3  # the whole chunk (413), then its two halves: split once, never retried
