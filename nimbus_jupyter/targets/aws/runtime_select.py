"""The deploy's runtime decision in one call: the kernel's pins, the index's wheels, AWS's dates.

Kept apart from runtimes.py (pure, dated table and rules) because this one reads the kernel's installed
packages and asks the package index; the plan calls ``select_runtime`` and shows ``choice.lines()``.
"""
from __future__ import annotations

import datetime as dt
from typing import List, Optional, Sequence, Tuple

from .layer import layer_requirements
from .runtimes import RuntimeChoice, WheelCheck, check_requested, choose
from .wheels import default_index


def select_runtime(arch: str, extra: Sequence[str] = (), requested: Optional[str] = None, existing: bool = False,
                   current: Optional[str] = None, today: Optional[dt.date] = None,
                   missing: Optional[WheelCheck] = None) -> Tuple[RuntimeChoice, List[str]]:
    """``(choice, pins)``: the runtime (``requested`` is ``--python``'s value) and the layer's pins for it.

    The pins are the kernel's exact versions; the markers (backports) are evaluated once for the kernel's
    Python to judge the runtimes, then again for the chosen one, whose closure is what the layer holds.
    """
    today = today or dt.date.today()
    missing = missing or default_index().missing
    probe_python = requested or "3.13"
    probe = layer_requirements(probe_python, arch, extra=extra)
    exact = [p for p in probe if "==" in p]  # an unpinned backport (another Python's) says nothing of wheels
    if requested:
        choice = check_requested(requested, arch, today, existing, exact, missing)
    else:
        choice = choose(exact, arch, today, existing, missing, current=current)
    return choice, layer_requirements(choice.python, arch, extra=extra)
