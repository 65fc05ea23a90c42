"""The Lambda dependency layer (issue: AWS target), measured on demand, not as a test.

Why: the layer must fit Lambda's 250 MiB (function + layers, unzipped) with room for the model, and a
cold start must stay short (target: layer <= 130 MiB, cold init <= 2 s). Figures: size raw/trimmed/stripped
per architecture, build time cold vs cached, and the handler's cold init on the layer in a fresh
``python -I -S`` process (import + loading an en_core_web_sm-architecture pipeline) with and without the
precompiled .pyc; then the measured time per text priced with ``cost.estimate``.
Run: python bench/layer.py  -> prints a table and updates bench/RESULTS.md.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
WORK = Path(tempfile.mkdtemp(prefix="nimbus-bench-layer-"))
os.environ["NIMBUS_HOME"] = str(WORK / "home")  # never touch the user's registry or layer cache

import spacy  # noqa: E402

import nimbus_jupyter  # noqa: E402
from _results import context, write_table_section  # noqa: E402
from nimbus_jupyter.core.bundle import build_bundle  # noqa: E402
from nimbus_jupyter.runtime.limits import LAMBDA_UNZIPPED_LIMIT_BYTES  # noqa: E402
from nimbus_jupyter.targets.aws.cost import estimate  # noqa: E402
from nimbus_jupyter.targets.aws.layer import LayerBuild, build_layer  # noqa: E402
from pipelines import core_pipeline  # noqa: E402

HEADING = "## Lambda layer: size, build and cold init (AWS target)"
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
MiB = 1024 ** 2
RUNS, REQUESTS, PER_REQUEST, MEMORY_MB = 5, 10, 64, 2048
PROBE = r"""
import json, os, sys, time
t0 = time.perf_counter()
sys.path[:0] = [os.environ["LAYER_PYTHON"], os.environ["RUNTIME_ROOT"]]
from nimbus_jupyter.runtime import handler
import spacy
t1 = time.perf_counter()
handler.load()
t2 = time.perf_counter()
texts = json.loads(os.environ["TEXTS"])
n, per = int(os.environ["REQUESTS"]), int(os.environ["PER_REQUEST"])
def event(batch):
    return {"resource": "/predict", "path": "/predict", "httpMethod": "POST", "headers": {"Content-Type": "application/json"},
            "requestContext": {"requestId": "bench"}, "body": json.dumps({"texts": batch}), "isBase64Encoded": False}
assert handler.handler(event(texts[:per]), None)["statusCode"] == 200  # warm-up
t3 = time.perf_counter()
for i in range(n):
    assert handler.handler(event(texts[i * per:(i + 1) * per]), None)["statusCode"] == 200
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "per_text": (t4 - t3) / (n * per), "spacy": spacy.__file__}))
"""


def review_texts(n: int) -> List[str]:
    people, things = ["Anna", "John Smith", "Priya Patel", "Lukas"], ["phone", "kettle", "laptop", "camera"]
    places = ["Berlin", "London", "Paris", "Chicago"]
    return [f"{people[i % 4]} bought the Zento {things[i // 4 % 4]} in {places[i // 16 % 4]} on Monday for ${20 + i}. "
            f"It stopped working after a week and support never replied. Order #{i}." for i in range(n)]


def runtime_root() -> Path:
    """What Lambda's /var/task would hold besides the bundle: nimbus_jupyter/__init__.py and runtime/."""
    root = WORK / "task"
    package = Path(nimbus_jupyter.__file__).parent
    (root / "nimbus_jupyter").mkdir(parents=True)
    shutil.copy(package / "__init__.py", root / "nimbus_jupyter")
    shutil.copytree(package / "runtime", root / "nimbus_jupyter" / "runtime", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def cold_start(python_dir: Path, bundle: Path, root: Path, texts: List[str], no_write: bool) -> Tuple[float, Dict]:
    """One fresh process on the layer: wall time to exit, and its own import/load/per-text figures."""
    env = {"LAYER_PYTHON": str(python_dir), "RUNTIME_ROOT": str(root), "NIMBUS_BUNDLE_DIR": str(bundle),
           "TEXTS": json.dumps(texts), "REQUESTS": str(REQUESTS), "PER_REQUEST": str(PER_REQUEST), "PATH": "/usr/bin:/bin"}
    flags = ["-I", "-S"] + (["-B"] if no_write else [])  # -B: like read-only /opt, nothing compiled is kept
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, *flags, "-c", PROBE], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["spacy"].startswith(str(python_dir)), out["spacy"]
    return wall, out


def main() -> int:
    load_before = os.getloadavg()[0]
    rows: List[Tuple[str, str, str, str]] = []
    notes: List[str] = []
    layers: Dict[str, LayerBuild] = {}
    for arch in ("x86_64", "arm64"):
        cache = WORK / f"cache-{arch}"
        cold = build_layer(PYTHON, arch, cache, langs=["en"])
        cached = build_layer(PYTHON, arch, cache, langs=["en"])
        assert cached.cached and not cold.cached
        layers[arch] = cold
        rows += [(f"{arch}: raw / trimmed / stripped", f"{cold.raw_bytes / MiB:.1f} / {cold.trimmed_bytes / MiB:.1f} / "
                  f"{cold.stripped_bytes / MiB:.1f} MiB", "", ""),
                 (f"{arch}: layer unzipped (with .pyc)", f"{cold.unzipped_bytes / MiB:.1f} MiB", "<= 130 MiB",
                  f"{cold.unzipped_bytes / MiB / 130:.2f}x"),
                 (f"{arch}: build cold / cached", f"{cold.seconds:.1f} s / {cached.seconds * 1000:.0f} ms", "", "")]
        notes += [f"{arch}: {n}" for n in cold.notes]
    notes.append(f"{len(layers['x86_64'].pins)} pins, spaCy languages kept: en + those spaCy imports itself; "
                 f"Lambda's limit is {LAMBDA_UNZIPPED_LIMIT_BYTES / MiB:.0f} MiB for function + layers")

    nlp = core_pipeline()
    bundle = WORK / "bundle"
    build_bundle(nlp, bundle, "bench")
    root = runtime_root()
    texts = review_texts(REQUESTS * PER_REQUEST + PER_REQUEST)
    with_pyc = layers["x86_64"].python_dir
    without_pyc = WORK / "no-pyc" / "python"
    shutil.copytree(with_pyc, without_pyc, ignore=shutil.ignore_patterns("__pycache__"))
    figures: Dict[str, List[Tuple[float, Dict]]] = {"pyc": [], "source": []}
    cold_start(with_pyc, bundle, root, texts, no_write=True)  # page cache warm for both: the figures compare CPU work
    cold_start(without_pyc, bundle, root, texts, no_write=True)
    for _ in range(RUNS):  # interleaved, so both see the same machine state
        figures["pyc"].append(cold_start(with_pyc, bundle, root, texts, no_write=True))
        figures["source"].append(cold_start(without_pyc, bundle, root, texts, no_write=True))
    med = {k: {f: statistics.median(o[f] for _, o in v) for f in ("import", "load", "per_text")} for k, v in figures.items()}
    init = {k: med[k]["import"] + med[k]["load"] for k in med}
    rows += [("cold init, precompiled .pyc (import + load)", f"{init['pyc']:.2f} s ({med['pyc']['import']:.2f} + "
              f"{med['pyc']['load']:.2f})", "<= 2 s", f"{init['pyc'] / 2:.2f}x"),
             ("cold init, no .pyc (compiled each start)", f"{init['source']:.2f} s ({med['source']['import']:.2f} + "
              f"{med['source']['load']:.2f})", "", ""),
             ("cold init ratio no-pyc / pyc", f"{init['source'] / init['pyc']:.2f}x", "", ""),
             ("process wall time to exit, pyc (median)", f"{statistics.median(w for w, _ in figures['pyc']):.2f} s", "", "")]
    per_text = med["pyc"]["per_text"]
    for arch, api in (("x86_64", True), ("x86_64", False), ("arm64", True)):
        cost = estimate(per_text, MEMORY_MB, arch, texts_per_request=PER_REQUEST, through_api_gateway=api)
        via = "API Gateway" if api else "direct invoke"
        rows.append((f"cost per 1M texts, {arch}, {via}", f"${cost.per_1000_texts * 1000:.2f}", "", ""))
    rows.insert(len(rows) - 3, ("time per text on the layer (handler, default fields)", f"{per_text * 1000:.2f} ms", "", ""))
    notes += [f"cold init is measured inside a fresh `python -I -S -B` on this machine ({RUNS} runs each, medians), "
              "page cache warm; Lambda adds its own sandbox start and unzip, and its CPU at "
              f"{MEMORY_MB} MB is about 1.2 vCPU, so treat these as relative figures",
              f"cost uses this machine's time per text ({REQUESTS} requests of {PER_REQUEST} review-length texts, pipeline "
              f"{nlp.pipe_names}); the arm64 row assumes the same time per text (arm64 was not run here)"]
    lines = context(load_before) + [f"- pipeline: en_core_web_sm architecture (tests/pipelines.py core_pipeline), "
                                    f"Lambda python{PYTHON}, {MEMORY_MB} MB"]
    write_table_section(HEADING, lines, rows, notes)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
