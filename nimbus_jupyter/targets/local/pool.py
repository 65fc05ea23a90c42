"""Worker processes of one version of a pipeline, and fair dispatch of events to them.

Like Lambda, a worker runs one event at a time; past the workers plus a short queue the pool says it
is saturated (the server answers 429). A worker that dies is replaced; the event it was running fails
with a retriable error.
"""
from __future__ import annotations

import asyncio
import sys
from typing import Any, Awaitable, Callable, Dict, List, Optional

from .hosts import Host, Worker, WorkerDied, WorkerLoadError, host_env

__all__ = ["Pool", "Saturated", "WorkerDied", "WorkerLoadError", "worker_env"]


class Saturated(Exception):
    """Every worker is busy and the queue is full."""


class Pool:
    """``size`` workers for one bundle, each busy with at most one event."""

    def __init__(self, host: Host, size: int, max_queue: int,
                 reopen: Optional[Callable[[], Awaitable[Host]]] = None,
                 on_replace: Optional[Callable[[], Any]] = None) -> None:
        self.host = host  # where workers come from (forked from the version's host, or spawned)
        self.reopen = reopen  # a new host when this one is gone (its process was killed)
        self.on_replace = on_replace  # told when a worker was replaced (the server rewrites status.json)
        self.size = size
        self.max_queue = max_queue
        self.workers: List[Worker] = []
        self._idle: "asyncio.Queue[Worker]" = asyncio.Queue()
        self._waiting = 0
        self._in_flight = 0
        self._stopping = False
        self.replaced = 0

    async def start(self) -> None:
        """Start every worker; if any fails to load, stop the others and raise its error."""
        results = await asyncio.gather(*(self.host.new_worker() for _ in range(self.size)), return_exceptions=True)
        workers = [r for r in results if isinstance(r, Worker)]
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
        await dead.stop(grace=1.0)
        if self._stopping:
            return
        try:
            try:
                worker = await self.host.new_worker()
            except WorkerLoadError:
                if self.reopen is None or getattr(self.host, "alive", True):
                    raise
                self.host = await self.reopen()  # the version's host died: load it again, then fork
                worker = await self.host.new_worker()
        except WorkerLoadError as exc:
            print(f"nimbus: could not replace a dead worker: {exc}", file=sys.stderr, flush=True)
            return
        self.workers = [w for w in self.workers if w is not dead] + [worker]
        self.replaced += 1
        self._idle.put_nowait(worker)
        if self.on_replace is not None:
            self.on_replace()

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


worker_env = host_env
