"""The target contract: what a deployment target declares and does, so that the api and every face work
with any target, including ones in other packages (see ``targets.registry`` for how they are found).

A target declares ``name``, ``title``, ``stages`` and ``options`` (``TargetOption``: the magics' flags,
the sidebar's fields and the checks of ``deploy(**options)`` are generated from them), and does:

- ``plan(request) -> Plan``: reads only (the registry record, the live remote state when it can; says
  "unknown" when it cannot) and stages artifacts under ``request.staging``;
- ``apply(plan, progress) -> DeploymentRecord``: carries out the plan, using nothing but the plan;
- ``destroy(record) -> str``, ``live_status(record) -> LiveStatus``, ``logs(record, ...)``;
- ``endpoint(record, via=None) -> Transport``: how batch scoring and the smoke test reach it.

Optional capabilities are protocols of their own, checked with ``isinstance``: ``Operable`` (metrics,
history, rollback, follow_logs), ``Discoverable`` (deployments made elsewhere), ``Jobs`` (detached
batch jobs: ``nimbus_jupyter.submit``) and ``KeyRotating`` (replace the API key without downtime);
``Recoverable`` (orphans: what runs without a registry record) is a safety net the api uses, not listed
to the faces. A target is built as ``TargetClass(registry)``; it keeps no state of a deploy between calls.
"""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from typing import (Any, Callable, Dict, Iterator, List, Mapping, Optional, Protocol, Sequence, Set, Tuple,
                    runtime_checkable)

from ..core.bundle import Bundle
from ..core.errors import UserInputError
from ..core.jobs import JobResult, JobSpec, JobStatus
from ..core.loglines import LogLine
from ..core.operate import Discovered, HistoryRow, KeyRotation, LiveStatus, Metrics, RollbackOutcome
from ..core.plan import BundleRef, Plan
from ..core.progress import SERIALIZE, SMOKE_TEST, Progress
from ..core.records import DeploymentRecord
from ..core.staging import Staging
from ..endpoint.transport import HttpTransport, Transport, check_via

OPTION_TYPES = ("int", "float", "str", "bool", "choice")
_PY_TYPES: Dict[str, Tuple[type, ...]] = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,),
                                          "choice": (str,)}
_TYPE_WORDS = {"int": "a whole number", "float": "a number", "str": "a string", "bool": "True or False",
               "choice": "one of"}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# deploy()'s and %nimbus_deploy's own parameters: no target option may take these names or flags
RESERVED_NAMES = frozenset({"nlp", "name", "target", "samples", "samples_from", "dry_run", "force", "show",
                            "namespace", "listeners", "shell", "registry", "pipeline", "origin", "widgets"})
# ... nor a flag of %nimbus_deploy or of `nimbus deploy` (the CLI's --sample, --json, and --help everywhere)
RESERVED_FLAGS = frozenset({"--name", "--target", "--samples", "--samples-from", "--dry-run", "--force", "--sample",
                            "--samples-column", "--json", "--help"})


@dataclass(frozen=True)
class TargetOption:
    """One option a target takes: ``deploy(..., name=value)``, ``%nimbus_deploy --flag value``, a sidebar field.

    ``validate`` (optional) gets the value once it has the declared type and returns it (normalized, if
    it likes) or raises ``UserInputError`` saying what is allowed. ``flag`` is derived from ``name``
    (``alarm_email`` -> ``--alarm-email``) unless given.
    """

    name: str
    type: str = "str"  # int | float | str | bool | choice
    default: Any = None  # None: the target decides (say, "the machine's cores")
    help: str = ""
    choices: Optional[Tuple[str, ...]] = None  # for type "choice"
    metavar: Optional[str] = None
    validate: Optional[Callable[[Any], Any]] = field(default=None, compare=False, repr=False)
    flag: str = ""

    def __post_init__(self) -> None:
        if not self.flag and isinstance(self.name, str):
            object.__setattr__(self, "flag", "--" + self.name.replace("_", "-"))
        if self.choices is not None and not isinstance(self.choices, tuple):
            object.__setattr__(self, "choices", tuple(self.choices))

    def problems(self) -> List[str]:
        """What is wrong with this declaration (empty when it is fine)."""
        found = []
        if not isinstance(self.name, str) or not _NAME.match(self.name) or keyword.iskeyword(self.name):
            return [f"option name {self.name!r} is not a lowercase snake_case Python identifier"]
        if self.name in RESERVED_NAMES:
            found.append(f"option {self.name!r} takes a name deploy() uses itself ({', '.join(sorted(RESERVED_NAMES))})")
        if self.type not in OPTION_TYPES:
            found.append(f"option {self.name!r} has type {self.type!r}; the types are {', '.join(OPTION_TYPES)}")
            return found
        if not isinstance(self.flag, str) or not re.match(r"^--[a-z][a-z0-9-]*$", self.flag):
            found.append(f"option {self.name!r} has flag {self.flag!r}; a flag looks like --lower-case")
        elif self.flag in RESERVED_FLAGS:
            found.append(f"option {self.name!r} takes the flag {self.flag}, which %nimbus_deploy or nimbus deploy uses itself")
        if self.type == "choice" and not self.choices:
            found.append(f"option {self.name!r} is a choice without choices")
        if self.type != "choice" and self.choices:
            found.append(f"option {self.name!r} has choices but type {self.type!r} (use type 'choice')")
        if self.type == "bool" and self.default not in (None, False):
            found.append(f"option {self.name!r} is a flag that turns something on: its default must be False or None")
        if self.default is not None and self.type in _PY_TYPES:
            if not self._has_type(self.default):
                found.append(f"option {self.name!r} has default {self.default!r}, which is not {_TYPE_WORDS[self.type]}")
            elif self.type == "choice" and self.default not in (self.choices or ()):
                found.append(f"option {self.name!r} has default {self.default!r}, not one of its choices")
        if self.validate is not None and not callable(self.validate):
            found.append(f"option {self.name!r} has a validate that is not callable")
        return found

    def check(self, value: Any, target: str) -> Any:
        """``value`` checked (type, then ``validate``); None stays None (the target's default)."""
        if value is None:
            return None
        if not self._has_type(value):
            words = _TYPE_WORDS[self.type] + (f" {', '.join(self.choices or ())}" if self.type == "choice" else "")
            raise UserInputError(f"{self.name} must be {words}, not {value!r}",
                                 f"see the {target} target's options: %nimbus_deploy? (or {self.flag} in its help)")
        if self.validate is not None:
            return self.validate(value)
        if self.type == "choice" and value not in (self.choices or ()):
            raise UserInputError(f"{self.name} must be one of {', '.join(self.choices or ())}, not {value!r}",
                                 f"e.g. {self.flag} {(self.choices or ('',))[0]}")
        return value

    def _has_type(self, value: Any) -> bool:
        if self.type != "bool" and isinstance(value, bool):
            return False
        return isinstance(value, _PY_TYPES[self.type])

    def info(self) -> Dict[str, Any]:
        """The declaration as JSON (the sidebar's ``OptionInfo``)."""
        return {"name": self.name, "flag": self.flag, "type": self.type, "default": self.default, "help": self.help,
                "choices": list(self.choices) if self.choices else None, "metavar": self.metavar}


@dataclass(frozen=True)
class DeployRequest:
    """What a target's ``plan`` gets: the staged bundle, the current record and the checked options."""

    name: str
    bundle: BundleRef  # in ``staging`` (``staging.path(bundle.path)``)
    current: Optional[DeploymentRecord]  # the registry's record of ``name``, if any (same target)
    options: Mapping[str, Any]  # every option of the target, checked; None where the user gave none
    staging: Staging  # where the plan may stage artifacts (removed when the run ends)
    progress: Progress  # the plan may report stages (pre-flight, build) and messages
    force: bool = False
    dry_run: bool = False  # a dry run: what cannot be read (no credentials) becomes "unknown", not an error
    timing: Callable[[], float] = field(default=lambda: 0.0, compare=False, repr=False)  # kernel s/text, cached

    def bundle_manifest(self) -> Dict[str, Any]:
        from ..core.bundle import load_manifest

        return load_manifest(self.staging.path(self.bundle.path))

    def staged_bundle(self) -> Bundle:
        return Bundle(self.staging.path(self.bundle.path), self.bundle_manifest())


@runtime_checkable
class Target(Protocol):
    name: str  # as registered: "local", "aws"
    title: str  # for people: "Local (127.0.0.1)"
    stages: Sequence[str]  # the deploy stages it reports, from "serialize" to "smoke test"
    options: Sequence[TargetOption]

    def plan(self, request: DeployRequest) -> Plan:
        """What a deploy would do; reads only, stages artifacts under ``request.staging``."""

    def apply(self, plan: Plan, progress: Progress) -> DeploymentRecord:
        """Carry out ``plan`` (using nothing but it), reporting to ``progress``; the new record."""

    def destroy(self, record: DeploymentRecord) -> str:
        """Remove everything the deployment made; what was done, in a sentence."""

    def live_status(self, record: DeploymentRecord) -> LiveStatus:
        """The deployment's state now, probed."""

    def logs(self, record: DeploymentRecord, start: float, errors: bool, limit: int) -> List[LogLine]:
        """Log lines since ``start`` (epoch seconds), oldest first, at most ``limit``; failures only with ``errors``."""

    def endpoint(self, record: DeploymentRecord, via: Optional[str] = None, *, retries: int = 8,
                 concurrency: int = 10) -> Transport:
        """How to reach the deployment: its default way, or ``via`` ("http", "invoke"); a UserInputError
        when that way does not reach this target. ``concurrency``: requests in flight. ``retries`` is kept
        for older callers: transports never retry (the ``EndpointClient`` decides what may be resent)."""


@runtime_checkable
class Operable(Protocol):
    """Operating what is deployed: ``%nimbus_status``, ``%nimbus_history``, ``%nimbus_rollback``, ``--follow``."""

    def metrics(self, record: DeploymentRecord) -> Metrics:
        """Traffic over the last hour and day, and the cost this month."""

    def history(self, record: DeploymentRecord) -> List[HistoryRow]:
        """Every deploy and rollback, oldest first, with which one serves and which can serve again."""

    def rollback(self, record: DeploymentRecord, to_version: Optional[int] = None) -> RollbackOutcome:
        """Serve ``to_version`` (default: the newest older one available) again, without a redeploy."""

    def follow_logs(self, record: DeploymentRecord, start: float, errors: bool) -> Iterator[LogLine]:
        """The lines since ``start``, then each new one, until the caller stops iterating."""


@runtime_checkable
class Discoverable(Protocol):
    """Deployments of this target made from another machine, found where the target runs them."""

    def remote_deployments(self, known: Set[str]) -> List[Discovered]:
        """Deployments whose names are not in ``known`` (quick; [] when the target cannot look)."""

    def adopt(self, name: str) -> Optional[DeploymentRecord]:
        """The record of a deployment named ``name`` made elsewhere (its key fetched), or None."""


@runtime_checkable
class Recoverable(Protocol):
    """Deployments this target still runs, or keeps files of, without a registry record (orphans): a deploy
    whose record could not be written, a lost registry. A safety net for the list and ``destroy``, not a
    capability the faces offer (so it is not in ``CAPABILITIES``)."""

    def orphans(self, known: Set[str]) -> List[Discovered]:
        """Orphans whose names are not in ``known``, each with its record as far as its files tell."""

    def orphan(self, name: str) -> Optional[DeploymentRecord]:
        """The record of the orphan ``name`` (for ``destroy``), or None when there is none."""


@runtime_checkable
class Warmable(Protocol):
    """A target that can start, in the background, what its first deploy would otherwise wait for (the
    local target: its base zygote with spaCy imported). Asked when a deploy begins and when the magics
    load; it returns at once and never fails. Not a capability the faces offer (not in ``CAPABILITIES``)."""

    def warm(self) -> None:
        """Start the slow part in the background, unless it is running already."""


@dataclass(frozen=True)
class JobPlan:
    """What a submit would do, decided before anything runs: the spec (output settled, shards counted
    where the target can), the lines submit shows, and the cost estimate (None: no cost, e.g. local)."""

    spec: JobSpec
    lines: List[str] = field(default_factory=list)
    estimate_usd: Optional[float] = None
    data: Dict[str, Any] = field(default_factory=dict)  # the target's own facts for submit_job (JSON)


@runtime_checkable
class Jobs(Protocol):
    """Detached batch jobs (``submit``): the whole of a source scored through one deployment's pinned
    version, written as Parquet shards and a manifest, running on without the notebook."""

    def plan_job(self, record: DeploymentRecord, spec: JobSpec, overwrite: bool) -> JobPlan:
        """Check everything a job needs (source, output, access) and estimate it; reads only. A problem is
        one ``UserInputError`` before anything runs; an output holding results is one unless ``overwrite``."""

    def submit_job(self, plan: JobPlan) -> JobSpec:
        """Start the planned job and return at once; the spec as kept (with the target's references)."""

    def job_status(self, spec: JobSpec) -> JobStatus:
        """How far the job got, read now (the state, rows done/total/failed, rate, failures, cost)."""

    def cancel_job(self, spec: JobSpec) -> JobStatus:
        """Stop the job (finished shards stay in the output); its status afterwards."""

    def resume_job(self, spec: JobSpec) -> JobStatus:
        """Run a failed or cancelled job again, sending only what it has not finished."""

    def job_result(self, spec: JobSpec) -> JobResult:
        """Where the results are: the manifest and the shard files, as local files ready to read."""

    def revive_job(self, spec: JobSpec) -> Optional[str]:
        """Start again what should be running a job that is not finished but has stopped (a killed local
        runner); a sentence saying what was done, or None when nothing was needed."""

    def remote_jobs(self, known: Set[str]) -> List[JobSpec]:
        """Jobs of this target submitted from elsewhere whose ids are not in ``known`` ([] when it cannot look)."""


@runtime_checkable
class KeyRotating(Protocol):
    """``rotate_key`` / ``%nimbus_rotate_key``: a new API key made and proven to work while the old one still
    does, the key file switched to it, then the old one removed. A target without it may say why (and what
    to do instead) in a class attribute ``key_rotation_refusal = (what, todo)``."""

    def rotate_key(self, record: DeploymentRecord, save: Callable[[DeploymentRecord], None],
                   say: Callable[[str], None], timeout_s: float = 60.0) -> KeyRotation:
        """Rotate; ``save`` stores the record as soon as the key file holds the new key (before the old one
        goes), ``say`` reports each step, the wait for the new key is bounded by ``timeout_s``."""


CAPABILITIES: Dict[str, Any] = {"operate": Operable, "discover": Discoverable, "jobs": Jobs,
                                "rotate_key": KeyRotating}
REQUIRED_METHODS = ("plan", "apply", "destroy", "live_status", "logs", "endpoint")


def capabilities_of(target: Any) -> List[str]:
    """The optional protocols ``target`` (a class or an instance) implements, by their names."""
    return [name for name, protocol in CAPABILITIES.items() if isinstance(target, protocol)]


def declaration_problems(cls: Any, name: str) -> List[str]:
    """What is wrong with a target class as declared (empty when it can be used), checked once, when it loads."""
    found = []
    if getattr(cls, "name", None) != name:
        found.append(f"declares name {getattr(cls, 'name', None)!r} but is registered as {name!r}")
    if not isinstance(getattr(cls, "title", None), str):
        found.append("declares no title (a string)")
    stages = getattr(cls, "stages", None)
    if (not isinstance(stages, (list, tuple)) or not stages or not all(isinstance(s, str) for s in stages)
            or stages[0] != SERIALIZE or stages[-1] != SMOKE_TEST):
        found.append(f"declares stages {stages!r}; they must run from {SERIALIZE!r} to {SMOKE_TEST!r}, "
                     "the stages the api runs itself")
    missing = [m for m in REQUIRED_METHODS if not callable(getattr(cls, m, None))]
    if missing:
        found.append(f"lacks the method(s) {', '.join(missing)} of the Target contract")
    options = getattr(cls, "options", None)
    if not isinstance(options, (list, tuple)) or not all(isinstance(o, TargetOption) for o in options):
        found.append("declares options that are not a list of TargetOption")
        return found
    names = [o.name for o in options]
    for duplicate in sorted({n for n in names if names.count(n) > 1}):
        found.append(f"declares the option {duplicate!r} twice")
    for option in options:
        found += option.problems()
    return found


def http_endpoint(record: DeploymentRecord, via: Optional[str], retries: int) -> Transport:
    """For targets reached over HTTP only: the URL and key of the record, or the error for ``via="invoke"``."""
    if check_via(via) == "invoke":
        raise UserInputError(f"{record.name!r} runs on the {record.target} target, which has no Lambda function to invoke",
                             "leave out --via (or use --via http); direct invoke is for --target aws deployments")
    return HttpTransport(record.url, read_key(record), retries=retries)


def read_key(record: DeploymentRecord) -> str:
    """The deployment's API key from its key file ("" when it has none)."""
    from pathlib import Path

    if not record.key_file:
        return ""
    try:
        return Path(record.key_file).read_text("utf-8").strip()
    except FileNotFoundError:
        raise UserInputError(f"the API key file of {record.name!r} is missing ({record.key_file})",
                             f"deploy it again (%nimbus_deploy PIPELINE --name {record.name}) to write a new one")
