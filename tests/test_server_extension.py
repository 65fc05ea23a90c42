"""The sidebar's REST routes on a real Jupyter server (pytest-jupyter), over a real local deployment.

What the routes say and what ``%nimbus_list`` says must agree: both read the one registry.
"""
from __future__ import annotations

import json
import logging

import pytest
from tornado.httpclient import HTTPClientError

import nimbus_jupyter as nj
from nimbus_jupyter.faces.server_extension.handlers import MAX_BODY_BYTES
from pipelines import dies_on_pipeline

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"nimbus_jupyter": True}}}


@pytest.fixture(scope="module")
def deployed(nimbus_home, textcat_nlp):
    d = nj.deploy(textcat_nlp, "side", workers=1, samples=["fine"], show=False)
    yield d
    try:
        nj.destroy("side")
    except Exception:
        pass


async def fetch_json(jp_fetch, *parts, **kwargs):
    response = await jp_fetch("nimbus", "api", *parts, **kwargs)
    return response.code, json.loads(response.body)


async def error_of(jp_fetch, *parts, **kwargs):
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("nimbus", "api", *parts, **kwargs)
    return info.value.code, json.loads(info.value.response.body)


def test_the_extension_points_name_the_module_and_the_labextension():
    assert nj._jupyter_server_extension_points() == [{"module": "nimbus_jupyter.faces.server_extension"}]
    assert nj._jupyter_labextension_paths() == [{"src": "labextension", "dest": "nimbus-jupyter"}]


async def test_list_agrees_with_nimbus_list(jp_fetch, deployed, ip):
    code, body = await fetch_json(jp_fetch, "deployments")
    assert code == 200 and body["home"]
    [row] = [d for d in body["deployments"] if d["name"] == "side"]
    assert row["status"] == "ready" and row["target"] == "local" and row["url"] == deployed.url
    assert row["version"] == 1 and row["components"] == deployed.components and row["created"]
    assert "api_key" not in row and "key_file" not in row
    table = ip.run_line_magic("nimbus_list", "").set_index("name")
    assert set(table.index) == {d["name"] for d in body["deployments"]}
    assert table.loc["side", "status"] == row["status"] and table.loc["side", "url"] == row["url"]


async def test_one_deployment_and_a_readable_404(jp_fetch, deployed):
    code, body = await fetch_json(jp_fetch, "deployments", "side")
    assert code == 200 and body["name"] == "side" and body["status"] == "ready"
    code, body = await error_of(jp_fetch, "deployments", "nowhere")
    assert code == 404 and body["error"] == "not_found"
    assert "no deployment named 'nowhere'" in body["message"] and "side" in body["message"] and body["todo"]


async def test_predict_gives_the_endpoints_answer(jp_fetch, deployed):
    texts = ["great phone, love it", "arrived broken"]
    code, body = await fetch_json(jp_fetch, "deployments", "side", "predict", method="POST",
                                  body=json.dumps({"texts": texts, "fields": ["cats"]}))
    assert code == 200 and body["fields"] == ["cats"] and body["version"] == "1"
    assert body["results"] == deployed.predict(texts, fields=["cats"])


@pytest.mark.parametrize("payload, expected", [
    ("not json", "not JSON"),
    (json.dumps({"texts": []}), "non-empty list"),
    (json.dumps({"texts": ["ok", 3]}), "non-empty list"),
    (json.dumps({"texts": ["ok"], "fields": "cats"}), "fields must be a list"),
])
async def test_bad_predict_input_is_a_400_that_says_what_to_do(jp_fetch, deployed, payload, expected):
    code, body = await error_of(jp_fetch, "deployments", "side", "predict", method="POST", body=payload)
    assert code == 400 and body["error"] == "bad_request" and expected in body["message"] and body["todo"]


async def test_routes_need_authentication(jp_fetch, deployed):
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("nimbus", "api", "deployments", headers={"Authorization": "token wrong"})
    assert info.value.code == 403


async def test_status_route_gives_health_traffic_latency_and_cost(jp_fetch, deployed):
    deployed.predict(["great phone"])
    code, body = await fetch_json(jp_fetch, "deployments", "side", "status")
    assert code == 200 and body["name"] == "side" and body["health"] == "ok" and body["health_ms"] is not None
    hour = body["last_hour"]
    assert hour["window"] == "1h" and hour["requests"] >= 2 and hour["errors"] == 0 and hour["p50_ms"] > 0
    assert body["last_day"]["requests"] >= hour["requests"]
    assert body["cost_this_month_usd"] is None and body["cost_detail"] == "local target: no cost"
    assert "api_key" not in json.dumps(body)
    code, body = await error_of(jp_fetch, "deployments", "nowhere", "status")
    assert code == 404 and body["error"] == "not_found"


def predict_requests(name: str) -> int:
    return nj.status_report(name).last_hour.requests


@pytest.mark.parametrize("payload", ["[" * 100_000 + "]" * 100_000, '{"texts": ' + "[" * 50_000 + "]" * 50_000 + "}",
                                     '{"texts": [' + '{"a":' * 30_000 + "1" + "}" * 30_000 + "]}"])
async def test_malformed_json_of_any_depth_is_a_400_without_a_traceback(jp_fetch, deployed, payload, caplog):
    caplog.set_level(logging.DEBUG)
    code, body = await error_of(jp_fetch, "deployments", "side", "predict", method="POST", body=payload)
    assert code == 400 and body["error"] == "bad_request" and body["todo"]
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]


async def test_a_body_over_the_endpoint_limit_is_a_413_from_the_route_and_never_forwarded(jp_fetch, deployed):
    before = predict_requests("side")
    big = json.dumps({"texts": ["x" * (7 * 1024 * 1024)]})
    assert len(big) > MAX_BODY_BYTES
    code, body = await error_of(jp_fetch, "deployments", "side", "predict", method="POST", body=big)
    assert code == 413 and body["error"] == "too_large" and "over the 6,291,456" in body["message"]
    assert predict_requests("side") == before  # the endpoint never saw it


@pytest.mark.parametrize("payload, code, words", [
    (json.dumps({"texts": ["fine"], "fields": ["bogus"]}), "unknown_field", "unknown field 'bogus'"),
    ('{"texts": ["bad \\ud800 text"]}', "bad_text", "lone surrogate (U+D800)"),
])
async def test_the_endpoints_own_4xx_passes_through_with_its_message(jp_fetch, deployed, payload, code, words):
    status, body = await error_of(jp_fetch, "deployments", "side", "predict", method="POST", body=payload)
    assert status == 400 and body["error"] == code and words in body["message"]


async def test_a_failing_endpoint_is_a_502(jp_fetch, nimbus_home):
    nj.deploy(dies_on_pipeline(), "boom", workers=1, samples=["fine"], show=False)
    try:  # the worker dies on this text: the endpoint answers 5xx (after the client's retries)
        status, body = await error_of(jp_fetch, "deployments", "boom", "predict", method="POST",
                                      body=json.dumps({"texts": ["DIE now"]}))
        assert status == 502 and body["error"] == "endpoint_error" and "answered 50" in body["message"]
    finally:
        nj.destroy("boom")


async def test_destroy_removes_it_for_the_magics_too(jp_fetch, deployed, ip):
    code, body = await fetch_json(jp_fetch, "deployments", "side", method="DELETE")
    assert code == 200 and "destroyed 'side'" in body["message"]
    code, body = await fetch_json(jp_fetch, "deployments")
    assert "side" not in {d["name"] for d in body["deployments"]}
    assert "side" not in set(ip.run_line_magic("nimbus_list", "")["name"])
    code, body = await error_of(jp_fetch, "deployments", "side", method="DELETE")
    assert code == 404

