"""``Deployment``: what a user holds after a deploy. Its repr never shows the API key."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence


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
            key_file=record.get("key_file"),
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

    def client(self) -> Any:
        from .client import EndpointClient

        return EndpointClient(self.url, self.api_key)

    def predict(self, texts: Sequence[str], fields: Optional[Sequence[str]] = None) -> List[Dict[str, Any]]:
        """Results for ``texts`` from the endpoint, in order."""
        if isinstance(texts, str):
            texts = [texts]
        return self.client().predict(texts, fields)["results"]

    def __repr__(self) -> str:
        return (f"Deployment(name={self.name!r}, target={self.target!r}, status={self.status!r}, "
                f"version={self.version}, url={self.url!r}, api_key={self.masked_key!r})")
