"""Invocation events in the shapes AWS documents (API Gateway REST v1 proxy, HTTP API v2, function URL).

Field for field what API Gateway sends a Lambda proxy integration (Lambda Developer Guide, "Using Lambda
with API Gateway"; the same fields as aws-lambda-powertools' test events), with this project's values.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Optional


def rest_v1(method: str, resource: str, body: Optional[Any] = None, path: Optional[str] = None, stage: str = "v1",
            key: str = "k" * 40, domain: str = "abc123.execute-api.us-east-1.amazonaws.com") -> Dict[str, Any]:
    """A REST API proxy event: ``resource`` is the matched resource, ``path`` what the client asked for
    (with a custom domain's base path, when there is one)."""
    path = path or resource
    headers = {"Accept": "*/*", "Content-Type": "application/json", "Host": domain, "User-Agent": "python-requests/2.32",
               "X-Amzn-Trace-Id": "Root=1-674c0000-0123456789abcdef01234567", "X-Forwarded-For": "203.0.113.7",
               "X-Forwarded-Port": "443", "X-Forwarded-Proto": "https", "x-api-key": key}
    return {
        "resource": resource, "path": path, "httpMethod": method, "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None, "multiValueQueryStringParameters": None, "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "a1b2c3", "resourcePath": resource, "httpMethod": method, "extendedRequestId": "Bx1=",
            "requestTime": "01/Dec/2026:09:00:00 +0000", "path": f"/{stage}{path}", "accountId": "123456789012",
            "protocol": "HTTP/1.1", "stage": stage, "domainPrefix": domain.split(".")[0], "requestTimeEpoch": 1796115600000,
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "domainName": domain, "apiId": domain.split(".")[0],
            "identity": {"cognitoIdentityPoolId": None, "accountId": None, "cognitoIdentityId": None, "caller": None,
                         "apiKey": key, "apiKeyId": "kid123", "sourceIp": "203.0.113.7", "principalOrgId": None,
                         "accessKey": None, "cognitoAuthenticationType": None, "cognitoAuthenticationProvider": None,
                         "userArn": None, "userAgent": "python-requests/2.32", "user": None},
        },
        "body": None if body is None else (body if isinstance(body, str) else json.dumps(body)),
        "isBase64Encoded": False,
    }


def http_v2(method: str, path: str, body: Optional[Any] = None, function_url: bool = False) -> Dict[str, Any]:
    """An HTTP API (payload 2.0) event, or a function URL's (the same format, a lambda-url domain)."""
    domain = "u1x2y3.lambda-url.us-east-1.on.aws" if function_url else "def456.execute-api.us-east-1.amazonaws.com"
    return {
        "version": "2.0", "routeKey": "$default" if function_url else f"{method} {path}", "rawPath": path,
        "rawQueryString": "", "headers": {"content-type": "application/json", "host": domain, "x-api-key": "k" * 40},
        "requestContext": {"accountId": "anonymous" if function_url else "123456789012", "apiId": domain.split(".")[0],
                           "domainName": domain, "domainPrefix": domain.split(".")[0],
                           "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7",
                                    "userAgent": "curl/8"},
                           "requestId": "r-v2", "routeKey": "$default", "stage": "$default",
                           "time": "01/Dec/2026:09:00:00 +0000", "timeEpoch": 1796115600000},
        "body": None if body is None else json.dumps(body), "isBase64Encoded": False,
    }
