"""Progress of a deploy as events, so targets report and views render without knowing each other."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Optional, Sequence

PENDING, RUNNING, DONE, FAILED, SKIPPED = "pending", "running", "done", "failed", "skipped"
# The stages the api runs on every target, first and last; a target's own stages come between them.
SERIALIZE, SMOKE_TEST = "serialize", "smoke test"


@dataclass(frozen=True)
class StageEvent:
    stage: str
    state: str
    detail: str = ""
    seconds: Optional[float] = None


@dataclass(frozen=True)
class MessageEvent:
    text: str


@dataclass(frozen=True)
class ProgressEvent:
    """A fraction of the current stage, for long steps (CloudFormation resources, uploads)."""

    stage: str
    done: int
    total: int
    detail: str = ""


Event = Any
Listener = Callable[[Event], None]


class Progress:
    """Fans events out to listeners and times stages."""

    def __init__(self, stages: Sequence[str], listeners: Sequence[Listener] = ()) -> None:
        self.stages: List[str] = list(stages)
        self.listeners = list(listeners)
        self.reported: set = set()  # stages that have had an event

    def unreported(self) -> List[str]:
        return [s for s in self.stages if s not in self.reported]

    def emit(self, event: Event) -> None:
        if isinstance(event, StageEvent):
            self.reported.add(event.stage)
        for listener in self.listeners:
            listener(event)

    def message(self, text: str) -> None:
        self.emit(MessageEvent(text))

    def skip(self, stage: str, detail: str = "") -> None:
        self.emit(StageEvent(stage, SKIPPED, detail))

    @contextmanager
    def stage(self, name: str, detail: str = "") -> Iterator["StageHandle"]:
        handle = StageHandle(name, detail)
        self.emit(StageEvent(name, RUNNING, detail))
        started = time.perf_counter()
        try:
            yield handle
        except BaseException as exc:
            self.emit(StageEvent(name, FAILED, str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                                 time.perf_counter() - started))
            raise
        self.emit(StageEvent(name, DONE, handle.detail, time.perf_counter() - started))


@dataclass
class StageHandle:
    name: str
    detail: str = ""
