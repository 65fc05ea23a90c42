"""Batch throughput of ``nimbus_jupyter.batch`` on the local target (issue 3), measured on demand, not as a test.

Why: a notebook user scores a DataFrame through ``batch`` only if it beats what they have already, ``nlp.pipe``
in the kernel or a FastAPI service written by hand. So one run compares, on the same 6,000 review-length texts
and a pipeline of en_core_web_sm's architecture built here (ner with its own tok2vec; no downloads): in-process
``nlp.pipe`` (n_process 1, 2), ``nj.batch`` (default fields; ents only), a DIY FastAPI + uvicorn service driven
by a ``requests`` loop, and the machine's limit for entities-only work (cores x one process's rate of only the
components entities need). Targets: nimbus default >= 1.0x best in-process and >= 2x DIY; ents-only >= 0.85x limit.
Run: python bench/batch.py  -> prints a table and updates its section of bench/RESULTS.md.
"""
from __future__ import annotations

import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

HOME = tempfile.mkdtemp(prefix="nimbus-bench-")
os.environ["NIMBUS_HOME"] = HOME  # before nimbus_jupyter is imported: never touch the user's registry

import psutil  # noqa: E402
import requests  # noqa: E402
import spacy  # noqa: E402
from spacy.cli.init_config import init_config  # noqa: E402
from spacy.training import Example  # noqa: E402

import nimbus_jupyter as nj  # noqa: E402
from _results import write_table_section  # noqa: E402
from nimbus_jupyter.runtime.fields import PipelineFields, doc_to_result  # noqa: E402

NAME, N_TEXTS, CHUNK, CHECK_ROWS, BUDGET_S = "bench-batch", 6000, 64, 300, 1200
HEADING = "## Batch throughput (issue 3)"
ENTS = "fields=['ents'] (best of 3, between one-process runs)"
TRAIN = [  # words, tags, heads, deps, BILUO entities (as in bench/deploy.py)
    ("Anna bought a Zento phone in Berlin .", "NNP VBD DT NNP NN IN NNP .", [1, 1, 4, 4, 1, 1, 5, 1],
     "nsubj ROOT det compound dobj prep pobj punct", "U-PERSON O O U-ORG O O U-GPE O"),
    ("The Acme kettle broke on Monday .", "DT NNP NN VBD IN NNP .", [2, 2, 3, 3, 3, 4, 3],
     "det compound nsubj ROOT prep pobj punct", "O U-ORG O O O U-DATE O"),
    ("John returned it to Vexa in London .", "NNP VBD PRP IN NNP IN NNP .", [1, 1, 1, 1, 3, 1, 5, 1],
     "nsubj ROOT dobj prep pobj prep pobj punct", "U-PERSON O O O U-ORG O U-GPE O")]
NER_TOK2VEC = {"@architectures": "spacy.Tok2Vec.v2",  # en_core_web_sm's ner has its own embedding layer
               "embed": {"@architectures": "spacy.MultiHashEmbed.v2", "width": 64, "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"],
                         "rows": [2000, 1000, 1000, 1000], "include_static_vectors": False},
               "encode": {"@architectures": "spacy.MaxoutWindowEncoder.v2", "width": 64, "depth": 2, "window_size": 1, "maxout_pieces": 3}}
WORDS = {k: v.split("|") for k, v in {  # the slots of the review templates
    "who": "Anna|John Smith|Maria|Tom|Priya Patel|Lukas|my wife|Dr. Chen|our team",
    "where": "Berlin|London|Paris|Chicago|Madrid|Toronto|Sydney|a mall in Ohio|the Amazon store",
    "brand": "Acme|Zento|Norrin|Vexa|Holloway|Brightline|Kestrel", "when": "on Monday|last Friday|on March 3|in June|yesterday",
    "item": "phone|laptop|kettle|camera|monitor|blender|smartwatch|vacuum|headset|router",
    "say": "works perfectly and the battery lasts for days|stopped working after a week and support never replied|arrived "
           "quickly, well packed, and was easy to set up|feels cheap and looks nothing like the photos|is loud but does the "
           "job|was replaced for free by the shop|overheats when I use it for long|had a scratch on the screen"}.items()}
DIY_APP = """import spacy
from fastapi import FastAPI
nlp, app = spacy.load({model!r}), FastAPI()
app.get("/health")(lambda: {{"ok": True}})
@app.post("/predict")
def predict(texts: list[str]):  # what a user writes by hand: the whole pipeline, ents per text
    return [[{{"text": e.text, "label": e.label_, "start": e.start_char, "end": e.end_char}} for e in doc.ents]
            for doc in nlp.pipe(texts)]
"""


def build_nlp() -> Any:
    """en_core_web_sm's architecture, initialised (seeded) and updated a few rounds on hand-made examples."""
    spacy.util.fix_random_seed(0)  # same weights, so the same entities and the same speed, on every run
    cfg = init_config(lang="en", pipeline=["tagger", "parser", "ner"], optimize="efficiency")
    cfg["components"]["parser"]["min_action_freq"] = 1  # keep every action of the tiny training set
    cfg["components"]["ner"]["model"]["tok2vec"] = NER_TOK2VEC
    nlp = spacy.util.load_model_from_config(cfg, auto_fill=True, validate=True)
    examples = lambda: [Example.from_dict(nlp.make_doc(w), {"words": w.split(), "tags": t.split(), "heads": h,  # noqa: E731
                                                            "deps": d.split(), "entities": e.split()}) for w, t, h, d, e in TRAIN]
    optimizer = nlp.initialize(examples)
    for _ in range(5):
        nlp.update(examples(), sgd=optimizer)  # fresh Docs each round: predicted ones keep the parser's sentence starts
    return nlp


def review_texts(n: int, seed: int = 3) -> List[str]:
    """``n`` distinct, varied review-length texts (~25 words) with people, places, brands and dates."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        w = {k: rng.choice(v) for k, v in WORDS.items()}
        text = rng.choice([f"{w['who']} bought the {w['brand']} {w['item']} in {w['where']} {w['when']} for ${rng.randint(20, 900)}. It {w['say']}.",
                           f"I got this {w['brand']} {w['item']} {w['when']} from {w['where']}. Honestly it {w['say']}, and {w['who']} agrees.",
                           f"Ordered a {w['item']} by {w['brand']} {w['when']}; delivery to {w['where']} took {rng.randint(2, 9)} days. It {w['say']}."])
        out.append(text + rng.choice(["", f" Order #{i}.", f" {rng.randint(1, 5)} stars.", " Would not buy again.", " Recommended!"]))
    return out


def rate(fn: Callable[[], Any], n: int, repeats: int = 2) -> Tuple[float, Any]:
    """Best docs/s of ``repeats`` runs of ``fn`` (which handles ``n`` texts), and the last run's value."""
    best, value = 0.0, None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = max(best, n / (time.perf_counter() - start))
    return best, value


class Sampler(threading.Thread):
    """Peak RSS of this process and of a server with its children (every 50 ms); CPU seconds of each."""

    def __init__(self, server_pid: int) -> None:
        super().__init__(daemon=True)
        self.me, server = psutil.Process(), psutil.Process(server_pid)
        self.procs = [self.me, server] + server.children(recursive=True)  # client, server front, workers
        self.client_base, self.client_peak, self.server_peak = self.me.memory_info().rss, 0, 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            try:
                self.server_peak = max(self.server_peak, sum(p.memory_info().rss for p in self.procs[1:]))
                self.client_peak = max(self.client_peak, self.me.memory_info().rss)
            except psutil.Error:
                pass

    def cpu(self) -> List[float]:  # user+system CPU seconds of each process so far, then of the whole machine
        return [sum(p.cpu_times()[:2]) for p in self.procs] + [sum(psutil.cpu_times()[:3])]


def start_diy(nlp: Any, workdir: Path) -> Tuple[subprocess.Popen, str]:
    """The DIY service in a subprocess on 127.0.0.1, once it answers /health."""
    nlp.to_disk(workdir / "model")
    (workdir / "diy_app.py").write_text(DIY_APP.format(model=str(workdir / "model")), "utf-8")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "diy_app:app", "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "warning"], cwd=workdir, start_new_session=True)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if requests.get(f"{url}/health", timeout=1).ok:
                return proc, url
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"the DIY server did not start (exit code {proc.poll()})")


def stop_diy(proc: Optional[subprocess.Popen]) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _timeout(signum: int, frame: Any) -> None:
    raise TimeoutError(f"bench/batch.py ran over its {BUDGET_S} s budget")


def main() -> int:
    signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(BUDGET_S)  # everything is bounded; the finally blocks still clean up
    print(f"NIMBUS_HOME={HOME}")
    load_before, cores = os.getloadavg()[0], os.cpu_count() or 1
    nlp, texts = build_nlp(), review_texts(N_TEXTS)
    list(nlp.pipe(texts[:200]))  # warm-up
    ents_off = PipelineFields(nlp).disabled_for(["ents"])
    one_process = lambda: rate(lambda: list(nlp.pipe(texts, disable=ents_off)), N_TEXTS, 1)[0]  # noqa: E731
    fig: Dict[str, float] = {}
    notes: List[str] = []
    runs: Dict[str, List[Tuple[float, float, List[float], Any]]] = {}  # rows/s, wall, CPU s per process, frame
    sampler: Optional[Sampler] = None
    try:  # nimbus first, so the client's RSS is not inflated by the in-process runs
        d = nj.deploy(nlp, NAME, show=False)
        default_fields = requests.get(f"{d.url}/health", timeout=10).json().get("default_fields")
        server_pid = int(json.loads((Path(HOME) / "deployments" / NAME / "status.json").read_text("utf-8"))["pid"])
        nj.batch(texts[:256], d, progress=False, resume=False)  # warm-up: every worker has run once
        sampler = Sampler(server_pid)
        sampler.start()

        def nimbus(fields: Optional[List[str]]) -> Tuple[float, float, List[float], Any]:
            cpu0, start = sampler.cpu(), time.perf_counter()
            df = nj.batch(texts, d, fields=fields, progress=False, resume=False)
            wall = time.perf_counter() - start
            return df.attrs["nimbus"].rows_per_second, wall, [b - a for a, b in zip(cpu0, sampler.cpu())], df
        runs["default fields"] = [nimbus(None) for _ in range(2)]
        client_peak = sampler.client_peak  # before the in-process runs below grow this process
        runs[ENTS], singles = [], []
        for _ in range(3):  # interleaved with the one-process rate, so both see the same state of a noisy machine
            runs[ENTS].append(nimbus(["ents"]))
            singles.append(one_process())
        runs["fields=['ents', 'sents'] (diagnostic, 1 run: runs tok2vec, parser, ner)"] = [nimbus(["ents", "sents"])]
    finally:
        if sampler is not None:
            sampler.stop.set()
        try:
            print(nj.destroy(NAME))
        except Exception as exc:  # report, but still clean up the temp home
            print(f"destroy failed: {exc}", file=sys.stderr)

    fig["in-process nlp.pipe, n_process=1"], docs = rate(lambda: list(nlp.pipe(texts)), N_TEXTS)
    fig["in-process nlp.pipe, n_process=2"], _ = rate(lambda: list(nlp.pipe(texts, n_process=2)), N_TEXTS)
    fig["in-process nlp.pipe + doc_to_result(ents), n_process=1 (1 run)"], _ = rate(
        lambda: [doc_to_result(d, ["ents"]) for d in nlp.pipe(texts)], N_TEXTS, 1)
    fig["in-process ents-only components, n_process=1 (best of 3, between nimbus runs)"] = one = max(singles)
    fig[f"machine limit, ents only ({cores} cores x n_process=1 rate)"] = limit = cores * one
    expected = [doc_to_result(d, ["ents"])["ents"] for d in docs]
    del docs
    notes.append(f"in-process rows consume Docs only (no doc_to_result, no JSON) unless they say so; ents-only work runs "
                 f"{[n for n in nlp.pipe_names if n not in ents_off]} of {nlp.pipe_names}; "
                 f"{sum(1 for e in expected if e) / N_TEXTS:.0%} of the texts have at least one entity")
    pairs = [r[0] / (cores * s) for r, s in zip(runs[ENTS], singles)]
    notes.append(f"nimbus ents-only / machine limit, pair by pair (nimbus run, then one-process run): "
                 f"{', '.join(f'{x:.2f}x' for x in pairs)}; median {statistics.median(pairs):.2f}x")
    sample = random.Random(0).sample(range(N_TEXTS), CHECK_ROWS)
    for label, measured in runs.items():
        fig[f"nimbus batch, {label}"], wall, cpu, df = max(measured, key=lambda r: r[0])
        summary = df.attrs["nimbus"]
        mismatched = [i for i in sample if [dict(e) for e in df["ents"].iloc[i]] != expected[i]]
        notes.append(f"{'PROBLEM ' if summary.failed or mismatched else ''}nimbus {label}: {summary.text()}; wall incl. "
                     f"preflight and DataFrame {N_TEXTS / wall:,.0f} rows/s; runs {', '.join(f'{r[0]:,.0f}' for r in measured)} "
                     f"rows/s; ents equal in-process on {CHECK_ROWS - len(mismatched)}/{CHECK_ROWS} sampled rows "
                     f"{mismatched[:5] or ''}; CPU s in the best run: client {cpu[0]:.2f}, server front {cpu[1]:.2f}, "
                     f"workers {' + '.join(f'{c:.2f}' for c in cpu[2:-1])}, other processes {cpu[-1] - sum(cpu[:-1]):.2f}, "
                     f"idle {cores * wall - cpu[-1]:.2f}{' (OTHER WORK ON THE MACHINE SKEWS THIS RUN)' if cpu[-1] - sum(cpu[:-1]) > 0.05 * cores * wall else ''}")
    del runs

    diy: Optional[subprocess.Popen] = None
    workdir = Path(tempfile.mkdtemp(prefix="nimbus-bench-diy-"))
    try:
        diy, url = start_diy(nlp, workdir)
        diy_mem, session, diy_out = Sampler(diy.pid), requests.Session(), []
        diy_mem.start()
        session.post(f"{url}/predict", json=texts[:CHUNK], timeout=60).raise_for_status()  # warm-up

        def drive() -> List[Any]:
            diy_out.clear()
            for i in range(0, N_TEXTS, CHUNK):
                answer = session.post(f"{url}/predict", json=texts[i:i + CHUNK], timeout=60)
                answer.raise_for_status()
                diy_out.extend(answer.json())
            return diy_out
        fig["DIY FastAPI + uvicorn (1 process, whole pipeline), requests loop of 64"] = diy_rate = rate(drive, N_TEXTS)[0]
        diy_mem.stop.set()
        notes.append(f"DIY service: peak RSS {diy_mem.server_peak / 2**20:,.0f} MiB; its ents "
                     f"{'equal' if diy_out == expected else 'DIFFER FROM'} in-process on all rows")
    finally:
        stop_diy(diy)
        shutil.rmtree(workdir, ignore_errors=True)
        signal.alarm(0)

    best_in = max(fig["in-process nlp.pipe, n_process=1"], fig["in-process nlp.pipe, n_process=2"])
    default, ents = fig["nimbus batch, default fields"], fig[f"nimbus batch, {ENTS}"]
    mib = lambda b: f"{b / 2**20:,.0f} MiB"  # noqa: E731
    rows = [(k, f"{v:,.0f} docs/s", "", "") for k, v in fig.items()]
    rows += [("nimbus default / best in-process (whole pipeline)", f"{default / best_in:.2f}x", ">= 1.0x", f"{default / best_in:.2f}x"),
             ("nimbus default / DIY service", f"{default / diy_rate:.2f}x", ">= 2x", f"{default / diy_rate / 2:.2f}x"),
             ("nimbus ents-only / machine limit", f"{ents / limit:.2f}x", ">= 0.85x", f"{ents / limit / 0.85:.2f}x"),
             ("server peak RSS (front + workers) in all nimbus runs", mib(sampler.server_peak), "", ""),
             ("client RSS before / peak in nimbus default-fields runs", f"{mib(sampler.client_base)} / {mib(client_peak)}", "", "")]
    notes.insert(0, f"nimbus default fields for this pipeline: {default_fields}, so nimbus runs only the ents-only "
                    "components while the in-process and DIY rows run the whole pipeline")
    context = [f"- command: `python {' '.join(sys.argv)}`", f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
               f"- machine: {cores} cores, {platform.platform()}; 1-min load average {load_before:.2f} at start",
               f"- python {platform.python_version()}, spaCy {spacy.__version__}, nimbus_jupyter {getattr(nj, '__version__', '?')}",
               f"- pipeline: {nlp.pipe_names}, ner with its own tok2vec (as en_core_web_sm); {N_TEXTS:,} texts of "
               f"{sum(len(t.split()) for t in texts) / N_TEXTS:.1f} words on average; local target, {d.workers} worker(s), "
               "default chunk size and concurrency; each figure is the best of 2 runs (others where said) after a warm-up"]
    write_table_section(HEADING, context, rows, notes)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        shutil.rmtree(HOME, ignore_errors=True)
