"""A deploy plan is a value: what will be created, changed or left alone, and everything applying it needs.

A target's ``plan(request)`` only reads (the registry record, the live remote state when it can) and
stages artifacts; ``apply(plan)`` uses nothing but the plan. ``to_json``/``from_json`` round-trip it, so
a plan can be shown, saved, compared and applied on its own. Artifacts are named by paths relative to
the root of the ``Staging`` that built them (``plan.path(name)`` finds them while it is open).

Two executors take a plan (chalice's pattern: one planner, the executor decides what happens):
``ApplyExecutor`` carries it out through the target and records the result; ``DisplayOnlyExecutor``
(``--dry-run``) changes nothing.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Protocol

from .display import MUTED, Displayable, esc, html_table
from .progress import SMOKE_TEST, Progress
from .records import DeploymentRecord
from .staging import Staging

PLAN_SCHEMA = 1
CREATE, UPDATE, START, KEEP = "create", "update", "start", "keep"


@dataclass(frozen=True)
class Change:
    action: str  # create | update | start | keep
    resource: str
    why: str


@dataclass(frozen=True)
class BundleRef:
    """The staged bundle a plan deploys: where it is (relative to the staging root) and what it is."""

    path: str
    hash: str
    size_bytes: int
    lang: str
    components: List[str]

    @classmethod
    def of(cls, bundle: Any, staging: Staging) -> "BundleRef":
        manifest = bundle.manifest
        return cls(staging.relative(bundle.path), manifest["hash"], int(manifest["size_bytes"]), manifest["lang"],
                   list(manifest["components"]))


@dataclass
class Plan(Displayable):
    """What a deploy will do (a dry run shows it; the deploy applies it). Displays itself: a table of the
    changes in a notebook, one line per change elsewhere."""

    name: str
    target: str
    version: int  # the version serving after apply
    changes: List[Change]
    bundle: BundleRef
    current: Optional[DeploymentRecord] = None  # the registry record before apply
    options: Dict[str, Any] = field(default_factory=dict)  # the target's options, checked, defaults filled
    facts: Dict[str, Any] = field(default_factory=dict)  # what planning read (account, identity, server state)
    artifacts: Dict[str, str] = field(default_factory=dict)  # name -> path relative to the staging root
    data: Dict[str, Any] = field(default_factory=dict)  # the target's own plan data (JSON)
    notes: List[str] = field(default_factory=list)  # sizes against limits, cost: facts a user weighs
    staging: Optional[Staging] = field(default=None, repr=False, compare=False)  # not part of the value
    schema: int = PLAN_SCHEMA

    @property
    def noop(self) -> bool:
        return all(c.action == KEEP for c in self.changes)

    def path(self, artifact: str) -> Path:
        """Where the artifact ``artifact`` (a key of ``artifacts``, or ``"bundle"``) is on this machine."""
        if self.staging is None:
            raise ValueError("this plan is not attached to the staging directory that holds its artifacts")
        relative = self.bundle.path if artifact == "bundle" else self.artifacts[artifact]
        return self.staging.path(relative)

    def headline(self) -> str:
        return f"Plan for {self.name!r} on target {self.target!r}: " + (
            f"nothing to change (v{self.version} serves this pipeline)" if self.noop
            else f"version {self.version} will serve")

    def text(self) -> str:
        width = max((len(c.action) for c in self.changes), default=4)
        lines = [self.headline()] + [f"  {c.action:<{width}}  {c.resource}  ({c.why})" for c in self.changes]
        return "\n".join(lines + [f"  - {note}" for note in self.notes])

    def html(self) -> str:
        rows = [[c.action, c.resource, c.why] for c in self.changes]
        notes = "".join(f"<li>{esc(n)}</li>" for n in self.notes)
        return (f"<div><b>{esc(self.headline())}</b>{html_table(['action', 'resource', 'why'], rows)}"
                + (f"<ul style='{MUTED};margin:4px 0'>{notes}</ul>" if notes else "") + "</div>")

    def __repr__(self) -> str:
        return self.text()

    def to_json(self) -> Dict[str, Any]:
        return {"schema": self.schema, "name": self.name, "target": self.target, "version": self.version,
                "changes": [asdict(c) for c in self.changes], "bundle": asdict(self.bundle),
                "current": self.current.to_json() if self.current else None, "options": dict(self.options),
                "facts": dict(self.facts), "artifacts": dict(self.artifacts), "data": dict(self.data),
                "notes": list(self.notes)}

    @classmethod
    def from_json(cls, data: Dict[str, Any], staging: Optional[Staging] = None) -> "Plan":
        return cls(name=data["name"], target=data["target"], version=int(data["version"]),
                   changes=[Change(**c) for c in data.get("changes", [])], bundle=BundleRef(**data["bundle"]),
                   current=DeploymentRecord.from_json(data["current"]) if data.get("current") else None,
                   options=dict(data.get("options") or {}), facts=dict(data.get("facts") or {}),
                   artifacts=dict(data.get("artifacts") or {}), data=dict(data.get("data") or {}),
                   notes=list(data.get("notes") or []), staging=staging, schema=int(data.get("schema", PLAN_SCHEMA)))


@dataclass(frozen=True)
class PlanMade:
    """Progress event: the plan an executor is about to carry out (or, for a dry run, show)."""

    plan: Plan


class Executor(Protocol):
    def execute(self, plan: Plan, progress: Progress) -> Optional[DeploymentRecord]:
        """Carry out (or show) ``plan``; the record that serves afterwards, or None when nothing was applied."""


class DisplayOnlyExecutor:
    """``--dry-run``: the plan is announced and every stage left is marked skipped. Nothing changes."""

    def execute(self, plan: Plan, progress: Progress) -> Optional[DeploymentRecord]:
        progress.emit(PlanMade(plan))
        for stage in progress.unreported():
            progress.skip(stage, "dry run")
        return None


class ApplyExecutor:
    """Applies a plan through the target's ``apply`` and records the new record (``record``, e.g. the
    registry's ``put``). A plan that changes nothing is not applied: the current record serves on.

    No server without a record: a new deployment is recorded as ``starting`` *before* ``apply`` starts
    anything (if that write fails, nothing is started); if ``apply`` fails, the starting record is removed
    (``forget``); if the final record cannot be written, what ``apply`` started is stopped (``undo``, the
    target's destroy) before the error goes on. A process killed in between leaves the ``starting``
    record, which the list shows as interrupted and ``destroy`` cleans up.
    """

    def __init__(self, apply: Callable[[Plan, Progress], DeploymentRecord],
                 record: Callable[[DeploymentRecord], None],
                 undo: Optional[Callable[[DeploymentRecord], Any]] = None,
                 forget: Optional[Callable[[str], None]] = None) -> None:
        self.apply = apply
        self.record = record
        self.undo = undo
        self.forget = forget

    def execute(self, plan: Plan, progress: Progress) -> Optional[DeploymentRecord]:
        progress.emit(PlanMade(plan))
        if plan.noop and plan.current is not None:
            for stage in progress.unreported():
                if stage != SMOKE_TEST:
                    progress.skip(stage, "unchanged")
            progress.message(f"{plan.name!r} already serves this pipeline (v{plan.version}, hash "
                             f"{plan.bundle.hash[:12]}): nothing to do")
            return plan.current
        new = plan.current is None
        if new:
            self.record(starting_record(plan))  # fails: nothing was started
        try:
            record = self.apply(plan, progress)
        except BaseException:
            if new and self.forget is not None:
                _quietly(self.forget, plan.name)
            raise
        try:
            self.record(record)
        except BaseException:
            if new and self.undo is not None:  # nobody could find what apply started: stop it
                _quietly(self.undo, record)
                if self.forget is not None:
                    _quietly(self.forget, plan.name)
            raise
        return record


def starting_record(plan: Plan) -> DeploymentRecord:
    """What a new deployment is while its target starts it: findable (list, destroy) from the first moment."""
    from .records import now_iso

    now = now_iso()
    b = plan.bundle
    return DeploymentRecord(plan.name, plan.target, status="starting", version=plan.version, hash=b.hash, lang=b.lang,
                            components=list(b.components), size_bytes=b.size_bytes, created=now, updated=now,
                            options=dict(plan.options))


def _quietly(action: Callable[[Any], Any], value: Any) -> None:
    """Clean-up after a failure: its own failure must not hide the first one."""
    try:
        action(value)
    except Exception:
        pass
