"""Find a CPython of a given minor version on this machine (to precompile a layer's .pyc for its runtime).

Why: the layer is built for the Lambda runtime's Python, which need not be the kernel's. A .pyc holds its
interpreter's magic number and cache tag, so only that minor can write ones Lambda will use; they are
the same for x86_64 and arm64. Looked for: ``$NIMBUS_PYTHON_3_13`` (any minor), ``python3.13`` on PATH,
then pyenv's versions (``$PYENV_ROOT`` or ``~/.pyenv``).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Optional


def _version_of(executable: str) -> Optional[str]:
    try:
        out = subprocess.run([executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out or None


def candidates(python: str) -> List[str]:
    """Where a ``python`` (e.g. "3.13") interpreter may be, most specific first."""
    found: List[str] = []
    env = os.environ.get(f"NIMBUS_PYTHON_{python.replace('.', '_')}")
    if env:
        found.append(env)
    if f"{sys.version_info.major}.{sys.version_info.minor}" == python:
        found.append(sys.executable)
    on_path = shutil.which(f"python{python}")
    if on_path:
        found.append(on_path)
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    if root.is_dir():
        pattern = re.compile(rf"^{re.escape(python)}\.\d+$")
        for version in sorted((p for p in root.iterdir() if pattern.match(p.name)), reverse=True):
            found.append(str(version / "bin" / "python"))
    return found


def find_python(python: str) -> Optional[str]:
    """An interpreter of exactly that minor version, or None."""
    for candidate in candidates(python):
        if Path(candidate).exists() and _version_of(candidate) == python:
            return candidate
    return None
