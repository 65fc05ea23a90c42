"""A bounded HTTP/1.1 load generator for 127.0.0.1 only: ``clients`` keep-alive connections, each
sending one request after another for ``seconds``. Plain asyncio streams, so hundreds of clients cost
little CPU next to the server on a 2-core machine. Used by bench/load.py and the fast load test.
"""
from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import List, Sequence
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    clients: int
    seconds: float
    codes: Counter = field(default_factory=Counter)
    latencies_ms: List[float] = field(default_factory=list)  # requests answered 200
    errors: Counter = field(default_factory=Counter)  # transport errors by type

    @property
    def answered(self) -> int:
        return sum(self.codes.values())

    def pct(self, q: float) -> float:
        values = sorted(self.latencies_ms)
        return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))] if values else float("nan")


async def _client(host: str, port: int, request: bytes, deadline: float, result: LoadResult, polite: bool) -> None:
    reader = writer = None
    rng = random.Random(id(result) + port + len(request))
    while time.monotonic() < deadline:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            started = time.perf_counter()
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionResetError("closed by the server")
            status = int(status_line.split()[1])
            length, close, retry_after = 0, False, 1.0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "connection" and value.strip().lower() == "close":
                    close = True
                elif name.lower() == "retry-after":
                    retry_after = float(value)
            await reader.readexactly(length)
            if status == 200:
                result.latencies_ms.append((time.perf_counter() - started) * 1e3)
            result.codes[status] += 1
            if status == 429:  # polite: wait Retry-After (with jitter), as the batch client does; else 50 ms
                await asyncio.sleep(retry_after * rng.uniform(0.5, 1.5) if polite else 0.05)
            if close:
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            result.errors[type(exc).__name__] += 1
            if writer is not None:
                writer.close()
            writer = None
            await asyncio.sleep(0.05)
    if writer is not None:
        writer.close()


def run_load(url: str, key: str, texts: Sequence[str], clients: int, seconds: float, polite: bool = True) -> LoadResult:
    """``clients`` concurrent keep-alive clients POSTing /predict for ``seconds`` (127.0.0.1 only).

    ``polite`` clients wait the 429's Retry-After (jittered); impolite ones retry after 50 ms."""
    parts = urlsplit(url)
    if parts.hostname != "127.0.0.1":
        raise ValueError(f"this load generator only targets 127.0.0.1, not {parts.hostname}")
    bodies = [json.dumps({"texts": [t]}).encode() for t in texts]
    requests = [(f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{parts.port}\r\nx-api-key: {key}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(b)}\r\n\r\n").encode() + b for b in bodies]
    result = LoadResult(clients, seconds)

    async def main() -> None:
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(_client("127.0.0.1", parts.port, requests[i % len(requests)], deadline, result, polite)
                               for i in range(clients)))

    asyncio.run(main())
    return result
