"""``Deployment``: what a user holds after a deploy. Its repr never shows the API key.

It also decides how requests reach the endpoint (``transport_kind``): for an AWS deployment, direct
``lambda.invoke`` with the notebook's own AWS credentials by default, else HTTP with the API key.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..core.errors import UserInputError

VIAS = ("invoke", "http")


def mask_key(key: str) -> str:
    return f"{key[:4]}{'•' * 8}{key[-4:]}" if len(key) > 12 else "•" * 8


@dataclass
class Deployment:
    name: str
    target: str
    url: str
    version: int
    status: str  # ready | dead | failed | starting
    bundle_hash: str
    lang: str
    components: List[str]
    created: str
    updated: str
    workers: int = 0
    detail: str = ""  # why a deployment is not ready, and what to do
    key_file: Optional[str] = field(default=None, repr=False)
    # AWS only (the aws target writes them in its registry record): the Lambda function to invoke.
    function_name: Optional[str] = field(default=None, repr=False)  # a name or an ARN
    region: Optional[str] = field(default=None, repr=False)
    profile: Optional[str] = field(default=None, repr=False)  # the AWS profile the deploy used
    function_timeout: Optional[int] = field(default=None, repr=False)  # seconds (record key timeout_s)
    # Set on the object a deploy returns: what the deploy found.
    unchanged: bool = field(default=False, repr=False, compare=False)
    samples: List[str] = field(default_factory=list, repr=False, compare=False)
    sample_results: List[Dict[str, Any]] = field(default_factory=list, repr=False, compare=False)
    parity: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def from_record(cls, record: Dict[str, Any], status: Optional[str] = None, detail: str = "") -> "Deployment":
        return cls(
            name=record["name"], target=record["target"], url=record.get("url", ""),
            version=int(record.get("version", 0)), status=status or record.get("status", "unknown"),
            bundle_hash=record.get("hash", ""), lang=record.get("lang", ""),
            components=list(record.get("components", [])), created=record.get("created", ""),
            updated=record.get("updated", ""), workers=int(record.get("workers", 0)), detail=detail,
            key_file=record.get("key_file"), function_name=record.get("function_name"),
            region=record.get("region"), profile=record.get("profile"),
            function_timeout=int(record["timeout_s"]) if record.get("timeout_s") else None,
        )

    @property
    def api_key(self) -> str:
        if not self.key_file:
            return ""
        return Path(self.key_file).read_text("utf-8").strip()

    @property
    def masked_key(self) -> str:
        return mask_key(self.api_key) if self.key_file else ""

    @property
    def ready(self) -> bool:
        return self.status == "ready"

    def transport_kind(self, via: Optional[str] = None) -> str:
        """``"invoke"`` or ``"http"``: how requests reach this deployment.

        AWS deployments default to direct ``lambda.invoke``: no API Gateway 29 s timeout or 10 MB
        limit, no API Gateway price per request ($3.50 per million), no usage-plan throttle or quota
        spent, and the notebook has AWS credentials already, since it deployed from them. Lambda's own
        6 MB payload limit and concurrency limit still apply. ``via="http"`` goes through API Gateway
        with the key instead (say, for a user with the key but no ``lambda:InvokeFunction``). Local
        deployments have no Lambda function: always HTTP.
        """
        if via is not None and via not in VIAS:
            raise UserInputError(f"via must be 'invoke' or 'http', not {via!r}",
                                 "leave it out for the deployment's default (invoke on AWS, http on local)")
        if self.target != "aws":
            if via == "invoke":
                raise UserInputError(
                    f"{self.name!r} runs on the {self.target} target, which has no Lambda function to invoke",
                    "leave out --via (or use --via http); direct invoke is for --target aws deployments")
            return "http"
        if via == "http":
            return "http"
        if not self.function_name:
            if via == "invoke":
                raise UserInputError(f"the registry record of {self.name!r} names no Lambda function",
                                     f"use --via http, or deploy again: %nimbus_deploy PIPELINE --name {self.name} --target aws")
            return "http"
        return "invoke"

    def transport(self, via: Optional[str] = None, retries: int = 8, concurrency: int = 10) -> Any:
        """A ``Transport`` (see ``transport.py``) to this deployment, chosen by ``transport_kind``."""
        if self.transport_kind(via) == "invoke":
            from ..endpoint.invoke import LambdaInvokeTransport

            return LambdaInvokeTransport.for_deployment(self, retries=retries, concurrency=concurrency)
        from ..endpoint.transport import HttpTransport

        return HttpTransport(self.url, self.api_key, retries=retries)

    def client(self, via: Optional[str] = None) -> Any:
        """An ``EndpointClient`` (HTTP) or ``InvokeEndpointClient``: same methods and answers."""
        if self.transport_kind(via) == "invoke":
            from ..endpoint.invoke import InvokeEndpointClient

            return InvokeEndpointClient.for_deployment(self)
        from ..endpoint.client import EndpointClient

        return EndpointClient(self.url, self.api_key)

    def predict(self, texts: Sequence[str], fields: Optional[Sequence[str]] = None) -> List[Dict[str, Any]]:
        """Results for ``texts`` from the endpoint, in order."""
        if isinstance(texts, str):
            texts = [texts]
        return self.client().predict(texts, fields)["results"]

    def __repr__(self) -> str:
        return (f"Deployment(name={self.name!r}, target={self.target!r}, status={self.status!r}, "
                f"version={self.version}, url={self.url!r}, api_key={self.masked_key!r})")
