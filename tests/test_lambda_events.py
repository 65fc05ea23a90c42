"""Routing API Gateway events (runtime/events.py) and counting pipeline failures (runtime/metrics.py).

The events are the documented shapes (tests/lambda_events.py); the handler is the real one, on a real
blank pipeline; a component that raises shows the EMF line the alarm's metric is made from.
"""
from __future__ import annotations

import io
import json

import pytest
import spacy
from spacy.language import Language

from lambda_events import http_v2, rest_v1
from nimbus_jupyter.core.bundle import build_bundle
from nimbus_jupyter.runtime import handler as runtime
from nimbus_jupyter.runtime import metrics
from nimbus_jupyter.runtime.events import FUNCTION_URL, HTTP_V2, REST_V1, event_shape, match_path, route

ROUTES = {"/predict": "POST", "/health": "GET", "/openapi.json": "GET"}


@Language.component("nimbus_test_raiser")
def _raiser(doc):
    if "boom" in doc.text:
        raise RuntimeError("the component broke on this doc")
    return doc


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    nlp = spacy.blank("en")
    nlp.add_pipe("nimbus_test_raiser")
    bundle = build_bundle(nlp, tmp_path_factory.mktemp("b") / "raiser", "raiser")
    saved = runtime._loaded
    runtime._loaded = None
    runtime.load(str(bundle.path))
    yield runtime
    runtime._loaded = saved


def test_event_shapes_are_told_apart():
    assert event_shape(rest_v1("GET", "/health")) == REST_V1
    assert event_shape(http_v2("GET", "/health")) == HTTP_V2
    assert event_shape(http_v2("GET", "/", function_url=True)) == FUNCTION_URL


@pytest.mark.parametrize("path", ["/predict", "/predict/", "/nlp/predict", "/nlp/v2/predict/"])
def test_route_is_the_resource_whatever_the_path(path):
    asked = route(rest_v1("POST", "/predict", path=path), ROUTES)
    assert (asked.path, asked.method, asked.matched) == ("/predict", "POST", True)


def test_path_is_the_fallback_with_trailing_slash_and_base_path_tolerated():
    event = rest_v1("GET", "/{proxy+}", path="/base/health/")
    assert route(event, ROUTES).path == "/health"
    assert match_path("/predictx", ROUTES) is None and match_path("/xpredict", ROUTES) is None
    assert route(rest_v1("GET", "/nothing"), ROUTES).matched is False


def test_handler_answers_the_base_path_and_slash_variants(loaded):
    for path in ("/health", "/health/", "/nlp/health"):
        response = loaded.handler(rest_v1("GET", "/health", path=path), None)
        assert response["statusCode"] == 200, (path, response["body"])
    response = loaded.handler(rest_v1("GET", "/missing"), None)
    assert response["statusCode"] == 404 and "/missing" in json.loads(response["body"])["message"]


@pytest.mark.parametrize("function_url", [False, True])
def test_v2_and_function_url_events_are_refused_naming_their_shape(loaded, function_url):
    response = loaded.handler(http_v2("POST", "/predict", {"texts": ["hi"]}, function_url=function_url), None)
    body = json.loads(response["body"])
    assert response["statusCode"] == 400 and body["error"] == "unsupported_event"
    assert (FUNCTION_URL if function_url else HTTP_V2) in body["message"] and "x-api-key" in body["message"]


def test_a_raising_component_makes_row_errors_and_writes_one_emf_metric_line(loaded, monkeypatch, capsys):
    """The text the pipeline raises on is its row's error in a 200 (issue 13): Lambda counts no error, so
    the handler counts each such row in the EMF metric the stack's alarm adds to Errors."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "nimbus-raiser")
    monkeypatch.setenv("NIMBUS_DEPLOYMENT", "raiser")
    ok = loaded.handler(rest_v1("POST", "/predict", {"texts": ["fine"]}), None)
    assert ok["statusCode"] == 200
    assert metrics.METRIC not in capsys.readouterr().out  # nothing counted for a good request
    failed = loaded.handler(rest_v1("POST", "/predict", {"texts": ["this goes boom", "fine", "boom again"]}), None)
    body = json.loads(failed["body"])
    assert failed["statusCode"] == 200 and body["errors"] == 2 and "error" not in body["results"][1]
    lines = [json.loads(l) for l in capsys.readouterr().out.splitlines() if l.startswith("{")]
    assert len(lines) == 1
    directive = lines[0]["_aws"]["CloudWatchMetrics"][0]
    assert directive == {"Namespace": "Nimbus", "Dimensions": [["Deployment"]],
                         "Metrics": [{"Name": "PipelineErrors", "Unit": "Count"}]}
    assert lines[0]["Deployment"] == "raiser" and lines[0]["PipelineErrors"] == 2


def test_an_unexpected_500_is_counted_once(loaded, monkeypatch, capsys):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "nimbus-raiser")
    monkeypatch.setenv("NIMBUS_DEPLOYMENT", "raiser")
    monkeypatch.setattr(runtime, "_predict", lambda state, event: 1 / 0)  # a fault of ours, not of a text
    failed = loaded.handler(rest_v1("POST", "/predict", {"texts": ["fine"]}), None)
    assert failed["statusCode"] == 500 and json.loads(failed["body"])["error"] == "internal"
    lines = [json.loads(l) for l in capsys.readouterr().out.splitlines() if l.startswith("{")]
    assert [line["PipelineErrors"] for line in lines] == [1]


def test_no_metric_line_off_lambda(monkeypatch):
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    out = io.StringIO()
    metrics.record_pipeline_error(out)
    assert out.getvalue() == ""
