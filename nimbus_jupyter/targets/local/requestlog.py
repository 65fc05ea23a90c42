"""server.log: one JSON line per request (written by the server), read and tailed by the kernel side.

The log also holds what the server and its workers print (a failed request's redacted traceback, a
worker that could not be replaced). Those lines carry no time of their own: they take the time of the
next request line (a traceback is printed while its request runs, its request line when it is
answered), or the file's modification time when none follows. A request line never holds the texts
or the key: counts, status, duration and the contract's error message only.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from ...core.loglines import LogLine, is_error

MAX_READ_BYTES = 32 * 1024 * 1024  # logs() reads at most the last 32 MB of server.log
KIND = "request"


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def epoch_of(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def request_line(request_id: str, method: str, route: str, status: int, duration_ms: float,
                 texts: Optional[int], error: Optional[str], row_errors: int = 0) -> str:
    """The server's line for one answered request; ``row_errors``: rows of a 200 that are their
    text's pipeline error (such a request counts as failed)."""
    entry: Dict[str, Any] = {"time": iso(time.time()), "kind": KIND, "request_id": request_id, "method": method,
                             "route": route, "status": status, "duration_ms": round(duration_ms, 2)}
    if texts is not None:
        entry["texts"] = texts
    if row_errors:
        entry["row_errors"] = row_errors
    if error is not None:
        entry["error"] = error[:300]
    return json.dumps(entry, separators=(",", ":"))


@dataclass
class Entry:
    """One line of server.log as read back: a request line (``request`` set) or anything else."""

    time: float
    raw: str
    request: Optional[Dict[str, Any]] = None

    @property
    def failed(self) -> bool:
        if self.request is not None:
            return int(self.request.get("status", 0)) >= 400 or bool(self.request.get("row_errors"))
        return is_error(self.raw)

    def log_line(self) -> LogLine:
        if self.request is None:
            return LogLine(iso(self.time), self.raw)
        r = self.request
        parts = [f"{r.get('method', '')} {r.get('route', '')} {r.get('status')} {r.get('duration_ms')} ms"]
        if "texts" in r:
            parts.append(f"texts={r['texts']}")
        if r.get("row_errors"):
            parts.append(f"row_errors={r['row_errors']}")
        parts.append(f"id={r.get('request_id')}")
        if r.get("error"):
            parts.append(f"error={r['error']!r}")
        return LogLine(r["time"], " ".join(parts), request_id=str(r.get("request_id", "")))


def parse_request(raw: str) -> Optional[Dict[str, Any]]:
    if not raw.startswith("{"):
        return None
    try:
        entry = json.loads(raw)
        if isinstance(entry, dict) and entry.get("kind") == KIND:
            epoch_of(entry["time"])
            return entry
    except (ValueError, KeyError, TypeError):
        pass
    return None


def parse(lines: List[str], fallback_time: float) -> List[Entry]:
    """Entries in file order; an untimed line takes the time of the next request line."""
    entries: List[Entry] = []
    pending: List[str] = []
    for raw in lines:
        if not raw.strip():
            continue
        request = parse_request(raw)
        if request is None:
            pending.append(raw)
            continue
        stamp = epoch_of(request["time"])
        entries.extend(Entry(stamp, p) for p in pending)
        pending = []
        entries.append(Entry(stamp, raw, request))
    entries.extend(Entry(fallback_time, p) for p in pending)
    return entries


def select(entries: List[Entry], start: float, errors: bool) -> List[Entry]:
    """Entries from ``start`` on; with ``errors``, failed requests and blocks of untimed lines that
    report an error (a traceback's every line, not only its first)."""
    chosen = [e for e in entries if e.time >= start]
    if not errors:
        return chosen
    out: List[Entry] = []
    block: List[Entry] = []
    for entry in chosen + [None]:  # type: ignore[list-item]
        if entry is not None and entry.request is None:
            block.append(entry)
            continue
        if any(b.failed for b in block):
            out.extend(block)
        block = []
        if entry is not None and entry.failed:
            out.append(entry)
    return out


def read_tail(path: Path) -> List[str]:
    """The last MAX_READ_BYTES of the log, as lines (the first, maybe partial, dropped when cut)."""
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - MAX_READ_BYTES))
        data = fh.read()
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[1:] if size > MAX_READ_BYTES else lines


def recent(path: Path, start: float, errors: bool, limit: int) -> List[LogLine]:
    if not path.exists():
        return []
    entries = select(parse(read_tail(path), path.stat().st_mtime), start, errors)
    return [e.log_line() for e in entries[-limit:]]


def follow(path: Path, start: float, errors: bool, poll: float = 0.2) -> Iterator[LogLine]:
    """The lines since ``start``, then every new line as it is written, until the caller stops.

    The lines already there and the new ones are read through one open file, so none falls between
    the two. Untimed lines seen while following take the time they were read. A log that is replaced
    or truncated (a destroy and a new deploy) is read again from its start.
    """
    fh = None
    inode = None
    buffer = b""
    since = start  # only the first read filters by time; everything after it is new
    try:
        while True:
            if fh is None:
                if not path.exists():
                    time.sleep(poll)
                    continue
                fh = open(path, "rb")
                inode = os.fstat(fh.fileno()).st_ino
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, size - MAX_READ_BYTES))
                if size > MAX_READ_BYTES:
                    fh.readline()  # a cut first line
            chunk = fh.read()
            if chunk:
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                texts = [c.decode("utf-8", "replace") for c in complete]
                for entry in select(parse(texts, time.time()), since, errors):
                    yield entry.log_line()
                since = 0.0
                continue
            time.sleep(poll)
            try:
                st = os.stat(path)
                replaced = st.st_ino != inode or st.st_size < fh.tell()
            except FileNotFoundError:
                replaced = True
            if replaced:
                fh.close()
                fh, buffer, since = None, b"", 0.0
    finally:
        if fh is not None:
            fh.close()
