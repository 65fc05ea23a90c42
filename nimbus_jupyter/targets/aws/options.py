"""The aws target's options, as declared to the magics, the sidebar and ``deploy(**options)``, each
checked against Lambda's and API Gateway's limits."""
from __future__ import annotations

import re
from typing import Any, Callable, Dict

from ...core.errors import UserInputError
from ..base import TargetOption
from .runtimes import AL2023, RUNTIMES
from .spec import ARCHITECTURES, AUTH_IAM, AUTH_KEY, AUTHS

# What shapes the stack (recorded as the deployment's options; a change of one is an update).
DEFAULTS: Dict[str, Any] = {"memory": 2048, "arch": "x86_64", "timeout": 60, "reserved_concurrency": None,
                            "throttle_rate": 50.0, "throttle_burst": 100, "quota": 1_000_000, "log_retention_days": 14,
                            "alarm_email": None, "python": None,  # python: --python 3.X, else runtime_select chooses
                            "snapstart": False, "auth": AUTH_KEY}
# --python offers the Amazon Linux 2023 runtimes: python3.10/3.11 run on Amazon Linux 2 (glibc 2.26), where
# today's numpy and thinc have no wheels, and AWS blocks them soonest (runtimes.py has the dates).
PYTHONS = tuple(r.python for r in RUNTIMES if r.os == AL2023)
EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[A-Za-z]{2,}$")


def _whole(key: str, low: int, high: int, unit: str) -> Callable[[int], int]:
    def check(value: int) -> int:
        if not low <= value <= high:
            raise UserInputError(f"{key} must be a whole number from {low} to {high} {unit}, not {value!r}",
                                 f"e.g. {key}={DEFAULTS.get(key) or low}")
        return value
    return check


def _arch(value: str) -> str:
    if value not in ARCHITECTURES:
        raise UserInputError(f"arch {value!r} is not a Lambda architecture", "use --arch x86_64 or --arch arm64")
    return value


def _rate(value: float) -> float:
    if value <= 0:
        raise UserInputError(f"throttle_rate must be a positive number of requests per second, not {value!r}",
                             "e.g. --rate 50")
    return float(value)


def _email(value: str) -> str:
    if not EMAIL.match(value):
        raise UserInputError(f"alarm_email {value!r} does not look like an email address",
                             "give one address, e.g. --alarm-email ops@example.com (SNS emails it to confirm first)")
    return value


OPTIONS = (
    TargetOption("region", "str", None, "the AWS region (default: your profile's or AWS_REGION)", metavar="REGION"),
    TargetOption("profile", "str", None, "the AWS profile (default: the standard chain: environment, ~/.aws, SSO)",
                 metavar="PROFILE"),
    TargetOption("memory", "int", 2048, "Lambda memory in MB (default 2048; CPU grows with it)", metavar="MB",
                 validate=_whole("memory", 128, 10240, "MB (Lambda's range is 128-10240)")),
    TargetOption("arch", "choice", "x86_64", "Lambda architecture (default x86_64)", choices=ARCHITECTURES,
                 validate=_arch),
    TargetOption("timeout", "int", 60, "Lambda timeout in seconds (default 60)", metavar="S",
                 validate=_whole("timeout", 1, 900, "seconds (Lambda's limit is 900)")),
    TargetOption("reserved_concurrency", "int", None, "cap the function's concurrent executions", metavar="N",
                 validate=_whole("reserved_concurrency", 0, 1000,
                                 "(0 turns the function off; 1000 is the default account limit)")),
    TargetOption("throttle_rate", "float", 50.0, "API Gateway steady rate limit, requests/s (default 50)",
                 metavar="RPS", validate=_rate, flag="--rate"),
    TargetOption("throttle_burst", "int", 100, "API Gateway burst limit (default 100)", metavar="N",
                 validate=_whole("throttle_burst", 1, 5000, "requests"), flag="--burst"),
    TargetOption("quota", "int", 1_000_000, "API Gateway requests per month (default 1000000)", metavar="N",
                 validate=_whole("quota", 1, 10 ** 12, "requests a month")),
    TargetOption("log_retention_days", "int", 14, "days CloudWatch keeps the function's log (default 14)",
                 metavar="DAYS", validate=_whole("log_retention_days", 1, 3653, "days")),
    TargetOption("alarm_email", "str", None, "email this address (SNS) when the function errs 5+ times in 5 min",
                 metavar="ADDRESS", validate=_email),
    TargetOption("python", "choice", None, "Lambda Python runtime (default: the newest one for which every pinned "
                 "package of the kernel has a wheel)", choices=PYTHONS, metavar="3.X"),
    TargetOption("snapstart", "bool", False, "SnapStart on published versions: cold starts resume from a snapshot "
                 "(python3.12+, /tmp at most 512 MB)"),
    TargetOption("auth", "choice", AUTH_KEY, f"how callers authenticate: {AUTH_KEY} (an API key, x-api-key) or "
                 f"{AUTH_IAM} (SigV4 with the caller's AWS credentials)", choices=AUTHS),
    # not a stack option (DEFAULTS): the jobs stack is a stack of its own, made now instead of by the first job
    TargetOption("jobs", "bool", False, "also create the jobs stack now (Step Functions state machine, its role, a "
                 "staging bucket for nimbus_jupyter.submit); without it the first job creates it"),
)


def stack_options(options: Dict[str, Any]) -> Dict[str, Any]:
    """The checked options that shape the stack (region and profile say where it is, not what)."""
    return {key: options.get(key, default) if options.get(key) is not None else default
            for key, default in DEFAULTS.items()}
