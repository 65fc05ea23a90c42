"""Direct ``lambda.invoke`` of an AWS deployment's function: the second transport beside HTTP.

The function runs ``runtime.handler.handler``, which takes API Gateway REST proxy events, so each
request is wrapped in a synthetic proxy event (header ``x-nimbus-transport: invoke``) and the answer's
``{statusCode, body}`` is unwrapped: callers see the same statuses and JSON as over HTTP.

Why a second transport (the default for AWS deployments, chosen by the aws target's ``endpoint``): API Gateway's 29 s
timeout, 10 MB limit, $3.50 per million requests and usage-plan quota do not apply. Lambda's 6 MB
payload limit each way and its concurrency limit still do.

Where each outcome is retried:
- in botocore (``Config(retries={"mode": "standard"})``, exponential backoff with full jitter):
  ``TooManyRequestsException`` and other throttles, 5xx from the Lambda service, connection errors
  and timeouts. A throttle that outlasts the attempts becomes status 429 (batching halves its
  concurrency on throttles either way).
- here, with botocore's own backoff: a function error (``FunctionError: Unhandled``, e.g. a timeout,
  out of memory, a crash at init; API Gateway would answer 502) and a 5xx from the handler, as
  urllib3 retries 5xx over HTTP. What persists is returned as 502/5xx: the caller gives per-row errors.
- nowhere: ``RequestEntityTooLargeException`` becomes 413 (batching splits the chunk);
  ``ResourceNotFoundException``, access denied and missing credentials raise ``TransportDown``
  with what to do, since no retry can fix them.
"""
from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from typing import Any, Dict, Optional, Tuple

from .transport import Reply, TransportDown

TRANSPORT_HEADER = "x-nimbus-transport"
LAMBDA_MAX_TIMEOUT_SECONDS = 900
READ_TIMEOUT_MARGIN_SECONDS = 30
THROTTLE_CODES = frozenset({"TooManyRequestsException", "ThrottlingException", "Throttling", "EC2ThrottledException"})
ACCESS_CODES = frozenset({"AccessDeniedException", "AccessDenied"})
CREDENTIAL_CODES = frozenset({"UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException",
                              "ExpiredToken", "InvalidClientTokenId"})
HANDLER_RETRIABLE = (500, 502, 503, 504)


def proxy_event(method: str, path: str, body: Optional[bytes]) -> Dict[str, Any]:
    """An API Gateway REST proxy event, as API Gateway would send it for this request."""
    request_id = str(uuid.uuid4())
    headers = {"Content-Type": "application/json", TRANSPORT_HEADER: "invoke"}
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

    def __init__(self, function_name: str, *, region: Optional[str] = None, profile: Optional[str] = None,
                 deployment: str = "", retries: int = 8, concurrency: int = 10,
                 function_timeout: Optional[int] = None, retry_mode: str = "standard", session: Any = None) -> None:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError
        from botocore.retries.standard import ExponentialBackoff

        self.function_name = function_name
        self.deployment = deployment or function_name
        self.max_attempts = retries + 1
        timeout = (function_timeout or LAMBDA_MAX_TIMEOUT_SECONDS) + READ_TIMEOUT_MARGIN_SECONDS
        # botocore's ``max_attempts`` counts retries after the first try (``total_max_attempts`` would count it).
        config = Config(retries={"mode": retry_mode, "max_attempts": retries}, connect_timeout=10,
                        read_timeout=timeout, max_pool_connections=max(10, concurrency))
        try:
            session = session or boto3.Session(profile_name=profile, region_name=region)
            self.client = session.client("lambda", config=config)
        except BotoCoreError as exc:  # no such profile, no region
            raise TransportDown(f"cannot make an AWS Lambda client for {self.deployment!r}: {exc}",
                                "set the region and profile the deployment was made with (AWS_PROFILE, AWS_DEFAULT_REGION), or use --via http")
        self.region = self.client.meta.region_name
        self.where = f"Lambda function {function_name} ({self.region})"
        self._backoff = ExponentialBackoff()
        self._local = threading.local()
        self.client.meta.events.register("needs-retry.lambda.Invoke", self._observe)

    def check(self, method: str, path: str) -> Reply:
        return self._invoke(proxy_event(method, path, None))[0]

    def request(self, method: str, path: str, body: Optional[bytes] = None) -> Reply:
        """Invoke until an answer that no retry would change, or the attempts are spent."""
        event = proxy_event(method, path, body)
        retries = throttled = 0
        for attempt in range(1, self.max_attempts + 1):
            reply, retry_here = self._invoke(event)
            retries += reply.retries
            throttled += reply.throttled
            if not retry_here or attempt == self.max_attempts:
                break
            retries += 1
            from botocore.retries.standard import RetryContext

            time.sleep(self._backoff.delay_amount(RetryContext(attempt_number=attempt)))
        reply.retries, reply.throttled = retries, throttled
        return reply

    def close(self) -> None:
        self.client.close()

    # -- one invoke (botocore retries inside) --------------------------------------------------------
    def _invoke(self, event: Dict[str, Any]) -> Tuple[Reply, bool]:
        """The answer, and whether this transport should retry it (botocore retried what it could)."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        self._local.throttled = 0
        payload = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
        try:
            response = self.client.invoke(FunctionName=self.function_name, InvocationType="RequestResponse", Payload=payload)
        except ClientError as exc:
            return self._refused(exc), False
        except NoCredentialsError:
            raise TransportDown(f"no AWS credentials found to invoke {self.where}",
                                "configure them (aws configure, aws sso login, or AWS_PROFILE), or use --via http with the API key")
        except BotoCoreError as exc:  # connection errors and timeouts, after botocore's retries
            raise TransportDown(f"{self.where} did not answer ({type(exc).__name__})", retries=self.max_attempts - 1)
        retries = int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
        throttled = min(retries, self._local.throttled)
        raw = response["Payload"].read()
        if response.get("FunctionError"):
            return Reply(502, {"message": _function_error(raw, response["FunctionError"])}, retries, throttled), True
        reply = _unwrap(raw, retries, throttled)
        return reply, reply.status in HANDLER_RETRIABLE

    def _refused(self, exc: Any) -> Reply:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), str(error.get("Message", ""))[:300]
        meta = exc.response.get("ResponseMetadata", {})
        retries = int(meta.get("RetryAttempts", 0))
        if code in THROTTLE_CODES:
            return Reply(429, {"message": f"Lambda throttled the invoke ({code}: {message}); the function's or the "
                                          "account's concurrency limit is reached"}, retries, min(retries, self._local.throttled))
        if code == "RequestEntityTooLargeException":
            return Reply(413, {"message": f"the request is over Lambda's payload limit for a synchronous invoke "
                                          f"(6 MB): {message}"}, retries)
        if code == "ResourceNotFoundException":
            raise TransportDown(
                f"the Lambda function {self.function_name!r} of {self.deployment!r} does not exist in {self.region} ({message})",
                f"it was deleted outside nimbus, or your profile/region differ from the deploy's; deploy again with "
                f"%nimbus_deploy PIPELINE --name {self.deployment} --target aws, or forget it with %nimbus_destroy {self.deployment}")
        if code in ACCESS_CODES:
            raise TransportDown(
                f"your AWS credentials may not invoke {self.function_name!r} ({code}: {message})",
                f"grant lambda:InvokeFunction on the function's ARN (arn:aws:lambda:{self.region}:ACCOUNT:function:"
                f"{self.function_name.split('function:')[-1]}) to your IAM user or role, or use --via http with the API key")
        if code in CREDENTIAL_CODES:
            raise TransportDown(f"AWS refused your credentials ({code}: {message})",
                                "refresh them (aws sso login, aws configure) or use --via http with the API key")
        status = int(meta.get("HTTPStatusCode") or 502)
        return Reply(status if status >= 500 else 502, {"message": f"Lambda refused the invoke ({code}: {message})"}, retries)

    def _observe(self, response: Optional[Tuple[Any, Dict[str, Any]]] = None, **_: Any) -> None:
        """Counts throttles botocore met on this thread's invoke; decides nothing (returns None)."""
        if response and response[1].get("Error", {}).get("Code") in THROTTLE_CODES:
            self._local.throttled = getattr(self._local, "throttled", 0) + 1


def _function_error(raw: bytes, kind: str) -> str:
    try:
        error = json.loads(raw)
    except ValueError:
        error = {}
    error = error if isinstance(error, dict) else {}
    return (f"the function failed ({kind}: {error.get('errorType', 'unknown')}: {str(error.get('errorMessage', ''))[:200]}); "
            "its CloudWatch log has the details")


def _unwrap(raw: bytes, retries: int, throttled: int) -> Reply:
    """The handler's ``{statusCode, body}`` as a status and a decoded JSON payload."""
    try:
        envelope = json.loads(raw)
        status = int(envelope["statusCode"])
        body = envelope.get("body") or ""
        if envelope.get("isBase64Encoded"):
            body = base64.b64decode(body).decode("utf-8")
    except (ValueError, KeyError, TypeError):
        return Reply(502, {"message": "the function answered something that is not an API Gateway proxy response"}, retries, throttled)
    try:
        payload = json.loads(body)
    except ValueError:
        payload = {"message": body[:300]}
    return Reply(status, payload, retries, throttled)
