"""The job host itself (``python -m nimbus_jupyter.targets.local.jobs_host_server --warm HOME``): import the
runner's libraries once, then fork a runner per submit. Why and how: ``jobs_host``, the submitter's side."""
from __future__ import annotations

import os
import select
import signal
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Dict, List

from . import zygote
from .jobs_host import LOCK_WAIT_SECONDS, code_stamp, host_path, identity

PRELOAD = ("pandas", "pyarrow", "pyarrow.parquet", "pyarrow.dataset", "pyarrow.csv", "pyarrow.json", "requests",
           "nimbus_jupyter.api.batching", "nimbus_jupyter.targets.local.jobs_runner")
WARM_DELAY_SECONDS = 5.0  # after a warm-up, before the imports: a deploy's start-up is done by then
QUIET = (("JE_ARROW_MALLOC_CONF", "background_thread:false"),)  # pyarrow's jemalloc thread, started at import


# -- the host ----------------------------------------------------------------------------------------------
def preload() -> None:
    """The base zygote's preload with the runner's libraries, and the targets' entry points loaded once
    rather than by every runner."""
    import gc

    zygote.preload(PRELOAD, QUIET)  # first: nothing may import numpy or pyarrow before the switches are set
    from ..registry import catalog

    catalog()
    gc.freeze()  # the catalog too stays out of the collector's passes


def serve(path: str) -> int:
    """Fork a runner per request on the Unix socket ``path`` until idle (see the module docstring)."""
    if not zygote._only_one(path):
        return 0  # another host of this home is starting or serving
    # Warmed when a deploy begins or the magics load, it would import pandas and pyarrow (~0.7 s of CPU) just
    # as the deploy or the base zygote need both cores: measured, the first deploy went from 0.79 to 1.07 s.
    # So it waits first; a submit meanwhile starts its runner as a new interpreter, as with no host.
    time.sleep(float(os.environ.get("NIMBUS_JOB_HOST_DELAY") or WARM_DELAY_SECONDS))
    mine_identity = identity()
    code = code_stamp()  # nimbus' files and the libraries': a change on disk means this host is stale
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    preload()
    idle = float(os.environ.get("NIMBUS_ZYGOTE_IDLE") or 600)
    listener, mine = zygote.listen_when_ready(path, 16)  # connectable only once it can fork runners
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
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a new interpreter: KeyboardInterrupt
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

    from .jobs_runner import main as run_job  # imported by preload already (after the thread switches are set)

    return run_job([str(job_dir)], locked=locked)


def warm(home: str) -> int:
    """``--warm HOME``: start HOME's job host unless one answers, detached."""
    return zygote.serve_detached(str(host_path(Path(home))), serve)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--warm":
        sys.exit(warm(sys.argv[2]))
    sys.exit("usage: python -m nimbus_jupyter.targets.local.jobs_host_server --warm NIMBUS_HOME")
