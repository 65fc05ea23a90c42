"""Shared by the benches: the context lines every section starts with, and replacing only one's
own ``## `` section of bench/RESULTS.md."""
from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path
from typing import List

RESULTS = Path(__file__).with_name("RESULTS.md")


def context(load_before: float) -> List[str]:
    import spacy

    import nimbus_jupyter as nj

    return [f"- command: `python {' '.join(sys.argv)}`", f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
            f"- machine: {os.cpu_count()} cores, {platform.platform()}; 1-min load average {load_before:.2f} at start, "
            f"{os.getloadavg()[0]:.2f} at end (shared machine: other work runs beside the bench)",
            f"- python {platform.python_version()}, spaCy {spacy.__version__}, nimbus_jupyter {getattr(nj, '__version__', '?')}"]


def write_section(heading: str, section: str) -> None:
    """Replace ``heading``'s section of bench/RESULTS.md (up to the next ``## `` heading), or append it."""
    old = RESULTS.read_text("utf-8") if RESULTS.exists() else "# Benchmark results\n"
    start = old.find(heading)
    if start < 0:
        new = old.rstrip() + "\n\n" + section
    else:
        end = old.find("\n## ", start + len(heading))
        new = old[:start] + section + (old[end:] if end >= 0 else "")
    RESULTS.write_text(new, "utf-8")
    print(f"wrote {RESULTS}")


def write_table_section(heading: str, context_lines: List[str], rows: List[tuple], notes: List[str]) -> None:
    """A section of context lines, a figure/value/target table and notes: print it and write it."""
    table = ["| figure | value | target | vs target |", "|---|---|---|---|"] + [f"| {' | '.join(r)} |" for r in rows]
    section = "\n".join([heading, "", *context_lines, "", *table, "", *(f"- note: {n}" for n in notes)]).rstrip() + "\n"
    print("\n" + section)
    write_section(heading, section)
