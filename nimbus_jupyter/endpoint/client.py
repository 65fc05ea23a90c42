"""Calls an endpoint over its HTTP contract: the same for the local target and for AWS."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import requests

from ..core.errors import EndpointError
from ..runtime.limits import API_GATEWAY_TIMEOUT_SECONDS


class EndpointClient:
    def __init__(self, url: str, api_key: str, timeout: float = API_GATEWAY_TIMEOUT_SECONDS + 1) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update({"x-api-key": api_key, "Content-Type": "application/json"})

    def health(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        return self._call("GET", "/health", None, timeout)

    def get_json(self, path: str, timeout: Optional[float] = None) -> Dict[str, Any]:
        """A GET of another JSON route with the key (e.g. the local server's /stats)."""
        return self._call("GET", path, None, timeout)

    def predict(self, texts: Sequence[str], fields: Optional[Sequence[str]] = None) -> Dict[str, Any]:
        """The whole answer: ``results`` in input order, the ``fields`` used and the ``version``."""
        body: Dict[str, Any] = {"texts": list(texts)}
        if fields:
            body["fields"] = list(fields)
        return self._call("POST", "/predict", body, None)

    def _call(self, method: str, path: str, body: Any, timeout: Optional[float]) -> Dict[str, Any]:
        try:
            response = self.session.request(method, self.url + path, json=body, timeout=timeout or self.timeout)
        except requests.RequestException as exc:
            raise EndpointError(f"{method} {self.url}{path} did not answer ({type(exc).__name__})",
                                "check that the deployment is running: %nimbus_status NAME", where="endpoint")
        try:
            payload = response.json()
        except ValueError:
            payload = {"message": response.text[:200]}
        if response.status_code >= 400:
            message = payload.get("message") if isinstance(payload, dict) else str(payload)
            raise EndpointError(f"{method} {path} answered {response.status_code}: {message}",
                                "see the message; %nimbus_status NAME shows the deployment", where="endpoint")
        return payload


def predict_results(client: EndpointClient, texts: Sequence[str], fields: Optional[Sequence[str]] = None) -> List[Dict[str, Any]]:
    return client.predict(texts, fields)["results"]
