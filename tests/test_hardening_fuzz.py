"""Malformed input, fuzzed: the handler in-process (hypothesis) and a real local endpoint from its own
OpenAPI document (schemathesis) plus raw HTTP. A few hundred cases here; bench/fuzz.py runs 10,000+.
"""
from __future__ import annotations

import json

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

import nimbus_jupyter as nj
from fuzzing import check_handler_answer, check_http_answer, handler_events, raw_requests
from nimbus_jupyter.core.bundle import build_bundle
from nimbus_jupyter.runtime import handler as runtime

FAST = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@pytest.fixture(scope="module")
def loaded(textcat_nlp, tmp_path_factory):
    bundle = build_bundle(textcat_nlp, tmp_path_factory.mktemp("bundle") / "fuzz", "fuzz", namespace={})
    runtime._loaded = None
    yield runtime.load(str(bundle.path))
    runtime._loaded = None


def test_the_handler_answers_any_event_with_a_4xx_json_error_or_a_result(loaded):
    @FAST
    @given(handler_events())
    def check(event):
        problem = check_handler_answer(event, runtime.handler(event, None))
        assert problem is None, f"{problem}\nevent: {str(event)[:500]}"

    check()


@pytest.mark.parametrize("body", ["9" * 5000, '{"texts": ["a"], "fields": [' + "1" * 5000 + "]}"])
def test_an_integer_too_long_for_python_is_a_400(loaded, body):
    answer = runtime.handler({"path": "/predict", "httpMethod": "POST", "body": body,
                              "headers": {"Content-Type": "application/json"}}, None)
    assert answer["statusCode"] == 400, answer
    assert json.loads(answer["body"])["error"] == "bad_json"


@pytest.mark.parametrize("context", [True, 7, "req-1", ["requestId"], None])
def test_a_request_context_that_is_not_an_object_is_answered_not_a_crash(loaded, context):
    """Found by bench/fuzz.py (hypothesis): ``requestContext: true`` raised AttributeError in the handler."""
    event = {"path": "/predict", "httpMethod": "POST", "headers": {"content-type": "application/json"},
             "body": '{"texts": ["fine"]}', "isBase64Encoded": False, "requestContext": context}
    answer = runtime.handler(event, None)
    assert check_handler_answer(event, answer) is None and answer["statusCode"] == 200, answer


@pytest.fixture(scope="module")
def endpoint(nimbus_home, textcat_nlp):
    return nj.deploy(textcat_nlp, "fuzzed", workers=2, show=False)


def test_the_endpoint_fuzzed_from_its_openapi_and_raw_http_never_5xx(endpoint):
    session = requests.Session()
    key = endpoint.api_key
    doc = session.get(f"{endpoint.url}/openapi.json", headers={"x-api-key": key}, timeout=10).json()
    schema = schemathesis.openapi.from_dict(doc)
    problems = []
    cases = 0

    for operation in (op.ok() for op in schema.get_all_operations()):
        for mode in GenerationMode:
            @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            @given(operation.as_strategy(generation_mode=mode))
            def schema_case(case):
                nonlocal cases
                cases += 1
                response = case.call(base_url=endpoint.url, session=session, headers={"x-api-key": key}, timeout=30)
                problem = check_http_answer(case.method, response.status_code, response.content)
                if problem:
                    problems.append(f"{case.method} {case.path}: {problem}")

            try:
                schema_case()
            except Unsatisfiable:  # nothing to make negative in an operation without parameters or body
                assert mode is GenerationMode.NEGATIVE

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(raw_requests(key))
    def raw_case(request):
        nonlocal cases
        cases += 1
        method, path, headers, data = request
        response = session.request(method, endpoint.url + path, headers=headers, data=data, timeout=30)
        problem = check_http_answer(method, response.status_code, response.content)
        if problem:
            problems.append(f"{method} {path}: {problem}")

    raw_case()
    assert not problems, problems[:5]
    health = session.get(f"{endpoint.url}/health", timeout=10).json()
    assert health["workers"]["replaced"] == 0 and health["workers"]["size"] == 2
    assert not [code for code in health["requests"] if code.startswith("5")], health["requests"]
    assert cases >= 200
