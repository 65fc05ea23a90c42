"""Load and faults on a local deployment (issue 6): 200 concurrent keep-alive clients for 30 s, then a
worker SIGKILLed under load. Bounded in clients and time, 127.0.0.1 only (bench/loadgen.py).

Promise checked: under saturation no error but 429 (throttling, as Lambda does), the server's memory
(front process + workers, RSS sampled every second) flat across the run; a killed worker costs only
retriable answers (502 with Retry-After) and is replaced. Client and server share the machine's cores.
Run: python bench/load.py [--clients 200] [--seconds 30]  -> updates bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import List, Tuple

HOME = tempfile.mkdtemp(prefix="nimbus-load-")
os.environ["NIMBUS_HOME"] = HOME  # before nimbus_jupyter is imported: never touch the user's registry
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]

import psutil  # noqa: E402
import requests  # noqa: E402

import nimbus_jupyter as nj  # noqa: E402
from nimbus_jupyter.targets.local.files import DeploymentFiles  # noqa: E402
from nimbus_jupyter.targets.local.process import deployment_processes  # noqa: E402
from _results import context, write_section  # noqa: E402
from loadgen import LoadResult, run_load  # noqa: E402
from pipelines import NEGATIVE, POSITIVE, textcat_pipeline  # noqa: E402

HEADING = "## Load and faults: 200 clients, a killed worker (issue 6)"


class RssSampler(threading.Thread):
    """RSS of the server, its version hosts and workers (forked by the hosts, so not the server's
    children) and the base zygote, every ``every`` seconds, until stopped."""

    def __init__(self, files: DeploymentFiles, every: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.files, self.every, self.samples = files, every, []  # (seconds since start, MiB)
        self.stop = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self.stop.is_set():
            try:
                pids = [pid for role in deployment_processes(self.files).values() for pid in role]
                rss = sum(psutil.Process(pid).memory_info().rss for pid in pids)
                self.samples.append((time.monotonic() - started, rss / 2**20))
            except psutil.Error:
                pass
            self.stop.wait(self.every)


def summary(result: LoadResult) -> Tuple[str, str, str, str]:
    ok = result.codes.get(200, 0)
    other = {c: n for c, n in result.codes.items() if c not in (200, 429)}
    return (f"{ok / result.seconds:,.0f} req/s ({result.answered / result.seconds:,.0f} answers/s incl. 429)",
            f"{result.pct(50):.1f} / {result.pct(99):.1f} ms",
            ", ".join(f"{c}: {n:,}" for c, n in sorted(result.codes.items())),
            f"{sum(other.values())} other answers, {sum(result.errors.values())} transport errors"
            + (f" ({dict(result.errors)})" if result.errors else ""))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    texts = [f"{t} #{i}" for i, t in enumerate(POSITIVE + NEGATIVE)]
    d = nj.deploy(textcat_pipeline(), "loaded", workers=args.workers, show=False)
    status = json.loads((Path(HOME) / "deployments" / "loaded" / "status.json").read_text())
    notes: List[str] = []
    try:
        run_load(d.url, d.api_key, texts, clients=20, seconds=2)  # warm-up
        sampler = RssSampler(DeploymentFiles(Path(HOME) / "deployments" / "loaded"))
        sampler.start()
        steady = run_load(d.url, d.api_key, texts, clients=args.clients, seconds=args.seconds)
        sampler.stop.set()
        sampler.join()
        rss = [mb for _, mb in sampler.samples]
        first, last = statistics.mean(rss[:5]), statistics.mean(rss[-5:])
        health = requests.get(f"{d.url}/health", timeout=10).json()
        rude_seconds = max(5.0, args.seconds / 2)
        rude = run_load(d.url, d.api_key, texts, clients=args.clients, seconds=rude_seconds, polite=False)
        health_rude = requests.get(f"{d.url}/health", timeout=10).json()

        fault_clients, fault_seconds = min(50, args.clients), 10.0
        victim = json.loads((Path(HOME) / "deployments" / "loaded" / "status.json").read_text())["workers"][0]
        threading.Timer(3.0, lambda: os.kill(victim, signal.SIGKILL)).start()
        fault = run_load(d.url, d.api_key, texts, clients=fault_clients, seconds=fault_seconds)
        deadline = time.time() + 30
        after = requests.get(f"{d.url}/health", timeout=10).json()
        while after["workers"]["replaced"] < 1 and time.time() < deadline:
            time.sleep(0.2)
            after = requests.get(f"{d.url}/health", timeout=10).json()
    finally:
        print(nj.destroy("loaded"))

    s_tput, s_lat, s_codes, s_err = summary(steady)
    f_tput, f_lat, f_codes, f_err = summary(fault)
    r_tput, r_lat, r_codes, r_err = summary(rude)
    rude_ok = set(rude.codes) <= {200, 429} and not rude.errors and health_rude["workers"]["replaced"] == 0
    steady_ok = set(steady.codes) <= {200, 429} and not steady.errors
    flat = abs(last - first) / first <= 0.10
    fault_ok = set(fault.codes) <= {200, 429, 502} and not fault.errors and after["workers"]["replaced"] == 1
    rows = [
        ("steady: clients x seconds", f"{args.clients} x {args.seconds:.0f} s", "", ""),
        ("steady: throughput (200s)", s_tput, "", ""),
        ("steady: latency of 200s p50 / p99", s_lat, "", ""),
        ("steady: answers by status", s_codes, "only 200/429", "ok" if steady_ok else "FAIL"),
        ("steady: errors other than 429", s_err, "0", "ok" if steady_ok else "FAIL"),
        ("steady: server+workers RSS first 5 s / last 5 s / max", f"{first:.0f} / {last:.0f} / {max(rss):.0f} MiB",
         "flat (within 10%)", f"{(last - first) / first:+.1%}"),
        ("steady: workers replaced", str(health["workers"]["replaced"]), "0", "ok" if health["workers"]["replaced"] == 0 else "FAIL"),
        ("impolite (retry 429s after 50 ms): clients x seconds", f"{args.clients} x {rude_seconds:.0f} s", "", ""),
        ("impolite: throughput (200s)", r_tput, "", ""),
        ("impolite: latency of 200s p50 / p99", r_lat, "", ""),
        ("impolite: answers by status", r_codes, "only 200/429", "ok" if rude_ok else "FAIL"),
        ("fault: worker SIGKILLed at 3 s, clients x seconds", f"{fault_clients} x {fault_seconds:.0f} s", "", ""),
        ("fault: answers by status", f_codes, "200/429, 502 (retriable) for in-flight", "ok" if fault_ok else "FAIL"),
        ("fault: transport errors", f_err, "0", "ok" if not fault.errors else "FAIL"),
        ("fault: workers replaced / pool size after", f"{after['workers']['replaced']} / {after['workers']['size']}", "1 / "
         f"{args.workers}", "ok" if after["workers"]["replaced"] == 1 else "FAIL"),
    ]
    notes.append("RSS samples (MiB, 1 s apart): " + ", ".join(f"{mb:.0f}" for mb in rss))
    notes.append("clients are keep-alive HTTP/1.1 connections sending one single-text request after another; "
                 "'steady' and 'fault' clients wait a 429's Retry-After (1 s, jittered x0.5-1.5) as the batch client "
                 "backs off; 'impolite' clients retry after 50 ms")
    lines = context(load_before) + [
        f"- pipeline: blank en + textcat (bag of words) + entity_ruler; local target, {args.workers} workers "
        "(max queue = workers); load generator bench/loadgen.py (asyncio, 127.0.0.1) in the same machine", "",
        "| figure | value | target | check |", "|---|---|---|---|", *(f"| {' | '.join(r)} |" for r in rows), "",
        *(f"- note: {n}" for n in notes)]
    section = "\n".join([HEADING, "", *lines]).rstrip() + "\n"
    print("\n" + section)
    write_section(HEADING, section)
    return 0 if steady_ok and flat and fault_ok and rude_ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        shutil.rmtree(HOME, ignore_errors=True)
