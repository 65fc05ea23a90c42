"""Where a deployed pipeline came from, and how a later deploy recognises "the same pipeline".

A name belongs to one pipeline. When a deploy brings different components under a taken name, it is
either that pipeline, changed (a component added or removed in the notebook: a new version), or another
pipeline claiming the name (refused unless ``--force``). Weights alone never decide: a retrained model
has new weights and the same components, and is a new version as always.

The deploy records its ``Origin`` in the deployment's record; the next deploy compares its own:

- from a notebook: the same **variable** in the same **notebook** (JupyterLab gives the kernel the
  notebook's path as ``__session__``); where no path is known (a terminal IPython, nbclient without a
  session), the same variable in the same **kernel** (the kernel's id, or this IPython process);
- from the ``nimbus`` CLI: the same **PATH** (the pipeline directory, resolved, or the package name);
- always on the same **host**; and the language must match (a pipeline of another language is another
  pipeline). A deploy whose origin is not known (``api.deploy`` from a script without ``origin``) only
  matches a record with the same language and components, as before.
"""
from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Dict, Optional

NOTEBOOK, CLI = "notebook", "cli"


@dataclass(frozen=True)
class Origin:
    kind: str = ""  # notebook | cli | "" (not known)
    source: str = ""  # the notebook's path, or the CLI's PATH (resolved) / package name
    variable: str = ""  # the notebook variable that held the pipeline
    kernel: str = ""  # the kernel's id (or "ipython-<pid>"), for notebooks without a known path
    host: str = ""

    @property
    def known(self) -> bool:
        return bool(self.kind)

    def same_pipeline(self, other: "Origin") -> bool:
        """Whether ``other`` (the origin recorded for a deployment) is where this deploy comes from too."""
        if not (self.known and other.known) or self.kind != other.kind or self.host != other.host:
            return False
        if self.kind == CLI:
            return bool(self.source) and self.source == other.source
        if not self.variable or self.variable != other.variable:
            return False
        if self.source and other.source:
            return self.source == other.source
        return bool(self.kernel) and self.kernel == other.kernel

    def describe(self) -> str:
        """For messages: 'the variable 'nlp' in reviews.ipynb', 'nimbus deploy ./model'."""
        if self.kind == CLI:
            return f"nimbus deploy {self.source}"
        if self.kind == NOTEBOOK:
            where = self.source or (f"kernel {self.kernel}" if self.kernel else "a notebook")
            return f"the variable {self.variable!r} in {where}" if self.variable else where
        return "an unknown place"

    def to_json(self) -> Dict[str, Any]:
        return asdict(self) if self.known else {}

    @classmethod
    def from_json(cls, data: Optional[Dict[str, Any]]) -> "Origin":
        known = {f.name for f in fields(cls)}
        return cls(**{k: str(v) for k, v in (data or {}).items() if k in known and v is not None})


def _host() -> str:
    try:
        return socket.gethostname()
    except OSError:
        return ""


def kernel_id(shell: Any = None) -> str:
    """The Jupyter kernel's id (from its connection file), or this IPython process's when there is no kernel."""
    kernel = getattr(shell, "kernel", None) if shell is not None else None
    if kernel is not None:
        try:
            from ipykernel.connect import get_connection_file

            stem = Path(get_connection_file()).stem
            return stem[len("kernel-"):] if stem.startswith("kernel-") else stem
        except Exception:  # not an ipykernel kernel after all: the process identifies it
            pass
    return f"ipython-{os.getpid()}"


def notebook_origin(variable: str, shell: Any = None) -> Origin:
    """A deploy of the notebook variable ``variable`` from ``shell`` (an IPython shell, or None)."""
    namespace = getattr(shell, "user_ns", None) or {}
    session = namespace.get("__session__") or os.environ.get("JPY_SESSION_NAME") or ""
    return Origin(NOTEBOOK, str(session), variable, kernel_id(shell), _host())


def cli_origin(path: str) -> Origin:
    """A deploy of ``path`` (a pipeline directory or an installed package) by the ``nimbus`` command."""
    candidate = Path(path).expanduser()
    source = str(candidate.resolve()) if candidate.exists() else path
    return Origin(CLI, source, "", "", _host())


def variable_of(value: Any, namespace: Optional[Dict[str, Any]]) -> str:
    """The name a notebook gives ``value`` (the first public one, in definition order), or ''."""
    for name, held in (namespace or {}).items():
        if held is value and not name.startswith("_") and name.isidentifier():
            return name
    return ""
