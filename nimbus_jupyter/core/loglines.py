"""Log lines as every target gives them, and the two things every log reader needs: how far back, and
which lines report an error."""
from __future__ import annotations

import re
from dataclasses import dataclass

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
    from .errors import UserInputError

    match = _SINCE.match(str(since))
    if not match:
        raise UserInputError(f"--since {since!r} is not a duration", "write a number and a unit: 90s, 15m, 1h or 2d")
    seconds = int(match.group(1)) * _UNIT[match.group(2)]
    if seconds <= 0 or seconds > 30 * 86400:
        raise UserInputError(f"--since {since} is out of range", "use from 1s to 30d")
    return float(seconds)


def is_error(message: str) -> bool:
    return any(word in message for word in ERROR_WORDS)
