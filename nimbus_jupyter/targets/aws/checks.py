"""Pre-deploy checks against Lambda's account and runtime limits, as pure functions with numbers in their words.

- reserved concurrency against GetAccountSettings (AWS keeps 100 executions unreserved per account);
- S3 model mode: memory from the model's size, and init from a measured load time against the 10 s budget;
- SnapStart's limits (python3.12+, /tmp at most 512 MB);
- the cold init a deploy should expect (imports plus the measured ``spacy.load``, scaled to the CPU share);
- the bounded wait for a new API key (API Gateway takes seconds to accept one).
Each raises UserInputError (before anything is created) or returns advice lines for the plan.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from ...core.errors import DeployFailed, UserInputError

UNRESERVED_MINIMUM = 100  # Lambda: "at least 100 concurrent executions remain unreserved"
INIT_BUDGET_S = 10.0  # Lambda's init phase limit for on-demand functions
FULL_VCPU_MB = 1769  # Lambda: at 1,769 MB a function has the equivalent of one vCPU (CPU scales with memory)
MEMORY_MAX_MB = 10_240
# A loaded spaCy pipeline holds its weights unpacked plus Python's and spaCy's own: measured here as
# about 2x the serialized model on top of ~220 MB for the interpreter, numpy, thinc and spaCy.
BASE_RSS_MB, MODEL_RSS_FACTOR, MEMORY_HEADROOM = 220, 2.0, 1.25
IMPORT_SECONDS = 0.9  # the layer's imports at init on one full vCPU (bench/RESULTS.md: 0.82 s median on x86_64)
SNAPSTART_MIN_PYTHON = (3, 12)
SNAPSTART_MAX_TMP_MB = 512  # Lambda: SnapStart is not supported with more than 512 MB of ephemeral storage
S3_MB_PER_S = 80.0  # a conservative S3 GET throughput inside a Lambda (Lambda's network is 0.5-1 Gbit/s)
UNZIP_MB_PER_S = 200.0
WHERE = "pre-flight"


def account_concurrency(client: Any) -> Dict[str, int]:
    """GetAccountSettings' concurrency limits: ``{"limit": ..., "unreserved": ...}``."""
    limits = client.get_account_settings()["AccountLimit"]
    return {"limit": int(limits["ConcurrentExecutions"]), "unreserved": int(limits["UnreservedConcurrentExecutions"])}


def check_reserved_concurrency(requested: Optional[int], limits: Dict[str, int], current: int = 0) -> Optional[str]:
    """Refuse a reservation the account cannot give. ``current``: what this function reserves now (an update
    gives it back first). Returns an advisory line, or None when nothing is reserved."""
    if requested is None:
        return None
    available = limits["unreserved"] + current - UNRESERVED_MINIMUM
    if requested > available:
        raise UserInputError(
            f"reserved concurrency {requested} is more than this account can reserve: {limits['unreserved']:,} of its "
            f"{limits['limit']:,} concurrent executions are unreserved{f' (plus {current} this function holds)' if current else ''}, "
            f"and Lambda keeps {UNRESERVED_MINIMUM} unreserved, so at most {max(available, 0):,} can be reserved",
            f"pass --reserved-concurrency {max(available, 0)} or less, leave it out, or ask AWS for a higher "
            "concurrency quota (Service Quotas: Lambda 'Concurrent executions')", WHERE)
    return (f"reserved concurrency {requested} of {available:,} reservable ({limits['unreserved']:,} unreserved of "
            f"{limits['limit']:,}; {UNRESERVED_MINIMUM} stay unreserved)")


@dataclass(frozen=True)
class ModelSizing:
    memory_mb: int  # what the function should get
    needed_mb: int  # the estimate it is based on
    init_seconds: float  # estimated cold init
    lines: List[str]


def _cpu_share(memory_mb: int) -> float:
    return min(1.0, memory_mb / FULL_VCPU_MB)


def init_seconds(memory_mb: int, load_seconds: float, import_seconds: float = IMPORT_SECONDS) -> float:
    """Cold init of an inline model: imports and ``spacy.load`` (both measured on a full CPU) stretched by
    the fraction of a vCPU Lambda gives ``memory_mb``."""
    return (import_seconds + load_seconds) / _cpu_share(memory_mb)


def check_snapstart(enabled: bool, python: str, ephemeral_mb: int, where: str = WHERE) -> Optional[str]:
    """SnapStart for Python needs python3.12+ and at most 512 MB of /tmp; say which limit and what to do.
    Returns the plan's line, or None when SnapStart is off."""
    if not enabled:
        return None
    major, _, minor = python.partition(".")
    if (int(major), int(minor)) < SNAPSTART_MIN_PYTHON:
        raise UserInputError(f"SnapStart needs the python3.12 runtime or newer, not python{python}",
                             "deploy with --python 3.12 (or newer), or without --snapstart", where)
    if ephemeral_mb > SNAPSTART_MAX_TMP_MB:
        raise UserInputError(f"SnapStart works only with /tmp of at most {SNAPSTART_MAX_TMP_MB} MB; this deployment needs "
                             f"{ephemeral_mb} MB of /tmp",
                             "deploy without --snapstart, or with a model small enough to ship inside the function", where)
    return ("SnapStart on published versions: a cold start resumes from the snapshot taken when the version is "
            "published (the after-restore hook reseeds random and numpy); publishing takes a few minutes longer")


def size_s3_model(model_bytes: int, memory_mb: int, load_seconds: float, import_seconds: float = IMPORT_SECONDS,
                  memory_given: bool = False) -> ModelSizing:
    """Memory and init for a model loaded from S3 into /tmp at cold start.

    ``load_seconds`` is ``spacy.load`` measured in the kernel (one full CPU); Lambda below 1,769 MB has a
    fraction of one, so load and import stretch by 1769/memory. Raises when the estimate is over the 10 s
    init budget or over 10,240 MB; advises (more memory, or inline mode) when above 70 % of the budget.
    ``memory_given``: the user chose --memory, so it is checked rather than raised to what the model needs.
    """
    model_mb = model_bytes / 1024 ** 2
    needed = math.ceil((BASE_RSS_MB + MODEL_RSS_FACTOR * model_mb) * MEMORY_HEADROOM)
    if needed > MEMORY_MAX_MB:
        raise UserInputError(f"the model ({model_mb:,.0f} MB) needs about {needed:,} MB of memory once loaded, over "
                             f"Lambda's {MEMORY_MAX_MB:,} MB", "use a smaller pipeline, or deploy with --target local", WHERE)
    if memory_given and memory_mb < needed:
        raise UserInputError(f"--memory {memory_mb} is below the ~{needed:,} MB the {model_mb:,.0f} MB model needs loaded "
                             f"({BASE_RSS_MB} MB runtime + {MODEL_RSS_FACTOR:g}x the model, +{MEMORY_HEADROOM - 1:.0%})",
                             f"pass --memory {needed} or more", WHERE)
    memory = max(memory_mb, needed)
    cpu = _cpu_share(memory)
    download = model_mb / S3_MB_PER_S + model_mb / UNZIP_MB_PER_S
    init = download + init_seconds(memory, load_seconds, import_seconds)
    lines = [f"model {model_mb:,.0f} MB from S3: memory {memory:,} MB (needs ~{needed:,}); init ~{init:.1f} s = "
             f"download+unzip {download:.1f} s + (import {import_seconds:.1f} s + load {load_seconds:.1f} s) / "
             f"{cpu:.2f} vCPU, of Lambda's {INIT_BUDGET_S:.0f} s"]
    if init > INIT_BUDGET_S:
        more = min(MEMORY_MAX_MB, FULL_VCPU_MB)
        fast = download + (import_seconds + load_seconds) / _cpu_share(more)
        todo = (f"pass --memory {more} (one full vCPU: init ~{fast:.1f} s)" if fast <= INIT_BUDGET_S and memory < more
                else "use a smaller pipeline (or one that fits in the function package), or deploy with --target local")
        raise UserInputError(f"cold init would take about {init:.1f} s, over Lambda's {INIT_BUDGET_S:.0f} s init limit "
                             f"({lines[0]})", todo, WHERE)
    if init > 0.7 * INIT_BUDGET_S:
        lines.append(f"init is {init / INIT_BUDGET_S:.0%} of the 10 s budget: a slower S3 read fails the cold start; "
                     f"--memory {FULL_VCPU_MB} gives a full vCPU")
    return ModelSizing(memory, needed, init, lines)


def wait_for_key(probe: Callable[[], int], timeout_s: float = 60.0, interval_s: float = 2.0,
                 on_wait: Callable[[str], None] = lambda _line: None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> int:
    """Call ``probe`` (returns the HTTP status of a keyed request) until it is not 403, within ``timeout_s``.

    A new API key answers 403 for the seconds API Gateway takes to propagate it; the wait says so once.
    Returns the number of probes; raises DeployFailed with what was seen when the bound runs out.
    """
    started = clock()
    attempts, status = 0, 0
    while True:
        attempts += 1
        status = probe()
        if status != 403:
            return attempts
        waited = clock() - started
        if waited + interval_s > timeout_s:
            raise DeployFailed(f"the new API key was still refused (403) after {waited:.0f} s and {attempts} tries",
                               "API Gateway can take a minute to accept a new key: run the smoke test again "
                               "(%nimbus_status NAME), and check the usage plan holds the key", where="smoke test")
        if attempts == 1:
            on_wait(f"the new API key is not accepted yet (403); waiting up to {timeout_s:.0f} s for API Gateway")
        sleep(interval_s)
