"""Batch throughput of ``nimbus_jupyter.batch`` on the local target (issue 3), measured on demand, not as a test.

Why: scoring a DataFrame is the second thing a notebook user does after deploying, and they will only use
``batch`` if it is at least as fast as the code they already have. So, in one run, on the same 6,000
review-length texts and a pipeline of en_core_web_sm's architecture (tok2vec, tagger, parser, ner with its
own tok2vec) built here without downloads, this compares: in-process ``nlp.pipe`` (n_process 1 and 2),
``nj.batch`` (default fields and ents only), a hand-written FastAPI + uvicorn service driven by a
``requests`` loop, and the machine's limit for entities-only work (cores x the in-process rate of only the
components entities need). Targets: nimbus default >= 1.0x best in-process and >= 2x the DIY service;
nimbus entities-only >= 0.85x the machine's limit.
Run: python bench/batch.py  -> prints a table and updates its section of bench/RESULTS.md.
"""
from __future__ import annotations

import json
import os
import platform
import random
import resource
import shutil
import signal
import socket
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
from nimbus_jupyter.runtime.fields import PipelineFields, doc_to_result  # noqa: E402

NAME, N_TEXTS, CHUNK, CHECK_ROWS, BUDGET_S = "bench-batch", 6000, 64, 300, 900
RESULTS = Path(__file__).with_name("RESULTS.md")
HEADING = "## Batch throughput (issue 3)"
TRAIN = [  # (words, tags, heads, deps, BILUO entities), as in bench/deploy.py
    ("Anna bought a Zento phone in Berlin .".split(), ["NNP", "VBD", "DT", "NNP", "NN", "IN", "NNP", "."],
     [1, 1, 4, 4, 1, 1, 5, 1], ["nsubj", "ROOT", "det", "compound", "dobj", "prep", "pobj", "punct"],
     ["U-PERSON", "O", "O", "U-ORG", "O", "O", "U-GPE", "O"]),
    ("The Acme kettle broke on Monday .".split(), ["DT", "NNP", "NN", "VBD", "IN", "NNP", "."],
     [2, 2, 3, 3, 3, 4, 3], ["det", "compound", "nsubj", "ROOT", "prep", "pobj", "punct"],
     ["O", "U-ORG", "O", "O", "O", "U-DATE", "O"]),
    ("John returned it to Vexa in London .".split(), ["NNP", "VBD", "PRP", "IN", "NNP", "IN", "NNP", "."],
     [1, 1, 1, 1, 3, 1, 5, 1], ["nsubj", "ROOT", "dobj", "prep", "pobj", "prep", "pobj", "punct"],
     ["U-PERSON", "O", "O", "O", "U-ORG", "O", "U-GPE", "O"]),
]
NER_TOK2VEC = {"@architectures": "spacy.Tok2Vec.v2",  # en_core_web_sm's ner has its own embedding layer
               "embed": {"@architectures": "spacy.MultiHashEmbed.v2", "width": 64, "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"],
                         "rows": [2000, 1000, 1000, 1000], "include_static_vectors": False},
               "encode": {"@architectures": "spacy.MaxoutWindowEncoder.v2", "width": 64, "depth": 2, "window_size": 1, "maxout_pieces": 3}}
WHO = ["Anna", "John Smith", "Maria", "Tom", "Priya Patel", "Lukas", "my wife", "Dr. Chen", "our team"]
WHERE = ["Berlin", "London", "Paris", "Chicago", "Madrid", "Toronto", "Sydney", "a mall in Ohio", "the Amazon store"]
BRANDS = ["Acme", "Zento", "Norrin", "Vexa", "Holloway", "Brightline", "Kestrel"]
ITEMS = ["phone", "laptop", "kettle", "camera", "monitor", "blender", "smartwatch", "vacuum", "headset", "router"]
WHEN = ["on Monday", "last Friday", "on March 3", "in June", "two weeks ago", "before Christmas", "yesterday"]
SAY = ["works perfectly and the battery lasts for days", "stopped working after a week and support never replied",
       "arrived quickly, well packed, and was easy to set up", "feels cheap and looks nothing like the photos",
       "is loud but does the job", "was replaced for free by the shop", "overheats when I use it for long",
       "is the best thing I bought this year", "had a scratch on the screen"]
DIY_APP = '''import spacy
from fastapi import FastAPI
nlp = spacy.load({model!r})
app = FastAPI()
@app.get("/health")
def health():
    return {{"ok": True}}
@app.post("/predict")
def predict(texts: list[str]):
    return [[{{"text": e.text, "label": e.label_, "start": e.start_char, "end": e.end_char}} for e in doc.ents]
            for doc in nlp.pipe(texts)]
'''


def build_nlp() -> Any:
    """en_core_web_sm's architecture, initialised and updated a few rounds on hand-made examples."""
    cfg = init_config(lang="en", pipeline=["tagger", "parser", "ner"], optimize="efficiency")
    cfg["components"]["parser"]["min_action_freq"] = 1  # keep every action of the tiny training set
    cfg["components"]["ner"]["model"]["tok2vec"] = NER_TOK2VEC
    nlp = spacy.util.load_model_from_config(cfg, auto_fill=True, validate=True)
    examples = lambda: [Example.from_dict(nlp.make_doc(" ".join(w)), {"words": w, "tags": t, "heads": h, "deps": d,  # noqa: E731
                                                                       "entities": e}) for w, t, h, d, e in TRAIN]
    optimizer = nlp.initialize(examples)
    for _ in range(5):
        nlp.update(examples(), sgd=optimizer)  # fresh Docs each round: predicted ones keep the parser's sentence starts
    return nlp


def review_texts(n: int, seed: int = 3) -> List[str]:
    """``n`` distinct, varied review-length texts (~20-30 words) with people, places, brands and dates."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        who, brand, item, where, when, say = (rng.choice(x) for x in (WHO, BRANDS, ITEMS, WHERE, WHEN, SAY))
        text = rng.choice([f"{who} bought the {brand} {item} in {where} {when} for ${rng.randint(20, 900)}. It {say}.",
                           f"I got this {brand} {item} {when} from {where}. Honestly it {say}, and {who} agrees.",
                           f"Ordered a {item} by {brand} {when}; delivery to {where} took {rng.randint(2, 9)} days. It {say}."])
        out.append(text + rng.choice(["", f" Order #{i}.", f" {rng.randint(1, 5)} stars.", " Would not buy again.", " Recommended!"]))
    return out


def rate(fn: Callable[[], Any], n: int, repeats: int = 2) -> Tuple[float, Any]:
    """Best docs/s of ``repeats`` runs of ``fn`` (which handles ``n`` texts) and the last run's value."""
    best, value = 0.0, None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = max(best, n / (time.perf_counter() - start))
    return best, value


class MemorySampler(threading.Thread):
    """Peak RSS of this process and of the local server plus its workers, sampled every 50 ms."""

    def __init__(self, server_pid: int) -> None:
        super().__init__(daemon=True)
        self.server, self.me = psutil.Process(server_pid), psutil.Process()
        self.server_peak = self.client_peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            try:
                procs = [self.server] + self.server.children(recursive=True)
                self.server_peak = max(self.server_peak, sum(p.memory_info().rss for p in procs))
                self.client_peak = max(self.client_peak, self.me.memory_info().rss)
            except psutil.Error:
                pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_diy(nlp: Any, workdir: Path) -> Tuple[subprocess.Popen, str]:
    """The service a user would write by hand: FastAPI + uvicorn, one process, the whole pipeline."""
    nlp.to_disk(workdir / "model")
    (workdir / "diy_app.py").write_text(DIY_APP.format(model=str(workdir / "model")), "utf-8")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "diy_app:app", "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "warning"], cwd=workdir, start_new_session=True)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the DIY server exited with code {proc.returncode}")
        try:
            if requests.get(f"{url}/health", timeout=1).ok:
                return proc, url
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError("the DIY server did not start in 120 s")


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
    nlp = build_nlp()
    texts = review_texts(N_TEXTS)
    words = sum(len(t.split()) for t in texts) / len(texts)
    list(nlp.pipe(texts[:200]))  # warm-up
    ents_off = PipelineFields(nlp).disabled_for(["ents"])
    fig: Dict[str, float] = {}
    fig["in-process nlp.pipe, n_process=1"], docs = rate(lambda: list(nlp.pipe(texts)), N_TEXTS)
    fig["in-process nlp.pipe, n_process=2"], _ = rate(lambda: list(nlp.pipe(texts, n_process=2)), N_TEXTS)
    fig["in-process nlp.pipe + doc_to_result(ents), n_process=1"], _ = rate(
        lambda: [doc_to_result(d, ["ents"]) for d in nlp.pipe(texts)], N_TEXTS, 1)
    one_core, _ = rate(lambda: list(nlp.pipe(texts, disable=ents_off)), N_TEXTS)
    fig["machine limit, ents only"] = cores * one_core
    expected = [doc_to_result(d, ["ents"])["ents"] for d in docs]
    notes: List[str] = [f"in-process figures consume Docs only (no doc_to_result, no JSON) unless the row says so; "
                        f"entities-only work runs {[n for n in nlp.pipe_names if n not in ents_off]} "
                        f"(1 core: {one_core:,.0f} docs/s)"]
    default_fields: Any = None
    sampler: Optional[MemorySampler] = None
    diy: Optional[subprocess.Popen] = None
    workdir = Path(tempfile.mkdtemp(prefix="nimbus-bench-diy-"))
    try:
        d = nj.deploy(nlp, NAME, show=False)
        server_pid = int(json.loads((Path(HOME) / "deployments" / NAME / "status.json").read_text("utf-8"))["pid"])
        default_fields = requests.get(f"{d.url}/health", timeout=10).json().get("default_fields")
        nj.batch(texts[:256], d, progress=False, resume=False)  # warm-up: every worker has run once
        sampler = MemorySampler(server_pid)
        sampler.start()
        for label, fields in (("default fields", None), ("fields=['ents']", ["ents"])):
            best = None
            for _ in range(2):
                start = time.perf_counter()
                df = nj.batch(texts, d, fields=fields, progress=False, resume=False)
                wall, summary = time.perf_counter() - start, df.attrs["nimbus"]
                if best is None or summary.rows_per_second > best[1].rows_per_second:
                    best = (wall, summary, df)
            wall, summary, df = best
            fig[f"nimbus batch, {label}"] = summary.rows_per_second
            rows = random.Random(0).sample(range(N_TEXTS), CHECK_ROWS)
            mismatched = [i for i in rows if [dict(e) for e in df["ents"].iloc[i]] != expected[i]]
            notes.append(f"nimbus {label}: {summary.text()}; wall incl. preflight and DataFrame {N_TEXTS / wall:,.0f} rows/s; "
                         f"ents equal in-process on {CHECK_ROWS - len(mismatched)}/{CHECK_ROWS} sampled rows")
            if summary.failed or mismatched:
                notes.append(f"PROBLEM nimbus {label}: failed={summary.failed}, mismatched rows {mismatched[:10]}")
        sampler.stop.set()
        sampler.join(2)

        diy, url = start_diy(nlp, workdir)
        session = requests.Session()
        session.post(f"{url}/predict", json=texts[:CHUNK], timeout=60).raise_for_status()  # warm-up
        diy_out: List[Any] = []

        def drive() -> List[Any]:
            diy_out.clear()
            for i in range(0, N_TEXTS, CHUNK):
                answer = session.post(f"{url}/predict", json=texts[i:i + CHUNK], timeout=60)
                answer.raise_for_status()
                diy_out.extend(answer.json())
            return diy_out
        fig["DIY FastAPI + uvicorn (1 process), requests loop of 64"], _ = rate(drive, N_TEXTS)
        if diy_out != expected:
            notes.append("PROBLEM: DIY service's ents differ from in-process")
    finally:
        if sampler is not None:
            sampler.stop.set()
        stop_diy(diy)
        shutil.rmtree(workdir, ignore_errors=True)
        try:
            print(nj.destroy(NAME))
        except Exception as exc:  # report, but still clean up the temp home
            print(f"destroy failed: {exc}", file=sys.stderr)
        signal.alarm(0)

    best_in = max(fig["in-process nlp.pipe, n_process=1"], fig["in-process nlp.pipe, n_process=2"])
    default, ents = fig["nimbus batch, default fields"], fig["nimbus batch, fields=['ents']"]
    diy_rate, limit = fig["DIY FastAPI + uvicorn (1 process), requests loop of 64"], fig["machine limit, ents only"]
    rows = [(k, f"{v:,.0f} docs/s", "", "") for k, v in fig.items()]
    rows += [("nimbus default / best in-process", f"{default / best_in:.2f}x", ">= 1.0x", f"{default / best_in:.2f}x"),
             ("nimbus default / DIY service", f"{default / diy_rate:.2f}x", ">= 2x", f"{default / diy_rate / 2:.2f}x"),
             ("nimbus ents-only / machine limit", f"{ents / limit:.2f}x", ">= 0.85x", f"{ents / limit / 0.85:.2f}x"),
             ("server peak RSS (front + workers, during nimbus runs)", f"{(sampler.server_peak if sampler else 0) / 2**20:,.0f} MiB", "", ""),
             ("client peak RSS (sampled during nimbus runs)", f"{(sampler.client_peak if sampler else 0) / 2**20:,.0f} MiB", "", ""),
             ("bench process ru_maxrss (whole run, incl. in-process)", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB", "", "")]
    notes.insert(0, f"nimbus default fields for this pipeline: {default_fields}")
    context = [f"- command: `python {' '.join(sys.argv)}`", f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
               f"- machine: {cores} cores, {platform.platform()}; 1-min load average {load_before:.2f} at start, "
               f"{os.getloadavg()[0]:.2f} at end",
               f"- python {platform.python_version()}, spaCy {spacy.__version__}, nimbus_jupyter {getattr(nj, '__version__', '?')}",
               f"- pipeline: {nlp.pipe_names} (ner with its own tok2vec, as en_core_web_sm); {N_TEXTS:,} texts of "
               f"{words:.1f} words on average; local target with {d.workers} worker(s), default chunk size and concurrency; "
               "every figure is the best of 2 runs (1 for doc_to_result) after a warm-up"]
    table = ["| figure | value | target | vs target |", "|---|---|---|---|"] + [f"| {' | '.join(r)} |" for r in rows]
    section = "\n".join([HEADING, "", *context, "", *table, "", *(f"- note: {n}" for n in notes)]).rstrip() + "\n"
    print("\n" + section)
    write_section(section)
    return 0


def write_section(section: str) -> None:
    """Replace this section of bench/RESULTS.md (up to the next ``## `` heading), or append it."""
    old = RESULTS.read_text("utf-8") if RESULTS.exists() else "# Benchmark results\n"
    start = old.find(HEADING)
    if start < 0:
        new = old.rstrip() + "\n\n" + section
    else:
        end = old.find("\n## ", start + len(HEADING))
        new = old[:start] + section + (old[end:] if end >= 0 else "")
    RESULTS.write_text(new, "utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        shutil.rmtree(HOME, ignore_errors=True)
