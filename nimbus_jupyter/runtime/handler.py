"""``handler(event, context)``: the Lambda entry point for API Gateway (REST, proxy) events.

The local target's workers call this same function with the same event shape. The model loads once
per process (a Lambda execution environment, or a local worker), at cold start.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Dict, List, Optional

from .contract import ApiError, openapi_document, parse_predict
from .events import route
from .fields import FieldUnavailable, PipelineFields, doc_to_result
from .limits import MAX_PAYLOAD_BYTES
from .loader import load_bundle
from .metrics import record_pipeline_error

BUNDLE_ENV = "NIMBUS_BUNDLE_DIR"
_ROUTES = {"/predict": "POST", "/health": "GET", "/openapi.json": "GET"}


class _Loaded:
    """One loaded pipeline and the facts the handler needs about it."""

    def __init__(self, bundle_dir: Path) -> None:
        started = time.perf_counter()
        self.nlp, self.manifest = load_bundle(bundle_dir)
        self.fields = PipelineFields(self.nlp)
        self.default_fields = self.fields.default_fields()
        self.allowed_fields = self.fields.available_fields()
        self.name = os.environ.get("NIMBUS_DEPLOYMENT", self.manifest.get("name", "pipeline"))
        self.version = os.environ.get("NIMBUS_VERSION", self.manifest.get("hash", "")[:12])
        self.load_seconds = time.perf_counter() - started


_loaded: Optional[_Loaded] = None


def load(bundle_dir: Optional[str] = None) -> _Loaded:
    """Load the bundle now (cold start). Later calls return the same pipeline."""
    global _loaded
    if _loaded is None:
        path = bundle_dir or os.environ.get(BUNDLE_ENV) or str(Path(__file__).resolve().parent.parent / "bundle")
        _loaded = _Loaded(Path(path))
    return _loaded


def handler(event: Dict[str, Any], context: Any = None) -> Dict[str, Any]:
    """Answer one API Gateway proxy event; bad input gives a 4xx JSON error, never a 500."""
    global _texts_in_flight
    _texts_in_flight = []
    try:
        return _route(event)
    except ApiError as exc:
        return _response(exc.status, {"error": exc.code, "message": exc.message}, exc.headers)
    except Exception:  # a fault of the pipeline or of ours: log it (never the texts) and say so
        request_id = _request_id(event, context)
        trace = _redact(traceback.format_exc(), _texts_in_flight)
        print(f"nimbus: request {request_id} failed:\n{trace}", file=sys.stderr, flush=True)
        record_pipeline_error()  # the JSON 500 is not a Lambda error: count it where the alarm looks
        return _response(500, {"error": "internal", "message": f"the pipeline failed on this request (request id {request_id}); see the endpoint's log"})


def _route(event: Dict[str, Any]) -> Dict[str, Any]:
    asked = route(event, _ROUTES)  # REST v1 only; on the resource, base path and trailing slash tolerated
    path, method = asked.path, asked.method
    if not asked.matched:
        raise ApiError(404, "not_found", f"no route {path!r}; the routes are {sorted(_ROUTES)}")
    if method != _ROUTES[path]:
        raise ApiError(405, "method_not_allowed", f"{path} takes {_ROUTES[path]}, not {method}", {"Allow": _ROUTES[path]})
    state = load()
    if path == "/health":
        return _response(200, {
            "status": "ok", "name": state.name, "version": state.version,
            "lang": state.nlp.lang, "components": state.fields.names,
            "default_fields": state.default_fields, "load_seconds": round(state.load_seconds, 3),
        })
    if path == "/openapi.json":
        return _response(200, openapi_document(state.name, state.version, state.allowed_fields, state.default_fields))
    return _predict(state, event)


def _predict(state: _Loaded, event: Dict[str, Any]) -> Dict[str, Any]:
    request = parse_predict(event, state.allowed_fields, state.default_fields)
    max_length = state.nlp.max_length
    for i, text in enumerate(request.texts):
        if len(text) > max_length:
            raise ApiError(413, "text_too_long", f"texts[{i}] has {len(text):,} characters, over the pipeline's max_length of {max_length:,}; split it")
    global _texts_in_flight
    _texts_in_flight = request.texts
    disable = state.fields.disabled_for(request.fields)
    try:
        results = [doc_to_result(doc, request.fields) for doc in state.nlp.pipe(request.texts, disable=disable)]
    except FieldUnavailable as exc:
        raise ApiError(422, "field_unavailable", str(exc))
    body = {"results": results, "fields": request.fields, "version": state.version}
    response = _response(200, body)
    if len(response["body"]) > MAX_PAYLOAD_BYTES:
        raise ApiError(
            413, "response_too_large",
            f"the response would be {len(response['body']):,} bytes, over Lambda's {MAX_PAYLOAD_BYTES:,}-byte limit; "
            "send fewer texts per request or ask for fewer fields",
        )
    return response


_texts_in_flight: List[str] = []  # the request being run, so a failure's log can leave its texts out


def texts_in_last_request() -> int:
    """How many texts the last event carried (0 when it was refused before they were read): for logs."""
    return len(_texts_in_flight)


def _redact(trace: str, texts: List[str]) -> str:
    """The traceback without the request's texts: a component's error message often quotes the doc,
    and logs outlive requests. Texts under 4 characters are left (they would garble the code lines)."""
    for i, text in sorted(enumerate(texts), key=lambda it: -len(it[1])):
        if len(text) >= 4:
            for form in {text, repr(text)[1:-1]}:
                trace = trace.replace(form, f"<texts[{i}]: {len(text)} characters, redacted>")
    return trace


def _response(status: int, body: Dict[str, Any], headers: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def _request_id(event: Dict[str, Any], context: Any) -> str:
    rid = getattr(context, "aws_request_id", None)
    if rid:
        return str(rid)
    ctx = event.get("requestContext") if isinstance(event, dict) else None
    return str((ctx or {}).get("requestId", "unknown"))


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and os.environ.get(BUNDLE_ENV):
    load()  # Lambda init phase: load while the clock for init runs, not on the first request
