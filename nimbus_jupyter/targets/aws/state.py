"""What the aws target keeps in a record's ``target_data`` (``AwsState``), and a stack's status as a
deployment's ``LiveStatus``."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, Optional

from ...core.operate import LiveStatus
from ...core.records import DeploymentRecord
from .aws_client import StackInfo
from .spec import stack_name_for

READY_STATES = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE")


@dataclass(frozen=True)
class AwsState:
    region: Optional[str] = None
    account: Optional[str] = None
    profile: Optional[str] = None  # the AWS profile the deploy used
    stack_name: str = ""
    function_name: Optional[str] = None  # what invokes call: the alias, "<function>:live" (a name or an ARN)
    lambda_function: Optional[str] = None  # the function itself
    alias_name: Optional[str] = None
    alias_arn: Optional[str] = None
    lambda_version: Optional[str] = None  # the Lambda version the alias points at
    log_group: str = ""
    api_key_id: str = ""
    model_mode: Optional[str] = None  # inline | s3
    timeout_s: Optional[int] = None
    adopted: bool = False  # found by tag, deployed from another machine
    auth: str = "key"  # key: API key (x-api-key); iam: SigV4 with the caller's AWS credentials
    usage_plan_id: str = ""  # where the key is attached (rotate_key attaches the new one there)
    api_key_rotated: bool = False  # api_key_id is a key rotate_key made, outside the stack

    @classmethod
    def of(cls, record: DeploymentRecord) -> "AwsState":
        data = record.target_data
        known = {f.name for f in fields(cls)}
        state = cls(**{k: v for k, v in data.items() if k in known})
        return state if state.stack_name else cls(**{**asdict(state), "stack_name": stack_name_for(record.name)})

    def data(self) -> Dict[str, Any]:
        return asdict(self)

    @property
    def function_base(self) -> str:
        """The unqualified function name (records before the alias have it in ``function_name`` alone)."""
        name = self.lambda_function or self.function_name or ""
        if name.startswith("arn:"):
            return name.split(":")[6]
        return name.split(":")[0]

    @property
    def log_group_name(self) -> str:
        return self.log_group or f"/aws/lambda/{self.function_base}"


def stack_status(stack: Optional[StackInfo]) -> LiveStatus:
    if stack is None:
        return LiveStatus("gone", "the stack no longer exists in AWS; deploy again, or %nimbus_destroy NAME to forget it")
    if stack.status in READY_STATES:
        return LiveStatus("ready")
    if stack.status.endswith("_IN_PROGRESS"):
        return LiveStatus("updating", f"CloudFormation: {stack.status}")
    return LiveStatus("failed", f"CloudFormation: {stack.status} {stack.reason}".strip())
