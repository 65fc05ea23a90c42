"""Deployment targets: where an endpoint runs. ``local`` (default) and, later, ``aws``."""
from __future__ import annotations

from typing import Any

TARGETS = ("local",)
STAGES = {"local": ("serialize", "package", "start", "smoke test")}


def stages_of(name: str) -> tuple:
    """The deploy stages a target reports, for views built before the deploy starts."""
    if name not in STAGES:
        get_target(name)  # raises the error that lists the known targets
    return STAGES[name]


def get_target(name: str, **options: Any) -> Any:
    """The target object for ``name``; raises UserInputError for an unknown one."""
    from ..errors import UserInputError

    if name == "local":
        from ..registry import Registry
        from .local.target import LocalTarget

        options.setdefault("registry", Registry())
        return LocalTarget(**options)
    if name == "aws":
        raise UserInputError("the 'aws' target is not in this version of nimbus-jupyter yet",
                             "use --target local (the default) for now")
    raise UserInputError(f"unknown target {name!r}", f"use one of: {', '.join(TARGETS)}")
