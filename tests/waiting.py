"""Waiting for something another process does, bounded: the tests' one poll loop."""
from __future__ import annotations

import time
from typing import Any, Callable


def wait_for(check: Callable[[], Any], what: str, seconds: float = 30.0, step: float = 0.05) -> Any:
    """``check()``'s first truthy value, polled every ``step`` s; an AssertionError naming ``what`` after
    ``seconds`` (a bound on a loaded machine, never a speed the test asserts)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")
