"""Is a change to batch or the local target slower? ``nj.batch`` alone, two commits side by side.

Why: bench/batch.py measures much more (in-process rates, a DIY service) and one run of it takes
minutes, so on a shared machine two runs of it rarely meet the same load. This runs only the nimbus
part (bench/batch.py's pipeline, 6,000 texts, default fields) for two git refs, alternating
A, B, A, B, ... each time in a fresh process on that ref's own code (``git archive`` into a temp dir,
its bench/batch.py for the pipeline and texts), and reports rows/s and the CPU seconds the client,
server front and workers used (a load-independent figure), with the CPU other processes used meanwhile.
Run: python bench/batch_ab.py main HEAD [--rounds 4]  -> prints a table and writes a section of
bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from _checkout import checkout  # bench/ is on sys.path: the script's folder
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
RUNS = 3  # nj.batch runs per deployment, after a warm-up


def one(tree: Path) -> None:
    """In a fresh process on ``tree``'s code: deploy, warm up, RUNS batches; print them as JSON."""
    sys.path.insert(0, str(tree / "bench"))
    import batch as b  # noqa: E402  (sets NIMBUS_HOME to a temp dir of its own)
    import nimbus_jupyter as nj  # noqa: E402

    assert str(Path(nj.__file__).resolve()).startswith(str(tree.resolve())), nj.__file__
    nlp, texts = b.build_nlp(), b.review_texts(b.N_TEXTS)
    d = nj.deploy(nlp, "ab", show=False)
    try:
        pid = int(json.loads((Path(b.HOME) / "deployments" / "ab" / "status.json").read_text())["pid"])
        nj.batch(texts[:256], d, progress=False, resume=False)
        sampler = b.Sampler(pid)
        sampler.start()
        out = []
        for _ in range(RUNS):
            cpu0 = sampler.cpu()
            df = nj.batch(texts, d, progress=False, resume=False)
            cpu = [y - x for x, y in zip(cpu0, sampler.cpu())]
            assert df.attrs["nimbus"].failed == 0, df.attrs["nimbus"].text()
            out.append({"rows_s": df.attrs["nimbus"].rows_per_second, "nimbus_cpu": sum(cpu[:-1]),
                        "front_cpu": cpu[1], "other_cpu": cpu[-1] - sum(cpu[:-1])})
        sampler.stop.set()
        print(json.dumps(out))
    finally:
        nj.destroy("ab")
        shutil.rmtree(b.HOME, ignore_errors=True)




def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("refs", nargs=2, metavar="REF")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(Path(args.one))
        return 0
    sys.path.insert(0, str(REPO / "bench"))
    from _results import write_section

    work = Path(tempfile.mkdtemp(prefix="nimbus-ab-"))
    load_before = os.getloadavg()[0]
    try:
        trees = {ref: work / f"tree{i}" for i, ref in enumerate(args.refs)}
        shas = {ref: checkout(ref, tree) for ref, tree in trees.items()}
        runs: Dict[str, List[dict]] = {ref: [] for ref in args.refs}
        for round_ in range(args.rounds):
            for ref, tree in trees.items():
                env = {**os.environ, "PYTHONPATH": str(tree)}
                done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "x", "x", "--one", str(tree)],
                                      cwd=tree, env=env, capture_output=True, text=True, timeout=900)
                if done.returncode:
                    raise RuntimeError(f"{ref} failed:\n{done.stderr[-3000:]}")
                runs[ref] += json.loads(done.stdout.strip().splitlines()[-1])
                print(f"round {round_ + 1} {ref}: {[round(r['rows_s']) for r in runs[ref][-RUNS:]]} rows/s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    a, b = args.refs
    med = lambda ref, key: statistics.median(r[key] for r in runs[ref])  # noqa: E731
    best = lambda ref: max(r["rows_s"] for r in runs[ref])  # noqa: E731
    rows = [("nj.batch rows/s, median", f"{med(a, 'rows_s'):,.0f}", f"{med(b, 'rows_s'):,.0f}", f"{med(b, 'rows_s') / med(a, 'rows_s'):.2f}x"),
            ("nj.batch rows/s, best", f"{best(a):,.0f}", f"{best(b):,.0f}", f"{best(b) / best(a):.2f}x"),
            ("CPU s of client + front + workers per run, median", f"{med(a, 'nimbus_cpu'):.2f}", f"{med(b, 'nimbus_cpu'):.2f}",
             f"{med(b, 'nimbus_cpu') / med(a, 'nimbus_cpu'):.2f}x"),
            ("CPU s of the server front per run, median", f"{med(a, 'front_cpu'):.3f}", f"{med(b, 'front_cpu'):.3f}", ""),
            ("CPU s of other processes during a run, median", f"{med(a, 'other_cpu'):.2f}", f"{med(b, 'other_cpu'):.2f}", "")]
    context = [f"- command: `python bench/batch_ab.py {a} {b} --rounds {args.rounds}`",
               f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}; {a} = {shas[a]}, {b} = {shas[b]}",
               f"- machine: {os.cpu_count()} cores, {platform.platform()}; 1-min load average {load_before:.2f} at start",
               f"- {args.rounds} rounds of ({a}, {b}), each a fresh process on that commit's code: deploy bench/batch.py's "
               f"pipeline (2 workers), warm up, {RUNS} runs of 6,000 texts with the default fields ({len(runs[a])} runs each)"]
    notes = [f"runs, rows/s: {ref}: " + ", ".join(f"{r['rows_s']:,.0f}" for r in runs[ref]) for ref in args.refs]
    table = [f"| figure | {a} | {b} | {b} / {a} |", "|---|---|---|---|"] + [f"| {' | '.join(r)} |" for r in rows]
    heading = f"## Batch A/B: {a} vs {b}"
    section = "\n".join([heading, "", *context, "", *table, "", *(f"- note: {n}" for n in notes)]).rstrip() + "\n"
    print("\n" + section)
    write_section(heading, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
