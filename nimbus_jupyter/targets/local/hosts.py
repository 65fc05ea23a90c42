"""The server's side of the fork servers (zygote.py): where workers come from.

A ``Host`` makes workers for one version of the pipeline. ``ForkHost`` asks that version's host
process (forked from the base zygote, the pipeline already loaded) to fork one: milliseconds.
``SpawnHost`` starts a new interpreter per worker, as before: the fallback when forking is off
(``NIMBUS_ZYGOTE=0``), not possible (not Linux) or not safe (the pipeline's code started a thread or
opened a socket while loading). Either way a worker is the same to the pool: one event at a time
over a framed stream.
"""
from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from .framing import encode, read_frame_async

FRAME_LIMIT = 64 * 1024 * 1024
ZYGOTE_START_TIMEOUT = 120.0
_SOURCES = ("runtime", "targets/local")  # nimbus code a zygote has imported: a change means a new zygote


class WorkerDied(Exception):
    """The worker running an event died before answering."""


class WorkerLoadError(Exception):
    """A worker could not load the bundle; the message is the worker's own error."""


class ZygoteUnavailable(Exception):
    """No fork server could be reached or started; the server spawns workers instead."""


# -- workers ---------------------------------------------------------------------------------------------
class Worker:
    """One worker as the pool sees it: start (read its hello), call, stop."""

    pid: Optional[int] = None
    load_seconds = 0.0
    extensions: List[str] = []

    async def start(self) -> None:
        raise NotImplementedError

    async def call(self, event: Dict[str, Any]) -> Dict[str, Any]:
        raise NotImplementedError

    @property
    def alive(self) -> bool:
        raise NotImplementedError

    async def stop(self, grace: float = 5.0) -> None:
        raise NotImplementedError

    def _hello(self, hello: Dict[str, Any]) -> None:
        if "error" in hello:
            raise WorkerLoadError(hello["error"] + "\n" + hello.get("traceback", ""))
        self.load_seconds = hello["load_seconds"]
        self.extensions = list(hello.get("extensions") or [])
        self.pid = hello.get("pid", self.pid)


class SpawnedWorker(Worker):
    """``python -m nimbus_jupyter.targets.local.worker BUNDLE``: imports spaCy and loads the bundle itself."""

    def __init__(self, bundle_dir: Path, env: Dict[str, str]) -> None:
        self.bundle_dir = bundle_dir
        self.env = env
        self.proc: Optional[asyncio.subprocess.Process] = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "nimbus_jupyter.targets.local.worker", str(self.bundle_dir),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None,
            env=self.env, limit=FRAME_LIMIT,
        )
        self.pid = self.proc.pid
        try:
            hello = await read_frame_async(self.proc.stdout)
        except (asyncio.IncompleteReadError, ConnectionError):
            await self.proc.wait()
            raise WorkerLoadError(f"the worker exited with code {self.proc.returncode} while loading the pipeline; see the server log")
        if "error" in hello:
            await self.proc.wait()
        self._hello(hello)
        self.pid = self.proc.pid

    async def call(self, event: Dict[str, Any]) -> Dict[str, Any]:
        assert self.proc and self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write(encode(event))
            await self.proc.stdin.drain()
            return await read_frame_async(self.proc.stdout)
        except (asyncio.IncompleteReadError, ConnectionError, BrokenPipeError) as exc:
            raise WorkerDied(str(exc)) from exc

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def stop(self, grace: float = 5.0) -> None:
        if not self.proc or self.proc.returncode is not None:
            return
        if self.proc.stdin:
            self.proc.stdin.close()  # the worker's loop ends at EOF
        try:
            await asyncio.wait_for(self.proc.wait(), grace)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()


class ForkedWorker(Worker):
    """A worker forked by a version host; its socket is its lifeline (EOF: it died)."""

    def __init__(self, sock: socket.socket, pid: int) -> None:
        self.sock = sock
        self.pid = pid
        self.reader: Optional[asyncio.StreamReader] = None
        self.writer: Optional[asyncio.StreamWriter] = None
        self._dead = False

    async def start(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(sock=self.sock, limit=FRAME_LIMIT)
        try:
            hello = await read_frame_async(self.reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            self._dead = True
            raise WorkerLoadError("the forked worker exited before it was ready; see the server log")
        self._hello(hello)

    async def call(self, event: Dict[str, Any]) -> Dict[str, Any]:
        assert self.reader and self.writer
        try:
            self.writer.write(encode(event))
            await self.writer.drain()
            return await read_frame_async(self.reader)
        except (asyncio.IncompleteReadError, ConnectionError, BrokenPipeError) as exc:
            self._dead = True
            raise WorkerDied(str(exc)) from exc

    @property
    def alive(self) -> bool:
        return not self._dead and self.reader is not None and not self.reader.at_eof()

    async def stop(self, grace: float = 5.0) -> None:
        if self.writer is None:
            return
        if self.alive:
            self.writer.close()  # the worker's loop ends at EOF; ours then reads EOF when it has exited
            try:
                await asyncio.wait_for(self.reader.read(), grace)  # type: ignore[union-attr]
            except (asyncio.TimeoutError, ConnectionError):
                _kill(self.pid)
        else:
            self.writer.close()
        self._dead = True


def _kill(pid: Optional[int]) -> None:
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


# -- hosts: one per version ------------------------------------------------------------------------------
class Host:
    """Makes workers for one bundle."""

    bundle_dir: Path
    how = ""

    async def new_worker(self) -> Worker:
        raise NotImplementedError

    async def close(self) -> None:
        pass

    @property
    def pid(self) -> Optional[int]:
        return None


class SpawnHost(Host):
    how = "spawn"

    def __init__(self, bundle_dir: Path, env: Dict[str, str], why: str = "") -> None:
        self.bundle_dir, self.env, self.why = bundle_dir, env, why

    async def new_worker(self) -> Worker:
        worker = SpawnedWorker(self.bundle_dir, self.env)
        await worker.start()
        return worker


class ForkHost(Host):
    """A version host process: the bundle loaded once, workers forked from it on request."""

    how = "fork"

    def __init__(self, bundle_dir: Path, env: Dict[str, str], channel: socket.socket, pid: int) -> None:
        self.bundle_dir, self.env, self.channel, self._pid = bundle_dir, env, channel, pid
        self._lock = asyncio.Lock()
        self.load_seconds = 0.0
        self.extensions: List[str] = []
        self.fork_unsafe: Optional[str] = None

    @property
    def pid(self) -> Optional[int]:
        return self._pid

    @classmethod
    async def start(cls, base: "BaseZygote", bundle_dir: Path, env: Dict[str, str]) -> "ForkHost":
        """Fork a version host from the base zygote and wait until it has loaded the bundle."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            reply = await base.request({"op": "host", "bundle_dir": str(bundle_dir), "env": env, "cwd": os.getcwd()},
                                       [theirs.fileno(), 2])
        finally:
            theirs.close()
        if "error" in reply:
            mine.close()
            raise ZygoteUnavailable(reply["error"])
        host = cls(bundle_dir, env, mine, int(reply["pid"]))
        mine.setblocking(False)
        try:
            hello = await host._receive()
        except EOFError:
            await host.close()
            raise WorkerLoadError("the version host exited while loading the pipeline; see the server log")
        if "error" in hello:
            await host.close()
            raise WorkerLoadError(hello["error"] + "\n" + hello.get("traceback", ""))
        host.load_seconds, host.extensions = hello["load_seconds"], list(hello.get("extensions") or [])
        host.fork_unsafe = hello.get("fork_unsafe")
        return host

    async def _receive(self) -> Dict[str, Any]:
        import pickle

        data = await asyncio.get_running_loop().sock_recv(self.channel, 1 << 20)
        if not data:
            raise EOFError
        return pickle.loads(data[4:])

    async def new_worker(self) -> Worker:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            async with self._lock:
                try:
                    socket.send_fds(self.channel, [encode({"op": "worker"})], [theirs.fileno()])
                    reply = await self._receive()
                except (EOFError, OSError) as exc:
                    raise WorkerLoadError(f"the version host is gone ({exc or 'closed'})") from None
        finally:
            theirs.close()
        if "error" in reply:
            mine.close()
            raise WorkerLoadError(reply["error"])
        worker = ForkedWorker(mine, int(reply["pid"]))
        await worker.start()
        return worker

    @property
    def alive(self) -> bool:
        return self.channel.fileno() >= 0 and _exists(self._pid)

    async def close(self) -> None:
        """The host kills its workers and exits when its channel closes."""
        try:
            self.channel.close()
        except OSError:
            pass


def _exists(pid: Optional[int]) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


# -- the base zygote ----------------------------------------------------------------------------------------
def zygote_enabled() -> bool:
    return sys.platform.startswith("linux") and os.environ.get("NIMBUS_ZYGOTE", "1") != "0" and hasattr(socket, "send_fds")


def run_dir(home: Path) -> Path:
    """Where the base zygote's socket lives: ``<home>/run`` (0700), or a private temp dir when that path
    is too long for a Unix socket."""
    path = home / "run"
    if len(str(path)) > 80:
        path = Path(tempfile.gettempdir()) / f"nimbus-{os.getuid()}-{hashlib.sha256(str(home).encode()).hexdigest()[:10]}"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def fingerprint() -> str:
    """What the base zygote has imported depends on: this Python, its paths, the packages' files and the
    environment variables read at import. Another fingerprint is another zygote (a stale one idles out)."""
    parts = [sys.executable, sys.version, os.pathsep.join(sys.path[1:])]
    parts += [f"{name}={os.environ.get(name, '')}" for name in
              ("PYTHONPATH", "PYTHONHASHSEED", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")]
    for module in ("spacy", "thinc", "numpy", "srsly", "nimbus_jupyter"):
        spec = importlib.util.find_spec(module)
        origin = spec.origin if spec and spec.origin else ""
        parts.append(f"{module}:{origin}:{_mtime(origin)}")
    package = Path(__file__).resolve().parents[2]
    for sub in _SOURCES:
        for path in sorted((package / sub).glob("*.py")):
            parts.append(f"{path.name}:{_mtime(str(path))}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def zygote_path(directory: Path) -> Path:
    """The socket of the base zygote for this environment (its fingerprint) in ``directory``."""
    return directory / f"zygote-{fingerprint()}.sock"


def warm_base_zygote(home: Path) -> bool:
    """Start ``home``'s base zygote in the background (unless one answers), so the first deploy finds
    spaCy already imported instead of waiting ~1 s for it. Returns at once and never raises: a deploy
    that finds no zygote starts one itself. A zygote nobody uses exits after NIMBUS_ZYGOTE_IDLE s."""
    if not zygote_enabled():
        return False
    return launch_warm("nimbus_jupyter.targets.local.zygote", home)


def launch_warm(module: str, home: Path) -> bool:
    """``python -m MODULE --warm HOME`` in the background, detached (it forks its server and exits), reaped
    by a daemon thread so it is never a zombie; False when it cannot even be launched."""
    try:
        launcher = subprocess.Popen([sys.executable, "-m", module, "--warm", str(home)],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    cwd=str(run_dir(home)), close_fds=True, start_new_session=True)
    except OSError:
        return False
    threading.Thread(target=launcher.wait, name="nimbus-warm-launcher", daemon=True).start()
    return True


class BaseZygote:
    """A connection to the base zygote of this home and environment, started when none answers."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = zygote_path(run_dir(home))
        self.sock: Optional[socket.socket] = None
        self._lock = asyncio.Lock()
        self.started_it = False

    async def connect(self, timeout: float = ZYGOTE_START_TIMEOUT) -> None:
        if self.sock is not None:
            return
        sock = self._try_connect()
        if sock is None:
            await self._start()
            deadline = time.monotonic() + timeout
            while sock is None:
                if time.monotonic() > deadline:
                    raise ZygoteUnavailable(f"the zygote did not start in {timeout:.0f} s (see {self.path.with_suffix('.log')})")
                await asyncio.sleep(0.01)
                sock = self._try_connect()
        sock.setblocking(False)
        self.sock = sock

    def _try_connect(self) -> Optional[socket.socket]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.connect(str(self.path))
            return sock
        except OSError:
            sock.close()
            return None

    async def _start(self) -> None:
        """Launch the zygote detached (its own session: it outlives this server and serves the next)."""
        log = os.open(self.path.with_suffix(".log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "nimbus_jupyter.targets.local.zygote", "--daemon", str(self.path),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=str(self.path.parent), close_fds=True)
        finally:
            os.close(log)
        await proc.wait()  # the launcher forks the zygote and exits at once
        self.started_it = True

    async def request(self, message: Dict[str, Any], fds: List[int]) -> Dict[str, Any]:
        import pickle

        async with self._lock:
            for attempt in range(2):
                await self.connect()
                assert self.sock is not None
                try:
                    socket.send_fds(self.sock, [encode(message)], fds) if fds else self.sock.send(encode(message))
                    data = await asyncio.get_running_loop().sock_recv(self.sock, 1 << 20)
                    if data:
                        return pickle.loads(data[4:])
                except OSError:
                    pass
                self.close()  # it went away (idle, destroyed, replaced): connect again, starting one if needed
            raise ZygoteUnavailable(f"the zygote at {self.path} closed the connection")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def stop_zygotes(home: Path) -> List[int]:
    """Stop every base zygote and job host of ``home`` (when its last local deployment is destroyed): their
    sockets are removed, so no server or submit reaches them again, and they are asked to exit. Runners
    a job host forked run on in their own sessions (their job says what became of the deployment)."""
    stopped: List[int] = []
    directory = run_dir(home)
    for sock_path in [*directory.glob("zygote-*.sock"), *directory.glob("jobs-host.sock")]:
        pid = _zygote_pid(sock_path)
        try:
            sock_path.unlink()
        except OSError:
            pass
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
                stopped.append(pid)
            except OSError:
                pass
    return stopped


def _zygote_pid(sock_path: Path) -> Optional[int]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.settimeout(2.0)
    try:
        sock.connect(str(sock_path))
        sock.send(encode({"op": "ping"}))
        import pickle

        data = sock.recv(1 << 16)
        return int(pickle.loads(data[4:])["pong"]) if data else None
    except (OSError, ValueError, KeyError):
        return None
    finally:
        sock.close()


def host_env(name: str, version: str) -> Dict[str, str]:
    env = dict(os.environ)
    env.update({"NIMBUS_DEPLOYMENT": name, "NIMBUS_VERSION": version, "PYTHONUNBUFFERED": "1"})
    return env


async def open_host(base: Optional[BaseZygote], bundle_dir: Path, env: Dict[str, str]) -> Tuple[Host, str]:
    """A host for ``bundle_dir``: forked when possible, else spawning; and a note for the log when it spawns."""
    if base is None:
        return SpawnHost(bundle_dir, env), ""
    try:
        host = await ForkHost.start(base, bundle_dir, env)
    except ZygoteUnavailable as exc:
        return SpawnHost(bundle_dir, env, str(exc)), f"workers start as new processes: {exc}"
    if host.fork_unsafe:
        await host.close()
        why = f"the pipeline's code left the process unsafe to fork ({host.fork_unsafe})"
        return SpawnHost(bundle_dir, env, why), f"workers start as new processes: {why}"
    return host, ""
