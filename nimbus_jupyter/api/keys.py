"""Rotating a deployment's API key: ``rotate_key(name)``, on targets with the ``KeyRotating`` capability.

Under the deployment's lock (a deploy, destroy or rollback cannot run meanwhile); the target stores the
record as soon as the key file holds the new key, before the old key is removed. A target without the
capability is refused with its own reason when it gives one (the local target does).
"""
from __future__ import annotations

from typing import Callable, Optional

from ..core.errors import UserInputError
from ..core.operate import KeyRotation
from ..core.registry import Registry
from ..targets.base import KeyRotating
from ..targets.registry import get_target
from .deployments import acquire, get_record

KEY_WAIT_S = 60.0  # API Gateway usually accepts a new key within seconds; the wait is bounded by this


def rotate_key(name: str, registry: Optional[Registry] = None, on_message: Callable[[str], None] = lambda _line: None,
               timeout_s: float = KEY_WAIT_S) -> KeyRotation:
    """Replace the API key of ``name`` without downtime; ``on_message`` gets each step as it happens."""
    registry = registry or Registry()
    record = get_record(name, registry)
    target = get_target(record.target, registry)
    if not isinstance(target, KeyRotating):
        what, todo = getattr(target, "key_rotation_refusal", (
            f"the {record.target} target cannot rotate an API key in place",
            f"for a new key, destroy and deploy again (%nimbus_destroy {name}, then %nimbus_deploy)"))
        raise UserInputError(what, todo.replace("NAME", name), where="rotate key")
    lock = acquire(registry, name, 5, f"a deploy, destroy or rollback of {name!r} is running",
                   "wait for it to finish, then rotate the key")
    try:
        record = get_record(name, registry)  # read again under the lock
        return target.rotate_key(record, registry.put, on_message, timeout_s)
    finally:
        lock.release()
