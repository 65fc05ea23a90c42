"""How a request reaches an endpoint: the seam between batch scoring and the wire.

Batching decides *what* to send (chunks, splitting, concurrency, checkpoints); a ``Transport`` only
sends one request and says what came back, as an HTTP status and a decoded JSON payload. Two exist:

- ``HttpTransport`` (here): the endpoint's HTTP contract with the API key (or, for an AWS deployment with
  IAM auth, SigV4-signed by ``sigv4.SigV4Auth``), through ``requests`` and urllib3's ``Retry``. The only
  way to a local deployment; for AWS it goes through API Gateway.
- ``LambdaInvokeTransport`` (``invoke.py``): the same handler reached by ``lambda.invoke`` with the
  user's own AWS credentials, the default for AWS deployments (the target chooses: ``Target.endpoint``).

Both retry inside themselves (throttling, 5xx, lost connections); what is left for the caller is a
final status: 200, a 4xx about the rows (split the chunk), or a retriable status that stayed.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Protocol

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..core.errors import EndpointError, UserInputError
from ..runtime.limits import API_GATEWAY_TIMEOUT_SECONDS

RETRIABLE = (429, 500, 502, 503, 504)
CHECK_TIMEOUT_SECONDS = 10
VIAS = ("invoke", "http")  # the kinds of transport there are; a target says which of them reach it


def check_via(via: Optional[str]) -> Optional[str]:
    """``via`` if it names a kind of transport (or is None: the target's default)."""
    if via is not None and via not in VIAS:
        raise UserInputError(f"via must be 'invoke' or 'http', not {via!r}",
                             "leave it out for the deployment's default (invoke on AWS, http on local)")
    return via


@dataclass
class Reply:
    """One request's final answer, after the transport's own retries."""

    status: int  # the endpoint's HTTP status (for invoke: the handler's statusCode, or a mapped Lambda error)
    payload: Any  # the decoded JSON body; {"message": ...} when it was not JSON
    retries: int = 0  # retries made on the way to this answer
    throttled: int = 0  # how many of those were throttles (429 / TooManyRequestsException)

    @property
    def message(self) -> str:
        if isinstance(self.payload, dict):
            return str(self.payload.get("message", ""))[:300]
        return str(self.payload)[:300]


class TransportDown(EndpointError):
    """The endpoint cannot be reached any more (gone, refused, no permission): stop sending."""

    def __init__(self, what: str, todo: str = "", where: str = "", retries: int = 0) -> None:
        self.retries = retries
        super().__init__(what, todo, where)


class Transport(Protocol):
    kind: str  # "http" | "invoke"
    where: str  # the URL or the function, for messages

    def check(self, method: str, path: str) -> Reply:
        """One quick request without retries (a preflight); raises ``TransportDown`` when nobody answers."""

    def request(self, method: str, path: str, body: Optional[bytes] = None) -> Reply:
        """One request with the transport's retries; raises ``TransportDown`` when the endpoint is gone."""

    def close(self) -> None:
        ...


class HttpTransport:
    """The endpoint's HTTP contract: ``x-api-key``, JSON bodies, urllib3 retries.

    Throttling (429) and 5xx are waited out patiently (``retries`` times, exponential backoff with
    jitter); a refused or broken connection (the server is gone) gets three quick tries, then
    ``TransportDown``. One ``requests.Session`` per thread, as sessions are not thread-safe.
    """

    kind = "http"

    def __init__(self, url: str, api_key: str, retries: int = 8, timeout: float = API_GATEWAY_TIMEOUT_SECONDS + 30,
                 auth: Optional[requests.auth.AuthBase] = None) -> None:
        """``auth`` signs each request (``SigV4Auth`` for IAM auth); ``api_key`` "" sends no x-api-key."""
        self.url = url.rstrip("/")
        self.where = self.url
        self.api_key = api_key
        self.auth = auth
        self.timeout = timeout
        self.retry = Retry(total=None, connect=3, read=3, status=retries, other=0,
                           backoff_factor=0.1, backoff_max=10.0, backoff_jitter=0.1,
                           status_forcelist=RETRIABLE, allowed_methods=None, raise_on_status=False,
                           respect_retry_after_header=False)
        self._local = threading.local()
        self._sessions: List[requests.Session] = []
        self._lock = threading.Lock()

    def check(self, method: str, path: str) -> Reply:
        try:
            with requests.Session() as session:
                response = session.request(method, self.url + path, headers=self._key_header(), auth=self.auth,
                                           timeout=CHECK_TIMEOUT_SECONDS)
                payload = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise TransportDown(f"{method} {self.url}{path} failed ({type(exc).__name__})")
        return Reply(response.status_code, payload)

    def request(self, method: str, path: str, body: Optional[bytes] = None) -> Reply:
        try:
            response = self._session().request(method, self.url + path, data=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise TransportDown(f"the endpoint stopped answering ({type(exc).__name__})", retries=self.retry.connect or 0)
        history = getattr(getattr(response.raw, "retries", None), "history", ()) or ()
        try:
            payload = response.json()
        except ValueError:
            payload = {"message": response.text[:300]}
        return Reply(response.status_code, payload, len(history), sum(1 for h in history if h.status == 429))

    def close(self) -> None:
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def _key_header(self) -> Dict[str, str]:
        return {"x-api-key": self.api_key} if self.api_key else {}

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.mount("http://", HTTPAdapter(max_retries=self.retry, pool_maxsize=2))
            session.mount("https://", HTTPAdapter(max_retries=self.retry, pool_maxsize=2))
            session.headers.update({**self._key_header(), "Content-Type": "application/json"})
            session.auth = self.auth
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session
