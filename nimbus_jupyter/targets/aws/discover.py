"""Nimbus stacks this machine did not deploy: found by tag in the default account/region, and adopted.

So ``%nimbus_list`` shows a teammate's deployment, and ``%nimbus_status``/``%%nimbus_batch`` on its name
work after the first look (the api puts the adopted record, with its API key, in this machine's registry).
"""
from __future__ import annotations

import time
import warnings
from typing import Any, Dict, List, Optional, Set

from ...core.files import write_secret
from ...core.operate import Discovered, LiveStatus
from ...core.records import DeploymentRecord, now_iso
from ...core.registry import Registry
from .aws_client import AwsClient, StackInfo, make_session
from .spec import AUTH_IAM, AUTH_KEY, TAG_PREFIX, stack_name_for
from .state import AwsState, stack_status


_CACHE: Dict[str, Any] = {}
CACHE_SECONDS = 30.0  # the sidebar polls every 15 s; AWS is asked at most twice a minute


def aws_configured() -> bool:
    """Whether this machine shows any sign of AWS set-up; without one we never probe (no metadata-service waits)."""
    import os
    from pathlib import Path

    env = ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
           "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE")
    if any(os.environ.get(name) for name in env):
        return True
    files = (os.environ.get("AWS_CONFIG_FILE") or Path.home() / ".aws" / "config",
             os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials")
    return any(Path(f).exists() for f in files)


def default_client() -> Optional[AwsClient]:
    """A quick client for the default session, or None when there are no credentials or no region."""
    if not aws_configured():
        return None
    try:
        session = make_session()
        if session.get_credentials() is None or not session.region_name:
            return None
    except Exception:
        return None
    return AwsClient(session, quick=True)


def record_from_stack(stack: StackInfo, region: str, target_name: str = "aws") -> DeploymentRecord:
    """A registry record rebuilt from the stack's tags and outputs (no local files)."""
    state = AwsState(region=region, stack_name=stack.name, function_name=_invoked(stack.outputs),
                     lambda_function=stack.outputs.get("FunctionName", ""),
                     alias_name=stack.outputs.get("AliasName") or None, alias_arn=stack.outputs.get("AliasArn") or None,
                     log_group=stack.outputs.get("LogGroupName", ""), api_key_id=stack.outputs.get("ApiKeyId", ""),
                     usage_plan_id=stack.outputs.get("UsagePlanId", ""),
                     auth=AUTH_IAM if "InvokeArn" in stack.outputs else AUTH_KEY, adopted=True)
    return DeploymentRecord(
        name=stack.deployment, target=target_name, status="ready",
        version=int(stack.tags.get(f"{TAG_PREFIX}version", "0") or 0), hash=stack.tags.get(f"{TAG_PREFIX}hash", ""),
        url=stack.outputs.get("Url", "").rstrip("/"), created=stack.created, updated=stack.updated,
        target_data=state.data())


def _invoked(outputs: Dict[str, str]) -> str:
    """What invokes call: the alias when the stack has one (stacks made before it: the function)."""
    function, alias = outputs.get("FunctionName", ""), outputs.get("AliasName", "")
    return f"{function}:{alias}" if function and alias else function


def remote_deployments(known: Set[str], target_name: str = "aws") -> List[Discovered]:
    """Nimbus stacks in the default account/region whose names this registry does not hold."""
    cached = _CACHE.get("stacks")
    if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
        stacks, region = cached[1], cached[2]
    else:
        client = default_client()
        if client is None:
            return []
        try:
            stacks, region = client.nimbus_stacks(), client.region
        except Exception as exc:
            warnings.warn(f"AWS deployments not listed: {type(exc).__name__}: {str(exc)[:160]}", stacklevel=2)
            return []
        _CACHE["stacks"] = (time.monotonic(), stacks, region)
    found = []
    for stack in stacks:
        if stack.deployment and stack.deployment not in known:
            status = stack_status(stack)
            detail = (status.detail + "; " if status.detail else "") + "deployed from another machine"
            found.append(Discovered(record_from_stack(stack, region, target_name), LiveStatus(status.state, detail)))
    return found


def adopt(name: str, registry: Registry, target_name: str = "aws") -> Optional[DeploymentRecord]:
    """The record of the Nimbus stack named for ``name`` (default account/region), its key saved beside
    this machine's other keys; the caller puts it in the registry."""
    client = default_client()
    if client is None:
        return None
    try:
        stack = client.stack(stack_name_for(name))
    except Exception:
        return None
    if stack is None or stack.deployment != name:
        return None
    record = record_from_stack(stack, client.region, target_name)
    state = AwsState.of(record)
    key_id, key_file = state.api_key_id, None
    if key_id:
        try:
            rotated = client.rotated_key(name) if not (client.api_key(key_id) or {}).get("enabled", True) else None
            if rotated:  # rotate_key ran elsewhere: the stack's own key is disabled, the rotated one serves
                key_id = rotated
                record = record.evolve(target_data={**state.data(), "api_key_id": rotated, "api_key_rotated": True})
            key_file = str(write_secret(registry.deployment_dir(name) / "api_key", client.api_key_value(key_id)))
        except Exception:
            pass
    return record.evolve(key_file=key_file, updated=record.updated or now_iso())
