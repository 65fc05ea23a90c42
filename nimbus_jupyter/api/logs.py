"""Recent log lines of a deployment, whatever its target: ``%nimbus_logs`` and ``nimbus_jupyter.recent_logs``
/ ``follow_logs`` (following needs the target's ``Operable`` capability)."""
from __future__ import annotations

import time
from typing import Iterator, List, Optional

from ..core.errors import UserInputError
from ..core.loglines import LogLine, parse_since
from ..core.registry import Registry
from ..targets.base import Operable
from ..targets.registry import get_target
from .deployments import get_record

__all__ = ["LogLine", "recent_logs", "follow_logs", "parse_since"]


def recent_logs(name: str, since: str = "1h", errors: bool = False, limit: int = 200,
                registry: Optional[Registry] = None) -> List[LogLine]:
    """The deployment's log lines from the last ``since``, oldest first (only errors with ``errors``)."""
    if not isinstance(limit, int) or limit < 1:
        raise UserInputError(f"limit must be a whole number of at least 1, not {limit!r}", "e.g. --limit 50")
    start = time.time() - parse_since(since)
    registry = registry or Registry()
    record = get_record(name, registry)
    return get_target(record.target, registry).logs(record, start, errors, limit)


def follow_logs(name: str, since: str = "1m", errors: bool = False,
                registry: Optional[Registry] = None) -> Iterator[LogLine]:
    """The lines from the last ``since``, then each new one as it comes, until the caller stops
    iterating (a KeyboardInterrupt in the notebook). Raises UserInputError before the first line when
    the target cannot follow its logs."""
    start = time.time() - parse_since(since)
    registry = registry or Registry()
    record = get_record(name, registry)
    target = get_target(record.target, registry)
    if not isinstance(target, Operable):
        raise UserInputError(f"the {record.target} target cannot follow logs yet",
                             f"run %nimbus_logs {name} without --follow, again when you want newer lines")
    return target.follow_logs(record, start, errors)
