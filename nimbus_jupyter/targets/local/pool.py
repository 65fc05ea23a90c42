"""Worker processes of one version of a pipeline, and fair dispatch of events to them.

Like Lambda, a worker runs one event at a time; past the workers plus a short queue the pool says it
is saturated (the server answers 429). A worker that dies is replaced; the event it was running fails
with a retriable error.
"""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from .framing import encode, read_frame_async

_FRAME_LIMIT = 64 * 1024 * 1024


class Saturated(Exception):
    """Every worker is busy and the queue is full."""


class WorkerDied(Exception):
    """The worker running an event died before answering."""


class WorkerLoadError(Exception):
    """A worker could not load the bundle; the message is the worker's own error."""


class Worker:
    def __init__(self, bundle_dir: Path, env: Dict[str, str]) -> None:
        self.bundle_dir = bundle_dir
        self.env = env
        self.proc: Optional[asyncio.subprocess.Process] = None
        self.load_seconds = 0.0
        self.extensions: List[str] = []  # the Doc extensions the pipeline registered as it loaded

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "nimbus_jupyter.targets.local.worker", str(self.bundle_dir),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None,
            env=self.env, limit=_FRAME_LIMIT,
        )
        try:
            hello = await read_frame_async(self.proc.stdout)
        except (asyncio.IncompleteReadError, ConnectionError):
            await self.proc.wait()
            raise WorkerLoadError(f"the worker exited with code {self.proc.returncode} while loading the pipeline; see the server log")
        if "error" in hello:
            await self.proc.wait()
            raise WorkerLoadError(hello["error"] + "\n" + hello.get("traceback", ""))
        self.load_seconds = hello["load_seconds"]
        self.extensions = list(hello.get("extensions") or [])

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


class Pool:
    """``size`` workers for one bundle, each busy with at most one event."""

    def __init__(self, bundle_dir: Path, size: int, max_queue: int, env: Dict[str, str]) -> None:
        self.bundle_dir = bundle_dir
        self.size = size
        self.max_queue = max_queue
        self.env = env
        self.workers: List[Worker] = []
        self._idle: "asyncio.Queue[Worker]" = asyncio.Queue()
        self._waiting = 0
        self._in_flight = 0
        self._stopping = False
        self.replaced = 0

    async def start(self) -> None:
        """Start every worker; if any fails to load, stop the others and raise its error."""
        workers = [Worker(self.bundle_dir, self.env) for _ in range(self.size)]
        results = await asyncio.gather(*(w.start() for w in workers), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await asyncio.gather(*(w.stop() for w in workers))
            raise errors[0]
        self.workers = workers
        for worker in workers:
            self._idle.put_nowait(worker)

    @property
    def busy(self) -> int:
        return self._in_flight

    @property
    def queued(self) -> int:
        return self._waiting

    @property
    def saturated(self) -> bool:
        return self._idle.empty() and self._waiting >= self.max_queue

    async def submit(self, event: Dict[str, Any]) -> Dict[str, Any]:
        if self.saturated:
            raise Saturated()
        self._waiting += 1
        try:
            worker = await self._idle.get()
            while not worker.alive:  # died while idle: replace it and take the next one
                asyncio.get_running_loop().create_task(self._replace(worker))
                worker = await self._idle.get()
        finally:
            self._waiting -= 1
        self._in_flight += 1
        try:
            response = await worker.call(event)
        except WorkerDied:
            asyncio.get_running_loop().create_task(self._replace(worker))
            raise
        finally:
            self._in_flight -= 1
        self._idle.put_nowait(worker)
        return response

    async def _replace(self, dead: Worker) -> None:
        if dead.proc:
            await dead.proc.wait()
        if self._stopping:
            return
        worker = Worker(self.bundle_dir, self.env)
        try:
            await worker.start()
        except WorkerLoadError as exc:
            print(f"nimbus: could not replace a dead worker: {exc}", file=sys.stderr, flush=True)
            return
        self.workers = [w for w in self.workers if w is not dead] + [worker]
        self.replaced += 1
        self._idle.put_nowait(worker)

    async def drain(self, timeout: float = 60.0) -> None:
        """Wait for events in flight to finish (up to ``timeout``), then stop every worker."""
        self._stopping = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (self._in_flight or self._waiting) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.gather(*(w.stop() for w in self.workers))

    @property
    def extensions(self) -> List[str]:
        return self.workers[0].extensions if self.workers else []

    def worker_pids(self) -> List[int]:
        return [w.pid for w in self.workers if w.pid and w.alive]


def worker_env(name: str, version: str) -> Dict[str, str]:
    env = dict(os.environ)
    env.update({"NIMBUS_DEPLOYMENT": name, "NIMBUS_VERSION": version, "PYTHONUNBUFFERED": "1"})
    return env
