"""``EndpointClient``: the one client of an endpoint, over any ``Transport`` (HTTP with the key, or
``lambda.invoke``). Batch scoring, the deploy's smoke test and parity check, ``Deployment.predict``, the
sidebar's test and status probes all use it; the same answers whichever way a request travels.

What it owns, so that no transport and no caller decides it differently:

- **Retries.** A request is sent again only when the answer says nothing ran (the connection could not be
  made, 429 throttled, 503 not ready) or when it ran and failed outside the pipeline (500, 502: a worker
  died, a function crashed), a bounded number of times, with exponential backoff and full jitter,
  within the request's deadline. A POST that may have been processed -- a read timeout, a connection
  closed while waiting, a 504, Lambda's own timeout -- is **never resent**: the request fails (its rows
  get errors that say so), and the caller may try them again later, smaller. Why not de-duplicate on
  the server instead: Lambda's execution environments share nothing, so a request id seen by one is
  unknown to the next (that would take a table, billed per request); a client that does not resend
  works the same on every transport and every target, including ones in other packages.
- **The deadline.** Each ``send_predict`` has one (by default twice the transport's read timeout); every
  attempt waits at most what is left of it, so a slow endpoint costs one wait, not four.
- **The pin.** With ``pin``, every request says which version (number and content hash) it expects
  (headers the handler checks: a 409 ``version_changed`` when another serves), and an answer that names
  another version is refused here too (runtimes older than the check): never accepted.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from ..core.errors import EndpointError, EndpointRejected
from ..runtime.pinning import EXPECT_HASH_HEADER, EXPECT_VERSION_HEADER, VERSION_CHANGED
from .transport import HttpTransport, NoAnswer, Reply, Transport, TransportDown, as_dict

OK, REFUSED, FAILED, MOVED, UNAVAILABLE, DOWN = "ok", "refused", "failed", "moved", "unavailable", "down"
RUN_NOTHING = (429, 503)  # answers that say the request was not run: safe to send again
RAN_AND_FAILED = (500, 502)  # it ran, and failed outside the pipeline (a pipeline's own error is a row's)
CONNECT_RETRIES = 2  # a connection that could not be made: tried again this often before "down"
BACKOFF_BASE, BACKOFF_CAP = 0.1, 10.0


class WrongVersion(EndpointError):
    """A pinned request was answered (or refused) by another version than the one it expects."""


@dataclass(frozen=True)
class Pin:
    """The one version a client's requests must be answered by."""

    version: str  # the deployment's version number, as the endpoint says it ("2")
    hash: str  # the bundle's content hash

    def headers(self) -> Dict[str, str]:
        out = {EXPECT_VERSION_HEADER: self.version}
        if self.hash:
            out[EXPECT_HASH_HEADER] = self.hash
        return out

    def short(self) -> str:
        return f"v{self.version}" + (f" (hash {self.hash[:12]})" if self.hash else "")


@dataclass(frozen=True)
class Served:
    """What an endpoint says it serves and can produce: its /health and its OpenAPI document."""

    version: str
    hash: str
    fields: List[str]  # every field a request may name (the OpenAPI enum)
    default_fields: List[str]
    extensions: List[str]  # Doc._ extensions the pipeline registered (ext:NAME fields)
    components: List[str]
    workers: int  # worker processes where the endpoint says so (the local server), else 0

    def pin(self) -> Pin:
        return Pin(self.version, self.hash)


@dataclass
class Outcome:
    """One predict request after the client's retries: what a batch decides on."""

    kind: str  # ok | refused (a 4xx about the rows: split) | failed | moved (another version) | unavailable (a field) | down
    results: List[Dict[str, Any]] = field(default_factory=list)
    status: int = 0
    code: str = ""  # the endpoint's own error code ("unknown_field"), when it gave one
    message: str = ""
    todo: str = ""
    retries: int = 0
    throttled: int = 0
    seconds: float = 0.0  # the last attempt's time
    may_have_run: bool = False  # failed after it was sent: not resent
    timed_out: bool = False  # no answer in time (a read timeout, a 504, Lambda's timeout)
    serving: Optional[Pin] = None  # the version that answered, or that serves instead of the pinned one
    answer: Dict[str, Any] = field(default_factory=dict)  # the whole 200 answer
    text: str = ""  # that answer's JSON as it came ("" when the transport did not keep it)


class EndpointClient:
    def __init__(self, transport: Transport, *, retries: int = 3, pin: Optional[Pin] = None, name: str = "") -> None:
        self.transport = transport
        self.retries = retries
        self.pin = pin
        self.name = name or transport.where

    @classmethod
    def over_http(cls, url: str, api_key: str, retries: int = 0) -> "EndpointClient":
        """The HTTP contract at ``url`` with ``api_key`` (no retries of 429/5xx unless asked)."""
        return cls(HttpTransport(url, api_key), retries=retries)

    # -- quick GETs ----------------------------------------------------------------------------------
    def health(self) -> Dict[str, Any]:
        """``GET /health``: one quick try, no retries (a probe)."""
        return self._answer("GET", "/health", self._check("GET", "/health"))

    def get_json(self, path: str) -> Dict[str, Any]:
        """A quick GET of another JSON route with the key (e.g. the local server's /stats)."""
        return self._answer("GET", path, self._check("GET", path))

    def openapi(self) -> Dict[str, Any]:
        return self._answer("GET", "/openapi.json", self._check("GET", "/openapi.json"))

    def describe(self, nothing_sent: str = "") -> Served:
        """Health, then the OpenAPI document (which needs the key over HTTP): what serves and which fields
        it can give. ``nothing_sent`` ends each error's what-to-do (say, "; no row was sent")."""
        name = self.name
        try:
            health = as_dict(self._check_patiently("/health").payload)
            answer = self._check_patiently("/openapi.json")
        except TransportDown as exc:
            raise EndpointError(f"deployment {name!r} does not answer: {exc.what}",
                                (exc.todo or f"check it with %nimbus_status {name}") + nothing_sent, where="endpoint")
        if answer.status in (401, 403):
            raise EndpointError(f"the endpoint of {name!r} refused the API key",
                                "deploy again to refresh the key file" + nothing_sent, where="endpoint")
        if answer.status != 200 or not isinstance(answer.payload, dict):
            raise EndpointError(f"the endpoint of {name!r} answered {answer.status} to a check: {answer.message}",
                                f"see %nimbus_status {name}" + nothing_sent, where="endpoint")
        schemas = answer.payload.get("components", {}).get("schemas", {})
        enum = schemas.get("PredictRequest", {}).get("properties", {}).get("fields", {}).get("items", {}).get("enum", [])
        workers = as_dict(health.get("workers")).get("size") or 0
        return Served(version=str(health.get("version", "")), hash=str(health.get("hash") or ""), fields=list(enum),
                      default_fields=list(health.get("default_fields") or []),
                      extensions=list(health.get("extensions") or []), components=list(health.get("components") or []),
                      workers=int(workers))

    # -- predict -------------------------------------------------------------------------------------
    def predict(self, texts: Sequence[str], fields: Optional[Sequence[str]] = None,
                timeout: Optional[float] = None) -> Dict[str, Any]:
        """The whole answer (``results`` in input order, the ``fields`` used, the ``version``); an
        ``EndpointError`` for anything else."""
        outcome = self.send_predict(texts, fields, timeout=timeout)
        if outcome.kind == OK:
            return outcome.answer
        if outcome.kind == DOWN:
            what = outcome.message if self.transport.where in outcome.message else f"POST {self.transport.where}/predict: {outcome.message}"
            raise EndpointError(what, outcome.todo or "check that the deployment is running: %nimbus_status NAME",
                                where="endpoint")
        if outcome.kind == MOVED:
            raise WrongVersion(outcome.message, "deploy or roll back to the version you expect, or ask without a pin",
                               where="endpoint")
        if outcome.kind in (REFUSED, UNAVAILABLE) and outcome.status not in (401, 403):  # the request's own fault
            raise EndpointRejected(f"POST /predict answered {outcome.status}: {outcome.message}",
                                   "fix the request as the message says", where="endpoint", status=outcome.status,
                                   code=outcome.code, message=outcome.message)
        status = f"answered {outcome.status}: " if outcome.status else "failed: "
        raise EndpointError(f"POST /predict {status}{outcome.message}",
                            "see the message; %nimbus_status NAME shows the deployment", where="endpoint")

    def send_predict(self, texts: Sequence[str], fields: Optional[Sequence[str]] = None, *,
                     timeout: Optional[float] = None) -> Outcome:
        """One predict request, retried as the module says, within ``timeout`` seconds (default: twice
        the transport's read timeout). Never raises for what the endpoint answered or did not."""
        payload: Dict[str, Any] = {"texts": list(texts)}
        if fields:
            payload["fields"] = list(fields)
        try:
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: as a JSON escape it arrives, and the endpoint names the text
            body = json.dumps(payload).encode("ascii")
        headers = self.pin.headers() if self.pin else {}
        budget = timeout if timeout is not None else 2 * self.transport.read_timeout
        deadline = time.monotonic() + budget
        retries = throttled = connect_failures = 0
        while True:
            left = deadline - time.monotonic()
            try:
                reply = self.transport.send("POST", "/predict", body, headers, timeout=max(0.05, left))
            except TransportDown as exc:
                return Outcome(DOWN, message=exc.what, todo=exc.todo, retries=retries, throttled=throttled)
            except NoAnswer as exc:
                if exc.sent:  # it may be running: never sent again
                    return Outcome(FAILED, message=f"{exc.what}; not sent again, as the endpoint may still be running it",
                                   retries=retries, throttled=throttled, seconds=exc.seconds, may_have_run=True,
                                   timed_out=exc.timed_out)
                connect_failures += 1
                if connect_failures > CONNECT_RETRIES or not self._wait(retries, deadline):
                    return Outcome(DOWN, message=f"the endpoint stopped answering ({exc.what})", retries=retries,
                                   throttled=throttled)
                retries += 1
                continue
            retriable = reply.status in RUN_NOTHING or (reply.status in RAN_AND_FAILED and not reply.timed_out)
            if retriable and retries < self.retries and self._wait(retries, deadline):
                retries += 1
                throttled += reply.status == 429
                continue
            return self._outcome(reply, len(texts), retries, throttled + (reply.status == 429))

    def close(self) -> None:
        self.transport.close()

    # -- internals -----------------------------------------------------------------------------------
    def _outcome(self, reply: Reply, texts: int, retries: int, throttled: int) -> Outcome:
        out = Outcome(OK, status=reply.status, code=reply.code, message=reply.message, retries=retries,
                      throttled=throttled, seconds=reply.seconds, timed_out=reply.timed_out)
        payload = as_dict(reply.payload)
        if reply.status == 200:
            answered = Pin(str(payload.get("version", "")), str(payload.get("hash") or ""))
            out.serving = answered
            if self.pin and not _same_version(self.pin, answered):
                out.kind = MOVED
                out.message = (f"the endpoint answered with {answered.short()}, not {self.pin.short()} this client is "
                               "pinned to; the answer was not used")
                return out
            results = payload.get("results")
            if not isinstance(results, list) or len(results) != texts:
                out.kind = FAILED
                out.message = f"the endpoint returned {len(results) if isinstance(results, list) else 'no'} results for {texts} texts"
                return out
            out.results, out.answer, out.text = results, payload, reply.text
            return out
        if reply.status == 409 and reply.code == VERSION_CHANGED:
            serving = as_dict(payload.get("serving"))
            out.kind, out.serving = MOVED, Pin(str(serving.get("version", "?")), str(serving.get("hash") or ""))
            return out
        if reply.status == 422 and reply.code == "field_unavailable":
            out.kind = UNAVAILABLE
            return out
        if reply.status >= 500 or reply.status == 429 or reply.timed_out:
            out.kind = FAILED
            out.may_have_run = reply.status not in RUN_NOTHING
            if reply.timed_out:
                out.message = (f"{reply.status} {reply.message}; the endpoint ran out of time, so it was not sent again")
            elif retries:
                out.message = f"gave up after {retries} retries: {reply.status} {reply.message}"
            else:
                out.message = f"{reply.status} {reply.message}"
            return out
        out.kind = REFUSED  # a 4xx about these texts (413 included): the caller may split them
        return out

    def _check_patiently(self, path: str, attempts: int = 8) -> Reply:
        """A check that waits out a throttle or a server still starting (429, 503), within 30 s. Eight tries
        (backoff up to ~13 s in all): the local server answers /openapi.json from a worker, so a batch or a
        job starting while another fills every worker and the queue waits its turn instead of failing."""
        deadline = time.monotonic() + 30
        for attempt in range(attempts):
            reply = self.transport.check("GET", path)
            if reply.status not in RUN_NOTHING or attempt == attempts - 1 or not self._wait(attempt, deadline):
                return reply
        return reply

    def _wait(self, attempt: int, deadline: float) -> bool:
        """Sleep before retry ``attempt + 1`` (exponential backoff, full jitter); False when the deadline
        leaves no time for it."""
        delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * (2 ** attempt)))
        if time.monotonic() + delay >= deadline:
            return False
        time.sleep(delay)
        return True

    def _check(self, method: str, path: str) -> Reply:
        try:
            return self.transport.check(method, path)
        except TransportDown as exc:
            where = self.transport.where
            what = exc.what if where in exc.what else f"{method} {where}{path}: {exc.what}"
            raise EndpointError(what, exc.todo or "check that the deployment is running: %nimbus_status NAME",
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


def _same_version(pin: Pin, answered: Pin) -> bool:
    """The answer is from the pinned version: the same number, and the same hash when both say one."""
    if answered.version and answered.version != pin.version:
        return False
    return not (pin.hash and answered.hash and answered.hash != pin.hash)


def predict_results(client: EndpointClient, texts: Sequence[str], fields: Optional[Sequence[str]] = None) -> List[Dict[str, Any]]:
    return client.predict(texts, fields)["results"]
