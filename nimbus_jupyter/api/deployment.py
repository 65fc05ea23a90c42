"""``Deployment``: what a user holds after a deploy. Its repr never shows the API key.

How requests reach it is its target's business (``Target.endpoint``): a local deployment over HTTP
with the key; an AWS one by ``lambda.invoke`` by default. The handle only asks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..core.errors import DeploymentGone
from ..core.operate import LiveStatus
from ..core.records import DeploymentRecord
from ..core.registry import Registry
from ..endpoint.client import EndpointClient, Pin
from ..endpoint.transport import Transport
from ..targets.registry import get_target

CLIENT_RETRIES = 3  # one-off calls (predict, the smoke test): a few retries of throttling and 5xx


def mask_key(key: str) -> str:
    return f"{key[:4]}{'•' * 8}{key[-4:]}" if len(key) > 12 else "•" * 8


@dataclass
class Deployment:
    name: str
    target: str
    url: str
    version: int
    status: str  # ready | dead | failed | starting | stale | gone | unknown
    bundle_hash: str
    lang: str
    components: List[str]
    created: str
    updated: str
    workers: int = 0  # worker processes, where the target has them (its "workers" option as deployed)
    detail: str = ""  # why a deployment is not ready, and what to do
    key_file: Optional[str] = field(default=None, repr=False)
    options: Dict[str, Any] = field(default_factory=dict, repr=False)  # the target's options as deployed
    record: Optional[DeploymentRecord] = field(default=None, repr=False, compare=False)
    registry: Optional[Registry] = field(default=None, repr=False, compare=False)
    # Set on the object a deploy returns: what the deploy found.
    unchanged: bool = field(default=False, repr=False, compare=False)
    samples: List[str] = field(default_factory=list, repr=False, compare=False)
    sample_results: List[Dict[str, Any]] = field(default_factory=list, repr=False, compare=False)
    parity: Any = field(default=None, repr=False, compare=False)
    plan: Any = field(default=None, repr=False, compare=False)  # the Plan the deploy applied
    result: Any = field(default=None, repr=False, compare=False)  # the whole DeployResult (it displays itself)

    @classmethod
    def from_record(cls, record: DeploymentRecord, status: Optional[LiveStatus] = None,
                    registry: Optional[Registry] = None) -> "Deployment":
        workers = record.options.get("workers")
        return cls(name=record.name, target=record.target, url=record.url, version=record.version,
                   status=status.state if status else record.status, bundle_hash=record.hash, lang=record.lang,
                   components=list(record.components), created=record.created, updated=record.updated,
                   workers=int(workers) if isinstance(workers, int) else 0, detail=status.detail if status else "",
                   key_file=record.key_file, options=dict(record.options), record=record, registry=registry)

    @property
    def api_key(self) -> str:
        """The key from its file (mode 0600); a ``DeploymentGone`` once the deployment was destroyed."""
        if not self.key_file:
            return ""
        try:
            return Path(self.key_file).read_text("utf-8").strip()
        except FileNotFoundError:
            self.check_current()
            raise DeploymentGone(f"the API key file of {self.name!r} is missing ({self.key_file})",
                                 f"deploy it again (%nimbus_deploy PIPELINE --name {self.name}) to write a new one")

    @property
    def masked_key(self) -> str:
        """The key with all but its ends hidden; "" when there is none (any more)."""
        try:
            return mask_key(self.api_key) if self.key_file else ""
        except DeploymentGone:
            return ""

    def check_current(self) -> None:
        """Raise ``DeploymentGone`` when the registry no longer holds this deployment (destroyed), or holds
        another one of the same name (destroyed and deployed again since this handle was made)."""
        registry = self.registry or Registry()
        record = registry.get(self.name)
        if record is None:
            raise DeploymentGone(f"{self.name!r} was destroyed: this Deployment handle has no endpoint any more",
                                 f"deploy it again (%nimbus_deploy PIPELINE --name {self.name}, or nimbus_jupyter.deploy)")
        if self.record is not None and record.created != self.record.created:
            raise DeploymentGone(f"{self.name!r} was destroyed and deployed again since this handle was made",
                                 f"get the new one: nimbus_jupyter.get_deployment({self.name!r})")

    @property
    def ready(self) -> bool:
        return self.status == "ready"

    def transport(self, via: Optional[str] = None, retries: int = 8, concurrency: int = 10) -> Transport:
        """How requests reach this deployment, as its target says (``via``: "http", "invoke" or its default)."""
        if self.record is None:
            raise ValueError(f"Deployment {self.name!r} was made without its record; get it with get_deployment")
        target = get_target(self.target, self.registry)
        return target.endpoint(self.record, via, retries=retries, concurrency=concurrency)

    def client(self, via: Optional[str] = None, pin: Optional[Pin] = None) -> EndpointClient:
        """The ``EndpointClient`` over this deployment's transport: health, predict, openapi (with ``pin``,
        answered only by that version)."""
        return EndpointClient(self.transport(via), retries=CLIENT_RETRIES, pin=pin, name=self.name)

    def predict(self, texts: Sequence[str], fields: Optional[Sequence[str]] = None) -> List[Dict[str, Any]]:
        """Results for ``texts`` from the endpoint, in order."""
        return self.predict_answer(texts, fields)["results"]

    def predict_answer(self, texts: Sequence[str], fields: Optional[Sequence[str]] = None) -> Dict[str, Any]:
        """The endpoint's whole answer: ``results``, the ``fields`` used and the ``version``."""
        if isinstance(texts, str):
            texts = [texts]
        self.check_current()
        client = self.client()
        try:
            return client.predict(texts, fields)
        finally:
            client.close()

    def __repr__(self) -> str:
        return (f"Deployment(name={self.name!r}, target={self.target!r}, status={self.status!r}, "
                f"version={self.version}, url={self.url!r}, api_key={self.masked_key!r})")
