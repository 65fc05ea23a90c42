"""Where Nimbus keeps its state: the home (``$NIMBUS_HOME``) and the cache of rebuildable artifacts."""
from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "NIMBUS_HOME"
CACHE_ENV = "NIMBUS_CACHE"


def nimbus_home() -> Path:
    """``$NIMBUS_HOME``, default ``~/.nimbus_jupyter``, made private (0700): it holds API keys."""
    return private_dir(Path(os.environ.get(HOME_ENV) or Path.home() / ".nimbus_jupyter"))


def nimbus_cache() -> Path:
    """Rebuildable artifacts (Lambda layers, the CDK CLI): ``$NIMBUS_CACHE``, default ``<home>/cache``."""
    path = Path(os.environ.get(CACHE_ENV) or nimbus_home() / "cache")
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def private_dir(path: Path) -> Path:
    """Create ``path`` as 0700, and tighten it if it exists with group/other access. A path that cannot be a
    folder (a file is there, a parent is read-only) is the user's to fix: a UserInputError that says how."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        from .errors import UserInputError

        raise UserInputError(f"Nimbus cannot use {path} as its folder: {exc.strerror or exc}",
                             f"point {HOME_ENV} at a folder you can write (now {os.environ.get(HOME_ENV) or 'unset'}; "
                             "unset, it is ~/.nimbus_jupyter), or remove what is in the way") from None
    if path.stat().st_mode & 0o077 and path.stat().st_uid == os.getuid():
        os.chmod(path, 0o700)
    return path
