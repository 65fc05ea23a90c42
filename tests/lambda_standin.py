"""A STAND-IN for the AWS Lambda service, for tests only: Lambda cannot run here (no account, no
network; moto's Lambda invoke needs Docker).

It speaks the Lambda Invoke REST API on 127.0.0.1 (``POST /2015-03-31/functions/{name}/invocations``),
so boto3/botocore run for real against it (SigV4 signing, serialization, error parsing, retries), and
answers by running the REAL ``nimbus_jupyter.runtime.handler.handler`` on a REAL bundle, in its own
process as a Lambda execution environment would (one event at a time). Point boto3 at it with
``AWS_ENDPOINT_URL_LAMBDA``.

Faults are injected through ``POST /_standin/faults`` (JSON, merged into the current faults):
``throttle: N`` (the next N /predict invokes get 429 TooManyRequestsException), ``unhandled: N`` (the next N
/predict invokes end in ``X-Amz-Function-Error: Unhandled``), ``unhandled_when: "text"`` (every /predict
whose body holds it does), ``max_payload: bytes`` (larger invokes get 413 RequestEntityTooLargeException;
Lambda's is 6 MB), ``gone_after: N`` (after N /predict invokes the function is deleted: 404
ResourceNotFoundException), ``deny: true`` (403 AccessDeniedException). ``GET /_standin/stats`` counts.

Run: ``python lambda_standin.py BUNDLE_DIR FUNCTION_NAME`` prints ``port N`` when ready.
"""
from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Optional
from urllib.parse import parse_qs, unquote

ACCOUNT = "123456789012"
REGION = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
PREFIX = "/2015-03-31/functions/"
SUFFIX = "/invocations"


class StandIn:
    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.faults: Dict[str, Any] = {}
        self.stats: Dict[str, Any] = {"invokes": 0, "predict": 0, "throttled": 0, "unhandled": 0, "too_large": 0,
                                      "not_found": 0, "denied": 0, "unsigned": 0, "transport_headers": [],
                                      "request_ids": [], "qualifiers": []}
        self.lock = threading.Lock()  # one execution environment: one event at a time
        self.stats_lock = threading.Lock()

    def arn(self, name: str) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"

    def invoke(self, name: str, headers: Any, payload: bytes) -> tuple:
        """(status, headers, body) as the Lambda service would answer."""
        with self.stats_lock:
            self.stats["invokes"] += 1
            if not (headers.get("Authorization") or "").startswith("AWS4-HMAC-SHA256"):
                self.stats["unsigned"] += 1
            faults = self.faults
            if faults.get("deny"):
                self.stats["denied"] += 1
                return _error(403, "AccessDeniedException", f"User: arn:aws:iam::{ACCOUNT}:user/test is not authorized to perform: "
                              f"lambda:InvokeFunction on resource: {self.arn(name)} because no identity-based policy allows it")
            gone = faults.get("gone_after") is not None and self.stats["predict"] >= faults["gone_after"]
            if name != self.function_name or gone:
                self.stats["not_found"] += 1
                return _error(404, "ResourceNotFoundException", f"Function not found: {self.arn(name)}")
            if len(payload) > faults.get("max_payload", 6 * 1024 * 1024):
                self.stats["too_large"] += 1
                return _error(413, "RequestEntityTooLargeException",
                              f"Request must be smaller than {faults.get('max_payload')} bytes for the InvokeFunction operation")
            event = json.loads(payload)
            is_predict = event.get("path") == "/predict"
            if is_predict and faults.get("throttle", 0) > 0:
                faults["throttle"] -= 1
                self.stats["throttled"] += 1
                return _error(429, "TooManyRequestsException", "Rate Exceeded.",
                              {"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"}, {"Retry-After": "1"})
            if is_predict:
                self.stats["predict"] += 1
                self.stats["transport_headers"].append((event.get("headers") or {}).get("x-nimbus-transport"))
                self.stats["request_ids"].append((event.get("requestContext") or {}).get("requestId"))
                trigger = faults.get("unhandled_when")
                if faults.get("unhandled", 0) > 0 or (trigger and trigger in (event.get("body") or "")):
                    faults["unhandled"] = max(0, faults.get("unhandled", 0) - 1)
                    self.stats["unhandled"] += 1
                    body = {"errorMessage": "RequestId: x Error: Runtime exited with error: signal: killed",
                            "errorType": "Runtime.ExitError"}
                    return 200, {"X-Amz-Function-Error": "Unhandled"}, json.dumps(body).encode()
        from nimbus_jupyter.runtime.handler import handler

        with self.lock:
            answer = handler(event, None)
        return 200, {"X-Amz-Executed-Version": "$LATEST"}, json.dumps(answer).encode()


def _error(status: int, code: str, message: str, extra: Optional[Dict[str, Any]] = None,
           headers: Optional[Dict[str, str]] = None) -> tuple:
    body = {"__type": code, "Type": "User", "message": message, **(extra or {})}
    return status, {"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazonaws.awslambda/",
                    **(headers or {})}, json.dumps(body).encode()


def make_server(standin: StandIn, port: int = 0) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/_standin/stats":
                with standin.stats_lock:
                    self._send(200, {}, json.dumps(standin.stats).encode())
            else:
                self._send(404, {}, b"{}")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/_standin/faults":
                with standin.stats_lock:
                    standin.faults.update(json.loads(body))
                self._send(200, {}, b"{}")
                return
            path, _, query = self.path.partition("?")
            if not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
                self._send(404, {}, b'{"message": "unknown route"}')
                return
            name = unquote(path[len(PREFIX):-len(SUFFIX)])
            name, _, qualifier = name.split("function:")[-1].partition(":")  # an ARN or a name, maybe with a qualifier
            qualifier = parse_qs(query).get("Qualifier", [qualifier])[0]  # or the Qualifier parameter
            with standin.stats_lock:
                standin.stats["qualifiers"].append(qualifier or "$LATEST")
            self._send(*standin.invoke(name, self.headers, body))

        def _send(self, status: int, headers: Dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for key, value in {"Content-Type": "application/json", "x-amzn-RequestId": "standin", **headers}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def main() -> None:
    bundle_dir, function_name = sys.argv[1], sys.argv[2]
    os.environ["NIMBUS_BUNDLE_DIR"] = bundle_dir  # as the function's environment would say
    os.environ.setdefault("NIMBUS_DEPLOYMENT", function_name)
    from nimbus_jupyter.runtime.handler import load

    load()  # the init phase, before the first invoke
    server = make_server(StandIn(function_name))
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
