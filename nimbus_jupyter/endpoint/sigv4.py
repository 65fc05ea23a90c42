"""SigV4 signing of the endpoint's HTTP requests, for deployments whose API uses AWS_IAM authorization.

``SigV4Auth`` is a ``requests`` auth: each request is signed by botocore's own ``SigV4Auth`` for the
``execute-api`` service with the credentials of a botocore/boto3 session (the notebook's: profile,
environment, SSO), frozen at signing time so refreshed credentials are used. Only ``host``,
``content-type`` and the ``x-amz-*`` headers are signed: ``requests`` and urllib3 may add or change
others (``Connection``, ``Accept-Encoding``) on the way, and a signed header that changes makes API
Gateway refuse the request. A signature is valid for 5 minutes, which outlasts the transport's retries.
"""
from __future__ import annotations

from typing import Any, Optional

import requests

SERVICE = "execute-api"
SIGNED_HEADERS = ("content-type",)  # besides host and the x-amz-* headers botocore adds


class SigV4Auth(requests.auth.AuthBase):
    """Sign each request with ``credentials`` (botocore ``Credentials``, refreshable or not) for ``region``."""

    def __init__(self, credentials: Any, region: str, service: str = SERVICE) -> None:
        if credentials is None:
            from ..core.errors import UserInputError

            raise UserInputError("no AWS credentials to sign the request with (the endpoint uses IAM auth)",
                                 "run: aws configure (or aws sso login), or pass the profile the deployment was made with")
        self.credentials, self.region, self.service = credentials, region, service

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        from botocore.auth import SigV4Auth as BotocoreSigV4
        from botocore.awsrequest import AWSRequest

        frozen = self.credentials.get_frozen_credentials() if hasattr(self.credentials, "get_frozen_credentials") \
            else self.credentials
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        headers = {k: v for k, v in request.headers.items() if k.lower() in SIGNED_HEADERS}
        signed = AWSRequest(method=request.method, url=request.url, data=body, headers=headers)
        BotocoreSigV4(frozen, self.service, self.region).add_auth(signed)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            value: Optional[str] = signed.headers.get(name)
            if value is not None:
                request.headers[name] = value
        return request
