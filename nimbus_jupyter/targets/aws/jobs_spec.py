"""``JobsStackSpec``: what the jobs stack of one deployment holds, as data (the CDK app's ``jobs_stack``
reads it), and the names the state machine and the shard function agree on.

Why a stack of its own (``nimbus-<name>-jobs``) beside the deployment's: it is made when the first job
needs it (or by ``--jobs`` at deploy), and making it must not redeploy the function -- a redeploy
would publish a new Lambda version under a running job's feet. It has no asset (bucket, roles, the
state machine), so it is synthesized without the CDK bootstrap and created with CloudFormation
directly; ``%nimbus_destroy`` deletes it before the deployment's stack.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

SHARD_EVENT = "nimbus_shard"  # the key of a shard event (lambda_entry routes it to runtime.jobs_shard)
MANIFEST_EVENT = "nimbus_manifest"  # the key of the event that writes a job's manifest at the end
JOBS_PREFIX = "jobs/"  # in the staging bucket: jobs/<id>/{shards.json,input/,output/}
PYARROW_KEY = "nimbus/pyarrow/"  # + <build key>.zip: the trimmed pyarrow the shard function loads into /tmp
DEFAULT_SHARD_ROWS = 2000
LAMBDA_RETRY_ERRORS = ("Lambda.TooManyRequestsException", "Lambda.ServiceException", "Lambda.AWSLambdaException",
                       "Lambda.SdkClientException", "Lambda.ClientExecutionTimeoutException")


def jobs_stack_name(name: str) -> str:
    return f"nimbus-{name}-jobs"


@dataclass
class Grant:
    """An S3 prefix the jobs of this deployment may read (an input) or write (an output)."""

    bucket: str
    prefix: str  # "" for the whole bucket; else ends with "/"


@dataclass
class JobsStackSpec:
    name: str  # the deployment
    function_arn: str  # unqualified: the state machine may invoke its versions only (ARN:*)
    function_role_arn: str  # the function's role: gets read/write on the job prefixes
    region: str = ""
    account: str = ""
    inputs: List[Grant] = field(default_factory=list)  # users' prefixes, beside the staging bucket's
    outputs: List[Grant] = field(default_factory=list)
    tags: Dict[str, str] = field(default_factory=dict)

    @property
    def stack_name(self) -> str:
        return jobs_stack_name(self.name)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "JobsStackSpec":
        data = dict(data)
        data["inputs"] = [Grant(**g) for g in data.get("inputs") or []]
        data["outputs"] = [Grant(**g) for g in data.get("outputs") or []]
        return cls(**data)

    def with_grants(self, inputs: List[Grant], outputs: List[Grant]) -> Optional["JobsStackSpec"]:
        """A spec that also grants these prefixes, or None when it already does."""
        new_in = [g for g in inputs if not _covered(g, self.inputs)]
        new_out = [g for g in outputs if not _covered(g, self.outputs)]
        if not new_in and not new_out:
            return None
        return JobsStackSpec(self.name, self.function_arn, self.function_role_arn, self.region, self.account,
                             self.inputs + new_in, self.outputs + new_out, dict(self.tags))


def _covered(grant: Grant, grants: List[Grant]) -> bool:
    return any(g.bucket == grant.bucket and grant.prefix.startswith(g.prefix) for g in grants)
