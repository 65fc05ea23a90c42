"""Typed, versioned records of what is deployed: ``DeploymentRecord`` and its ``HistoryEntry`` list.

One shape for every target. What only one target knows (a port and a pid, a Lambda function and its
alias) lives in ``target_data``: opaque JSON here, typed by the target that wrote it. So nothing in
core names a field of a particular target, and a new target needs no change here.

``RECORD_SCHEMA`` numbers the layout. ``migrate`` reads every layout ever written: schema 1 (until
this module) kept target fields at the top level, history entries as ``{version, hash, created, by,
components}`` plus ``note: "rollback from vN"`` (local) or ``rollback_from: N`` (aws).
"""
from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Dict, List, Optional

RECORD_SCHEMA = 2
HISTORY_KEEP = 20  # entries kept per deployment
DEPLOY, ROLLBACK = "deploy", "rollback"
COMMON = ("name", "target", "status", "version", "hash", "lang", "components", "size_bytes", "url", "key_file",
          "created", "updated", "options", "history")
DROPPED_V1 = ("dir",)  # schema 1 kept the deployment's directory; it is Registry.deployment_dir(name)
_V1_ENTRY = ("version", "hash", "created", "by", "components", "note", "rollback_from")
_ROLLBACK_NOTE = re.compile(r"^rollback from v(\d+)$")


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def current_user() -> str:
    """Who deploys from this kernel, for the history (targets with an identity of their own use that)."""
    try:
        import getpass

        return getpass.getuser()
    except Exception:
        return "unknown"


@dataclass(frozen=True)
class HistoryEntry:
    """One deploy or rollback, as recorded when it happened."""

    kind: str  # deploy | rollback
    version: int  # the version serving after it
    when: str  # ISO 8601 UTC
    who: str  # the local user, or the target's identity (an AWS ARN)
    hash: str  # the bundle's content hash
    components: List[str] = field(default_factory=list)
    from_version: Optional[int] = None  # a rollback: the version it left
    note: str = ""
    ref: Optional[str] = None  # the target's own name for this version (aws: the Lambda version)

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "HistoryEntry":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["version"] = int(values.get("version", 0))
        values["components"] = list(values.get("components") or [])
        values.setdefault("kind", DEPLOY)
        values.setdefault("when", "")
        values.setdefault("who", "")
        values.setdefault("hash", "")
        return cls(**values)

    @classmethod
    def deploy(cls, version: int, bundle_hash: str, components: List[str], who: str,
               ref: Optional[str] = None) -> "HistoryEntry":
        return cls(DEPLOY, version, now_iso(), who, bundle_hash, list(components), ref=ref)

    @classmethod
    def rollback(cls, version: int, from_version: int, bundle_hash: str, components: List[str], who: str,
                 ref: Optional[str] = None) -> "HistoryEntry":
        return cls(ROLLBACK, version, now_iso(), who, bundle_hash, list(components), from_version,
                   f"rollback from v{from_version}", ref)


@dataclass(frozen=True)
class DeploymentRecord:
    """What the registry holds for one deployment. ``to_json``/``from_json`` round-trip it."""

    name: str
    target: str
    status: str = "ready"
    version: int = 0
    hash: str = ""
    lang: str = ""
    components: List[str] = field(default_factory=list)
    size_bytes: int = 0
    url: str = ""
    key_file: Optional[str] = None  # the API key's file (mode 0600), the same contract on every target
    created: str = ""
    updated: str = ""
    options: Dict[str, Any] = field(default_factory=dict)  # the target's options as deployed
    history: List[HistoryEntry] = field(default_factory=list)
    target_data: Dict[str, Any] = field(default_factory=dict)  # the target's own facts (JSON), typed by it
    # Where the pipeline came from (api.origin.Origin as JSON: notebook and variable, or the CLI's PATH), so a
    # later deploy can tell the same pipeline, changed, from another one claiming the name. {} when unknown.
    origin: Dict[str, Any] = field(default_factory=dict)
    schema: int = RECORD_SCHEMA

    def to_json(self) -> Dict[str, Any]:
        data = asdict(self)
        data["history"] = [e.to_json() for e in self.history]
        return data

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "DeploymentRecord":
        """A record of this schema (or a newer one, read as far as its fields are known)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["version"] = int(values.get("version") or 0)
        values["size_bytes"] = int(values.get("size_bytes") or 0)
        values["components"] = list(values.get("components") or [])
        values["options"] = dict(values.get("options") or {})
        values["target_data"] = dict(values.get("target_data") or {})
        values["origin"] = dict(values.get("origin") or {})
        values["history"] = [HistoryEntry.from_json(e) for e in values.get("history") or [] if isinstance(e, dict)]
        values["schema"] = int(data.get("schema", RECORD_SCHEMA))
        return cls(**values)

    def evolve(self, **changes: Any) -> "DeploymentRecord":
        """A copy with ``changes`` (records are values: nobody edits one in place)."""
        return replace(self, **changes)

    def with_entry(self, entry: HistoryEntry) -> "DeploymentRecord":
        """A copy whose history ends with ``entry`` (the last HISTORY_KEEP entries are kept)."""
        return replace(self, history=(list(self.history) + [entry])[-HISTORY_KEEP:])

    def versions_seen(self) -> List[int]:
        """Every version number this deployment has used: the next deploy takes one past them all."""
        return [self.version] + [e.version for e in self.history]


def migrate(data: Dict[str, Any], schema: int) -> DeploymentRecord:
    """A record of any schema ever written (``schema``: the registry file's, for records without one)."""
    schema = int(data.get("schema", schema))
    if schema >= RECORD_SCHEMA:
        return DeploymentRecord.from_json(data)
    return DeploymentRecord.from_json(_from_v1(data))


def _from_v1(data: Dict[str, Any]) -> Dict[str, Any]:
    """Schema 0 and 1: the common fields at the top level with everything the target wrote beside them."""
    out = {k: data[k] for k in COMMON if k in data and k != "history"}
    out["target_data"] = {k: v for k, v in data.items() if k not in COMMON and k not in DROPPED_V1}
    out["history"] = [_entry_from_v1(e) for e in data.get("history") or [] if isinstance(e, dict)]
    out["schema"] = RECORD_SCHEMA
    return out


def _entry_from_v1(entry: Dict[str, Any]) -> Dict[str, Any]:
    """A schema-1 history entry. A rollback was ``note: "rollback from vN"`` or ``rollback_from: N``; the one
    other key a target wrote (the aws target's Lambda version) is the target's own reference."""
    note = str(entry.get("note") or "")
    matched = _ROLLBACK_NOTE.match(note)
    from_version = entry.get("rollback_from", int(matched.group(1)) if matched else None)
    extra = [v for k, v in entry.items() if k not in _V1_ENTRY and isinstance(v, (str, int)) and v is not None]
    return {"kind": ROLLBACK if from_version is not None else DEPLOY, "version": int(entry.get("version", 0)),
            "when": entry.get("created", ""), "who": entry.get("by", ""), "hash": entry.get("hash", ""),
            "components": list(entry.get("components") or []),
            "from_version": int(from_version) if from_version is not None else None,
            "note": note or (f"rollback from v{from_version}" if from_version is not None else ""),
            "ref": str(extra[0]) if extra else None}
