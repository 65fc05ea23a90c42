"""Finished batch chunks, saved as they finish, so an interrupted batch resumes where it stopped.

A chunk's key is a hash of the deployment's bundle hash, the fields and the chunk's texts: the same
input against the same pipeline finds its results again after a KeyboardInterrupt, a kernel restart
or a dead server; a new version of the pipeline never reuses old results. SQLite (standard library)
makes each save one transaction, safe against a kill at any moment.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

MAX_AGE_SECONDS = 7 * 24 * 3600


def chunk_key(bundle_hash: str, fields: Sequence[str], texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([bundle_hash, list(fields)]).encode())
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


class CheckpointStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        self.db = sqlite3.connect(str(path), timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a save survives the process being killed (what resuming is for), without an
        # fsync per chunk on the batch's main thread.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS chunks (key TEXT PRIMARY KEY, deployment TEXT, saved REAL, outcome TEXT)")
        path.chmod(0o600)

    def get(self, key: str) -> Optional[List[Dict[str, Any]]]:
        row = self.db.execute("SELECT outcome FROM chunks WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, deployment: str, outcome: List[Dict[str, Any]]) -> None:
        self.db.execute("INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?)",
                        (key, deployment, time.time(), json.dumps(outcome, separators=(",", ":"))))

    def count(self, deployment: Optional[str] = None) -> int:
        if deployment is None:
            return self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return self.db.execute("SELECT COUNT(*) FROM chunks WHERE deployment = ?", (deployment,)).fetchone()[0]

    def forget(self, deployment: str) -> None:
        self.db.execute("DELETE FROM chunks WHERE deployment = ?", (deployment,))

    def prune(self, max_age: float = MAX_AGE_SECONDS) -> None:
        self.db.execute("DELETE FROM chunks WHERE saved < ?", (time.time() - max_age,))

    def close(self) -> None:
        self.db.close()
