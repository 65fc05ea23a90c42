"""The trimmed pyarrow that an AWS job's shard function loads into /tmp (see ``runtime/jobs_shard.py`` for
why it is not in the layer), built like the layer: manylinux wheels for the Lambda runtime, no Docker.

Which version: the newest pyarrow no newer than the kernel's with a wheel the runtime's glibc loads
(pyarrow 21+ ships manylinux_2_28 only, so python3.11 on Amazon Linux 2 gets 20.x; Parquet files are
the same format either way). What is cut, measured on pyarrow 26 x86_64 (170 MB installed): Flight
(33 MB), the S3/GCS/Azure/HDFS filesystems (17 MB: the function reads S3 with boto3), ORC, headers,
tests, Cython sources, two duplicate copies of libarrow_python; then the shared objects are stripped.
What stays is what ``import pyarrow.parquet, pyarrow.csv, pyarrow.json`` loads (``lib`` needs
libarrow, compute, acero, dataset, substrait and parquet as NEEDED entries, so those stay whole).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import List, Optional

from filelock import FileLock

from ...core.errors import UserInputError
from .layer import pip_platforms, strip_shared_objects
from .package import dir_size

BUILDER = "1"
DROP_GLOBS = ("libarrow_flight.so*", "_flight.*.so", "libarrow_s3.so*", "_s3fs.*.so", "_gcsfs.*.so", "_azurefs.*.so",
              "_hdfs.*.so", "_orc.*.so", "orc.py", "flight.py", "include", "tests", "src", "*.pyx", "*.pxd", "*.pxi",
              "*.h", "*.cc", "benchmark.py", "cuda.py", "_cuda.*.so", "interchange", "vendored/docscrape.py")


@dataclass(frozen=True)
class PyarrowZip:
    path: Path  # the zip (pyarrow/ at its root)
    key: str  # its content key: the S3 object name under PYARROW_KEY
    version: str
    installed_bytes: int  # as pip installed it
    unzipped_bytes: int  # after trimming: what /tmp holds
    zipped_bytes: int


def kernel_pyarrow() -> str:
    try:
        return metadata.version("pyarrow")
    except metadata.PackageNotFoundError:
        raise UserInputError("pyarrow is not installed in this kernel", "pip install pyarrow (AWS jobs write Parquet)")


def trim_pyarrow(site: Path) -> None:
    """Cut what a shard never loads from ``site/pyarrow`` (in place)."""
    root = site / "pyarrow"
    for pattern in DROP_GLOBS:
        for path in root.glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    for cache in root.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    libs = sorted(root.glob("libarrow_python.so*"), key=lambda p: len(p.name))
    # the wheel holds libarrow_python.so, .so.N and .so.N.M.P as copies; the NEEDED name is .so.N
    needed = [p for p in libs if p.name.count(".") == 2]
    for path in libs:
        if needed and path != needed[0]:
            path.unlink()


def build_pyarrow_zip(python: str, arch: str, cache_dir: Path, version: Optional[str] = None,
                      from_site: Optional[Path] = None) -> PyarrowZip:
    """The zip for (python, arch, pyarrow version), cached; ``from_site`` copies an installed pyarrow
    instead of downloading (for this machine's own platform: tests)."""
    version = version or kernel_pyarrow()
    ident = json.dumps({"python": python, "arch": arch, "ceiling": version, "builder": BUILDER,
                        "from_site": str(from_site or "")}, sort_keys=True)
    name = hashlib.sha256(ident.encode()).hexdigest()[:24]
    cache_dir.mkdir(parents=True, exist_ok=True)
    final, meta = cache_dir / f"pyarrow-{name}.zip", cache_dir / f"pyarrow-{name}.json"
    with FileLock(str(cache_dir / f"pyarrow-{name}.lock")):
        if final.is_file() and meta.is_file():
            data = json.loads(meta.read_text())
            return PyarrowZip(final, data["key"], data["version"], data["installed_bytes"], data["unzipped_bytes"],
                              final.stat().st_size)
        work = Path(tempfile.mkdtemp(prefix="pyarrow-", dir=cache_dir))
        try:
            site = work / "site"
            if from_site is not None:
                shutil.copytree(from_site / "pyarrow", site / "pyarrow", symlinks=False)
                got = metadata.version("pyarrow")
            else:
                got = _download(site, python, arch, version)
            installed = dir_size(site)
            trim_pyarrow(site)
            strip_shared_objects(site, arch)
            unzipped = dir_size(site)
            tmp = work / "out.zip"
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
                for path in sorted(site.rglob("*")):
                    if path.is_file():
                        archive.write(path, path.relative_to(site).as_posix())
            key = hashlib.sha256(tmp.read_bytes()).hexdigest()[:32] + ".zip"
            os.replace(tmp, final)
            meta.write_text(json.dumps({"key": key, "version": got, "installed_bytes": installed,
                                        "unzipped_bytes": unzipped}), "utf-8")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return PyarrowZip(final, key, got, installed, unzipped, final.stat().st_size)


def _download(site: Path, python: str, arch: str, ceiling: str) -> str:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--only-binary=:all:", "--no-compile",
               "--target", str(site), "--python-version", python, "--implementation", "cp"]
    for platform in pip_platforms(python, arch):
        command += ["--platform", platform]
    done = subprocess.run(command + [f"pyarrow<={ceiling}"], capture_output=True, text=True)
    if done.returncode != 0:
        raise UserInputError(f"no pyarrow wheel up to {ceiling} loads on Lambda python{python} {arch}: "
                             f"{(done.stderr or done.stdout).strip().splitlines()[-1:]}",
                             "check the network to PyPI; AWS jobs need pyarrow in the shard function", where="jobs")
    found: List[str] = [p.name for p in site.glob("pyarrow-*.dist-info")]
    return found[0][len("pyarrow-"):-len(".dist-info")] if found else ceiling


def describe(zip_: PyarrowZip) -> str:
    mb = 1024 * 1024
    return (f"pyarrow {zip_.version}: {zip_.installed_bytes / mb:.0f} MB installed, {zip_.unzipped_bytes / mb:.0f} MB "
            f"trimmed and stripped in /tmp, {zip_.zipped_bytes / mb:.0f} MB zip in S3")


