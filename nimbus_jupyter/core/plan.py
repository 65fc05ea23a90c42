"""A deploy plan is data: what will be created, changed or left alone. Making it changes nothing."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

CREATE, UPDATE, START, KEEP = "create", "update", "start", "keep"


@dataclass(frozen=True)
class Change:
    action: str  # create | update | start | keep
    resource: str
    why: str


@dataclass
class Plan:
    name: str
    target: str
    version: int  # the version serving after apply
    changes: List[Change] = field(default_factory=list)
    bundle: Any = None  # the staged Bundle
    current: Optional[Dict[str, Any]] = None  # the registry record before apply
    options: Dict[str, Any] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)  # sizes against limits, cost: facts a user weighs

    @property
    def noop(self) -> bool:
        return all(c.action == KEEP for c in self.changes)

    def text(self) -> str:
        head = f"Plan for {self.name!r} on target {self.target!r}: " + (
            "nothing to do" if self.noop else f"version {self.version} will serve")
        width = max((len(c.action) for c in self.changes), default=4)
        lines = [head] + [f"  {c.action:<{width}}  {c.resource}  ({c.why})" for c in self.changes]
        return "\n".join(lines + [f"  - {note}" for note in self.notes])

    def __repr__(self) -> str:
        return self.text()
