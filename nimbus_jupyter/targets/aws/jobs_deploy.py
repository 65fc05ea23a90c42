"""``--jobs`` at deploy: the jobs stack (Step Functions state machine, its role, a staging bucket) made
with the deployment instead of by its first ``submit``. The plan says whether it will be created or
kept (a dry run lists it); apply creates it after the deployment's own stack, with ``ensure_jobs_stack``,
the same code the first job uses, so both ways give the same stack."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from ...core.plan import CREATE, KEEP, Change
from ...core.progress import Progress
from ...core.registry import Registry
from .aws_client import AwsClient
from .jobs_spec import jobs_stack_name

WHAT = "Step Functions state machine (Distributed Map), its role, a staging bucket"


def jobs_changes(client: Optional[AwsClient], name: str, options: Dict[str, Any]) -> List[Change]:
    """The plan's line for the jobs stack when ``--jobs`` is asked: create, or keep the one there."""
    if not options.get("jobs"):
        return []
    stack_name = jobs_stack_name(name)
    live = client.stack(stack_name) if client is not None else None
    if live is not None and live.status.endswith("_COMPLETE") and "ROLLBACK" not in live.status and "DELETE" not in live.status:
        return [Change(KEEP, f"stack {stack_name} ({live.status})", "--jobs: the jobs stack is there")]
    why = "--jobs: for detached batch jobs (nimbus_jupyter.submit); %nimbus_destroy removes it"
    if client is None:
        why += "; the live stacks are unknown: no credentials"
    return [Change(CREATE, f"stack {stack_name}: {WHAT}", why)]


def create_jobs_stack(client: AwsClient, registry: Registry, name: str, function: str, region: str, account: str,
                      progress: Progress) -> str:
    """Make the jobs stack for the deployment's function (after its own stack); its state machine's ARN."""
    from .jobs import ensure_jobs_stack

    config = client.client("lambda").get_function(FunctionName=function)["Configuration"]
    progress.message(f"creating the jobs stack {jobs_stack_name(name)} ({WHAT}), as --jobs asks")
    outputs = ensure_jobs_stack(client, registry, name, {"function_arn": config["FunctionArn"],
                                                         "function_role_arn": config.get("Role", ""),
                                                         "region": region, "account": account})
    return outputs.get("StateMachineArn", "")
