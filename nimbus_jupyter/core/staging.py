"""``Staging``: the one owner of the directories a deploy or a dry run builds its artifacts in.

Each run gets ``$NIMBUS_HOME/staging/<id>/``; the bundle, the function package, the synthesized stack
live under it, and a plan names them by paths relative to its root, so a plan is data that does not
depend on where this run happened to build. The directory is removed when the run ends, however it
ends: dry runs leave nothing behind, and a deploy keeps only what its target moved out on purpose
(the local target's bundle, into the deployment's versions). Caches (the Lambda layer, the CDK CLI)
live under ``$NIMBUS_CACHE``, not here.
"""
from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from types import TracebackType
from typing import Optional, Type

from .errors import NimbusError

STAGING_DIR = "staging"


class Staging:
    """A context manager: ``with Staging(home) as staging: staging.path("bundle")``."""

    def __init__(self, home: Path) -> None:
        self.parent = Path(home) / STAGING_DIR
        self.root = self.parent / uuid.uuid4().hex
        self._open = False

    def __enter__(self) -> "Staging":
        self.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.root.mkdir(mode=0o700)
        self._open = True
        return self

    def __exit__(self, kind: Optional[Type[BaseException]], value: Optional[BaseException],
                 trace: Optional[TracebackType]) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self._open = False

    def path(self, relative: str) -> Path:
        """The absolute path of an artifact named by ``relative`` (which must stay under the root)."""
        if not self._open:
            raise NimbusError(f"the staging directory {self.root} is closed", "plan again: staged artifacts "
                              "live only as long as the deploy or dry run that made them", where="staging")
        path = (self.root / relative).resolve()
        if self.root.resolve() not in path.parents and path != self.root.resolve():
            raise ValueError(f"{relative!r} is not under the staging root")
        return path

    def dir(self, relative: str) -> Path:
        """``path(relative)``, created (with its parents) as a directory."""
        path = self.path(relative)
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def relative(self, path: Path) -> str:
        """How a plan names ``path``: relative to the root, with forward slashes."""
        return Path(path).resolve().relative_to(self.root.resolve()).as_posix()
