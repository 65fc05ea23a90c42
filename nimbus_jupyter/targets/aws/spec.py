"""``StackSpec``: everything the bundled CDK app needs to synthesize one deployment's stack, as data.

The target writes it to a JSON file and passes the path to ``cdk_app`` (context key ``nimbus_spec``),
so the app only wires constructs and the planner/executor never share objects with it.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

SPEC_CONTEXT_KEY = "nimbus_spec"
ARCHITECTURES = ("x86_64", "arm64")
MODEL_INLINE, MODEL_S3 = "inline", "s3"
HANDLER = "nimbus_jupyter.runtime.lambda_entry.handler"
TAG_PREFIX = "nimbus:"
AUTH_KEY, AUTH_IAM = "key", "iam"  # API Gateway: an API key (usage plan) or AWS_IAM (SigV4)
AUTHS = (AUTH_KEY, AUTH_IAM)
ALIAS_NAME = "live"  # the alias API Gateway and direct invokes call; rollback moves it between versions


def stack_name_for(name: str) -> str:
    return f"nimbus-{name}"


def version_description(version: int, bundle_hash: str) -> str:
    return f"nimbus v{version} hash {bundle_hash}"


def parse_version_description(text: str) -> Optional[Tuple[int, str]]:
    """(nimbus version, bundle hash) from a Lambda version's description, or None for another one."""
    match = re.match(r"^nimbus v(\d+) hash ([0-9a-f]+)$", text or "")
    return (int(match.group(1)), match.group(2)) if match else None


@dataclass
class StackSpec:
    name: str  # the deployment name (validated by api.check_name)
    version: int
    bundle_hash: str
    python: str  # the Lambda runtime's minor version, e.g. "3.13" (runtimes.py chooses it; not the kernel's)
    arch: str  # x86_64 | arm64
    layer_dir: str  # a directory in Lambda layer layout (holds python/)
    code_dir: str  # the function code: nimbus_jupyter/runtime (+ bundle/ when the model is inline)
    model_mode: str = MODEL_INLINE  # inline | s3
    model_dir: Optional[str] = None  # the bundle directory, uploaded as an S3 asset when model_mode == s3
    model_size_bytes: int = 0
    memory_mb: int = 2048
    timeout_s: int = 60
    ephemeral_storage_mb: int = 512
    reserved_concurrency: Optional[int] = None
    log_retention_days: int = 14
    throttle_rate: float = 50.0  # steady requests per second through API Gateway
    throttle_burst: int = 100
    quota_per_month: Optional[int] = 1_000_000
    tags: Dict[str, str] = field(default_factory=dict)
    alarm_email: Optional[str] = None  # None: no alarm, no SNS topic
    alarm_errors: int = 5  # alarm when the alias has at least this many errors ...
    alarm_period_minutes: int = 5  # ... within this many minutes
    snapstart: bool = False  # SnapStart on published versions (python3.12+, /tmp <= 512 MB)
    auth: str = AUTH_KEY  # key: every method needs the API key; iam: AWS_IAM authorization (SigV4), no key

    @property
    def version_description(self) -> str:
        """The published Lambda version's description: how rollback finds a nimbus version's Lambda version."""
        return version_description(self.version, self.bundle_hash)

    @property
    def stack_name(self) -> str:
        return stack_name_for(self.name)

    @property
    def runtime_name(self) -> str:
        return f"python{self.python}"

    def all_tags(self) -> Dict[str, str]:
        """The tags on every resource; ``nimbus:deployment`` is how %nimbus_list finds stacks."""
        return {f"{TAG_PREFIX}deployment": self.name, f"{TAG_PREFIX}version": str(self.version),
                f"{TAG_PREFIX}hash": self.bundle_hash[:12], f"{TAG_PREFIX}managed-by": "nimbus-jupyter",
                **self.tags}

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    def write(self, path: Path) -> Path:
        Path(path).write_text(self.to_json(), "utf-8")
        return Path(path)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "StackSpec":
        return cls(**data)

    @classmethod
    def read(cls, path: Path) -> "StackSpec":
        return cls.from_dict(json.loads(Path(path).read_text("utf-8")))
