"""Recent log lines of a deployment, whatever its target: ``%nimbus_logs`` and ``nimbus_jupyter.logs``."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional, Tuple

from ..core.errors import UserInputError
from ..core.registry import Registry

_SINCE = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
ERROR_WORDS = ("Traceback", "ERROR", "Error", "failed", "Task timed out")


@dataclass(frozen=True)
class LogLine:
    time: str  # ISO 8601 UTC, or "" when the target's log has no times
    message: str
    request_id: str = ""  # the request the line is about, when the target knows it

    def text(self) -> str:
        return f"{self.time}  {self.message}" if self.time else self.message


def parse_since(since: str) -> float:
    """Seconds in ``since`` ("90s", "15m", "1h", "2d")."""
    match = _SINCE.match(str(since))
    if not match:
        raise UserInputError(f"--since {since!r} is not a duration", "write a number and a unit: 90s, 15m, 1h or 2d")
    seconds = int(match.group(1)) * _UNIT[match.group(2)]
    if seconds <= 0 or seconds > 30 * 86400:
        raise UserInputError(f"--since {since} is out of range", "use from 1s to 30d")
    return float(seconds)


def is_error(message: str) -> bool:
    return any(word in message for word in ERROR_WORDS)


def recent_logs(name: str, since: str = "1h", errors: bool = False, limit: int = 200,
                registry: Optional[Registry] = None) -> List[LogLine]:
    """The deployment's log lines from the last ``since``, oldest first (only errors with ``errors``)."""
    from .orchestration import get_record
    from ..targets import get_target

    if not isinstance(limit, int) or limit < 1:
        raise UserInputError(f"limit must be a whole number of at least 1, not {limit!r}", "e.g. --limit 50")
    start = time.time() - parse_since(since)
    registry = registry or Registry()
    record = get_record(name, registry)
    return get_target(record["target"], registry=registry).logs(record, start, errors, limit)


def follow_logs(name: str, since: str = "1m", errors: bool = False,
                registry: Optional[Registry] = None) -> Iterator[LogLine]:
    """The lines from the last ``since``, then each new one as it comes, until the caller stops
    iterating (a KeyboardInterrupt in the notebook). Raises UserInputError before the first line when
    the target cannot follow its logs."""
    start = time.time() - parse_since(since)
    record, target = _target_of(name, registry)
    if not hasattr(target, "follow_logs"):
        raise UserInputError(f"the {record['target']} target cannot follow logs yet",
                             f"run %nimbus_logs {name} without --follow, again when you want newer lines")
    return target.follow_logs(record, start, errors)


def _target_of(name: str, registry: Optional[Registry]) -> Tuple[dict, Any]:
    from .orchestration import get_record
    from ..targets import get_target

    registry = registry or Registry()
    record = get_record(name, registry)
    return record, get_target(record["target"], registry=registry)
