"""The Lambda dependency layer, built for real from PyPI's manylinux wheels (no Docker, no mocks).

One layer is built per session (about 40 s, ~100 MB of wheels); the checks are what a user deploying
to Lambda would want to know: it fits, it is cached, its binaries are stripped without breaking the
vendored libraries, and the handler on it predicts exactly what the kernel predicts.
"""
from __future__ import annotations

import base64
import csv
import hashlib
import json
import shutil
import struct
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Dict, List

import pytest

import nimbus_jupyter
from nimbus_jupyter.core.bundle import build_bundle
from nimbus_jupyter.core.errors import UserInputError
from nimbus_jupyter.runtime.fields import doc_to_result
from nimbus_jupyter.runtime.limits import LAMBDA_UNZIPPED_LIMIT_BYTES
from nimbus_jupyter.targets.aws.layer import (LayerBuild, build_layer, layer_requirements, own_shared_objects,
                                              pip_platforms)

KERNEL = f"{sys.version_info.major}.{sys.version_info.minor}"


def _layer_python() -> str:
    """The runtime a deploy of this kernel gets (runtimes.choose, today's dates, the real index). Its
    interpreter (to run the layer's handler and write its .pyc) is this machine's, or Debian's, which the
    harness extracts on first use (``lambda_harness.compile_python``)."""
    from nimbus_jupyter.targets.aws.runtime_select import select_runtime

    return select_runtime("x86_64")[0].python


PYTHON = _layer_python()
MiB = 1024 ** 2
TARGET_BYTES = 130 * MiB


@pytest.fixture(scope="session")
def layer_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("layer_cache")


@pytest.fixture(scope="session")
def layer(layer_cache: Path) -> LayerBuild:
    import lambda_harness

    lambda_harness.compile_python(PYTHON)
    steps: List[str] = []
    build = build_layer(PYTHON, "x86_64", layer_cache, on_step=lambda step, detail: steps.append(step), langs=["en"])
    assert steps[:2] == ["download", "trim"] and steps[-1] == "done"
    return build


def test_a_kernel_with_todays_numpy_gets_a_newer_runtime_than_its_own_when_al2_lacks_wheels() -> None:
    numpy_version = tuple(int(p) for p in metadata.version("numpy").split(".")[:2])
    if KERNEL in ("3.10", "3.11") and numpy_version >= (2, 3):
        assert PYTHON not in ("3.10", "3.11"), PYTHON  # AL2 (glibc 2.26) has no numpy >= 2.3 wheel
    assert PYTHON in ("3.12", "3.13", "3.14") or KERNEL >= "3.12"


def test_pins_are_the_kernels_exact_spacy_stack() -> None:
    pins = layer_requirements(PYTHON, "x86_64")
    versions = dict(p.split("==") for p in pins)
    for name in ("spacy", "thinc", "numpy", "srsly", "pydantic", "blis"):
        assert versions[name] == metadata.version(name), name
    assert all("==" in p for p in pins)
    assert "setuptools" not in versions  # declared by spaCy, never imported to load or run a pipeline
    assert "ipython" not in versions and "pandas" not in versions  # the kernel's other packages stay out


def test_wheels_are_those_the_runtime_os_can_load() -> None:
    # Lambda python3.11 runs Amazon Linux 2 (glibc 2.26); python3.12+ Amazon Linux 2023 (glibc 2.34).
    assert pip_platforms("3.11", "x86_64")[0] == "manylinux_2_26_x86_64"
    assert "manylinux_2_28_x86_64" not in pip_platforms("3.11", "x86_64")
    assert pip_platforms("3.12", "arm64")[0] == "manylinux_2_34_aarch64"
    assert "manylinux2014_aarch64" in pip_platforms("3.12", "arm64")


def test_layer_fits_lambda_with_room_for_the_function(layer: LayerBuild) -> None:
    assert (layer.path / "python" / "spacy" / "__init__.py").is_file()
    assert layer.raw_bytes > layer.trimmed_bytes > layer.stripped_bytes
    assert layer.unzipped_bytes < TARGET_BYTES, f"{layer.unzipped_bytes / MiB:.1f} MiB"
    assert layer.unzipped_bytes < 0.6 * LAMBDA_UNZIPPED_LIMIT_BYTES
    assert layer.stripped and layer.compiled, layer.notes
    python_dir = layer.python_dir
    assert not list(python_dir.glob("spacy/tests")) and not list(python_dir.rglob("*.pyx"))
    assert (python_dir / "spacy" / "lang" / "en").is_dir() and not (python_dir / "spacy" / "lang" / "fr").exists()
    assert (python_dir / f"spacy-{metadata.version('spacy')}.dist-info" / "entry_points.txt").is_file()


def test_second_build_is_a_cache_hit(layer: LayerBuild, layer_cache: Path) -> None:
    inode = layer.path.stat().st_ino
    again = build_layer(PYTHON, "x86_64", layer_cache, langs=["en"])
    assert again.cached and not layer.cached
    assert again.path == layer.path and again.path.stat().st_ino == inode and again.key == layer.key
    assert again.unzipped_bytes == layer.unzipped_bytes
    assert [p.name for p in layer_cache.iterdir() if not p.name.endswith(".lock")] == [layer.key]  # no temp dirs left


def _section_names(path: Path) -> List[str]:
    """Section names of a 64-bit little-endian ELF file (enough to tell whether .symtab is there)."""
    data = path.read_bytes()
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    strtab_off, = struct.unpack_from("<Q", data, shoff + shstrndx * shentsize + 0x18)
    names = []
    for i in range(shnum):
        name_off, = struct.unpack_from("<I", data, shoff + i * shentsize)
        start = strtab_off + name_off
        names.append(data[start:data.index(b"\0", start)].decode())
    return names


def _record_hashes(dist_info: Path) -> Dict[str, str]:
    with open(dist_info / "RECORD", newline="") as fh:
        return {row[0]: row[1] for row in csv.reader(fh) if len(row) > 1 and row[1]}


def test_own_shared_objects_stripped_vendored_libs_untouched(layer: LayerBuild) -> None:
    python_dir = layer.python_dir
    own = own_shared_objects(python_dir)
    assert len(own) > 50
    for path in own:
        assert ".symtab" not in _section_names(path), path
    numpy_record = _record_hashes(next(python_dir.glob("numpy-*.dist-info")))
    vendored = sorted(python_dir.glob("numpy.libs/*"))
    assert vendored
    for path in vendored:  # byte for byte what the wheel shipped: strip never touched them
        digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()
        assert numpy_record[path.relative_to(python_dir).as_posix()] == f"sha256={digest}", path


def test_pyc_are_unchecked_hash(layer: LayerBuild) -> None:
    import importlib.util

    from nimbus_jupyter.targets.aws.interpreters import find_python

    python = find_python(PYTHON)
    tag, magic = subprocess.run([python, "-c", "import sys, importlib.util as u; print(sys.implementation.cache_tag, "
                                 "u.MAGIC_NUMBER.hex())"], capture_output=True, text=True, check=True).stdout.split()
    pyc = layer.python_dir / "spacy" / "__pycache__" / f"language.{tag}.pyc"
    header = pyc.read_bytes()[:16]
    assert header[:4] == bytes.fromhex(magic)
    assert struct.unpack("<I", header[4:8])[0] == 0b01  # hash-based, not checked against the source


PROBE = r"""
import json, os, sys
sys.path[:0] = [os.environ["LAYER_PYTHON"], os.environ["RUNTIME_ROOT"]]
from nimbus_jupyter.runtime.handler import handler
import spacy
event = {"resource": "/predict", "path": "/predict", "httpMethod": "POST",
         "headers": {"Content-Type": "application/json", "x-api-key": "k"}, "multiValueHeaders": {},
         "queryStringParameters": None, "pathParameters": None, "stageVariables": None,
         "requestContext": {"resourcePath": "/predict", "httpMethod": "POST", "path": "/prod/predict",
                            "stage": "prod", "requestId": "test-request"},
         "body": json.dumps({"texts": json.loads(os.environ["TEXTS"]), "fields": json.loads(os.environ["FIELDS"])}),
         "isBase64Encoded": False}
response = handler(event, None)
print(json.dumps({"spacy_file": spacy.__file__, "sys_path": sys.path, "response": response}))
"""


def _run_on_layer(layer: LayerBuild, bundle: Path, tmp: Path, texts: List[str], fields: List[str]) -> dict:
    """The real handler in a fresh ``python -I -S`` (no site-packages) with only the layer, the runtime
    package and the bundle: what Lambda's /opt/python + /var/task give it."""
    root = tmp / "task"
    package = Path(nimbus_jupyter.__file__).parent
    (root / "nimbus_jupyter").mkdir(parents=True)
    shutil.copy(package / "__init__.py", root / "nimbus_jupyter" / "__init__.py")
    shutil.copytree(package / "runtime", root / "nimbus_jupyter" / "runtime", ignore=shutil.ignore_patterns("__pycache__"))
    env = {"LAYER_PYTHON": str(layer.python_dir), "RUNTIME_ROOT": str(root), "NIMBUS_BUNDLE_DIR": str(bundle),
           "TEXTS": json.dumps(texts), "FIELDS": json.dumps(fields), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    from nimbus_jupyter.targets.aws.interpreters import find_python

    proc = subprocess.run([find_python(layer.python), "-I", "-S", "-c", PROBE], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(out["spacy_file"]).is_relative_to(layer.python_dir), out["spacy_file"]
    assert not any("site-packages" in p for p in out["sys_path"]), out["sys_path"]
    return out["response"]


@pytest.mark.parametrize("which", ["textcat", "core"])
def test_handler_on_the_layer_predicts_what_the_kernel_predicts(layer: LayerBuild, which: str, textcat_nlp, core_nlp,
                                                                tmp_path: Path) -> None:
    nlp = textcat_nlp if which == "textcat" else core_nlp
    fields = ["ents", "cats"] if which == "textcat" else ["ents", "tokens"]
    texts = ["very happy with this phone", "arrived broken, avoid the laptop",
             "Apple is buying a startup in London on Monday .", "Sara flew to Paris ."]
    bundle = tmp_path / "bundle"
    build_bundle(nlp, bundle, which)
    response = _run_on_layer(layer, bundle, tmp_path, texts, fields)
    assert response["statusCode"] == 200, response["body"]
    expected = [doc_to_result(nlp(text), fields) for text in texts]
    assert json.loads(response["body"])["results"] == json.loads(json.dumps(expected))


def test_pin_without_a_wheel_says_which_and_what_to_do(tmp_path: Path) -> None:
    pins = [f"spacy=={metadata.version('spacy')}", "srsly==0.0.999"]
    with pytest.raises(UserInputError) as info:
        build_layer(PYTHON, "x86_64", tmp_path, pins=pins)
    message = str(info.value)
    assert "srsly==0.0.999" in message and f"Lambda python{PYTHON}" in message
    assert "install versions of srsly in the kernel" in message  # no older release to name: what to do in words
    assert not [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")]  # nothing half-built left behind


def test_unknown_architecture_is_refused() -> None:
    with pytest.raises(UserInputError, match="x86_64, arm64"):
        layer_requirements(PYTHON, "sparc")
