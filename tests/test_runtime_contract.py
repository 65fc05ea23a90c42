"""The HTTP contract of the Lambda runtime handler, driven with API Gateway REST proxy events.

A real (small) spaCy pipeline is trained in-process, written as a bundle with ``build_bundle`` and
loaded by the handler the way a Lambda cold start does. Every response is checked the way a client
would check it: status code, JSON body, and for errors an ``error`` code plus a ``message`` that
names the problem. Bad input must always be a 4xx, never a 5xx.
"""
from __future__ import annotations

import base64
import json
import random
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Optional

import pytest
import spacy
from spacy.training import Example

from nimbus_jupyter.core.bundle import build_bundle
from nimbus_jupyter.runtime import handler as runtime
from nimbus_jupyter.runtime.fields import doc_to_result
from nimbus_jupyter.runtime.limits import MAX_PAYLOAD_BYTES, MAX_TEXTS_PER_REQUEST

NAME = "sentiment-demo"
COMPONENTS = ["entity_ruler", "textcat"]
DEFAULT_FIELDS = ["ents", "cats"]
SCORE_TOLERANCE = 1e-5  # the same tolerance as the package's parity check

TRAIN = [
    ("I love this product, it is great", "POS"),
    ("What a wonderful experience in Berlin", "POS"),
    ("Acme Corp support was excellent", "POS"),
    ("Terrible service, I hate it", "NEG"),
    ("The delivery was awful and late", "NEG"),
    ("Never buying from Acme Corp again", "NEG"),
]
PATTERNS = [
    {"label": "ORG", "pattern": "Acme Corp"},
    {"label": "GPE", "pattern": [{"LOWER": "berlin"}]},
    {"label": "GPE", "pattern": [{"LOWER": "new"}, {"LOWER": "york"}]},
]
TEXTS = [
    "Acme Corp opened an office in Berlin.",
    "I really love it!",
    "New York was awful, berlin was great, and Acme Corp paid for both.",
    "Nothing to see here",
]


# --------------------------------------------------------------------------- pipeline and bundle


@pytest.fixture(scope="module")
def nlp():
    """A blank English pipeline with an entity ruler and a briefly trained POS/NEG text classifier."""
    spacy.util.fix_random_seed(0)
    random.seed(0)
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    textcat = nlp.add_pipe("textcat")
    for label in ("POS", "NEG"):
        textcat.add_label(label)
    examples = [
        Example.from_dict(nlp.make_doc(text), {"cats": {"POS": float(label == "POS"), "NEG": float(label == "NEG")}})
        for text, label in TRAIN
    ]
    optimizer = nlp.initialize(lambda: examples)
    ruler.add_patterns(PATTERNS)  # after initialize(), which resets the ruler's patterns
    for _ in range(8):
        random.shuffle(examples)
        nlp.update(examples, sgd=optimizer)
    return nlp


@pytest.fixture(scope="module")
def bundle(nlp, tmp_path_factory):
    return build_bundle(nlp, tmp_path_factory.mktemp("bundle") / NAME, NAME, namespace={})


@pytest.fixture(scope="module", autouse=True)
def loaded(bundle):
    """Cold start: the handler loads the bundle once for the module, and forgets it afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("NIMBUS_DEPLOYMENT", raising=False)
        mp.delenv("NIMBUS_VERSION", raising=False)
        runtime._loaded = None
        state = runtime.load(str(bundle.path))
        try:
            yield state
        finally:
            runtime._loaded = None


# --------------------------------------------------------------------------- events and checks

_request_counter = iter(range(1, 10**9))


def api_event(
    method: str = "POST",
    path: str = "/predict",
    body: Any = None,
    headers: Optional[Dict[str, str]] = None,
    is_base64: bool = False,
    content_type: Optional[str] = "application/json",
    content_type_header: str = "Content-Type",
) -> Dict[str, Any]:
    """An API Gateway REST (v1) proxy event as Lambda receives it from a ``/{proxy+}`` resource."""
    if headers is None:
        headers = {
            "Accept": "application/json",
            "Host": "abc123.execute-api.eu-west-1.amazonaws.com",
            "User-Agent": "python-requests/2.32.3",
            "X-Amzn-Trace-Id": "Root=1-67891233-abcdef012345678912345678",
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Port": "443",
            "X-Forwarded-Proto": "https",
            "x-api-key": "test-key-not-a-secret",
        }
        if content_type is not None:
            headers[content_type_header] = content_type
    request_id = f"c6af9ac6-7b61-11e6-9a41-{next(_request_counter):012d}"
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourceId": "123456",
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": request_id,
            "extendedRequestId": "BQGojGkBjoEFsTw=",
            "accountId": "123456789012",
            "apiId": "abc123",
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "python-requests/2.32.3", "apiKey": "test-key-not-a-secret"},
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


def predict_event(payload: Any, **kwargs: Any) -> Dict[str, Any]:
    return api_event(body=json.dumps(payload), **kwargs)


def base64_event(raw: bytes, **kwargs: Any) -> Dict[str, Any]:
    return api_event(body=base64.b64encode(raw).decode("ascii"), is_base64=True, **kwargs)


def call(event: Any) -> Dict[str, Any]:
    context = SimpleNamespace(aws_request_id="lambda-ctx-0001", function_name="nimbus-" + NAME)
    response = runtime.handler(event, context)
    assert set(response) == {"statusCode", "headers", "body", "isBase64Encoded"}
    assert response["isBase64Encoded"] is False
    assert response["headers"]["Content-Type"] == "application/json"
    assert isinstance(response["body"], str)
    return response


def ok_body(response: Dict[str, Any]) -> Dict[str, Any]:
    assert response["statusCode"] == 200, response["body"]
    return json.loads(response["body"])


def assert_error(response: Dict[str, Any], status: int, fragments: List[str]) -> Dict[str, Any]:
    assert 400 <= status < 500
    assert response["statusCode"] == status, response["body"]
    body = json.loads(response["body"])
    assert set(body) == {"error", "message"}
    assert isinstance(body["error"], str) and body["error"]
    for fragment in fragments:
        assert fragment in body["message"], f"{fragment!r} not in message {body['message']!r}"
    return body


def in_process(nlp, texts: List[str], fields: List[str]) -> List[Dict[str, Any]]:
    """What the user's own pipeline gives in the kernel, one text at a time."""
    return [doc_to_result(nlp(text), fields) for text in texts]


def assert_same_results(got: List[Dict[str, Any]], expected: List[Dict[str, Any]]) -> None:
    assert len(got) == len(expected)
    for i, (mine, theirs) in enumerate(zip(got, expected)):
        assert mine.keys() == theirs.keys(), f"result {i}"
        if "ents" in theirs:
            assert mine["ents"] == theirs["ents"], f"result {i}"
        if "cats" in theirs:
            assert mine["cats"] == pytest.approx(theirs["cats"], abs=SCORE_TOLERANCE), f"result {i}"
        for other in set(theirs) - {"ents", "cats"}:
            assert mine[other] == theirs[other], f"result {i} {other}"


# --------------------------------------------------------------------------- valid /predict


def test_predict_default_fields_match_the_pipeline_in_input_order(nlp, bundle):
    body = ok_body(call(predict_event({"texts": TEXTS})))
    assert body["fields"] == DEFAULT_FIELDS
    assert body["version"] == bundle.hash[:12]
    results = body["results"]
    assert len(results) == len(TEXTS)
    assert all(set(r) == set(DEFAULT_FIELDS) for r in results)
    assert_same_results(results, in_process(nlp, TEXTS, DEFAULT_FIELDS))
    # order is the input order: the entities belong to the text at the same position
    assert results[0]["ents"] == [
        {"text": "Acme Corp", "label": "ORG", "start": 0, "end": 9},
        {"text": "Berlin", "label": "GPE", "start": 30, "end": 36},
    ]
    assert results[1]["ents"] == []
    assert [e["text"] for e in results[2]["ents"]] == ["New York", "berlin", "Acme Corp"]
    for result in results:
        assert set(result["cats"]) == {"POS", "NEG"}
        assert all(0.0 <= score <= 1.0 for score in result["cats"].values())


def test_predict_reversed_order_gives_reversed_results(nlp):
    forward = ok_body(call(predict_event({"texts": TEXTS})))["results"]
    backward = ok_body(call(predict_event({"texts": TEXTS[::-1]})))["results"]
    assert_same_results(backward, forward[::-1])


@pytest.mark.parametrize("fields", [["cats"], ["ents"], ["cats", "ents"], ["tokens"], ["cats", "cats"]])
def test_predict_explicit_fields_return_only_those(nlp, fields):
    body = ok_body(call(predict_event({"texts": TEXTS, "fields": fields})))
    wanted = list(dict.fromkeys(fields))
    assert body["fields"] == wanted
    assert all(list(r) == wanted for r in body["results"])
    assert_same_results(body["results"], in_process(nlp, TEXTS, wanted))


def test_predict_base64_encoded_body(nlp):
    raw = json.dumps({"texts": TEXTS, "fields": ["cats"]}, ensure_ascii=False).encode("utf-8")
    body = ok_body(call(base64_event(raw)))
    assert_same_results(body["results"], in_process(nlp, TEXTS, ["cats"]))


@pytest.mark.parametrize("content_type", [
    "application/json; charset=utf-8",
    "application/json;charset=UTF-8",
    "Application/JSON",
    " application/json ; charset=utf-8",
])
def test_predict_content_type_parameters_and_case(nlp, content_type):
    body = ok_body(call(predict_event({"texts": TEXTS[:2]}, content_type=content_type)))
    assert_same_results(body["results"], in_process(nlp, TEXTS[:2], DEFAULT_FIELDS))


@pytest.mark.parametrize("header_name", ["content-type", "Content-Type", "CONTENT-TYPE", "cOnTeNt-TyPe"])
def test_predict_header_names_are_case_insensitive(nlp, header_name):
    body = ok_body(call(predict_event({"texts": TEXTS[:1]}, content_type_header=header_name)))
    assert_same_results(body["results"], in_process(nlp, TEXTS[:1], DEFAULT_FIELDS))


# --------------------------------------------------------------------------- bad input: always a 4xx

_LONG_TEXT_CHARS = 1_000_001  # one over spaCy's default nlp.max_length (checked in the test)

BAD_REQUESTS = [
    # body is not a JSON predict request
    pytest.param(lambda: api_event(body='{"texts": ["a", }'), 400, ["not valid JSON"], id="body-not-json"),
    pytest.param(lambda: api_event(body="texts=hello"), 400, ["not valid JSON"], id="body-form-encoded"),
    pytest.param(lambda: predict_event({"texts": ["a"]}, content_type="text/plain"), 415, ["text/plain", "application/json"], id="content-type-text-plain"),
    pytest.param(lambda: predict_event({"texts": ["a"]}, content_type="application/x-www-form-urlencoded"), 415, ["application/x-www-form-urlencoded"], id="content-type-form"),
    pytest.param(lambda: predict_event({"texts": ["a"]}, content_type=None), 415, ["missing", "application/json"], id="content-type-missing"),
    pytest.param(lambda: predict_event({"texts": ["a"]}, content_type=""), 415, ["missing"], id="content-type-empty"),
    pytest.param(lambda: dict(predict_event({"texts": ["a"]}), headers=None, multiValueHeaders=None), 415, ["missing"], id="headers-none"),
    pytest.param(lambda: api_event(body=""), 400, ["no body"], id="body-empty-string"),
    pytest.param(lambda: api_event(body=None), 400, ["no body"], id="body-none"),
    pytest.param(lambda: api_event(body={"texts": ["a"]}), 400, ["body must be text"], id="body-not-a-string"),
    pytest.param(lambda: predict_event(["a", "b"]), 400, ["JSON object", "a list"], id="top-level-list"),
    pytest.param(lambda: predict_event("hello"), 400, ["JSON object", "a string"], id="top-level-string"),
    pytest.param(lambda: predict_event(None), 400, ["JSON object", "null"], id="top-level-null"),
    pytest.param(lambda: predict_event(42), 400, ["JSON object", "a number"], id="top-level-number"),
    # keys
    pytest.param(lambda: predict_event({"texts": ["a"], "text": "a"}), 400, ["unknown key", "'text'"], id="unknown-key"),
    pytest.param(lambda: predict_event({"fields": ["cats"]}), 400, ["no 'texts'"], id="missing-texts"),
    pytest.param(lambda: predict_event({"texts": None}), 400, ["'texts'"], id="texts-null"),
    # texts
    pytest.param(lambda: predict_event({"texts": "just one text"}), 400, ["'texts' must be a list", "a string"], id="texts-a-string"),
    pytest.param(lambda: predict_event({"texts": {"0": "a"}}), 400, ["'texts' must be a list", "an object"], id="texts-an-object"),
    pytest.param(lambda: predict_event({"texts": []}), 400, ["'texts' is empty"], id="texts-empty"),
    pytest.param(lambda: predict_event({"texts": ["a", "b", 3]}), 400, ["texts[2]", "a number"], id="text-item-number"),
    pytest.param(lambda: predict_event({"texts": ["a", None]}), 400, ["texts[1]", "null"], id="text-item-null"),
    pytest.param(lambda: predict_event({"texts": [["a"]]}), 400, ["texts[0]", "a list"], id="text-item-list"),
    pytest.param(lambda: predict_event({"texts": ["a", "b", "c", True]}), 400, ["texts[3]", "a boolean"], id="text-item-bool"),
    pytest.param(lambda: predict_event({"texts": ["a"] * (MAX_TEXTS_PER_REQUEST + 1)}), 413,
                 [f"{MAX_TEXTS_PER_REQUEST + 1:,}", f"{MAX_TEXTS_PER_REQUEST:,}"], id="too-many-texts"),
    pytest.param(lambda: api_event(body='{"texts": ["' + "a" * MAX_PAYLOAD_BYTES + '"]}'), 413,
                 [f"{MAX_PAYLOAD_BYTES:,}-byte limit"], id="payload-too-large"),
    pytest.param(lambda: base64_event(b'{"texts": ["' + b"a" * MAX_PAYLOAD_BYTES + b'"]}'), 413,
                 [f"{MAX_PAYLOAD_BYTES:,}-byte limit"], id="payload-too-large-base64"),
    pytest.param(lambda: predict_event({"texts": ["short", "a" * _LONG_TEXT_CHARS]}), 413,
                 ["texts[1]", "max_length"], id="text-longer-than-max-length"),
    # transport encoding
    pytest.param(lambda: api_event(body="this is not base64!", is_base64=True), 400, ["base64"], id="invalid-base64"),
    pytest.param(lambda: api_event(body='{"texts": ["a"]}', is_base64=True), 400, ["base64"], id="json-marked-base64"),
    pytest.param(lambda: base64_event(b'{"texts": ["caf\xe9"]}'), 400, ["UTF-8"], id="base64-latin1-bytes"),
    pytest.param(lambda: base64_event(b'{"texts": ["\xff\xfe"]}'), 400, ["UTF-8"], id="base64-invalid-utf8"),
    pytest.param(lambda: api_event(body='{"texts": ["\ud800"]}'), 400, ["UTF-8"], id="raw-lone-surrogate-in-body-string"),
    # hostile JSON
    pytest.param(lambda: api_event(body="[" * 100_000), 400, ["nested too deeply"], id="deeply-nested-list"),
    pytest.param(lambda: api_event(body='{"texts": ' + "[" * 100_000 + "]" * 100_000 + "}"), 400, ["nested too deeply"], id="deeply-nested-texts"),
    pytest.param(lambda: api_event(body='{"a":' * 100_000), 400, ["nested too deeply"], id="deeply-nested-objects"),
    # fields
    pytest.param(lambda: predict_event({"texts": ["a"], "fields": ["entities"]}), 400, ["unknown field", "'entities'"], id="unknown-field"),
    pytest.param(lambda: predict_event({"texts": ["a"], "fields": []}), 400, ["'fields' is empty"], id="fields-empty"),
    pytest.param(lambda: predict_event({"texts": ["a"], "fields": "cats"}), 400, ["'fields' must be a list"], id="fields-a-string"),
    pytest.param(lambda: predict_event({"texts": ["a"], "fields": [1]}), 400, ["'fields' must be a list of strings"], id="fields-non-string"),
    pytest.param(lambda: predict_event({"texts": ["a"], "fields": ["cats", "sents"]}), 422,
                 ["'sents'", "not available"], id="sents-without-sentence-boundaries"),
    # routing and the event itself
    pytest.param(lambda: predict_event({"texts": ["a"]}, path="/predictions"), 404, ["'/predictions'", "/predict"], id="unknown-path"),
    pytest.param(lambda: api_event(method="GET", path="/"), 404, ["'/'"], id="root-path"),
    pytest.param(lambda: api_event(method="GET", path="/predict"), 405, ["POST", "GET"], id="get-predict"),
    pytest.param(lambda: predict_event({"texts": ["a"]}, method="PUT"), 405, ["POST", "PUT"], id="put-predict"),
    pytest.param(lambda: api_event(method="POST", path="/health", body="{}"), 405, ["GET", "POST"], id="post-health"),
    pytest.param(lambda: None, 400, ["event"], id="event-none"),
    pytest.param(lambda: "POST /predict", 400, ["event"], id="event-string"),
    pytest.param(lambda: [predict_event({"texts": ["a"]})], 400, ["event"], id="event-list"),
]


@pytest.mark.parametrize("make_event, status, fragments", BAD_REQUESTS)
def test_bad_request_is_a_4xx_naming_the_problem(make_event: Callable[[], Any], status, fragments, loaded):
    if "max_length" in fragments:
        assert loaded.nlp.max_length == _LONG_TEXT_CHARS - 1
    assert_error(call(make_event()), status, fragments)


@pytest.mark.parametrize("method, path, allow", [("GET", "/predict", "POST"), ("DELETE", "/predict", "POST"),
                                                 ("POST", "/health", "GET"), ("POST", "/openapi.json", "GET")])
def test_wrong_method_is_405_with_allow_header(method, path, allow):
    response = call(api_event(method=method, path=path, body='{"texts": ["a"]}'))
    assert_error(response, 405, [allow, method])
    assert response["headers"]["Allow"] == allow


# --------------------------------------------------------------------------- odd but valid input


@pytest.mark.parametrize("text", [
    pytest.param("", id="empty-string"),
    pytest.param("   \n\t ", id="whitespace-only"),
    pytest.param("Café in Zürich 🙂👍🏽 — naïve 日本語 テキスト", id="unicode-emoji"),
    pytest.param("Acme Corp\x00 in Berlin", id="nul-character"),
])
def test_odd_but_valid_text_is_200(nlp, text):
    # json.dumps escapes everything outside ASCII, so a surrogate arrives as the JSON escape "\ud800"
    body_text = json.dumps({"texts": [text]})
    assert body_text.isascii()
    response = call(api_event(body=body_text))
    body = ok_body(response)
    assert len(body["results"]) == 1
    assert set(body["results"][0]) == set(DEFAULT_FIELDS)
    assert_same_results(body["results"], in_process(nlp, [text], DEFAULT_FIELDS))


@pytest.mark.parametrize("texts, index", [
    pytest.param(["\ud800"], 0, id="lone-high-surrogate"),
    pytest.param(["fine", "Acme Corp \udfff in Berlin"], 1, id="lone-low-surrogate"),
])
def test_lone_surrogates_are_a_400_naming_the_text(texts, index):
    # JSON can escape a lone surrogate ("\ud800"); it is not text spaCy (or UTF-8) can take.
    response = call(api_event(body=json.dumps({"texts": texts})))
    assert response["statusCode"] == 400
    body = json.loads(response["body"])
    assert body["error"] == "bad_text" and f"texts[{index}]" in body["message"] and "surrogate" in body["message"]


def test_odd_texts_together_in_one_request_keep_their_positions():
    # Only ents are compared: spaCy's textcat scores an empty Doc 0.0 when the whole batch is empty
    # but gives it a real score inside a mixed batch, so "" alone and "" among others differ in cats.
    texts = ["", "Acme Corp in Berlin 🙂", "nul\x00byte", "Berlin"]
    body = ok_body(call(predict_event({"texts": texts})))
    assert len(body["results"]) == len(texts)
    assert [[e["text"] for e in r["ents"]] for r in body["results"]] == [[], ["Acme Corp", "Berlin"], [], ["Berlin"]]


# --------------------------------------------------------------------------- /health and /openapi.json


def test_health_reports_name_version_and_components(bundle):
    body = ok_body(call(api_event(method="GET", path="/health", content_type=None)))
    assert body["status"] == "ok"
    assert body["name"] == NAME
    assert body["version"] == bundle.hash[:12]
    assert body["components"] == COMPONENTS
    assert body["lang"] == "en"
    assert body["default_fields"] == DEFAULT_FIELDS


def test_openapi_document_describes_the_routes(bundle):
    doc = ok_body(call(api_event(method="GET", path="/openapi.json", content_type=None)))
    assert doc["openapi"].startswith("3.")
    assert doc["info"]["version"] == bundle.hash[:12]
    assert NAME in doc["info"]["title"]
    assert {"/predict", "/health"} <= set(doc["paths"])
    assert "post" in doc["paths"]["/predict"]
    assert "get" in doc["paths"]["/health"]
    request_schema = doc["components"]["schemas"]["PredictRequest"]
    assert request_schema["properties"]["texts"]["maxItems"] == MAX_TEXTS_PER_REQUEST
    allowed = request_schema["properties"]["fields"]["items"]["enum"]
    assert "sents" not in allowed  # this pipeline sets no sentence boundaries
    assert {"ents", "cats"} <= set(allowed)


def test_openapi_says_what_the_local_server_answers_without_a_key(bundle, monkeypatch):
    monkeypatch.delenv("NIMBUS_FRONT", raising=False)
    doc = ok_body(call(api_event(method="GET", path="/openapi.json", content_type=None)))
    predict = doc["paths"]["/predict"]["post"]["responses"]
    assert "401" in predict and "403" not in predict
    assert doc["paths"]["/health"]["get"]["security"] == []  # /health needs no key locally
    assert doc["security"] == [{"apiKey": []}]


@pytest.mark.parametrize("front,scheme", [("api-gateway-key", "apiKey"), ("api-gateway-iam", "sigv4")])
def test_openapi_behind_api_gateway_says_403_and_that_health_is_checked_too(bundle, monkeypatch, front, scheme):
    """On AWS API Gateway checks every route, /health included, and refuses with 403 and its own body."""
    monkeypatch.setenv("NIMBUS_FRONT", front)
    doc = ok_body(call(api_event(method="GET", path="/openapi.json", content_type=None)))
    assert list(doc["components"]["securitySchemes"]) == [scheme]
    assert doc["security"] == [{scheme: []}]
    for path, method in (("/predict", "post"), ("/health", "get"), ("/openapi.json", "get")):
        responses = doc["paths"][path][method]["responses"]
        assert "403" in responses and "401" not in responses, (path, responses)
        assert responses["403"]["content"]["application/json"]["schema"]["properties"] == {"message": {"type": "string"}}
    assert doc["paths"]["/health"]["get"]["security"] == [{scheme: []}]


# --------------------------------------------------------------------------- still healthy afterwards


def test_handler_keeps_working_after_bad_and_odd_input(nlp):
    for param in BAD_REQUESTS:
        make_event = param.values[0]
        assert 400 <= call(make_event())["statusCode"] < 500, param.id
    for text in ["", "\ud800", "\x00", "🙂"]:
        call(api_event(body=json.dumps({"texts": [text]})))  # status asserted in the odd-input tests
    body = ok_body(call(predict_event({"texts": TEXTS})))
    assert_same_results(body["results"], in_process(nlp, TEXTS, DEFAULT_FIELDS))
    assert ok_body(call(api_event(method="GET", path="/health", content_type=None)))["status"] == "ok"
