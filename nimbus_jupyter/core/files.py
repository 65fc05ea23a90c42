"""Files written so that a reader never sees half of one, and secrets that only this user can read."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Optional


def write_atomic(path: Path, write: Callable[[str], Any], mode: int = 0o600) -> None:
    """``write(tmp_path)`` to a temp file in the same directory, synced, then renamed onto ``path``: readers
    see the old file or the new one, never half of one, and a failure leaves no temp file behind."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json_atomic(path: Path, data: Dict[str, Any], mode: int = 0o600) -> None:
    """``data`` as indented JSON, by ``write_atomic``."""
    write_atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2), "utf-8"), mode)


def read_json(path: Path) -> Optional[Dict[str, Any]]:
    try:
        return json.loads(path.read_text("utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_secret(path: Path, value: str) -> Path:
    """A file only this user can read (0600), e.g. an endpoint's API key; its directory is made 0700."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value)
    os.chmod(path, 0o600)
    return path
