"""Results carry what custom components set: ``fields=["ext:NAME"]`` gives the JSON value of
``Doc._.NAME``; a value JSON cannot carry is that row's error, saying so; the extensions a deployment
offers are in its /health and its OpenAPI (so a client can check a field before sending); batch gives
each its own column."""
from __future__ import annotations

import json

import pytest
import requests

import nimbus_jupyter as nj
from nimbus_jupyter.core.bundle import build_bundle
from nimbus_jupyter.core.errors import UserInputError
from nimbus_jupyter.runtime import handler as runtime
from nimbus_jupyter.runtime.fields import PipelineFields
from edge_pipelines import sentiment_pipeline

EXTENSIONS = ["n_tokens", "raw_vector", "sentiment_score", "sentiment_words"]  # not "shout": a method


def get(path):
    return runtime.handler({"path": path, "httpMethod": "GET", "headers": {}}, None)


def predict(texts, fields):
    return runtime.handler({"path": "/predict", "httpMethod": "POST", "headers": {"Content-Type": "application/json"},
                            "body": json.dumps({"texts": texts, "fields": fields})}, None)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    bundle = build_bundle(sentiment_pipeline(), tmp_path_factory.mktemp("b") / "sentiment", "sentiment", namespace={})
    runtime._loaded = None
    yield runtime.load(str(bundle.path))
    runtime._loaded = None


def test_health_and_openapi_name_the_extension_fields(loaded):
    health = json.loads(get("/health")["body"])
    assert set(EXTENSIONS) <= set(health["extensions"]) and "shout" not in health["extensions"]
    spec = json.loads(get("/openapi.json")["body"])
    enum = spec["components"]["schemas"]["PredictRequest"]["properties"]["fields"]["items"]["enum"]
    assert {f"ext:{name}" for name in EXTENSIONS} <= set(enum) and "ext:shout" not in enum
    assert "ext:sentiment_score" in spec["components"]["schemas"]["Result"]["properties"]


def test_extension_values_come_back_as_the_kernel_computes_them(loaded):
    texts = ["great phone, love it", "broken and slow", "nothing here"]
    fields = ["ext:sentiment_score", "ext:sentiment_words", "ext:n_tokens", "cats"]
    body = json.loads(predict(texts, fields)["body"])
    nlp = sentiment_pipeline()
    for result, doc in zip(body["results"], nlp.pipe(texts)):
        assert list(result) == fields
        assert result["ext:sentiment_score"] == doc._.sentiment_score
        assert result["ext:sentiment_words"] == doc._.sentiment_words
        assert result["ext:n_tokens"] == len(doc)
    assert [r["ext:sentiment_score"] for r in body["results"]] == [2.0, -2.0, 0.0]


def test_a_value_json_cannot_carry_is_that_rows_error_saying_so(loaded):
    body = json.loads(predict(["plain", "a VECTOR here", "a SET here"], ["ext:raw_vector", "ext:sentiment_score"])["body"])
    assert body["errors"] == 2
    assert body["results"][0] == {"ext:raw_vector": [1.0, 2.0], "ext:sentiment_score": 0.0}
    vector, a_set = body["results"][1]["error"], body["results"][2]["error"]
    assert vector["field"] == a_set["field"] == "ext:raw_vector" and vector["type"] == "TypeError"
    assert "numpy.ndarray that is not JSON-serializable" in vector["message"] and ".tolist()" in vector["message"]
    assert "a set that is not JSON-serializable" in a_set["message"]


def test_an_unknown_extension_is_a_422_listing_the_ones_there_are(loaded):
    answer = predict(["x"], ["ext:nope"])
    assert answer["statusCode"] == 422
    message = json.loads(answer["body"])["message"]
    assert "'ext:nope'" in message and "no Doc extension 'nope'" in message and "ext:sentiment_score" in message
    assert predict(["x"], ["ext:shout"])["statusCode"] == 422  # a method takes arguments: not a field


def test_an_extension_some_component_declares_runs_only_what_it_needs():
    fields = PipelineFields(sentiment_pipeline())
    assert fields.needed_components(["ext:sentiment_score"]) == ["nimbus_test_sentiment"]
    assert fields.needed_components(["ext:n_tokens"]) == ["nimbus_test_other_cats", "nimbus_test_sentiment"]  # a getter: all


@pytest.fixture(scope="module")
def endpoint(nimbus_home):
    return nj.deploy(sentiment_pipeline(), "sentiment", workers=1, samples=["great"], show=False)


def test_batch_gives_each_extension_its_own_column(endpoint):
    texts = ["great phone", "avoid, broken", "one VECTOR", "fine"]
    df = nj.batch(texts, endpoint, fields=["ext:sentiment_score", "ext:raw_vector", "cats"], progress=False)
    assert list(df.columns) == ["text", "ext:sentiment_score", "ext:raw_vector", "cats", "label", "score", "error"]
    assert df["ext:sentiment_score"].tolist()[:2] == [1.0, -2.0] and df["ext:raw_vector"][0] == [1.0, 2.0]
    assert df.error[2].startswith("TypeError: Doc._.raw_vector is a numpy.ndarray that is not JSON-serializable")
    assert (df.error.drop(index=2) == "").all()


def test_the_local_health_lists_extensions_and_batch_checks_a_field_before_sending(endpoint):
    health = requests.get(f"{endpoint.url}/health", timeout=5).json()
    assert set(EXTENSIONS) <= set(health["extensions"])
    before = sum(health["requests"].values())
    with pytest.raises(UserInputError, match="'ext:sentiment' is not available"):
        nj.batch(["x"], endpoint, fields=["ext:sentiment"], progress=False)
    assert sum(requests.get(f"{endpoint.url}/health", timeout=5).json()["requests"].values()) == before
