"""A warm start for local job runners: a fork server with the runner's libraries already imported.

A runner started as a new interpreter spends ~0.7 s (more on a busy machine) importing pandas, pyarrow
and the batch client before its first request, while the deployment's workers wait: 4-6% of a
100,000-row job here. The **job host** (``python -m ...jobs_host_server --warm HOME``, one per home;
this module is the submitter's side) imports them once and forks a runner per job in milliseconds.

- Started by ``LocalTarget.warm`` (a deploy, the magics loading), so a job after a deploy finds it warm;
  a submit that finds none starts its runner as a new interpreter, exactly as before (``start_runner``),
  and so does a submit from another interpreter or ``PYTHONPATH`` (``identity``). A host whose nimbus
  code changed on disk since it started refuses and exits.
  ``NIMBUS_JOB_HOST=0`` turns it off. It exits after ``NIMBUS_ZYGOTE_IDLE`` seconds (600) without a job, or
  as soon as its socket file is removed or replaced.
- A runner forked here is the same runner: ``jobs_runner.main`` in a child with its own session, the
  submitter's environment and working directory, its output in the job's ``runner.log``. The host answers
  only once the child holds the job's ``runner.lock``, so a runner is never "not alive yet" after a submit.
  Killing the host does not touch its runners (their own sessions); a runner outlives it.
- Fork safety as in ``zygote.py``: the host forks only while it has one thread and no socket but its own.
  pyarrow's jemalloc would start a background thread at import, so the host turns that thread off
  (``JE_ARROW_MALLOC_CONF``) and numpy's BLAS threads too, before importing them; if the check fails
  anyway, the submit gets an error reply and starts the runner the usual way.
"""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Dict, Optional

from . import zygote
from .hosts import launch_warm, run_dir, zygote_enabled

LOCK_WAIT_SECONDS = 10.0  # a forked runner takes the job's lock in milliseconds; this bounds a stuck one


def enabled() -> bool:
    return zygote_enabled() and os.environ.get("NIMBUS_JOB_HOST", "1") != "0"


def host_path(home: Path) -> Path:
    return run_dir(home) / "jobs-host.sock"


def identity() -> Dict[str, str]:
    """What decides the code a runner started as ``python -m`` would run: the interpreter and the paths
    the environment adds (not the caller's ``sys.path``, which a notebook or a test may have changed).
    A submit whose identity differs from the host's starts its runner as a new interpreter."""
    return {"python": sys.executable, **{name: os.environ.get(name, "") for name in ("PYTHONPATH", "PYTHONHASHSEED")}}


def code_stamp() -> str:
    """The files a host has imported and a new runner would import anew: every module of nimbus_jupyter,
    and the libraries' own ``__init__`` (an upgrade replaces it), by name, size and mtime (~1 ms)."""
    import hashlib
    import importlib.util

    package = Path(__file__).resolve().parents[2]
    files = sorted(package.rglob("*.py"))
    for name in ("pandas", "pyarrow", "numpy", "requests"):
        spec = importlib.util.find_spec(name)
        if spec and spec.origin:
            files.append(Path(spec.origin))
    digest = hashlib.sha256()
    for path in files:
        try:
            stat = path.stat()
        except OSError:
            continue
        digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


# -- the submitter's side ----------------------------------------------------------------------------------
def warm_job_host(home: Path) -> bool:
    """Start ``home``'s job host in the background unless one answers; returns at once, never raises."""
    return enabled() and launch_warm("nimbus_jupyter.targets.local.jobs_host_server", home)


def start_in_host(home: Path, job_dir: Path, timeout: float = LOCK_WAIT_SECONDS + 2) -> Optional[int]:
    """The pid of a runner the warm host forked for ``job_dir`` (holding its lock), or None when no host
    answers or it cannot fork: the caller then starts the runner as a new interpreter."""
    if not enabled():
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.settimeout(timeout)
    try:
        sock.connect(str(host_path(home)))
        zygote.send(sock, {"op": "run", "job_dir": str(job_dir), "env": dict(os.environ), "cwd": str(job_dir),
                           "identity": identity()})
        reply, fds = zygote.receive(sock)
        for fd in fds:
            os.close(fd)
    except (OSError, EOFError, ValueError):
        return None  # none there, a stale socket, a host that died mid-answer
    finally:
        sock.close()
    if not isinstance(reply, dict) or not isinstance(reply.get("pid"), int) or not reply.get("locked"):
        return None  # it could not fork, or the child did not get the lock (another runner has the job)
    return int(reply["pid"])
