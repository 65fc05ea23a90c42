"""A stand-in for the AWS Lambda Invoke API with Lambda's documented scaling, to drive a batch at 1,000
concurrent invokes on one machine (issue 15, item 4). Not Lambda: a model of what a client meets.

Why a model and not the real handler: a 1,000,000-row batch through 1,000 execution environments cannot
run spaCy here (2 cores), and what this measures is the CLIENT (``nimbus_jupyter.batch(via="invoke")`` with
botocore underneath). So each invocation takes the time the pipeline would take -- ``ms_per_text`` (measured
from en_core_web_sm in the same run by the bench) times the texts -- without using the CPU, and answers what
the handler answers: the runtime's own routing, request parsing, pin check and OpenAPI document
(``nimbus_jupyter.runtime.{events,contract,pinning}``, no spaCy), with ``ents`` from ``fake_ents`` (the
entities the review generator put in, so the bench can check every row).

It speaks ``POST /2015-03-31/functions/{name}[:qualifier]/invocations`` (``?Qualifier=`` too) on 127.0.0.1,
so boto3's lambda client with ``endpoint_url``/``AWS_ENDPOINT_URL_LAMBDA`` and the project's
``LambdaInvokeTransport`` drive it unchanged. What it models, per the Lambda Developer Guide:

- **Concurrency limit** (default 1,000, the account default): an invoke when that many are running gets
  429 ``TooManyRequestsException`` (header ``x-amzn-ErrorType``, body ``Reason``
  ``ConcurrentInvocationLimitExceeded``, ``Type`` ``User``, ``message`` "Rate Exceeded."); nothing runs.
- **Requests per second**: 10x the concurrency limit per second; over it, 429 with ``Reason``
  ``FunctionInvocationRateLimitExceeded``.
- **Scaling rate**: 1,000 new execution environments per 10 s per function, refilled continuously (a token
  bucket of 1,000 that refills 100 per second, unused refill not accrued past 1,000). An invoke that finds
  no idle environment and no token is throttled (429, ``ConcurrentInvocationLimitExceeded``).
- **Execution environments**: one invocation at a time each; kept warm after use (no expiry within a run);
  a new one first spends ``init_s`` (the cold start: the measured layer init, 0.82 s in bench/RESULTS.md).
- **Network**: ``rtt_ms`` (default 15) per invoke, half before and half after the function runs; a throttle
  costs the round trip too.
- **Payload limits**: a request over 6 MB (6,291,456 bytes) gets 413 ``RequestEntityTooLargeException``;
  an answer the handler would make over 6,291,556 bytes as the runtime serializes it becomes the handler's
  own 413 ``response_too_large`` (as ``runtime.handler`` answers, before the platform's limit is met).
- Unknown function: 404 ``ResourceNotFoundException``.

``GET /_sim/stats``: counters and a timeline (every ``sample_s``) of requests open at the stand-in
(arrived, not yet answered), running invocations, environments, cold starts and throttles.

Run: ``python bench/lambda_sim.py --function NAME --ms-per-text 1.5`` prints ``port N`` when ready.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import unquote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a checkout without an install

from aiohttp import web  # noqa: E402

from nimbus_jupyter.runtime.contract import ApiError, openapi_document, parse_predict  # noqa: E402
from nimbus_jupyter.runtime.events import route  # noqa: E402
from nimbus_jupyter.runtime.limits import MAX_PAYLOAD_BYTES, MAX_RESPONSE_BYTES  # noqa: E402
from nimbus_jupyter.runtime.pinning import check_expected  # noqa: E402

ACCOUNT, REGION = "123456789012", "us-east-1"
PREFIX, SUFFIX = "/2015-03-31/functions/", "/invocations"
ROUTES = {"/predict": "POST", "/health": "GET", "/openapi.json": "GET"}
COMPONENTS = ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "ner"]  # en_core_web_sm's
FIELDS = ["ents"]
SCALING_ENVS, SCALING_WINDOW_S = 1000, 10.0

# -- the texts and their entities (shared with the bench, which checks every row) -------------------
SLOTS: Dict[str, Tuple[str, List[str]]] = {  # slot -> (entity label or "", fillers)
    "who": ("PERSON", ["Anna", "John Smith", "Maria", "Tom", "Priya Patel", "Lukas", "Dr. Chen"]),
    "where": ("GPE", ["Berlin", "London", "Paris", "Chicago", "Madrid", "Toronto", "Sydney", "Ohio"]),
    "brand": ("ORG", ["Acme", "Zento", "Norrin", "Vexa", "Holloway", "Brightline", "Kestrel"]),
    "when": ("DATE", ["Monday", "last Friday", "March 3", "June", "yesterday"]),
    "item": ("", ["phone", "laptop", "kettle", "camera", "monitor", "blender", "smartwatch", "vacuum", "router"]),
    "say": ("", ["works perfectly and the battery lasts for days", "stopped working after a week and support never "
                 "replied", "arrived quickly, well packed, and was easy to set up", "feels cheap and looks nothing "
                 "like the photos", "is loud but does the job", "overheats when I use it for long"]),
}
TEMPLATES = ["{who} bought a {brand} {item} in {where} on {when} and it {say}.",
             "The {brand} {item} I got {when} {say}; {who} agrees.",
             "Ordered a {item} from {brand} for {who} in {where}: it {say}, sadly or not."]
LABELS = {filler: label for label, fillers in SLOTS.values() if label for filler in fillers}
_ENTITY = re.compile("|".join([re.escape(f) for f in sorted(LABELS, key=len, reverse=True)] + [r"(?<=Order )\d+"]))


def reviews(n: int, seed: int = 0, start: int = 0) -> List[str]:
    """``n`` review-like texts of ~25 words, each unique (an order number at the end)."""
    rng = random.Random(seed)
    out = []
    for i in range(start, start + n):
        fill = {slot: rng.choice(fillers) for slot, (_, fillers) in SLOTS.items()}
        out.append(rng.choice(TEMPLATES).format(**fill) + f" Order {i}.")
    return out


def fake_ents(text: str) -> List[Dict[str, Any]]:
    """The entities the generator put into ``text``, in the handler's ``ents`` shape."""
    return [{"text": m.group(), "label": LABELS.get(m.group(), "CARDINAL"), "start": m.start(), "end": m.end()}
            for m in _ENTITY.finditer(text)]


# -- the service -------------------------------------------------------------------------------------
class Lambda:
    """One function's execution environments and the account's limits."""

    def __init__(self, function: str, *, ms_per_text: float, init_s: float, rtt_ms: float, limit: int,
                 version: str, bundle_hash: str, sample_s: float, scaling: int = SCALING_ENVS) -> None:
        self.function, self.version, self.hash = function, version, bundle_hash
        self.ms_per_text, self.init_s, self.rtt_s, self.limit = ms_per_text, init_s, rtt_ms / 1000, limit
        self.rps_limit = 10 * limit
        self.sample_s = sample_s
        self.idle = 0  # warm environments waiting for an invoke
        self.environments = 0  # every environment made (busy = environments - idle)
        self.scaling = scaling  # new environments per SCALING_WINDOW_S
        self.tokens, self.refilled = float(scaling), time.monotonic()
        self.second, self.in_second = int(time.monotonic()), 0
        self.open = 0  # requests arrived and not yet answered (the client's in-flight, seen from here)
        self.stats: Dict[str, Any] = {"invokes": 0, "predict": 0, "texts": 0, "cold_starts": 0, "throttled": 0,
                                      "throttle_reasons": {}, "too_large": 0, "response_too_large": 0,
                                      "not_found": 0, "unsigned": 0, "max_open": 0, "max_running": 0,
                                      "qualifiers": {}}
        self.timeline: List[List[float]] = []  # [t, open, running, environments, cold_starts, throttled, texts]
        self.started = time.monotonic()
        self.health = {"status": "ok", "name": function, "version": version, "lang": "en", "components": COMPONENTS,
                       "default_fields": FIELDS, "load_seconds": init_s, "extensions": [], "hash": bundle_hash}

    def arn(self, name: str) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"

    @property
    def running(self) -> int:
        return self.environments - self.idle

    def _take_token(self) -> bool:
        now = time.monotonic()
        rate = self.scaling / SCALING_WINDOW_S
        self.tokens = min(float(self.scaling), self.tokens + (now - self.refilled) * rate)
        self.refilled = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def admit(self) -> Tuple[Optional[str], bool]:
        """(the throttle reason or None, whether this invoke needs a new environment)."""
        second = int(time.monotonic())
        if second != self.second:
            self.second, self.in_second = second, 0
        self.in_second += 1
        if self.in_second > self.rps_limit:
            return "FunctionInvocationRateLimitExceeded", False
        if self.running >= self.limit:
            return "ConcurrentInvocationLimitExceeded", False
        if self.idle:
            self.idle -= 1
            return None, False
        if self.environments < self.limit and self._take_token():
            self.environments += 1
            return None, True
        return "ConcurrentInvocationLimitExceeded", False  # the scaling rate: no environment to be had

    async def invoke(self, name: str, qualifier: str, headers: Any, payload: bytes) -> web.Response:
        stats = self.stats
        stats["invokes"] += 1
        stats["qualifiers"][qualifier] = stats["qualifiers"].get(qualifier, 0) + 1
        if not (headers.get("Authorization") or "").startswith("AWS4-HMAC-SHA256"):
            stats["unsigned"] += 1
        await asyncio.sleep(self.rtt_s / 2)  # the request's way there
        if name != self.function:
            stats["not_found"] += 1
            return await self._error(404, "ResourceNotFoundException", f"Function not found: {self.arn(name)}")
        if len(payload) > MAX_PAYLOAD_BYTES:
            stats["too_large"] += 1
            return await self._error(413, "RequestEntityTooLargeException",
                                     f"Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the InvokeFunction operation")
        reason, cold = self.admit()
        if reason:
            stats["throttled"] += 1
            stats["throttle_reasons"][reason] = stats["throttle_reasons"].get(reason, 0) + 1
            return await self._error(429, "TooManyRequestsException", "Rate Exceeded.", {"Reason": reason})
        stats["max_running"] = max(stats["max_running"], self.running)
        try:
            if cold:
                stats["cold_starts"] += 1
                await asyncio.sleep(self.init_s)
            answer, texts = self.handle(payload)
            await asyncio.sleep(self.ms_per_text * texts / 1000 if texts else 0.001)
        finally:
            self.idle += 1
        await asyncio.sleep(self.rtt_s / 2)  # the answer's way back
        return web.Response(body=answer, status=200, content_type="application/json",
                            headers={"X-Amz-Executed-Version": qualifier if qualifier.isdigit() else "$LATEST",
                                     "x-amzn-RequestId": str(uuid.uuid4())})

    def handle(self, payload: bytes) -> Tuple[bytes, int]:
        """What ``runtime.handler.handler`` returns for this event, serialized, and the texts it ran."""
        texts = 0
        try:
            event = json.loads(payload)
            asked = route(event, ROUTES)
            if not asked.matched:
                raise ApiError(404, "not_found", f"no route {asked.path!r}; the routes are {sorted(ROUTES)}")
            if asked.method != ROUTES[asked.path]:
                raise ApiError(405, "method_not_allowed", f"{asked.path} takes {ROUTES[asked.path]}, not {asked.method}")
            if asked.path == "/health":
                response = _response(200, self.health)
            elif asked.path == "/openapi.json":
                response = _response(200, openapi_document(self.function, self.version, FIELDS, FIELDS))
            else:
                check_expected(event, self.version, self.hash)
                request = parse_predict(event, FIELDS, FIELDS)
                texts = len(request.texts)
                body = {"results": [{"ents": fake_ents(t)} for t in request.texts], "fields": request.fields,
                        "version": self.version, "hash": self.hash, "errors": 0}
                response = _response(200, body)
                self.stats["predict"] += 1
                self.stats["texts"] += texts
                if 2 * len(response["body"]) + 4096 >= MAX_RESPONSE_BYTES and _envelope_bytes(response) > MAX_RESPONSE_BYTES:
                    self.stats["response_too_large"] += 1
                    raise ApiError(413, "response_too_large",
                                   f"the answer would be {_envelope_bytes(response):,} bytes as Lambda serializes it, over "
                                   f"Lambda's {MAX_RESPONSE_BYTES:,}-byte response limit; send fewer texts per request "
                                   "or ask for fewer fields")
        except ApiError as exc:
            response = _response(exc.status, {"error": exc.code, "message": exc.message, **exc.extra}, exc.headers)
        return json.dumps(response).encode(), texts

    async def _error(self, status: int, code: str, message: str, extra: Optional[Dict[str, Any]] = None,
                     headers: Optional[Dict[str, str]] = None) -> web.Response:
        await asyncio.sleep(self.rtt_s / 2)
        body = {"Type": "User", "message": message, **(extra or {})}
        return web.Response(body=json.dumps(body).encode(), status=status, content_type="application/json",
                            headers={"x-amzn-ErrorType": code, "x-amzn-RequestId": str(uuid.uuid4()), **(headers or {})})

    async def sample(self) -> None:
        while True:
            s = self.stats
            self.timeline.append([round(time.monotonic() - self.started, 2), self.open, self.running,
                                  self.environments, s["cold_starts"], s["throttled"], s["texts"]])
            await asyncio.sleep(self.sample_s)


def _response(status: int, body: Dict[str, Any], headers: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """The handler's API Gateway proxy response (as ``runtime.handler._response`` makes it)."""
    return {"statusCode": status, "headers": {"Content-Type": "application/json", **(headers or {})},
            "body": json.dumps(body, separators=(",", ":")), "isBase64Encoded": False}


def _envelope_bytes(response: Dict[str, Any]) -> int:
    """As ``runtime.handler.envelope_bytes`` measures it (awslambdaric's serialization, python < 3.12)."""
    return len(json.dumps(response, separators=(", ", ": "), ensure_ascii=True).encode("utf-8"))


def make_app(service: Lambda) -> web.Application:
    async def invocations(request: web.Request) -> web.Response:
        service.open += 1
        service.stats["max_open"] = max(service.stats["max_open"], service.open)
        try:
            payload = await request.read()
            name = unquote(request.match_info["name"])
            name, _, qualifier = name.split("function:")[-1].partition(":")  # a name or an ARN, maybe qualified
            qualifier = request.query.get("Qualifier", qualifier) or "$LATEST"
            return await service.invoke(name, qualifier, request.headers, payload)
        finally:
            service.open -= 1

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({**service.stats, "open": service.open, "running": service.running,
                                  "environments": service.environments, "timeline": service.timeline,
                                  "limit": service.limit, "scaling": service.scaling, "ms_per_text": service.ms_per_text,
                                  "init_s": service.init_s, "rtt_ms": service.rtt_s * 1000})

    async def start_sampling(app: web.Application) -> None:
        app["sampler"] = asyncio.get_running_loop().create_task(service.sample())

    app = web.Application(client_max_size=4 * MAX_PAYLOAD_BYTES)  # larger invokes must reach the 413
    app.router.add_post(PREFIX + "{name}" + SUFFIX, invocations)
    app.router.add_get("/_sim/stats", stats)
    app.on_startup.append(start_sampling)
    return app


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--function", required=True)
    parser.add_argument("--ms-per-text", type=float, required=True, help="the pipeline's time per text (ents)")
    parser.add_argument("--init-s", type=float, default=0.82, help="cold start of a new environment")
    parser.add_argument("--rtt-ms", type=float, default=15.0)
    parser.add_argument("--limit", type=int, default=1000, help="concurrency limit")
    parser.add_argument("--scaling", type=int, default=SCALING_ENVS, help="new environments per 10 s")
    parser.add_argument("--version", default="1")
    parser.add_argument("--hash", default="simulated0000")
    parser.add_argument("--sample-s", type=float, default=0.5)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    service = Lambda(args.function, ms_per_text=args.ms_per_text, init_s=args.init_s, rtt_ms=args.rtt_ms,
                     limit=args.limit, version=args.version, bundle_hash=args.hash, sample_s=args.sample_s,
                     scaling=args.scaling)

    async def serve() -> None:
        runner = web.AppRunner(make_app(service), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=4096)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(f"port {port}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
