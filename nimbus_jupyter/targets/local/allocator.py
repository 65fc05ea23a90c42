"""glibc malloc settings for a worker: keep freed memory for the next chunk instead of handing it back.

Why: with glibc's defaults a worker gives the arrays of every ``nlp.pipe`` batch back to the kernel
(``munmap`` of chunks above the mmap threshold, heap trimming) and faults fresh zeroed pages in for
the next batch: ~270,000 minor page faults per 3,000 texts of en_core_web_sm here, 0.6-0.7 CPU s of
kernel time plus the zeroing, ~10% of the worker's CPU (bench/RESULTS.md, issue 15). Fixed thresholds
keep those pages in the heap (0 faults in the same loop) at the same peak RSS: the heap stays at its
high-water mark, which a long-lived worker reaches on its first chunks anyway.

Not applied when the user configured malloc themselves (``GLIBC_TUNABLES`` or ``MALLOC_*_``), nor
off glibc.
"""
from __future__ import annotations

import os
import platform
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MMAP_THRESHOLD = 32 << 20  # glibc's own dynamic ceiling on 64-bit: larger blocks are still mmapped
TRIM_THRESHOLD = 128 << 20  # free memory at the heap's top kept before it is handed back
TOP_PAD = 16 << 20  # grow the heap in steps of this much, not page by page


USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")


def user_configured() -> bool:
    """The user tuned glibc malloc themselves (environment read by glibc at start-up): theirs wins."""
    return "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "") or any(k in os.environ for k in USER_SETTINGS)


def keep_freed_memory() -> bool:
    """Apply the settings above to this process; True when they were applied."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc" or user_configured():
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD)))
