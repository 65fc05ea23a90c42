"""Direct ``lambda.invoke`` of an AWS deployment's function: the second transport beside HTTP.

The function runs ``runtime.handler.handler``, which takes API Gateway REST proxy events, so each
request is wrapped in a synthetic proxy event (header ``x-nimbus-transport: invoke``) and the answer's
``{statusCode, body}`` is unwrapped: callers see the same statuses and JSON as over HTTP.

Why a second transport (the default for AWS deployments, chosen by the aws target's ``endpoint``): API Gateway's 29 s
timeout, 10 MB limit, $3.50 per million requests and usage-plan quota do not apply. Lambda's 6 MB
payload limit each way and its concurrency limit still do.

Nothing is retried here (botocore's own retries are off too: it would resend an invoke whose answer
timed out, which may still be running). Each outcome becomes what the client decides on:
- ``TooManyRequestsException`` and other throttles: status 429 (nothing ran; retried with backoff);
- ``RequestEntityTooLargeException``: 413 (batching splits the chunk);
- a function error (``FunctionError: Unhandled``: a crash, out of memory; API Gateway would answer 502):
  502; Lambda's own timeout (``Task timed out``): 504 with ``timed_out`` (it ran: never resent);
- a lost connection: ``NoAnswer`` (``sent`` when the invoke may have reached Lambda);
- ``ResourceNotFoundException`` (also a pinned version that was deleted), access denied and missing
  credentials: ``TransportDown`` with what to do, since no retry can fix them.

With ``qualifier`` (the Lambda version number the record names), every invoke reaches that version,
whatever the alias points at meanwhile: a batch is served by one version from start to end.
"""
from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any, Dict, Mapping, Optional, Tuple

from ..runtime.limits import MAX_PAYLOAD_BYTES
from .transport import NoAnswer, Reply, TransportDown

TRANSPORT_HEADER = "x-nimbus-transport"
LAMBDA_MAX_TIMEOUT_SECONDS = 900
READ_TIMEOUT_MARGIN_SECONDS = 30
THROTTLE_CODES = frozenset({"TooManyRequestsException", "ThrottlingException", "Throttling", "EC2ThrottledException"})
ACCESS_CODES = frozenset({"AccessDeniedException", "AccessDenied"})
CREDENTIAL_CODES = frozenset({"UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException",
                              "ExpiredToken", "InvalidClientTokenId"})


def proxy_event(method: str, path: str, body: Optional[bytes],
                headers: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """An API Gateway REST proxy event, as API Gateway would send it for this request."""
    request_id = str(uuid.uuid4())
    headers = {"Content-Type": "application/json", **dict(headers or {}), TRANSPORT_HEADER: "invoke"}
    return {
        "resource": path, "path": path, "httpMethod": method, "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": None, "stageVariables": None,
        "requestContext": {"requestId": request_id, "resourcePath": path, "httpMethod": method, "path": path,
                           "stage": "invoke", "requestTimeEpoch": int(time.time() * 1000),
                           "identity": {"sourceIp": "127.0.0.1", "userAgent": "nimbus-jupyter"}},
        "body": body.decode("utf-8", "surrogatepass") if body is not None else None,
        "isBase64Encoded": False,
    }


class LambdaInvokeTransport:
    """Sends requests to a deployment's Lambda function with ``lambda.invoke`` (one boto3 client,
    thread-safe, shared by the batch's threads)."""

    kind = "invoke"
    body_in_envelope = True  # the body is a JSON string inside the proxy event: its escapes count in the 6 MB

    def __init__(self, function_name: str, *, region: Optional[str] = None, profile: Optional[str] = None,
                 deployment: str = "", retries: int = 0, concurrency: int = 10,
                 function_timeout: Optional[int] = None, qualifier: Optional[str] = None, session: Any = None) -> None:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError

        # ``retries`` is accepted for callers of the older signature: retrying is the client's business now.
        self.function_name = function_name
        self.qualifier = qualifier
        self.deployment = deployment or function_name
        self.time_limit = float(function_timeout or LAMBDA_MAX_TIMEOUT_SECONDS)
        self.read_timeout = self.time_limit + READ_TIMEOUT_MARGIN_SECONDS
        self.max_request_bytes = MAX_PAYLOAD_BYTES
        # ``total_max_attempts=1``: one try per invoke; what may be retried is the client's decision.
        config = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=10,
                        read_timeout=self.read_timeout, max_pool_connections=max(10, concurrency))
        try:
            session = session or boto3.Session(profile_name=profile, region_name=region)
            self.client = session.client("lambda", config=config)
        except BotoCoreError as exc:  # no such profile, no region
            raise TransportDown(f"cannot make an AWS Lambda client for {self.deployment!r}: {exc}",
                                "set the region and profile the deployment was made with (AWS_PROFILE, AWS_DEFAULT_REGION), or use --via http")
        self.region = self.client.meta.region_name
        shown = f"{function_name}:{qualifier}" if qualifier else function_name
        self.where = f"Lambda function {shown} ({self.region})"

    def check(self, method: str, path: str) -> Reply:
        try:
            return self.send(method, path)
        except NoAnswer as exc:
            raise TransportDown(f"{self.where} did not answer ({exc.what})")

    def send(self, method: str, path: str, body: Optional[bytes] = None,
             headers: Optional[Mapping[str, str]] = None, timeout: Optional[float] = None) -> Reply:
        """One invoke. ``timeout`` cannot shorten botocore's read timeout (a client setting): the
        function's own timeout ends an invoke first."""
        from botocore.exceptions import (BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError,
                                         NoCredentialsError)

        event = proxy_event(method, path, body, headers)
        payload = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
        kwargs: Dict[str, Any] = {"FunctionName": self.function_name, "InvocationType": "RequestResponse", "Payload": payload}
        if self.qualifier:
            kwargs["Qualifier"] = self.qualifier
        started = time.perf_counter()
        try:
            response = self.client.invoke(**kwargs)
        except ClientError as exc:
            reply = self._refused(exc)
            reply.seconds = time.perf_counter() - started
            return reply
        except NoCredentialsError:
            raise TransportDown(f"no AWS credentials found to invoke {self.where}",
                                "configure them (aws configure, aws sso login, or AWS_PROFILE), or use --via http with the API key")
        except (EndpointConnectionError, ConnectTimeoutError) as exc:
            raise NoAnswer(f"could not connect to Lambda ({type(exc).__name__})", sent=False)
        except BotoCoreError as exc:  # read timeout, connection closed: the invoke may be running
            raise NoAnswer(f"no answer from {self.where} ({type(exc).__name__})", sent=True,
                           seconds=time.perf_counter() - started, timed_out="Timeout" in type(exc).__name__)
        raw = response["Payload"].read()
        seconds = time.perf_counter() - started
        if response.get("FunctionError"):
            message, timed_out = _function_error(raw, response["FunctionError"])
            return Reply(504 if timed_out else 502, {"message": message}, seconds=seconds, timed_out=timed_out)
        reply = _unwrap(raw)
        reply.seconds = seconds
        return reply

    def close(self) -> None:
        self.client.close()

    def _refused(self, exc: Any) -> Reply:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), str(error.get("Message", ""))[:300]
        meta = exc.response.get("ResponseMetadata", {})
        if code in THROTTLE_CODES:
            return Reply(429, {"message": f"Lambda throttled the invoke ({code}: {message}); the function's or the "
                                          "account's concurrency limit is reached"})
        if code == "RequestEntityTooLargeException":
            return Reply(413, {"message": f"the request is over Lambda's payload limit for a synchronous invoke "
                                          f"(6 MB): {message}"})
        if code == "ResourceNotFoundException":
            if self.qualifier:
                raise TransportDown(
                    f"version {self.qualifier} of the Lambda function {self.function_name!r} of {self.deployment!r} does not "
                    f"exist in {self.region} any more ({message})",
                    f"it was deleted; see %nimbus_history {self.deployment} for the versions there are, and run the batch "
                    "again (it uses the version that serves then)")
            raise TransportDown(
                f"the Lambda function {self.function_name!r} of {self.deployment!r} does not exist in {self.region} ({message})",
                f"it was deleted outside nimbus, or your profile/region differ from the deploy's; deploy again with "
                f"%nimbus_deploy PIPELINE --name {self.deployment} --target aws, or forget it with %nimbus_destroy {self.deployment}")
        if code in ACCESS_CODES:
            raise TransportDown(
                f"your AWS credentials may not invoke {self.function_name!r} ({code}: {message})",
                f"grant lambda:InvokeFunction on the function's ARN (arn:aws:lambda:{self.region}:ACCOUNT:function:"
                f"{self.function_name.split('function:')[-1].split(':')[0]}) to your IAM user or role, or use --via http with the API key")
        if code in CREDENTIAL_CODES:
            raise TransportDown(f"AWS refused your credentials ({code}: {message})",
                                "refresh them (aws sso login, aws configure) or use --via http with the API key")
        status = int(meta.get("HTTPStatusCode") or 502)
        return Reply(status if status >= 500 else 502, {"message": f"Lambda refused the invoke ({code}: {message})"})


def _function_error(raw: bytes, kind: str) -> Tuple[str, bool]:
    """What the function's error says, and whether it was Lambda's own timeout (the invoke ran to its end)."""
    try:
        error = json.loads(raw)
    except ValueError:
        error = {}
    error = error if isinstance(error, dict) else {}
    kind_of, text = str(error.get("errorType", "unknown")), str(error.get("errorMessage", ""))
    timed_out = kind_of == "Sandbox.Timedout" or "Task timed out" in text
    return (f"the function failed ({kind}: {kind_of}: {text[:200]}); its CloudWatch log has the details", timed_out)


def _unwrap(raw: bytes) -> Reply:
    """The handler's ``{statusCode, body}`` as a status and a decoded JSON payload."""
    try:
        envelope = json.loads(raw)
        status = int(envelope["statusCode"])
        body = envelope.get("body") or ""
        if envelope.get("isBase64Encoded"):
            body = base64.b64decode(body).decode("utf-8")
    except (ValueError, KeyError, TypeError):
        return Reply(502, {"message": "the function answered something that is not an API Gateway proxy response"})
    try:
        payload = json.loads(body)
    except ValueError:
        payload = {"message": body[:300]}
    return Reply(status, payload, timed_out=status == 504, text=body if status == 200 else "")
