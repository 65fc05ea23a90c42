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

from .contract import FRONT_ENV, FRONT_LOCAL, ApiError, PredictRequest, openapi_document, parse_predict
from .events import route
from .fields import FieldUnavailable, NotJSON, PipelineFields, doc_to_result, extension_names
from .limits import MAX_RESPONSE_BYTES
from .loader import load_bundle
from .metrics import record_pipeline_error
from .pinning import check_expected

BUNDLE_ENV = "NIMBUS_BUNDLE_DIR"
_ROUTES = {"/predict": "POST", "/health": "GET", "/openapi.json": "GET"}


class _Loaded:
    """One loaded pipeline and the facts the handler needs about it."""

    def __init__(self, bundle_dir: Path) -> None:
        started = time.perf_counter()
        self.nlp, self.manifest = load_bundle(bundle_dir)
        self.fields = PipelineFields(self.nlp)
        self.default_fields = self.fields.default_fields()
        self.extensions = extension_names()  # registered while the pipeline loaded (its components' code)
        self.allowed_fields = self.fields.available_fields() + self.fields.extension_fields()
        self.name = os.environ.get("NIMBUS_DEPLOYMENT", self.manifest.get("name", "pipeline"))
        self.version = os.environ.get("NIMBUS_VERSION", self.manifest.get("hash", "")[:12])
        self.hash = str(self.manifest.get("hash", ""))
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
    global _texts_in_flight, _rows_failed
    _texts_in_flight, _rows_failed = [], 0
    try:
        answer = _route(event)
        if _rows_failed:  # texts the pipeline raised on: their rows are errors in a 200, which Lambda never counts
            record_pipeline_error(count=_rows_failed)
        return answer
    except ApiError as exc:
        return _response(exc.status, {"error": exc.code, "message": exc.message, **exc.extra}, exc.headers)
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
            "extensions": state.extensions, "hash": state.hash,
        })
    if path == "/openapi.json":
        return _response(200, openapi_document(state.name, state.version, state.allowed_fields, state.default_fields,
                                               front=os.environ.get(FRONT_ENV, FRONT_LOCAL)))
    return _predict(state, event)


def _predict(state: _Loaded, event: Dict[str, Any]) -> Dict[str, Any]:
    """Results in input order. A text that makes the pipeline raise becomes its own row's error
    (``{"error": {"type", "message"}}``) in the same 200 answer; ``errors`` counts those rows."""
    check_expected(event, state.version, state.hash)  # a pinned batch is never answered by another version
    request = parse_predict(event, state.allowed_fields, state.default_fields)
    max_length = state.nlp.max_length
    for i, text in enumerate(request.texts):
        if len(text) > max_length:
            raise ApiError(413, "text_too_long", f"texts[{i}] has {len(text):,} characters, over the pipeline's max_length of {max_length:,}; split it")
    global _texts_in_flight, _rows_failed
    _texts_in_flight = request.texts
    results = _run(state, request, _request_id(event, None))
    _rows_failed = sum(1 for r in results if "error" in r)
    body = {"results": results, "fields": request.fields, "version": state.version, "hash": state.hash,
            "errors": _rows_failed}
    response = _response(200, body)
    # Escaping at most doubles an ASCII JSON body: only a large one needs measuring.
    size = envelope_bytes(response) if 2 * len(response["body"]) + 4096 >= MAX_RESPONSE_BYTES else 0
    if size > MAX_RESPONSE_BYTES:
        raise ApiError(
            413, "response_too_large",
            f"the answer would be {size:,} bytes as Lambda serializes it (its body {len(response['body']):,}), over "
            f"Lambda's {MAX_RESPONSE_BYTES:,}-byte response limit; send fewer texts per request or ask for fewer fields",
        )
    return response


def _run(state: _Loaded, request: PredictRequest, request_id: str) -> List[Dict[str, Any]]:
    """The whole chunk in one ``nlp.pipe``; if that raises, again one text at a time, so only the
    texts that fail get an error and the others get the pipeline's results for them alone. Never a
    retry from the client: the answer says which rows failed and why."""
    # Memory zones (spaCy >= 3.8): the strings and lexemes texts add to the vocab are freed when their
    # zone ends, so a long-lived worker stays flat over any number of rows. Every result is plain data
    # made inside the zone; no Doc outlives its request, so a zone may span several requests.
    _zone.enter(state.nlp, len(request.texts))
    return _run_in_zone(state, request, request_id)


ZONE_TEXTS = 4096  # texts one memory zone spans (over requests) before it ends and frees their strings


class _Zone:
    """One ``nlp.memory_zone()`` kept open over requests until it has seen ``ZONE_TEXTS`` texts.

    Why not one per request: a zone frees every lexeme and tokenizer-cache entry its texts created, so
    with a zone per 64-text request a worker built the same words' lexemes again on every request (the
    lexical attribute functions are Python): a few % of its CPU. Memory stays bounded by the strings of
    ``ZONE_TEXTS`` texts plus one request's.
    """

    def __init__(self) -> None:
        self._open: Any = None
        self._nlp: Any = None
        self.texts = 0

    def enter(self, nlp: Any, texts: int) -> None:
        if self._open is not None and (self.texts >= ZONE_TEXTS or self._nlp is not nlp):
            self.close()
        if self._open is None:
            zone = getattr(nlp, "memory_zone", None)
            if zone is None:
                return
            self._open = zone()
            self._open.__enter__()
            self._nlp, self.texts = nlp, 0
        self.texts += texts

    def close(self) -> None:
        done, self._open, self._nlp = self._open, None, None
        if done is not None:
            done.__exit__(None, None, None)


_zone = _Zone()


def _run_in_zone(state: _Loaded, request: PredictRequest, request_id: str) -> List[Dict[str, Any]]:
    disable = state.fields.disabled_for(request.fields)
    try:
        return [_result(doc, request.fields) for doc in state.nlp.pipe(request.texts, disable=disable)]
    except FieldUnavailable as exc:
        raise ApiError(422, "field_unavailable", str(exc))
    except Exception:
        chunk_trace = traceback.format_exc()
    out: List[Dict[str, Any]] = []
    failures: List[str] = []
    for i, text in enumerate(request.texts):
        try:
            out.append(_result(next(iter(state.nlp.pipe([text], disable=disable))), request.fields))
        except FieldUnavailable as exc:
            raise ApiError(422, "field_unavailable", str(exc))
        except Exception as exc:
            out.append(_row_error(type(exc).__name__, _redact_row(str(exc), i, request.texts)))
            failures.append(f"texts[{i}] ({type(exc).__name__})")
            if len(failures) <= _TRACES_PER_REQUEST:
                print(f"nimbus: request {request_id} failed on texts[{i}] in the pipeline (its row is an error; the "
                      "other texts were answered):\n"
                      f"{_redact(traceback.format_exc(), request.texts)}", file=sys.stderr, flush=True)
    if len(failures) > _TRACES_PER_REQUEST:
        print(f"nimbus: request {request_id}: {len(failures)} of {len(request.texts)} texts failed in the pipeline: "
              f"{', '.join(failures[:50])}", file=sys.stderr, flush=True)
    if not failures:  # it failed on the chunk, but on no text alone (e.g. memory): say so, answer every row
        print(f"nimbus: request {request_id}: the pipeline failed on the whole chunk but on none of its "
              f"{len(request.texts)} texts alone:\n{_redact(chunk_trace, request.texts)}", file=sys.stderr, flush=True)
    return out


_TRACES_PER_REQUEST = 3  # tracebacks logged per request; the rest are listed by position and type


def _result(doc: Any, fields: List[str]) -> Dict[str, Any]:
    try:
        return doc_to_result(doc, fields)
    except NotJSON as exc:
        return _row_error("TypeError", str(exc), exc.field)


def _row_error(kind: str, message: str, field: Optional[str] = None) -> Dict[str, Any]:
    error = {"type": kind, "message": message[:_MESSAGE_CHARS]}
    if field:
        error["field"] = field
    return {"error": error}


_MESSAGE_CHARS = 1000


def _redact_row(message: str, index: int, texts: List[str]) -> str:
    """A row's error message without its text (nor any other of the request), as the logs are."""
    own = texts[index]
    if len(own) >= 4:
        for form in {own, repr(own)[1:-1]}:
            message = message.replace(form, f"<the text: {len(own)} characters, redacted>")
    return _redact(message, texts)


def envelope_bytes(response: Dict[str, Any]) -> int:
    """Bytes of ``response`` as Lambda's runtime client (awslambdaric) serializes it to the Runtime API:
    JSON with ", " and ": " separators, non-ASCII escaped except on the python3.12+ runtimes. Its
    6,291,556-byte limit applies to this, about 1.3x the body (every quote in the body is escaped)."""
    ascii_only = not _runtime_keeps_unicode()
    return len(json.dumps(response, separators=(", ", ": "), ensure_ascii=ascii_only).encode("utf-8", "surrogatepass"))


def _runtime_keeps_unicode() -> bool:
    env = os.environ.get("AWS_EXECUTION_ENV", "")
    prefix = "AWS_Lambda_python3."
    minor = env[len(prefix):]
    return env.startswith(prefix) and minor.isdigit() and int(minor) >= 12


_texts_in_flight: List[str] = []  # the request being run, so a failure's log can leave its texts out
_rows_failed = 0  # rows of the last answer that are errors (a pipeline exception or a non-JSON extension)


def rows_failed_in_last_request() -> int:
    """How many rows of the last answer were errors: for logs and the failure metric."""
    return _rows_failed


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
    return str(ctx.get("requestId", "unknown")) if isinstance(ctx, dict) else "unknown"  # a malformed event's too


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and os.environ.get(BUNDLE_ENV):
    load()  # Lambda init phase: load while the clock for init runs, not on the first request
