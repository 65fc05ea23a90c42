"""Fork servers for the local target's workers, so a worker starts in milliseconds instead of seconds.

Starting a worker used to mean a new interpreter importing spaCy (about 1 s here) and loading the
bundle (0.3-0.5 s). Now three kinds of process share that work through ``fork``:

- the **base zygote**, one per user and Python environment (``python -m ...zygote SOCKET``): it imports
  spaCy, thinc, numpy and the runtime handler once, then waits on a Unix socket in ``NIMBUS_HOME/run``.
  Servers of every deployment ask it for *version hosts*. It holds library code only, never a pipeline
  or user code, so sharing it across deployments shares nothing of theirs; it exits when the last local
  deployment is destroyed or after ``NIMBUS_ZYGOTE_IDLE`` seconds without any host.
- a **version host**, forked from the base for one version of one deployment: it loads the bundle (the
  component code first, as a worker did) with the deployment's environment, then forks workers.
  The server keeps the previous version's host warm, so a rollback forks workers from it at once.
- a **worker**, forked from its host: the loaded pipeline is already in its memory (pages shared with
  the host until written), it reseeds its random state and answers events on its own socket exactly as
  ``worker.py``'s workers do.

Fork safety: a process forks only while it has one thread and no socket but its own channel (checked
before every fork); otherwise it refuses and the server starts workers as new interpreters instead.
numpy's OpenBLAS would start a thread at import, so the base zygote sets ``OPENBLAS_NUM_THREADS`` (and
OpenMP's, MKL's) to 1 unless the user set them; a worker runs one request at a time anyway.

Messages on the control sockets (``SOCK_SEQPACKET``, so one message per ``recv``) are frames of
``framing.py`` with file descriptors passed alongside (``SCM_RIGHTS``).
"""
from __future__ import annotations

import gc
import os
import signal
import socket
import sys
import threading
import time
import traceback
from typing import Any, Dict, List, Optional, Sequence, Tuple

_MAX_MESSAGE = 1 << 20
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
PRELOAD = ("spacy", "spacy.language", "spacy.pipeline", "spacy.lang.en", "thinc.api", "numpy",
           "nimbus_jupyter.runtime.handler", "nimbus_jupyter.runtime.fields", "nimbus_jupyter.runtime.contract",
           "nimbus_jupyter.targets.local.worker", "nimbus_jupyter.targets.local.allocator", "ctypes")


# -- messages ----------------------------------------------------------------------------------------
def send(sock: socket.socket, obj: Any, fds: Sequence[int] = ()) -> None:
    from .framing import encode

    data = encode(obj)
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.sendall(data)


def receive(sock: socket.socket) -> Tuple[Any, List[int]]:
    """One message and the descriptors that came with it; ``EOFError`` when the other side closed."""
    import pickle

    data, fds, _flags, _addr = socket.recv_fds(sock, _MAX_MESSAGE, 8)
    if not data:
        for fd in fds:
            os.close(fd)
        raise EOFError
    return pickle.loads(data[4:]), fds


# -- fork safety ---------------------------------------------------------------------------------------
def threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def socket_fds(allowed: Sequence[int]) -> List[int]:
    """Open descriptors that are sockets, other than ``allowed`` (a fork would hand them to a worker)."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd in allowed:
            continue
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                found.append(fd)
        except OSError:
            continue
    return found


def fork_unsafe(allowed: Sequence[int]) -> Optional[str]:
    """Why forking now would be unsafe, or None."""
    count = threads()
    if count != 1:
        return f"{count} threads are running (a forked child would get only one, holding whatever locks the others held)"
    extra = socket_fds(allowed)
    if extra:
        return f"{len(extra)} socket(s) are open (a forked worker would share them)"
    return None


def _reap(_signum: int = 0, _frame: Any = None) -> None:
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _child_signals() -> None:
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


# -- the base zygote ----------------------------------------------------------------------------------
def preload(modules: Sequence[str] = PRELOAD, quiet: Sequence[Tuple[str, str]] = ()) -> None:
    """Import ``modules`` for every child to share, after the switches that keep libraries from starting
    threads at import (numpy's BLAS; ``quiet``: more, as the job host's pyarrow) unless the user set them."""
    for name, value in [*((n, "1") for n in BLAS_THREADS), *quiet]:
        os.environ.setdefault(name, value)
    import importlib

    for module in modules:
        importlib.import_module(module)
    gc.collect()
    gc.freeze()  # what is loaded now stays out of the collector's passes: fewer pages copied after fork


_start_lock: Optional[int] = None  # held for the base zygote's life; closed in every child it forks


def _only_one(path: str) -> bool:
    """Take ``path``.lock (flock, released by the kernel when this process dies): one base zygote per
    socket path, however many launchers race (a warm-up and a server's first deploy, two servers)."""
    global _start_lock
    import fcntl

    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _start_lock = fd
    return True


def base_main(path: str) -> int:
    """Serve version-host requests on the Unix socket ``path`` until idle (see the module docstring)."""
    if not _only_one(path):
        return 0  # another base zygote of this environment is starting or serving: it answers on ``path``
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    preload()
    idle = float(os.environ.get("NIMBUS_ZYGOTE_IDLE") or 600)
    listener, mine = listen_when_ready(path, 64)
    signal.signal(signal.SIGCHLD, _reap)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    import selectors

    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    conns: Dict[int, socket.socket] = {}
    hosts: Dict[int, float] = {}  # pid -> started
    last_active = time.monotonic()
    try:
        while True:
            events = selector.select(timeout=5.0)
            _reap()
            hosts = {pid: t for pid, t in hosts.items() if _alive(pid)}
            if conns or hosts:
                last_active = time.monotonic()
            elif time.monotonic() - last_active > idle:
                return 0
            if _inode(path) != mine:
                return 0  # our socket file was removed (destroy) or replaced: nobody can reach us any more
            for key, _mask in events:
                if key.fileobj is listener:
                    conn, _ = listener.accept()
                    conns[conn.fileno()] = conn
                    selector.register(conn, selectors.EVENT_READ)
                    continue
                conn = key.fileobj  # type: ignore[assignment]
                try:
                    request, fds = receive(conn)  # type: ignore[arg-type]
                except (EOFError, OSError):
                    selector.unregister(conn)
                    conns.pop(conn.fileno(), None)
                    conn.close()  # type: ignore[union-attr]
                    continue
                reply = _base_command(request, fds, listener, list(conns.values()), selector)
                if "pid" in reply:
                    hosts[reply["pid"]] = time.monotonic()
                try:
                    send(conn, reply)  # type: ignore[arg-type]
                except OSError:
                    pass
    finally:
        try:
            if _inode(path) == mine:
                os.unlink(path)
        except OSError:
            pass


def listen_when_ready(path: str, backlog: int) -> Tuple[socket.socket, int]:
    """A listening socket at ``path`` (0600), put there only now that its server is ready to answer,
    and its inode (the server exits once ``path`` is another file or none)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    tmp = f"{path}.{os.getpid()}"
    listener.bind(tmp)
    os.chmod(tmp, 0o600)
    listener.listen(backlog)
    os.replace(tmp, path)
    return listener, os.stat(path).st_ino


def _inode(path: str) -> int:
    try:
        return os.stat(path).st_ino
    except OSError:
        return -1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _base_command(request: Dict[str, Any], fds: List[int], listener: socket.socket,
                  conns: List[socket.socket], selector: Any) -> Dict[str, Any]:
    if request.get("op") == "ping":
        return {"pong": os.getpid()}
    if request.get("op") != "host" or len(fds) != 2:
        for fd in fds:
            os.close(fd)
        return {"error": f"unknown request {request.get('op')!r}"}
    channel, log = fds
    allowed = [listener.fileno(), channel] + [c.fileno() for c in conns]
    why = fork_unsafe(allowed)
    if why:
        os.close(channel)
        os.close(log)
        return {"error": f"the zygote cannot fork safely: {why}"}
    pid = os.fork()
    if pid == 0:  # the version host
        try:
            _child_signals()
            if _start_lock is not None:
                os.close(_start_lock)  # a host outliving the zygote must not keep the next one from starting
            selector.close()  # the child's reference to the epoll instance only
            listener.close()
            for conn in conns:
                conn.close()
            os.dup2(log, 2)  # the deployment's server log, not the zygote's
            os.close(log)
            code = host_main(channel, request["bundle_dir"], request["env"], request["cwd"])
        except BaseException:
            traceback.print_exc()
            code = 1
        os._exit(code)
    os.close(channel)
    os.close(log)
    return {"pid": pid}


# -- a version host --------------------------------------------------------------------------------------
def host_main(channel_fd: int, bundle_dir: str, env: Dict[str, str], cwd: str) -> int:
    """Load one bundle, say so on the channel, then fork a worker per request until the channel closes."""
    channel = socket.socket(fileno=channel_fd)
    os.environ.clear()
    os.environ.update(env)
    try:
        os.chdir(cwd)
    except OSError:
        pass
    os.dup2(2, 1)  # print() in user code goes to the server log, as in a worker
    sys.stdout = sys.stderr
    try:
        from nimbus_jupyter.runtime import handler

        loaded = handler.load(bundle_dir)
    except BaseException as exc:  # the worker's error, as a worker would report it
        send(channel, {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})
        return 1
    gc.collect()
    gc.freeze()
    why = fork_unsafe([channel_fd])
    send(channel, {"ready": True, "pid": os.getpid(), "load_seconds": loaded.load_seconds,
                   "extensions": loaded.extensions, "fork_unsafe": why})
    workers: List[int] = []
    signal.signal(signal.SIGCHLD, _reap)
    try:
        while True:
            try:
                request, fds = receive(channel)
            except (EOFError, ConnectionError):
                return 0
            if request.get("op") != "worker" or len(fds) != 1:
                for fd in fds:
                    os.close(fd)
                send(channel, {"error": f"unknown request {request.get('op')!r}"})
                continue
            why = fork_unsafe([channel_fd, fds[0]])
            if why:
                os.close(fds[0])
                send(channel, {"error": f"the version host cannot fork safely: {why}"})
                continue
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    _child_signals()
                    channel.close()
                    # Its own session: Linux's autogroup scheduler (on by default) shares the CPU fairly
                    # between sessions, so workers left in the zygote's one session would get one
                    # process's share between them whenever anything else runs on the machine.
                    os.setsid()
                    code = worker_main(fds[0], loaded)
                except BaseException:
                    traceback.print_exc()
                os._exit(code)
            os.close(fds[0])
            workers.append(pid)
            send(channel, {"pid": pid})
    finally:  # the server is gone (or stopped this version): so are this version's workers
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def worker_main(fd: int, loaded: Any) -> int:
    """A forked worker: fresh random state, then the same loop as a spawned worker, on its socket."""
    import random

    from .allocator import keep_freed_memory

    keep_freed_memory()  # after the fork: the host and the zygote keep glibc's defaults
    random.seed()  # CPython reseeds at fork too; numpy does not: every worker would draw the same numbers
    try:
        import numpy

        numpy.random.seed()
    except ImportError:
        pass
    from .worker import serve

    sock = socket.socket(fileno=fd)
    inp = sock.makefile("rb")
    out = sock.makefile("wb")
    return serve(inp, out, loaded)


def warm(home: str) -> int:
    """``--warm HOME``: start HOME's base zygote for this environment unless one answers, detached, its
    output in its log. Run as ``python -m`` like a server is, so the socket path (the environment's
    fingerprint) is the one a server of this environment will look for."""
    from pathlib import Path

    from .hosts import run_dir, zygote_path

    return serve_detached(str(zygote_path(run_dir(Path(home)))), base_main)


def serve_detached(path: str, serve: Any) -> int:
    """Unless a server answers on the Unix socket ``path`` already: detach (the launcher returns at once;
    the server gets its own session and ``path``'s log as its output) and ``serve(path)``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        probe.connect(path)
        return 0  # already serving
    except OSError:
        pass
    finally:
        probe.close()
    if os.fork():
        os._exit(0)
    os.setsid()
    from pathlib import Path

    log = os.open(str(Path(path).with_suffix(".log")), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    return serve(path)


def main(argv: List[str]) -> int:
    if argv and argv[0] == "--warm":
        return warm(argv[1])
    if argv and argv[0] == "--daemon":  # detach: the launcher exits at once, the zygote lives on its own
        argv = argv[1:]
        if os.fork():
            os._exit(0)
        os.setsid()
    return base_main(argv[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
