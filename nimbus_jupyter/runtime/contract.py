"""The HTTP contract of an endpoint: request validation, error shape and the OpenAPI document.

Every problem with a request becomes an ``ApiError`` with a 4xx status and a message that names the
problem and what to do, so bad input never turns into a 500.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from .fields import EXT_PREFIX, FIELDS, is_extension_field
from .limits import MAX_PAYLOAD_BYTES, MAX_RESPONSE_BYTES, MAX_TEXTS_PER_REQUEST


class ApiError(Exception):
    """A request the endpoint refuses: ``status`` is the HTTP code, ``code`` a stable short name."""

    def __init__(self, status: int, code: str, message: str, headers: Optional[Dict[str, str]] = None,
                 extra: Optional[Dict[str, Any]] = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}  # more JSON for the answer (a 409 names the version that serves)


@dataclass(frozen=True)
class PredictRequest:
    texts: List[str]
    fields: List[str]


def header(event: Dict[str, Any], name: str) -> Optional[str]:
    """A request header by case-insensitive name (API Gateway keeps the client's spelling)."""
    headers = event.get("headers")
    if not isinstance(headers, dict):
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == wanted:
            return value if isinstance(value, str) else None
    return None


def read_body(event: Dict[str, Any]) -> bytes:
    body = event.get("body")
    if body is None or body == "":
        raise ApiError(400, "empty_body", 'the request has no body; send JSON like {"texts": ["some text"]}')
    if not isinstance(body, str):
        raise ApiError(400, "bad_body", "the request body must be text")
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "bad_body", "the request body is marked base64 but is not valid base64")
    else:
        raw = body.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise ApiError(
            413, "payload_too_large",
            f"the request body is {len(raw):,} bytes, over the {MAX_PAYLOAD_BYTES:,}-byte limit of a "
            "Lambda invocation; send fewer or shorter texts per request",
        )
    return raw


def parse_predict(event: Dict[str, Any], allowed_fields: Sequence[str], default_fields: Sequence[str]) -> PredictRequest:
    """Validate a ``POST /predict`` event into a request, or raise ``ApiError``."""
    content_type = (header(event, "content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(
            415, "unsupported_media_type",
            f"Content-Type is {content_type or 'missing'!r}; send the body as JSON with "
            "'Content-Type: application/json'",
        )
    raw = read_body(event)
    try:
        payload = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ApiError(400, "bad_json", f"the body is not UTF-8 text (byte {exc.start}); send UTF-8 JSON")
    except json.JSONDecodeError as exc:
        raise ApiError(400, "bad_json", f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except RecursionError:
        raise ApiError(400, "bad_json", "the body is nested too deeply to be a predict request")
    except ValueError as exc:  # e.g. an integer over Python's 4,300-digit limit: still bad input, not a 500
        raise ApiError(400, "bad_json", f"the body is not a JSON document this endpoint can read ({exc}); send a predict request")
    if not isinstance(payload, dict):
        raise ApiError(400, "bad_request", f'the body must be a JSON object like {{"texts": [...]}}, not {_json_type(payload)}')
    unknown = sorted(set(payload) - {"texts", "fields"})
    if unknown:
        raise ApiError(400, "unknown_key", f"unknown key {unknown[0]!r} in the body; allowed keys are 'texts' and 'fields'")
    texts = payload.get("texts")
    if texts is None:
        raise ApiError(400, "missing_texts", "the body has no 'texts'; send a list of strings")
    if not isinstance(texts, list):
        raise ApiError(400, "bad_texts", f"'texts' must be a list of strings, not {_json_type(texts)}")
    if not texts:
        raise ApiError(400, "empty_texts", "'texts' is empty; send at least one string")
    if len(texts) > MAX_TEXTS_PER_REQUEST:
        raise ApiError(
            413, "too_many_texts",
            f"'texts' has {len(texts):,} items, over the limit of {MAX_TEXTS_PER_REQUEST:,} per request; split it into chunks",
        )
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ApiError(400, "bad_text", f"texts[{i}] is {_json_type(text)}; every item of 'texts' must be a string")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ApiError(400, "bad_text", f"texts[{i}] has a lone surrogate (U+{ord(text[exc.start]):04X}) at "
                                            f"character {exc.start}, which is not valid Unicode text; send valid UTF-8")
    fields = _parse_fields(payload.get("fields"), allowed_fields, default_fields)
    return PredictRequest(texts=texts, fields=fields)


def _parse_fields(fields: Any, allowed: Sequence[str], default: Sequence[str]) -> List[str]:
    if fields is None:
        return list(default)
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise ApiError(400, "bad_fields", f"'fields' must be a list of strings from {list(FIELDS)}")
    if not fields:
        raise ApiError(400, "bad_fields", f"'fields' is empty; leave it out for the default {list(default)} or name some of {list(FIELDS)}")
    out: List[str] = []
    for field in fields:
        if is_extension_field(field):
            if field not in allowed:
                have = [f for f in allowed if is_extension_field(f)]
                raise ApiError(
                    422, "field_unavailable",
                    f"field {field!r} is not available: this pipeline registers no Doc extension "
                    f"{field[len(EXT_PREFIX):]!r} (Doc.set_extension); its extension fields are {have}",
                )
        elif field not in FIELDS:
            raise ApiError(400, "unknown_field", f"unknown field {field!r}; choose from {list(FIELDS)} "
                                                 f"or '{EXT_PREFIX}NAME' for a Doc._.NAME extension")
        elif field not in allowed:
            raise ApiError(
                422, "field_unavailable",
                f"field {field!r} is not available from this pipeline; it can give {list(allowed)}",
            )
        if field not in out:
            out.append(field)
    return out


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def openapi_document(title: str, version: str, fields: Sequence[str], default_fields: Sequence[str]) -> Dict[str, Any]:
    """OpenAPI 3 description of the endpoint: the same on the local target and on AWS."""
    error = {"$ref": "#/components/schemas/Error"}
    span = {
        "type": "object",
        "properties": {"text": {"type": "string"}, "label": {"type": "string"},
                       "start": {"type": "integer"}, "end": {"type": "integer"}},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": f"Nimbus endpoint: {title}", "version": version},
        "components": {
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"],
                          "properties": {"error": {"type": "string"}, "message": {"type": "string"}}},
                "PredictRequest": {
                    "type": "object", "required": ["texts"], "additionalProperties": False,
                    "properties": {
                        "texts": {"type": "array", "minItems": 1, "maxItems": MAX_TEXTS_PER_REQUEST,
                                  "items": {"type": "string"}},
                        "fields": {"type": "array", "minItems": 1,
                                   "items": {"type": "string", "enum": list(fields)},
                                   "description": f"default: {list(default_fields)}; 'ext:NAME' reads the Doc._.NAME "
                                                  "extension a component of this pipeline sets"},
                    },
                },
                "Result": {
                    "type": "object",
                    "description": "exactly the requested fields; an 'ext:NAME' field is the JSON value of Doc._.NAME",
                    "properties": {
                        "ents": {"type": "array", "items": span},
                        "cats": {"type": "object", "additionalProperties": {"type": "number"}},
                        "sents": {"type": "array", "items": span},
                        "spans": {"type": "object", "additionalProperties": {"type": "array", "items": span}},
                        "tokens": {"type": "array", "items": {"type": "object"}},
                        **{f: {"description": f"the value of Doc._.{f[len(EXT_PREFIX):]} (any JSON)"}
                           for f in fields if is_extension_field(f)},
                    },
                },
                "RowError": {
                    "type": "object", "required": ["error"], "additionalProperties": False,
                    "description": "this text's own failure: the pipeline raised on it (the other rows are "
                                   "answered), or an ext: field's value is not JSON; the message never quotes the texts",
                    "properties": {"error": {
                        "type": "object", "required": ["type", "message"],
                        "properties": {"type": {"type": "string", "description": "the exception's type, e.g. ValueError"},
                                       "message": {"type": "string"},
                                       "field": {"type": "string", "description": "the ext: field whose value is not JSON"}},
                    }},
                },
                "PredictResponse": {
                    "type": "object", "required": ["results", "errors"],
                    "properties": {
                        "results": {"type": "array", "description": "one per text, in input order",
                                    "items": {"anyOf": [{"$ref": "#/components/schemas/Result"},
                                                        {"$ref": "#/components/schemas/RowError"}]}},
                        "fields": {"type": "array", "items": {"type": "string"}},
                        "version": {"type": "string"},
                        "hash": {"type": "string", "description": "the content hash of the pipeline that answered"},
                        "errors": {"type": "integer", "description": "how many results are RowErrors"},
                    },
                },
            },
        },
        "security": [{"apiKey": []}],
        "paths": {
            "/predict": {"post": {
                "summary": "Run the pipeline over texts; results come back in input order.",
                "parameters": [
                    {"name": "x-nimbus-expect-version", "in": "header", "required": False, "schema": {"type": "string"},
                     "description": "the version the caller expects (a pinned batch); another one answers 409"},
                    {"name": "x-nimbus-expect-hash", "in": "header", "required": False, "schema": {"type": "string"},
                     "description": "the content hash the caller expects; another pipeline answers 409"},
                ],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/PredictRequest"}}}},
                "responses": {
                    "200": {"description": "results", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/PredictResponse"}}}},
                    **{code: {"description": why, "content": {"application/json": {"schema": error}}}
                       for code, why in [("400", "bad request"), ("401", "missing or wrong API key"),
                                         ("413", "payload too large, or the answer would be over Lambda's "
                                                 f"{MAX_RESPONSE_BYTES:,}-byte response limit (response_too_large): "
                                                 "split the texts"), ("409", "the request expects another version than the one "
                                                 "serving (version_changed; 'serving' names it): nothing was run"),
                                         ("415", "not JSON"),
                                         ("422", "field not available"), ("429", "throttled: retry later")]},
                },
            }},
            "/health": {"get": {
                "summary": "Liveness and the version served; needs no key.", "security": [],
                "responses": {"200": {"description": "healthy", "content": {"application/json": {
                    "schema": {"type": "object"}}}}},
            }},
            "/openapi.json": {"get": {
                "summary": "This document.",
                "responses": {"200": {"description": "OpenAPI 3", "content": {"application/json": {
                    "schema": {"type": "object"}}}}},
            }},
        },
    }
