"""Watch a stack's CloudFormation events while the CDK CLI deploys it, as progress events.

Polling ``DescribeStackEvents`` (rather than parsing the CLI's text) gives resources done/total, the
resource in progress and, when something fails, CloudFormation's own reason.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, List, Optional, Set

from .aws_client import AwsClient, StackEvent

DONE_STATES = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE", "IMPORT_COMPLETE")
FAILED_SUFFIX = "_FAILED"
CANCELLED = "Resource creation cancelled"


class StackWatcher:
    """Polls in a thread; ``on_progress(done, total, detail)`` is called when something changes."""

    def __init__(self, client: AwsClient, stack: str, total: int, on_progress: Callable[[int, int, str], None],
                 interval: float = 2.0) -> None:
        self.client, self.stack, self.total = client, stack, max(1, total)
        self.on_progress = on_progress
        self.interval = interval
        self.events: List[StackEvent] = []
        self._done: Set[str] = set()
        self._since = time.time() - 5
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{stack}", daemon=True)

    def __enter__(self) -> "StackWatcher":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.poll()  # the last events, for the failure reason

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception:  # a failed poll must not break the deploy; the next one may work
                pass

    def poll(self) -> None:
        seen = {(e.logical_id, e.status, e.timestamp) for e in self.events}
        new = [e for e in self.client.stack_events(self.stack, self._since) if (e.logical_id, e.status, e.timestamp) not in seen]
        if not new:
            return
        self.events.extend(new)
        current = ""
        for event in new:
            if event.status in DONE_STATES and event.resource_type != "AWS::CloudFormation::Stack":
                self._done.add(event.logical_id)
            elif event.status.endswith("_IN_PROGRESS"):
                current = f"{event.logical_id} ({event.resource_type})"
        elapsed = time.monotonic() - self._started
        detail = f"{current}, {elapsed:.0f} s" if current else f"{elapsed:.0f} s"
        self.on_progress(min(len(self._done), self.total), self.total, detail)

    def failure_reason(self) -> Optional[str]:
        """CloudFormation's first real failure reason, in its own words (not the cascade of cancellations)."""
        for event in self.events:
            if event.status.endswith(FAILED_SUFFIX) and event.reason and CANCELLED not in event.reason:
                return f"{event.logical_id} ({event.resource_type}): {event.reason}"
        return None
