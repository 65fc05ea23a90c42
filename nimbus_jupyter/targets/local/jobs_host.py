"""A warm start for local job runners: a fork server with the runner's libraries already imported.

A runner started as a new interpreter spends ~0.7 s (more on a busy machine) importing pandas, pyarrow
and the batch client before its first request, while the deployment's workers wait: 4-6% of a
100,000-row job here. The **job host** (``python -m ...jobs_host --warm HOME``, one per home) imports them once and forks a runner per job in milliseconds.

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
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Dict, List, Optional

from . import zygote
from .hosts import run_dir, zygote_enabled

PRELOAD = ("pandas", "pyarrow", "pyarrow.parquet", "pyarrow.dataset", "pyarrow.csv", "pyarrow.json", "requests",
           "nimbus_jupyter.api.batching", "nimbus_jupyter.targets.local.jobs_runner")
NO_THREADS = {"JE_ARROW_MALLOC_CONF": "background_thread:false", **{name: "1" for name in zygote.BLAS_THREADS}}
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
    if not enabled():
        return False
    try:
        launcher = subprocess.Popen([sys.executable, "-m", "nimbus_jupyter.targets.local.jobs_host", "--warm", str(home)],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    cwd=str(run_dir(home)), close_fds=True, start_new_session=True)
    except OSError:
        return False
    threading.Thread(target=launcher.wait, name="nimbus-job-host-launcher", daemon=True).start()
    return True


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


# -- the host ----------------------------------------------------------------------------------------------
def preload() -> None:
    for name, value in NO_THREADS.items():
        os.environ.setdefault(name, value)
    import importlib

    for module in PRELOAD:
        importlib.import_module(module)
    from ..registry import catalog

    catalog()  # the targets' entry points, loaded once rather than by every runner
    import gc

    gc.collect()
    gc.freeze()


def serve(path: str) -> int:
    """Fork a runner per request on the Unix socket ``path`` until idle (see the module docstring)."""
    if not zygote._only_one(path):
        return 0  # another host of this home is starting or serving
    mine_identity = identity()
    code = code_stamp()  # nimbus' files and the libraries': a change on disk means this host is stale
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    preload()
    idle = float(os.environ.get("NIMBUS_ZYGOTE_IDLE") or 600)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    tmp = f"{path}.{os.getpid()}"
    listener.bind(tmp)
    os.chmod(tmp, 0o600)
    listener.listen(16)
    os.replace(tmp, path)  # connectable only once it can fork runners
    mine = os.stat(path).st_ino
    signal.signal(signal.SIGCHLD, zygote._reap)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    last_active = time.monotonic()
    try:
        while True:
            ready, _, _ = select.select([listener], [], [], 5.0)
            zygote._reap()
            if zygote._inode(path) != mine:
                return 0  # our socket was removed or replaced: nobody can reach this host any more
            if not ready:
                if time.monotonic() - last_active > idle:
                    return 0
                continue
            conn, _ = listener.accept()
            last_active = time.monotonic()
            try:
                conn.settimeout(5.0)
                request, fds = zygote.receive(conn)
                for fd in fds:
                    os.close(fd)
                if isinstance(request, dict) and request.get("op") == "run" and code_stamp() != code:
                    zygote.send(conn, {"error": "the job host's code changed since it started: it exits"})
                    return 0  # the next warm-up starts a host with the new code
                if isinstance(request, dict) and request.get("op") == "run" and request.get("identity") != mine_identity:
                    zygote.send(conn, {"error": f"the job host runs {mine_identity}, not {request.get('identity')}"})
                    continue
                zygote.send(conn, _run(request, [listener.fileno(), conn.fileno()], listener, conn))
            except (OSError, EOFError, ValueError):
                pass  # the submitter went away: it starts its runner itself
            finally:
                conn.close()
    finally:
        try:
            if zygote._inode(path) == mine:
                os.unlink(path)
        except OSError:
            pass


def _run(request: Any, allowed: List[int], listener: socket.socket, conn: socket.socket) -> Dict[str, Any]:
    if isinstance(request, dict) and request.get("op") == "ping":
        return {"pong": os.getpid()}  # hosts.stop_zygotes asks, to stop it with the home's last deployment
    if not isinstance(request, dict) or request.get("op") != "run" or not isinstance(request.get("job_dir"), str):
        return {"error": "unknown request"}
    why = zygote.fork_unsafe(allowed)
    if why:
        return {"error": f"the job host cannot fork safely: {why}"}
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the runner
        code = 1
        try:
            os.close(read_end)
            zygote._child_signals()
            if zygote._start_lock is not None:
                os.close(zygote._start_lock)  # a runner outliving the host must not keep the next one from starting
            listener.close()
            conn.close()
            os.setsid()
            code = _runner(request, write_end)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], LOCK_WAIT_SECONDS)
        said = os.read(read_end, 1) if ready else b""
    finally:
        os.close(read_end)
    return {"pid": pid, "locked": said == b"1"}


def _runner(request: Dict[str, Any], write_end: int) -> int:
    """In the forked child: the submitter's environment and directory, the job's log, then the runner."""
    job_dir = Path(request["job_dir"])
    env = request.get("env")
    if isinstance(env, dict):
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in env.items()})
    try:
        os.chdir(request.get("cwd") or job_dir)
    except OSError:
        pass
    log = os.open(str(job_dir / "runner.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)

    def locked(ok: bool) -> None:
        try:
            os.write(write_end, b"1" if ok else b"0")
        finally:
            os.close(write_end)

    from .jobs_runner import main as run_job

    return run_job([str(job_dir)], locked=locked)


def warm(home: str) -> int:
    """``--warm HOME``: start HOME's job host for this environment unless one answers, detached."""
    path = host_path(Path(home))
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        probe.connect(str(path))
        return 0  # already serving
    except OSError:
        pass
    finally:
        probe.close()
    if os.fork():
        os._exit(0)
    os.setsid()
    log = os.open(str(path.with_suffix(".log")), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    return serve(str(path))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--warm":
        sys.exit(warm(sys.argv[2]))
    sys.exit(f"usage: python -m {__spec__.name if __spec__ else 'jobs_host'} --warm NIMBUS_HOME")
