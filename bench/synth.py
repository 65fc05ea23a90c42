"""How long the bundled CDK app takes to synthesize one deployment's stack, measured on demand.

Why: synth runs on every AWS deploy before CloudFormation starts, so it is dead time in the deploy widget.
Measured two ways: in-process (aws-cdk-lib through jsii in this interpreter, as the tests do) and as the CDK
CLI runs it (``<python> cdk_app/app.py`` with CDK_OUTDIR and CDK_CONTEXT_JSON), each the median of 3 runs
into a fresh output directory. Two inputs: a tiny layer (the app's own cost) and a layer of the real size
(spaCy, thinc, numpy, ... copied from this environment), since CDK hashes and copies every asset it stages.
Run: python bench/synth.py  -> prints a table and updates bench/RESULTS.md.
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
from typing import Callable, Dict, List, Tuple

import spacy

from _results import context, write_table_section
from nimbus_jupyter.core.bundle import build_bundle
from nimbus_jupyter.targets.aws.app_location import cdk_app_dir, import_cdk_app
from nimbus_jupyter.targets.aws.package import MB, build_function_code, dir_size
from nimbus_jupyter.targets.aws.spec import StackSpec

HEADING = "## CDK synth time (AWS target)"
RUNS = 3
LAYER_PACKAGES = ("spacy", "thinc", "numpy", "srsly", "blis", "preshed", "cymem", "murmurhash", "wasabi", "catalogue")


def make_spec(root: Path, layer_packages: Tuple[str, ...]) -> StackSpec:
    """Inline-mode spec over a blank pipeline's bundle; the layer holds ``layer_packages`` (or one stub file)."""
    layer = root / "layer" / "python"
    layer.mkdir(parents=True)
    site = Path(spacy.__file__).resolve().parents[1]
    for name in layer_packages:
        shutil.copytree(site / name, layer / name, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    if not layer_packages:
        (layer / "stub.py").write_text("")
    bundle = build_bundle(spacy.blank("en"), root / "bundle", "bench", namespace={})
    code = build_function_code(bundle.path, root / "code", inline=True)
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    return StackSpec(name="bench", version=1, bundle_hash=bundle.manifest["hash"], python=py, arch="x86_64",
                     layer_dir=str(root / "layer"), code_dir=str(code))


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def synth_in_process(spec: StackSpec, outdir: Path) -> None:
    import aws_cdk as cdk

    cdk.AssetStaging.clear_asset_hash_cache()  # else later runs reuse the first run's fingerprints of the same dirs
    app, _ = import_cdk_app().build(cdk.App(outdir=str(outdir)), spec)
    app.synth()
    assert (outdir / "manifest.json").is_file()


def synth_as_cli(spec_file: Path, outdir: Path) -> None:
    env = {**os.environ, "CDK_OUTDIR": str(outdir), "CDK_CONTEXT_JSON": json.dumps({"nimbus_spec": str(spec_file)})}
    proc = subprocess.run([sys.executable, str(cdk_app_dir() / "app.py")], env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not (outdir / "manifest.json").is_file():
        raise SystemExit(f"app.py failed ({proc.returncode}):\n{proc.stderr[-2000:]}")


def main() -> None:
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="nimbus-synth-bench-"))
    rows: List[Tuple[str, str, str, str]] = []
    notes: List[str] = []
    counter = iter(range(10**6))
    try:
        cold = None
        for label, packages in (("tiny layer", ()), ("real-size layer", LAYER_PACKAGES)):
            root = work / label.replace(" ", "-")
            spec = make_spec(root, packages)
            spec_file = spec.write(root / "spec.json")
            sizes: Dict[str, float] = {k: dir_size(Path(getattr(spec, k))) / MB for k in ("layer_dir", "code_dir")}
            if cold is None:  # the first synth in this process also starts jsii's node process and loads aws-cdk-lib
                cold = timed(lambda: synth_in_process(spec, work / f"out{next(counter)}"))
                rows.append(("in-process, first synth (imports aws-cdk-lib, starts node)", f"{cold:.2f} s", "", ""))
            inproc = [timed(lambda: synth_in_process(spec, work / f"out{next(counter)}")) for _ in range(RUNS)]
            cli = [timed(lambda: synth_as_cli(spec_file, work / f"out{next(counter)}")) for _ in range(RUNS)]
            rows.append((f"{label}: in-process synth, median of {RUNS}", f"{statistics.median(inproc):.2f} s", "", ""))
            rows.append((f"{label}: `python cdk_app/app.py` as the CLI runs it, median of {RUNS}",
                         f"{statistics.median(cli):.2f} s", "", ""))
            notes.append(f"{label}: layer {sizes['layer_dir']:.1f} MB, function code {sizes['code_dir']:.2f} MB (inline "
                         f"blank-pipeline bundle); runs in-process {', '.join(f'{t:.2f}' for t in inproc)} s, "
                         f"as CLI {', '.join(f'{t:.2f}' for t in cli)} s")
            shutil.rmtree(root, ignore_errors=True)
        notes.append("the CLI figure is mostly the first app.synth() in a fresh jsii/node process (one profiled run: "
                     "imports 1.1 s, constructs 0.6 s, synth 9.0 s of 13.8 s), not the Python imports (~1.3 s); "
                     "later synths in the same process take the in-process figure")
        notes.append("the CLI's own startup (npx cdk, credentials, bootstrap check) is not included (it adds its own node "
                     "start-up before the app runs); each run synthesizes into a fresh directory, so assets are hashed and "
                     "copied every time")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_table_section(HEADING, context(load_before) + ["- stack: NimbusStack, inline model, x86_64"], rows, notes)


if __name__ == "__main__":
    main()
