"""Which Lambda Python runtime a deployment runs: one dated table, and the rules that pick from it.

Why a table and not the kernel's minor: Lambda's runtimes have their own lives. python3.10/3.11 run on
Amazon Linux 2 (glibc 2.26), where numpy >= 2.3 and thinc 8.3.14 have no wheel, and AWS blocks creating,
then updating, functions on a runtime some months after it deprecates it. The layer pins the kernel's
exact package versions, so the runtime is the newest one AWS still lets us use for which every pin has
a wheel (``choose``), or the one the user asks for with ``--python`` (``check_requested``).

Source of the table: AWS Lambda Developer Guide, "Lambda runtimes" (docs.aws.amazon.com/lambda/latest/
dg/lambda-runtimes.html: "Supported runtimes" and "Deprecated runtimes" tables; OS and architectures per
runtime) and "Runtime deprecation" (runtime-support-policy.html), read on ``READ_ON`` from stored copies
(this machine has no internet), cross-checked against cfn-lint 1.58.0's
``data/AdditionalSpecs/LmbdRuntimeLifecycle.json`` (a machine-readable mirror of the same table; it agrees on
every deprecation and block date below). GA dates are AWS's launch announcements ("Python 3.14 runtime now
available in AWS Lambda", 2025-11-18, and so on). AWS moves these dates: check the page before relying on them.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ...core.errors import UserInputError

READ_ON = "2026-12-01"
SOURCE = ("AWS Lambda Developer Guide, 'Lambda runtimes' (supported and deprecated runtime tables), stored copy read "
          f"{READ_ON}; dates cross-checked with cfn-lint 1.58.0 LmbdRuntimeLifecycle.json")
WARN_DAYS = 90  # warn this many days before a block date
WHERE = "AWS runtime"
AL2, AL2023 = "Amazon Linux 2", "Amazon Linux 2023"
GLIBC = {AL2: (2, 26), AL2023: (2, 34)}


@dataclass(frozen=True)
class LambdaRuntime:
    """One row of AWS's table. Dates are ISO strings (``None``: not announced)."""

    identifier: str  # python3.13
    ga: str  # generally available in Lambda
    deprecation: Optional[str]  # no more security patches
    block_create: Optional[str]  # no new functions on it from this day
    block_update: Optional[str]  # no updates to existing functions from this day
    os: str
    architectures: Tuple[str, ...] = ("x86_64", "arm64")

    @property
    def python(self) -> str:
        return self.identifier[len("python"):]

    @property
    def glibc(self) -> Tuple[int, int]:
        return GLIBC[self.os]

    @property
    def minor(self) -> Tuple[int, int]:
        major, minor = self.python.split(".")
        return int(major), int(minor)


RUNTIMES: Tuple[LambdaRuntime, ...] = (
    LambdaRuntime("python3.9", "2021-08-16", "2025-12-15", "2027-02-01", "2027-03-03", AL2),
    LambdaRuntime("python3.10", "2023-04-18", "2026-10-31", "2027-02-01", "2027-03-03", AL2),
    LambdaRuntime("python3.11", "2023-07-27", "2027-06-30", "2027-07-31", "2027-08-31", AL2),
    LambdaRuntime("python3.12", "2023-12-14", "2028-10-31", "2028-11-30", "2029-01-10", AL2023),
    LambdaRuntime("python3.13", "2024-11-14", "2029-06-30", "2029-07-31", "2029-08-31", AL2023),
    LambdaRuntime("python3.14", "2025-11-18", "2029-06-30", "2029-07-31", "2029-08-31", AL2023),
)


def runtime_for(python: str) -> LambdaRuntime:
    """The table's row for a minor version ("3.13"); an error naming the known ones otherwise."""
    for runtime in RUNTIMES:
        if runtime.python == python:
            return runtime
    raise UserInputError(f"Lambda has no Python {python} runtime (in the table read {READ_ON})",
                         f"use one of {', '.join(r.python for r in RUNTIMES)}, e.g. --python {RUNTIMES[-1].python}", WHERE)


def _day(text: Optional[str]) -> Optional[_dt.date]:
    return _dt.date.fromisoformat(text) if text else None


@dataclass(frozen=True)
class Verdict:
    """Whether a runtime may be used today for this stack: ``level`` is ok, warn or blocked."""

    runtime: str
    level: str
    message: str
    todo: str = ""


def verdict(runtime: LambdaRuntime, today: _dt.date, existing: bool) -> Verdict:
    """Blocked past the block-create date (a new stack) or block-update date (an existing one, whose
    function CloudFormation updates); a warning within ``WARN_DAYS`` of that date or once deprecated."""
    newest = RUNTIMES[-1].identifier
    ga = _day(runtime.ga)
    if ga and today < ga:
        return Verdict(runtime.identifier, "blocked", f"{runtime.identifier} is not available before {runtime.ga}",
                       f"use --python {RUNTIMES[-2].python}")
    kind, block = ("update", runtime.block_update) if existing else ("create", runtime.block_create)
    block_day = _day(block)
    what = "updating functions" if existing else "creating functions"
    if block_day and today >= block_day:
        return Verdict(runtime.identifier, "blocked",
                       f"AWS blocks {what} on {runtime.identifier} since {block} (deprecated {runtime.deprecation})",
                       f"deploy with a newer runtime: --python {newest[6:]} (or leave --python out "
                       "to let nimbus pick the newest one the kernel's packages have wheels for)")
    if block_day and (block_day - today).days <= WARN_DAYS:
        return Verdict(runtime.identifier, "warn",
                       f"AWS blocks {what} on {runtime.identifier} from {block}, in {(block_day - today).days} days",
                       f"move to a newer runtime before then: --python {newest[6:]}")
    deprecated = _day(runtime.deprecation)
    if deprecated and today >= deprecated:
        return Verdict(runtime.identifier, "warn",
                       f"{runtime.identifier} is deprecated since {runtime.deprecation}: AWS no longer patches it",
                       f"move to a newer runtime: --python {newest[6:]}")
    return Verdict(runtime.identifier, "ok", f"{runtime.identifier} is supported (deprecation {runtime.deprecation})")


@dataclass
class RuntimeChoice:
    """The runtime a deployment gets and why, as data for the plan to show."""

    runtime: str  # python3.13
    python: str  # 3.13
    arch: str
    os: str
    glibc: str
    how: str  # "requested" | "chosen"
    why: str
    warnings: List[str] = field(default_factory=list)
    considered: List[Dict[str, str]] = field(default_factory=list)  # each runtime looked at and its verdict
    table: str = SOURCE

    def lines(self) -> List[str]:
        """What the dry-run plan prints."""
        out = [f"runtime: {self.runtime} ({self.os}, glibc {self.glibc}, {self.arch}), {self.how}: {self.why}"]
        out += [f"runtime warning: {w}" for w in self.warnings]
        return out

    def to_dict(self) -> Dict[str, object]:
        return asdict(self)


# missing(pins, python, arch, glibc) -> the pins without a wheel that runtime can load (empty: all have one)
WheelCheck = Callable[[Sequence[str], str, str, Tuple[int, int]], List[str]]


def _choice(runtime: LambdaRuntime, arch: str, how: str, why: str, warnings: List[str],
            considered: List[Dict[str, str]]) -> RuntimeChoice:
    return RuntimeChoice(runtime.identifier, runtime.python, arch, runtime.os, "%d.%d" % runtime.glibc, how, why,
                         warnings, considered)


def check_requested(python: str, arch: str, today: _dt.date, existing: bool, pins: Sequence[str] = (),
                    missing: Optional[WheelCheck] = None) -> RuntimeChoice:
    """``--python X``: refused when AWS blocks it for this stack or a pin has no wheel for it; warned near a block."""
    runtime = runtime_for(python)
    if arch not in runtime.architectures:
        raise UserInputError(f"{runtime.identifier} does not run on {arch}", f"use --arch {runtime.architectures[0]}", WHERE)
    v = verdict(runtime, today, existing)
    if v.level == "blocked":
        raise UserInputError(v.message, v.todo, WHERE)
    if missing is not None and pins:
        lacking = missing(pins, runtime.python, arch, runtime.glibc)
        if lacking:
            raise UserInputError(
                f"{', '.join(lacking)} {'has' if len(lacking) == 1 else 'have'} no wheel for {runtime.identifier} on {arch} "
                f"({runtime.os}, glibc {'%d.%d' % runtime.glibc})",
                "leave --python out to let nimbus pick a runtime they have wheels for, or install versions of them in the "
                "kernel that ship such wheels, restart it and deploy again", WHERE)
    warnings = [f"{v.message}; {v.todo}"] if v.level == "warn" else []
    return _choice(runtime, arch, "requested", f"--python {python}", warnings,
                   [{"runtime": runtime.identifier, "verdict": v.level, "detail": v.message}])


def choose(pins: Sequence[str], arch: str, today: _dt.date, existing: bool, missing: WheelCheck,
           current: Optional[str] = None) -> RuntimeChoice:
    """The newest GA runtime AWS does not block for this stack, on ``arch``, for which every pin has a wheel.

    ``current`` (an existing stack's runtime, e.g. "python3.12") is named in the reason when the choice moves
    off it. Raises UserInputError naming each runtime's obstacle when none fits.
    """
    considered: List[Dict[str, str]] = []
    for runtime in sorted(RUNTIMES, key=lambda r: r.minor, reverse=True):
        if arch not in runtime.architectures:
            considered.append({"runtime": runtime.identifier, "verdict": "skipped", "detail": f"no {arch}"})
            continue
        v = verdict(runtime, today, existing)
        if v.level == "blocked":
            considered.append({"runtime": runtime.identifier, "verdict": "blocked", "detail": v.message})
            continue
        lacking = missing(pins, runtime.python, arch, runtime.glibc)
        if lacking:
            considered.append({"runtime": runtime.identifier, "verdict": "no wheels",
                               "detail": f"no wheel for {', '.join(lacking[:4])}{' ...' if len(lacking) > 4 else ''}"})
            continue
        considered.append({"runtime": runtime.identifier, "verdict": v.level, "detail": v.message})
        skipped = [c for c in considered[:-1] if c["verdict"] != "skipped"]
        why = f"the newest Lambda Python runtime every pinned package ({len(pins)}) has a {arch} wheel for"
        if skipped:
            why += "; passed over: " + "; ".join(f"{c['runtime']} ({c['detail']})" for c in skipped)
        if current and current != runtime.identifier:
            why += f"; the stack runs {current} now and moves to {runtime.identifier}"
        warnings = [f"{v.message}; {v.todo}"] if v.level == "warn" else []
        return _choice(runtime, arch, "chosen", why, warnings, considered)
    reasons = "; ".join(f"{c['runtime']}: {c['detail']}" for c in considered)
    raise UserInputError(f"no Lambda Python runtime fits this kernel's packages on {arch}: {reasons}",
                         "install package versions that ship manylinux wheels (pip install 'numpy<2.3' ... in the kernel), "
                         "restart it and deploy again", WHERE)
