"""Which route an invocation event asks for: API Gateway REST (v1 proxy) events are served, others refused.

Why route on ``resource``: API Gateway puts the matched resource ("/predict") there whatever the URL
looked like, while ``path`` carries a custom domain's base path ("/nlp/predict") and a trailing slash is
the client's. ``path`` is only the fallback (a ``/{proxy+}`` resource, or an event made by hand), with the
trailing slash and any leading base-path segments tolerated.

Why refuse HTTP API (v2) and function URL events instead of serving them: the stack's only guard is the
REST API's API key, checked by API Gateway before Lambda runs. An HTTP API or a function URL in front of
the same function would reach it without that key, so such an event gets a 400 that names its shape and
says how the endpoint is meant to be called.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from .contract import ApiError

REST_V1, HTTP_V2, FUNCTION_URL, UNKNOWN = "API Gateway REST (v1 proxy)", "API Gateway HTTP API (v2)", "Lambda function URL", "unknown"


@dataclass(frozen=True)
class Route:
    path: str  # one of the routes ("/predict"), or the path asked for when none matched
    method: str
    shape: str
    matched: bool


def event_shape(event: Mapping[str, Any]) -> str:
    """Which kind of event this is, from the fields each source documents."""
    context = event.get("requestContext") if isinstance(event.get("requestContext"), dict) else {}
    if event.get("version") == "2.0" or "rawPath" in event or "routeKey" in event:
        domain = str(context.get("domainName", ""))
        return FUNCTION_URL if ".lambda-url." in domain else HTTP_V2
    if "httpMethod" in event or "resource" in event or "path" in event:
        return REST_V1
    return UNKNOWN


def _normal(path: str) -> str:
    return "/" + path.strip("/")


def match_path(path: str, routes: Mapping[str, str]) -> Optional[str]:
    """The route ``path`` names: exactly, without its trailing slash, or as the tail after a base path."""
    path = _normal(path)
    if path in routes:
        return path
    for route in routes:
        if path.endswith(route) and path[: -len(route)].startswith("/"):
            return route
    return None


def route(event: Any, routes: Mapping[str, str]) -> Route:
    """The route and method of a REST v1 proxy event; ApiError 400 for another shape or a malformed one."""
    if not isinstance(event, dict):
        raise ApiError(400, "bad_event", "the event is not an API Gateway proxy event (a JSON object)")
    shape = event_shape(event)
    if shape in (HTTP_V2, FUNCTION_URL):
        raise ApiError(400, "unsupported_event",
                       f"this is a {shape} event; the endpoint serves only {REST_V1} events: call it through the "
                       "REST API's URL with the x-api-key header (the API key is checked there, not here)")
    if shape == UNKNOWN:
        raise ApiError(400, "bad_event", f"the event is not an {REST_V1} event (no httpMethod, resource or path)")
    method = event.get("httpMethod") or "GET"
    if not isinstance(method, str):
        raise ApiError(400, "bad_event", "the event's httpMethod is not a string")
    context = event.get("requestContext") if isinstance(event.get("requestContext"), dict) else {}
    candidates = [event.get("resource"), context.get("resourcePath"), event.get("path")]
    asked: Optional[str] = None
    for candidate in candidates:
        if candidate is None:
            continue
        if not isinstance(candidate, str):
            raise ApiError(400, "bad_event", "the event's resource or path is not a string")
        if "{" in candidate:  # a greedy resource such as /{proxy+}: the path says which route
            continue
        asked = asked or candidate
        found = match_path(candidate, routes)
        if found:
            return Route(found, method.upper(), shape, True)
    return Route(_normal(asked or "/"), method.upper(), shape, False)

