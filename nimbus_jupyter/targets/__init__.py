"""Deployment targets: where an endpoint runs. ``local`` (the default, no account needed) and ``aws``.

Every target has ``plan`` (reads; returns a ``Plan``), ``apply`` (carries it out, reporting progress),
``live_status``, ``destroy`` and ``logs``; for operating what is deployed (``nimbus_jupyter.operate``):
``metrics(record) -> (last_hour, last_day, cost_usd_or_None, cost_detail)``, ``history(record) ->
[VersionInfo]``, ``rollback(record, to_version) -> (new_record, RollbackResult)`` and
``follow_logs(record, start, errors) -> Iterator[LogLine]``.
"""
from __future__ import annotations

from typing import Any, Dict

TARGETS = ("local", "aws")
STAGES = {
    "local": ("serialize", "package", "start", "smoke test"),
    "aws": ("serialize", "pre-flight", "layer", "package", "synthesize", "deploy", "smoke test"),
}


def stages_of(name: str) -> tuple:
    """The deploy stages a target reports, for views built before the deploy starts."""
    if name not in STAGES:
        get_target(name)  # raises the error that lists the known targets
    return STAGES[name]


def get_target(name: str, **options: Any) -> Any:
    """The target object for ``name``; raises UserInputError for an unknown one or a wrong option."""
    from ..core.errors import UserInputError
    from ..core.registry import Registry

    options.setdefault("registry", Registry())
    if name == "local":
        from .local.target import LocalTarget

        extra = sorted(k for k, v in options.items() if k not in ("registry", "workers", "max_queue") and v is not None)
        if extra:
            raise UserInputError(f"{', '.join(extra)}: option(s) of the aws target, not of local",
                                 "add --target aws, or drop them")
        return LocalTarget(**{k: v for k, v in options.items() if k in ("registry", "workers", "max_queue")})
    if name == "aws":
        from .aws.target import AwsTarget

        return AwsTarget(**options)
    raise UserInputError(f"unknown target {name!r}", f"use one of: {', '.join(TARGETS)}")


def check_same_pipeline(name: str, bundle: Any, current: Dict[str, Any], force: bool) -> None:
    """A redeploy under a name must be the same kind of pipeline, unless the user says --force."""
    from ..core.errors import UserInputError

    mine = (bundle.manifest["lang"], bundle.manifest["components"])
    theirs = (current.get("lang"), current.get("components"))
    if mine != theirs and not force:
        raise UserInputError(
            f"the name {name!r} is taken by another pipeline ({theirs[0]}: {', '.join(theirs[1]) or 'no components'}); "
            f"this one is {mine[0]}: {', '.join(mine[1]) or 'no components'}",
            f"choose another --name, or add --force (force=True in Python) to replace {name!r} with this pipeline",
        )
