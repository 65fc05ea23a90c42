"""Rotating a deployment's API key without downtime (``rotate_key`` / ``%nimbus_rotate_key``).

The order keeps a working key at every moment:

1. a new API key is created (API Gateway generates the value; tagged with the deployment) and attached
   to the deployment's usage plan, beside the old one;
2. the new key is proven on ``GET /health`` (API Gateway takes seconds to accept a new key: a bounded
   wait that says so); if it never works it is detached and deleted, and nothing else changed;
3. the key file is switched to the new key and the record saved (it names the new key);
4. only then the old key goes. The stack's own key (a CloudFormation resource) is disabled rather than
   deleted, so CloudFormation still finds what it made and ``%nimbus_destroy`` removes it; a key an
   earlier rotation made is detached and deleted.

A key made here lives outside the stack: the record says so (``api_key_rotated``), a redeploy keeps it
instead of the stack's, and destroy deletes it after the stack.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, List

from ...core.errors import DeployFailed, UserInputError
from ...core.files import write_atomic
from ...core.operate import KeyRotation
from ...core.records import DeploymentRecord, now_iso
from .apply import wait_until_key_works
from .aws_client import AwsClient
from .spec import AUTH_IAM, TAG_PREFIX
from .state import AwsState

WHERE = "rotate key"


def rotate(client: AwsClient, record: DeploymentRecord, save: Callable[[DeploymentRecord], None],
           say: Callable[[str], None], timeout_s: float = 60.0) -> KeyRotation:
    """Rotate the API key of ``record`` (an aws deployment) as the module says; the outcome, or an error
    saying what is left and what to do."""
    state = AwsState.of(record)
    if state.auth == AUTH_IAM:
        raise UserInputError(f"{record.name!r} uses IAM auth (SigV4 with AWS credentials): it has no API key to rotate",
                             "rotate the AWS credentials its callers use instead (IAM access keys, or SSO sessions)",
                             where=WHERE)
    if not state.api_key_id or not record.key_file:
        raise UserInputError(f"the record of {record.name!r} names no API key",
                             f"deploy it again (%nimbus_deploy PIPELINE --name {record.name} --target aws)", where=WHERE)
    old_id = state.api_key_id
    plans = [state.usage_plan_id] if state.usage_plan_id else client.usage_plans_of(old_id)
    if not plans:
        raise DeployFailed(f"the API key {old_id} of {record.name!r} is attached to no usage plan",
                           "deploy again to restore the stack's usage plan, then rotate", where=WHERE)
    steps: List[str] = []

    def step(line: str) -> None:
        steps.append(line)
        say(line)

    new = client.create_api_key(
        name=f"{state.stack_name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}",
        description=f"nimbus {record.name}: the endpoint's key (rotated from {old_id})",
        tags={f"{TAG_PREFIX}deployment": record.name, f"{TAG_PREFIX}managed-by": "nimbus-jupyter",
              f"{TAG_PREFIX}rotated-from": old_id})
    new_id = new["id"]
    started = time.monotonic()
    try:
        for plan in plans:
            client.attach_key(plan, new_id)
        step(f"created the API key {new_id} and attached it to the usage plan {', '.join(plans)}; the old key "
             f"{old_id} still works")
        status = wait_until_key_works(record.url, new["value"], step, timeout_s=timeout_s)
        if status != 200:
            raise DeployFailed(f"the new key was answered {status or 'nothing'} on GET {record.url}/health (expected 200)",
                               "check the endpoint (%nimbus_status), then rotate again", where=WHERE)
    except BaseException as exc:
        for plan in plans:
            client.detach_key(plan, new_id)
        client.delete_api_key(new_id)
        if isinstance(exc, DeployFailed):
            raise DeployFailed(exc.what, f"nothing changed: the new key was deleted and the old key {old_id} still "
                               f"serves, in {record.key_file}. {exc.todo}", where=WHERE)
        raise
    waited = time.monotonic() - started
    key_file = replace_secret(Path(record.key_file), new["value"])
    rotated = record.evolve(updated=now_iso(), key_file=str(key_file),
                            target_data={**state.data(), "api_key_id": new_id, "api_key_rotated": True,
                                         "usage_plan_id": plans[0]})
    save(rotated)
    step(f"the key file {key_file} holds the new key")
    if state.api_key_rotated:  # made by an earlier rotation, outside the stack
        for plan in plans:
            client.detach_key(plan, old_id)
        client.delete_api_key(old_id)
        old = "deleted"
    else:  # the stack's own: CloudFormation keeps finding it, and destroy removes it
        client.disable_api_key(old_id)
        old = "disabled (the stack's own key: CloudFormation keeps it, %nimbus_destroy removes it)"
    step(f"the old key {old_id}: {old}")
    return KeyRotation(rotated, old_id, new_id, old, waited, steps)


def replace_secret(path: Path, value: str) -> Path:
    """Write ``value`` to ``path`` (0600) by a rename: a client reading the key file meanwhile gets the old
    key or the new one, never an empty file."""
    write_atomic(path, lambda tmp: Path(tmp).write_text(value, "utf-8"))
    return path
