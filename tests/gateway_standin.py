"""A STAND-IN for API Gateway's REST front (stage ``v1``), for tests only: moto's API Gateway stores keys
and usage plans but serves no stage (its Lambda integration needs Docker), and there is no AWS account.

In front, what API Gateway decides before Lambda runs, as it answers it:

- ``auth="key"``: the ``x-api-key`` must be a key that moto's API Gateway holds, enabled, attached to a
  usage plan of this REST API; and, if it is newer than ``propagate(seconds)`` (the keys there were then
  count as accepted long ago), older than ``seconds``: a new key answers 403 for the seconds API Gateway
  takes to accept it. Else 403 ``{"message": "Forbidden"}``.
- ``auth="iam"``: the request must carry a SigV4 signature (service ``execute-api``, this region) by an
  access key in ``secrets``, dated within 5 minutes, that matches the request as received (method, path,
  query, the signed headers, the body): recomputed with botocore's own SigV4 algorithm. Else 403 with API
  Gateway's messages ("Missing Authentication Token", "... signature ... does not match ...").

Behind, the Lambda proxy integration: the request as a REST v1 event (``lambda_events.rest_v1``) invoked
on the function with boto3 (``tests/lambda_standin.py`` runs the REAL handler on a REAL bundle), and the
handler's ``statusCode``/``headers``/``body`` sent back. Nothing of Nimbus is stood in.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple

from lambda_events import rest_v1

STAGE = "v1"
SIGNATURE_WINDOW_S = 300
_AUTH = re.compile(r"^AWS4-HMAC-SHA256 Credential=(?P<akid>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
                   r"/aws4_request, ?SignedHeaders=(?P<signed>[^,]+), ?Signature=(?P<signature>[0-9a-f]{64})$")


class GatewayStandIn:
    def __init__(self, function_name: str, lambda_client: Any, auth: str = "key", apigateway: Any = None,
                 rest_api_id: str = "", secrets: Optional[Dict[str, str]] = None, region: str = "us-east-1",
                 propagation_s: float = 0.0) -> None:
        self.function_name, self.lam, self.auth = function_name, lambda_client, auth
        self.apigateway, self.rest_api_id, self.region = apigateway, rest_api_id, region
        self.secrets = secrets or {}
        self.propagation_s = propagation_s
        self.settled: set = set()  # key ids accepted whatever their age
        self.refused: List[Tuple[str, str]] = []  # (path, why) of each 403
        self.passed: List[str] = []  # the caller of each request let through (key id or access key)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def propagate(self, seconds: float) -> None:
        """From now on a new key is refused until it is ``seconds`` old; the keys there are now are not."""
        if self.apigateway is not None:
            self.settled = {k["id"] for k in self.apigateway.get_api_keys()["items"]}
        self.propagation_s = seconds

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{STAGE}"

    def __enter__(self) -> "GatewayStandIn":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- what API Gateway checks first ---------------------------------------------------------------
    def check_key(self, key: str) -> Tuple[Optional[str], str]:
        """(key id, "") when API Gateway would let ``key`` through, else (None, why)."""
        if not key:
            return None, "no x-api-key"
        for item in self.apigateway.get_api_keys(includeValues=True)["items"]:
            if item.get("value") != key:
                continue
            if not item.get("enabled"):
                return None, f"key {item['id']} is disabled"
            created = item["createdDate"]
            age = (dt.datetime.now(dt.timezone.utc) - created.astimezone(dt.timezone.utc)).total_seconds()
            if item["id"] not in self.settled and age < self.propagation_s:
                return None, f"key {item['id']} is {age:.1f} s old: not accepted yet"
            plans = self.apigateway.get_usage_plans(keyId=item["id"])["items"]
            if not any(stage.get("apiId") == self.rest_api_id for plan in plans for stage in plan.get("apiStages", [])):
                return None, f"key {item['id']} is in no usage plan of this API"
            return item["id"], ""
        return None, "unknown key"

    def check_signature(self, method: str, path: str, headers: Any, body: bytes) -> Tuple[Optional[str], str]:
        """(access key id, "") when the SigV4 signature is valid for this request as received, else (None, why)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        header = headers.get("Authorization") or ""
        match = _AUTH.match(header)
        if not match:
            return None, "Missing Authentication Token"
        akid, signed_names = match["akid"], match["signed"].split(";")
        if akid not in self.secrets:
            return None, "The security token included in the request is invalid."
        if match["service"] != "execute-api" or match["region"] != self.region:
            return None, f"Credential should be scoped to a valid region/service, not {match['region']}/{match['service']}"
        amz_date = headers.get("X-Amz-Date") or ""
        try:
            stamp = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
        except ValueError:
            return None, "Missing or malformed X-Amz-Date"
        if abs((dt.datetime.now(dt.timezone.utc) - stamp).total_seconds()) > SIGNATURE_WINDOW_S:
            return None, "Signature expired"
        if "host" not in signed_names:
            return None, "'Host' must be a signed header"
        signed_headers = {name: headers.get(name) or "" for name in signed_names if name != "host"}
        request = AWSRequest(method=method, url=f"http://{headers.get('Host')}{path}", data=body, headers=signed_headers)
        request.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(akid, self.secrets[akid], headers.get("X-Amz-Security-Token")), "execute-api",
                           self.region)
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if signer.signed_headers(signer.headers_to_sign(request)) != match["signed"] or expected != match["signature"]:
            return None, ("The request signature we calculated does not match the signature you provided. Check your "
                          "AWS Secret Access Key and signing method.")
        return akid, ""

    # -- the proxy integration ------------------------------------------------------------------------
    def invoke(self, method: str, resource: str, body: bytes, key: str) -> Tuple[int, Dict[str, str], bytes]:
        event = rest_v1(method, resource, body.decode("utf-8") if body else None, stage=STAGE, key=key)
        answer = self.lam.invoke(FunctionName=self.function_name, Payload=json.dumps(event).encode())
        payload = json.loads(answer["Payload"].read())
        if answer.get("FunctionError"):
            return 502, {}, b'{"message": "Internal server error"}'
        return int(payload["statusCode"]), dict(payload.get("headers") or {}), payload.get("body", "").encode("utf-8")

    def _handler(self) -> Any:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def _serve(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                prefix = f"/{STAGE}"
                if not self.path.startswith(prefix + "/"):
                    return self._send(403, {}, b'{"message": "Missing Authentication Token"}')
                resource = self.path[len(prefix):].split("?")[0]
                key = self.headers.get("x-api-key") or ""
                if gateway.auth == "iam":
                    caller, why = gateway.check_signature(method, self.path, self.headers, body)
                else:
                    caller, why = gateway.check_key(key)
                if caller is None:
                    with gateway.lock:
                        gateway.refused.append((resource, why))
                    message = "Forbidden" if gateway.auth == "key" else why
                    return self._send(403, {}, json.dumps({"message": message}).encode())
                with gateway.lock:
                    gateway.passed.append(caller)
                self._send(*gateway.invoke(method, resource, body, key))

            def _send(self, status: int, headers: Dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    if name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
