"""Malformed-input generators and the checks every answer must pass, shared by the fuzz tests and
bench/fuzz.py (which runs the same generators for many more cases).

The promise being checked: bad input gets a 4xx JSON error ``{"error": code, "message": text}`` that
names the problem, never a 5xx, and never a dead worker.
"""
from __future__ import annotations

import base64
import json
from typing import Any, Dict, Optional, Tuple
from urllib.parse import quote

from hypothesis import strategies as st

ROUTES = ["/predict", "/health", "/openapi.json"]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON", "text/plain",
                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx", ""]
FIELD_NAMES = ["ents", "cats", "tokens", "sents", "spans", "colour", "", "ENTS"]

# Text with everything odd: controls, combining marks, RTL, emoji, private use, lone surrogates.
odd_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40) | st.sampled_from([
    "", " ", "\x00", "\u200b\u200d", "e\u0301\u0301\u0301", "\u202eevil", "👩‍👩‍👧‍👦" * 5, "\ud800", "a\udfffb",
    "\ufeff", "\U0010ffff", "\n\r\t", "Ω" * 300, "a" * 2000,
])

json_scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
                | odd_text)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(odd_text, inner, max_size=4), max_leaves=12)


@st.composite
def predict_like(draw: Any) -> Any:
    """Bodies close to a valid request, wrong in one or two places (the most interesting cases)."""
    body: Dict[str, Any] = {}
    if draw(st.booleans()):
        body["texts"] = draw(st.lists(odd_text, max_size=6) | json_values)
    if draw(st.booleans()):
        body["fields"] = draw(st.lists(st.sampled_from(FIELD_NAMES), max_size=4) | json_values)
    if draw(st.integers(0, 5)) == 0:
        body[draw(odd_text)] = draw(json_values)
    return body


def _huge_or_deep(kind: str, n: int) -> str:
    if kind == "nested_lists":
        return "[" * n + "]" * n
    if kind == "nested_objects":
        return '{"texts":' * n + "[]" + "}" * n
    if kind == "big_int":
        return "9" * n
    if kind == "big_int_in_fields":
        return '{"texts": ["a"], "fields": [' + "1" * n + "]}"
    if kind == "many_texts":
        return json.dumps({"texts": ["x"] * n})
    if kind == "long_text":
        return json.dumps({"texts": ["word " * n]})
    return "{" * n  # unclosed


raw_bodies = st.one_of(
    st.builds(lambda v: json.dumps(v), json_values),
    st.builds(lambda v: json.dumps(v), predict_like()),
    st.builds(lambda v: json.dumps(v, ensure_ascii=False), predict_like()),
    st.binary(max_size=200),
    st.text(max_size=200),
    st.builds(_huge_or_deep, st.sampled_from(["nested_lists", "nested_objects", "big_int", "big_int_in_fields",
                                              "many_texts", "long_text", "unclosed"]),
              st.sampled_from([1, 50, 1_000, 2_001, 5_000, 100_000])),
    st.sampled_from(["", "null", "{}", "[]", '{"texts": []}', '{"texts": null}', '{"texts": "one string"}',
                     '{"texts": ["a"], "fields": []}', "NaN", "\ufeff{}", '{"texts": ["\\ud800"]}',
                     '{"texts": ["a"], "texts": 1}', '{"texts": ["a"]}garbage']),
)


@st.composite
def handler_events(draw: Any) -> Dict[str, Any]:
    """API Gateway proxy events, mostly well-formed envelopes around malformed requests."""
    body = draw(raw_bodies)
    b64 = draw(st.integers(0, 4)) == 0
    if isinstance(body, bytes) or b64:
        raw = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
        body_value: Any = base64.b64encode(raw).decode("ascii")
        if draw(st.integers(0, 5)) == 0:
            body_value = body_value + "!"  # marked base64 but not
        b64 = True
    else:
        body_value = body
    event: Dict[str, Any] = {
        "path": draw(st.sampled_from(ROUTES) | st.text(max_size=20)),
        "httpMethod": draw(st.sampled_from(METHODS) | st.text(max_size=8)),
        "headers": {draw(st.sampled_from(["Content-Type", "content-type", "CONTENT-TYPE"])): draw(st.sampled_from(CONTENT_TYPES))},
        "body": body_value,
        "isBase64Encoded": b64,
    }
    if draw(st.integers(0, 2)) == 0:
        event["path"] = "/predict"
        event["httpMethod"] = "POST"
    if draw(st.integers(0, 10)) == 0:  # a broken envelope: any key may hold anything
        event[draw(st.sampled_from(["path", "httpMethod", "headers", "body", "isBase64Encoded", "requestContext"]))] = draw(json_values)
    return event


def check_handler_answer(event: Dict[str, Any], answer: Dict[str, Any]) -> Optional[str]:
    """None if the handler's answer keeps the contract; else what is wrong with it."""
    status = answer.get("statusCode")
    if not isinstance(status, int) or status >= 500:
        return f"status {status}: {str(answer.get('body'))[:300]}"
    return _check_body(status, answer.get("body") or "")


def _check_body(status: int, body: str) -> Optional[str]:
    try:
        payload = json.loads(body)
    except ValueError:
        return f"status {status} with a body that is not JSON: {body[:200]!r}"
    if status >= 400:
        if not (isinstance(payload, dict) and isinstance(payload.get("error"), str)
                and isinstance(payload.get("message"), str) and len(payload["message"]) > 10):
            return f"status {status} without an error code and a message: {body[:200]!r}"
    return None


@st.composite
def raw_requests(draw: Any, key: str) -> Tuple[str, str, Dict[str, str], bytes]:
    """HTTP requests as a client could send them: any method, path, key, content type and body."""
    method = draw(st.sampled_from(METHODS + ["TRACE", "PROPFIND", "FOO"]))
    path = draw(st.sampled_from(ROUTES) | st.builds(lambda t: "/" + quote(t, safe=""), st.text(max_size=16)))
    if draw(st.integers(0, 2)) == 0:
        method, path = "POST", "/predict"
    headers = {"x-api-key": draw(st.sampled_from([key, key, key, "", "nmb_wrong", key + "x", key[:-1]]))}
    content_type = draw(st.sampled_from(CONTENT_TYPES + [None]))
    if content_type is not None:
        headers["Content-Type"] = content_type
    body = draw(raw_bodies)
    data = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
    return method, path, headers, data


def is_parser_rejection(status: int, body: bytes) -> bool:
    """A plain-text 400 from an HTTP parser before the app sees the request (uvicorn's httptools did this
    for a method token it did not know, ``FOO``): counted apart. The local server's h11 front answers
    those with the contract's JSON error, so this no longer matches there."""
    return status == 400 and body == b"Invalid HTTP request received."


def check_http_answer(method: str, status: int, body: bytes) -> Optional[str]:
    """None if an HTTP answer keeps the contract; else what is wrong with it."""
    if status >= 500:
        return f"{method}: status {status}: {body[:300]!r}"
    if is_parser_rejection(status, body):
        return None
    if method == "HEAD":
        return None  # no body by definition
    return _check_body(status, body.decode("utf-8", "replace"))
