"""``EndpointClient``: health, OpenAPI, JSON routes and predict over any ``Transport``, the same answers
whichever way a request travels (HTTP with the key, or ``lambda.invoke``).

For one-off calls (the deploy's smoke test and parity check, ``Deployment.predict``, the sidebar's
test, status probes), not for batches: ``batching`` drives transports itself.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence

from ..core.errors import EndpointError, EndpointRejected
from .transport import HttpTransport, Reply, Transport, TransportDown


class EndpointClient:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    @classmethod
    def over_http(cls, url: str, api_key: str, retries: int = 0) -> "EndpointClient":
        """The HTTP contract at ``url`` with ``api_key`` (no retries of 429/5xx unless asked)."""
        return cls(HttpTransport(url, api_key, retries=retries))

    def health(self) -> Dict[str, Any]:
        """``GET /health``: one quick try, no retries (a probe)."""
        return self._answer("GET", "/health", self._check("GET", "/health"))

    def get_json(self, path: str) -> Dict[str, Any]:
        """A quick GET of another JSON route with the key (e.g. the local server's /stats)."""
        return self._answer("GET", path, self._check("GET", path))

    def openapi(self) -> Dict[str, Any]:
        return self._call("GET", "/openapi.json", None)

    def predict(self, texts: Sequence[str], fields: Optional[Sequence[str]] = None) -> Dict[str, Any]:
        """The whole answer: ``results`` in input order, the ``fields`` used and the ``version``."""
        body: Dict[str, Any] = {"texts": list(texts)}
        if fields:
            body["fields"] = list(fields)
        try:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: as a JSON escape it arrives, and the endpoint names the text
            data = json.dumps(body).encode("ascii")
        return self._call("POST", "/predict", data)

    def close(self) -> None:
        self.transport.close()

    def _check(self, method: str, path: str) -> Reply:
        try:
            return self.transport.check(method, path)
        except TransportDown as exc:
            raise self._down(method, path, exc)

    def _call(self, method: str, path: str, body: Optional[bytes]) -> Dict[str, Any]:
        try:
            reply = self.transport.request(method, path, body)
        except TransportDown as exc:
            raise self._down(method, path, exc)
        return self._answer(method, path, reply)

    def _down(self, method: str, path: str, exc: TransportDown) -> EndpointError:
        where = self.transport.where
        what = exc.what if where in exc.what else f"{method} {where}{path}: {exc.what}"
        return EndpointError(what, exc.todo or "check that the deployment is running: %nimbus_status NAME",
                             where="endpoint")

    def _answer(self, method: str, path: str, reply: Reply) -> Dict[str, Any]:
        if 400 <= reply.status < 500 and reply.status not in (401, 403):  # the request's own fault, not the endpoint's
            code = reply.payload.get("error", "") if isinstance(reply.payload, dict) else ""
            raise EndpointRejected(f"{method} {path} answered {reply.status}: {reply.message}",
                                   "fix the request as the message says", where="endpoint", status=reply.status,
                                   code=str(code), message=reply.message)
        if reply.status >= 400:
            raise EndpointError(f"{method} {path} answered {reply.status}: {reply.message}",
                                "see the message; %nimbus_status NAME shows the deployment", where="endpoint")
        return reply.payload if isinstance(reply.payload, dict) else {"payload": reply.payload}


def predict_results(client: EndpointClient, texts: Sequence[str], fields: Optional[Sequence[str]] = None) -> List[Dict[str, Any]]:
    return client.predict(texts, fields)["results"]
