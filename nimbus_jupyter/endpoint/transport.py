"""How a request reaches an endpoint: the wire under the one ``EndpointClient``.

A ``Transport`` sends one request, once, and says what came back (an HTTP status and a decoded JSON
payload), or why nothing did. It never retries: whether a request may be sent again depends on whether
it may already have run, and only the client (``client.py``) decides that, the same way for every
transport. Two exist:

- ``HttpTransport`` (here): the endpoint's HTTP contract with the API key (or, for an AWS deployment with
  IAM auth, SigV4-signed by ``sigv4.SigV4Auth``), through ``requests`` and urllib3 with retries off. The only
  way to a local deployment; for AWS it goes through API Gateway.
- ``LambdaInvokeTransport`` (``invoke.py``): the same handler reached by ``lambda.invoke`` with the
  user's own AWS credentials, the default for AWS deployments (the target chooses: ``Target.endpoint``).

What did not come back is one of two exceptions: ``NoAnswer`` (this attempt got no answer; ``sent``
says whether the endpoint may have received it, so that nobody resends it blindly) and
``TransportDown`` (the endpoint cannot be reached at all: gone, refused, no permission).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Protocol

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..core.errors import EndpointError, UserInputError
from ..runtime.limits import API_GATEWAY_TIMEOUT_SECONDS, MAX_PAYLOAD_BYTES

CHECK_TIMEOUT_SECONDS = 10
CONNECT_TIMEOUT_SECONDS = 10
LOCAL_TIME_LIMIT_SECONDS = 60.0  # a local server has no platform limit; a request should still end in a minute
READ_MARGIN_SECONDS = 5.0  # past the endpoint's own limit: its 504/timeout answer arrives before ours
VIAS = ("invoke", "http")  # the kinds of transport there are; a target says which of them reach it


def check_via(via: Optional[str]) -> Optional[str]:
    """``via`` if it names a kind of transport (or is None: the target's default)."""
    if via is not None and via not in VIAS:
        raise UserInputError(f"via must be 'invoke' or 'http', not {via!r}",
                             "leave it out for the deployment's default (invoke on AWS, http on local)")
    return via


@dataclass
class Reply:
    """One answer: the endpoint's status and its decoded JSON (the client adds what its retries met)."""

    status: int  # the endpoint's HTTP status (for invoke: the handler's statusCode, or a mapped Lambda error)
    payload: Any  # the decoded JSON body; {"message": ...} when it was not JSON
    retries: int = 0  # retries made on the way to this answer (set by the client)
    throttled: int = 0  # how many of those were throttles (429 / TooManyRequestsException)
    seconds: float = 0.0  # how long this attempt took
    timed_out: bool = False  # the endpoint answered that its own time limit ran out (a 504, Lambda's timeout)
    text: str = ""  # the JSON body as it came (200 answers), so a batch saves it without encoding it again

    @property
    def message(self) -> str:
        if isinstance(self.payload, dict):
            return str(self.payload.get("message", ""))[:300]
        return str(self.payload)[:300]

    @property
    def code(self) -> str:
        """The contract's short error name (``version_changed``, ``field_unavailable``...), or ""."""
        if isinstance(self.payload, dict) and isinstance(self.payload.get("error"), str):
            return self.payload["error"]
        return ""


class TransportDown(EndpointError):
    """The endpoint cannot be reached any more (gone, refused, no permission): stop sending."""

    def __init__(self, what: str, todo: str = "", where: str = "", retries: int = 0) -> None:
        self.retries = retries
        super().__init__(what, todo, where)


class NoAnswer(Exception):
    """One attempt got no answer. ``sent``: the request may have reached the endpoint, which may be
    running it now (a read timeout, a connection closed while waiting), so it must not be resent
    blindly; False: the connection was never made, so nothing ran."""

    def __init__(self, what: str, sent: bool, seconds: float = 0.0, timed_out: bool = False) -> None:
        super().__init__(what)
        self.what = what
        self.sent = sent
        self.seconds = seconds
        self.timed_out = timed_out  # the wait for the answer ran out (rather than the connection closing)


class Transport(Protocol):
    kind: str  # "http" | "invoke"
    where: str  # the URL or the function, for messages
    time_limit: float  # seconds the endpoint has to answer one request (29 on API Gateway, the function's timeout on invoke)
    read_timeout: float  # how long one attempt waits for its answer (a little past ``time_limit``)
    body_in_envelope: bool  # the body travels as a JSON string inside a Lambda event: its escapes count in the 6 MB
    max_request_bytes: int  # what one request may weigh, as the limit measures it

    def check(self, method: str, path: str) -> Reply:
        """One quick request (a preflight); raises ``TransportDown`` when nobody answers."""

    def send(self, method: str, path: str, body: Optional[bytes] = None,
             headers: Optional[Mapping[str, str]] = None, timeout: Optional[float] = None) -> Reply:
        """One attempt, never repeated here; raises ``NoAnswer`` or ``TransportDown``."""

    def close(self) -> None:
        ...


class HttpTransport:
    """The endpoint's HTTP contract: ``x-api-key``, JSON bodies. One ``requests.Session`` per thread
    (sessions are not thread-safe), kept alive across requests; no retries (the client decides)."""

    kind = "http"

    def __init__(self, url: str, api_key: str, retries: int = 0, timeout: Optional[float] = None, *,
                 time_limit: float = LOCAL_TIME_LIMIT_SECONDS, body_in_envelope: bool = False,
                 auth: Optional[requests.auth.AuthBase] = None) -> None:
        """``auth`` signs each request (``SigV4Auth`` for IAM auth); ``api_key`` "" sends no x-api-key."""
        # ``retries`` is accepted for callers of the older signature: retrying is the client's business now.
        self.url = url.rstrip("/")
        self.where = self.url
        self.api_key = api_key
        self.auth = auth
        self.time_limit = float(time_limit)
        self.read_timeout = float(timeout) if timeout is not None else self.time_limit + READ_MARGIN_SECONDS
        self.body_in_envelope = body_in_envelope
        self.max_request_bytes = MAX_PAYLOAD_BYTES
        self._retry = Retry(total=0, redirect=0, raise_on_status=False)  # one attempt: the client retries
        self._local = threading.local()
        self._sessions: List[requests.Session] = []
        self._lock = threading.Lock()

    @classmethod
    def for_api_gateway(cls, url: str, api_key: str,
                        auth: Optional[requests.auth.AuthBase] = None) -> "HttpTransport":
        """API Gateway in front of Lambda: 29 s to answer, and the body arrives inside a Lambda event."""
        return cls(url, api_key, time_limit=API_GATEWAY_TIMEOUT_SECONDS, body_in_envelope=True, auth=auth)

    def check(self, method: str, path: str) -> Reply:
        started = time.perf_counter()
        try:
            with requests.Session() as session:
                response = session.request(method, self.url + path, headers=self._key_header(), auth=self.auth,
                                           timeout=CHECK_TIMEOUT_SECONDS)
                payload = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise TransportDown(f"{method} {self.url}{path} failed ({type(exc).__name__})")
        return Reply(response.status_code, payload, seconds=time.perf_counter() - started)

    def send(self, method: str, path: str, body: Optional[bytes] = None,
             headers: Optional[Mapping[str, str]] = None, timeout: Optional[float] = None) -> Reply:
        read = min(self.read_timeout, timeout) if timeout is not None else self.read_timeout
        started = time.perf_counter()
        try:
            response = self._session().request(method, self.url + path, data=body, headers=dict(headers or {}),
                                               timeout=(CONNECT_TIMEOUT_SECONDS, max(0.05, read)))
        except requests.ConnectTimeout:
            raise NoAnswer(f"could not connect to {self.url} within {CONNECT_TIMEOUT_SECONDS} s", sent=False)
        except requests.ReadTimeout:
            raise NoAnswer(f"no answer within {read:.3g} s (the read timeout)", sent=True,
                           seconds=time.perf_counter() - started, timed_out=True)
        except requests.ConnectionError as exc:
            sent = not _never_connected(exc)
            what = ("the endpoint stopped answering mid-request (the connection closed)" if sent
                    else f"could not connect to {self.url}")
            raise NoAnswer(f"{what} ({_reason(exc)})", sent=sent, seconds=time.perf_counter() - started)
        except requests.RequestException as exc:
            raise NoAnswer(f"the request failed ({type(exc).__name__})", sent=True, seconds=time.perf_counter() - started)
        seconds = time.perf_counter() - started
        try:
            payload = response.json()
        except ValueError:
            payload = {"message": response.text[:300]}
        return Reply(response.status_code, payload, seconds=seconds, timed_out=response.status_code == 504,
                     text=_text(response) if response.status_code == 200 else "")

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
            session.mount("http://", HTTPAdapter(max_retries=self._retry, pool_maxsize=2))
            session.mount("https://", HTTPAdapter(max_retries=self._retry, pool_maxsize=2))
            session.headers.update({**self._key_header(), "Content-Type": "application/json"})
            session.auth = self.auth
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session


def _text(response: requests.Response) -> str:
    """The body as UTF-8 text ("" when it is not): what ``Reply.text`` keeps."""
    try:
        return response.content.decode("utf-8")
    except UnicodeDecodeError:
        return ""


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True when the connection could not be made (refused, unreachable): the request never left."""
    from urllib3.exceptions import NewConnectionError

    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError says why in ``reason``
    return isinstance(reason, (NewConnectionError, ConnectionRefusedError))


def _reason(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("Connection refused", "RemoteDisconnected", "Connection reset", "Connection aborted", "Broken pipe"):
        if marker in text:
            return marker
    return type(exc).__name__


def describe(reply: Reply) -> str:
    """``STATUS message`` for errors on rows and in messages."""
    return f"{reply.status} {reply.message}".strip()


def as_dict(payload: Any) -> Dict[str, Any]:
    return payload if isinstance(payload, dict) else {}
