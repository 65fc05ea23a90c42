"""The Lambda function's code directory, and where the model goes: packed in the function or in S3.

Only the runtime is shipped (``nimbus_jupyter/__init__.py`` and ``nimbus_jupyter/runtime/*.py``): the
rest of the package needs IPython, widgets and pandas, none of which are in the layer. The model goes
inside the function when layer + code + model fit Lambda's unzipped limit, since that cold-starts without
a download; otherwise it is an S3 object the function unpacks into /tmp at init.
"""
from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Optional, Tuple

from ...core.errors import UserInputError
from .spec import MODEL_INLINE, MODEL_S3

MB = 1024 * 1024
# Lambda's limit on the unzipped size of a function plus all its layers: 262,144,000 bytes ("250 MB").
UNZIPPED_LIMIT_BYTES = 262_144_000
# Kept free under that limit: sizes are measured here, and a few bytes of metadata can differ on Lambda.
UNZIPPED_MARGIN_BYTES = 8 * MB
# /tmp (ephemeral storage) that Lambda allows, in MB.
EPHEMERAL_MIN_MB, EPHEMERAL_MAX_MB = 512, 10_240
# /tmp holds the downloaded zip and the unzipped bundle at once (zip of msgpack weights barely shrinks).
EPHEMERAL_MODEL_FACTOR, EPHEMERAL_HEADROOM_MB = 2.2, 64

BUNDLE_SUBDIR = "bundle"  # /var/task/bundle on Lambda
_PACKAGE_DIR = Path(__file__).resolve().parents[2]  # nimbus_jupyter/


def build_function_code(bundle_dir: Optional[Path], dest: Path, inline: bool) -> Path:
    """Write the function's code directory to ``dest`` (which must not exist) and return it.

    ``dest/nimbus_jupyter/{__init__.py, runtime/*.py}``, plus ``dest/bundle/`` (a copy of ``bundle_dir``)
    when ``inline``. Built beside ``dest`` and renamed, so a failure never leaves half a directory.
    """
    dest = Path(dest)
    if dest.exists():
        raise UserInputError(f"the function code directory {dest} already exists",
                             "pass a new directory; build_function_code never writes into an existing one",
                             where="build_function_code")
    if inline and (bundle_dir is None or not (Path(bundle_dir) / "manifest.json").is_file()):
        raise UserInputError(f"{bundle_dir} is not a bundle (no manifest.json)",
                             "pass the directory nimbus_jupyter.bundle.build_bundle wrote", where="build_function_code")
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        runtime = tmp / "nimbus_jupyter" / "runtime"
        runtime.mkdir(parents=True)
        shutil.copy2(_PACKAGE_DIR / "__init__.py", tmp / "nimbus_jupyter" / "__init__.py")
        for source in sorted((_PACKAGE_DIR / "runtime").glob("*.py")):
            shutil.copy2(source, runtime / source.name)
        if inline:
            shutil.copytree(Path(bundle_dir), tmp / BUNDLE_SUBDIR,  # type: ignore[arg-type]
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def dir_size(path: Path) -> int:
    """Bytes of the regular files under ``path`` (what Lambda counts as unzipped size); symlinks not followed."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            if not os.path.islink(full):
                total += os.path.getsize(full)
    return total


def choose_model_mode(layer_bytes: int, code_bytes: int, model_bytes: int) -> Tuple[str, int]:
    """``(model_mode, ephemeral_storage_mb)``: ``inline`` (512 MB /tmp) when everything fits under Lambda's
    unzipped limit with a margin, else ``s3`` with /tmp sized for the download and the unzipped model.

    ``code_bytes`` is the runtime code alone (without the bundle). Raises UserInputError naming the limit
    when the layer and code alone do not fit, or the model would not fit in the largest /tmp.
    """
    budget = UNZIPPED_LIMIT_BYTES - UNZIPPED_MARGIN_BYTES
    if layer_bytes + code_bytes + model_bytes <= budget:
        return MODEL_INLINE, EPHEMERAL_MIN_MB
    if layer_bytes + code_bytes > budget:
        raise UserInputError(
            f"the dependency layer ({_mb(layer_bytes)}) and function code ({_mb(code_bytes)}) are over Lambda's "
            f"250 MB unzipped limit for a function and its layers ({_mb(budget)} with a safety margin), "
            "even with the model in S3", "trim the pipeline's extra packages, or deploy with --target local",
            where="aws package")
    needed_mb = math.ceil(model_bytes * EPHEMERAL_MODEL_FACTOR / MB) + EPHEMERAL_HEADROOM_MB
    if needed_mb > EPHEMERAL_MAX_MB:
        raise UserInputError(
            f"the model ({_mb(model_bytes)}) needs about {needed_mb:,} MB of /tmp to download and unzip, over "
            f"Lambda's {EPHEMERAL_MAX_MB:,} MB ephemeral storage limit",
            "use a smaller pipeline (drop static vectors, or a smaller model), or deploy with --target local",
            where="aws package")
    return MODEL_S3, max(EPHEMERAL_MIN_MB, needed_mb)


def size_report(layer_bytes: int, code_bytes: int, model_bytes: int, mode: str) -> str:
    """One line a user can read: what counts toward the unzipped limit, and where the model goes."""
    counted = layer_bytes + code_bytes + (model_bytes if mode == MODEL_INLINE else 0)
    where = "in the function" if mode == MODEL_INLINE else "in S3, unzipped into /tmp at cold start"
    return (f"layer {_mb(layer_bytes)} + code {_mb(code_bytes)} + model {_mb(model_bytes)} ({where}): "
            f"{_mb(counted)} of Lambda's 250 MB unzipped limit")


def _mb(n: int) -> str:
    return f"{n / MB:,.1f} MB"
