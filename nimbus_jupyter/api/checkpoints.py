"""Finished batch chunks, saved as they finish, so an interrupted batch resumes where it stopped.

A chunk's key is a hash of the bundle hash of the version that served it, the fields and the chunk's
texts: the same input against the same pipeline finds its results again after a KeyboardInterrupt, a
kernel restart or a dead server; another version never reuses them (after a rollback, the old
version's own results are found again, never another's). SQLite (standard library) makes each save one
transaction, safe against a kill at any moment.

Two tables hold chunks. ``answers`` (since the Lambda-at-scale work): a chunk whose rows all came back as
results is saved as the JSON of its answers as they arrived (``[answer, ...]``, each ``{"results": [...],
...}``), so a million-row batch does not encode every row a second time (that was ~20% of the client's
CPU). ``chunks``: any other chunk (a row with an error of its own), as its encoded outcomes -- the only
table stores written before had, and still read: their chunks resume. Code from before reads only
``chunks``, so it never mis-reads an ``answers`` row (it sends that chunk again).

A store that fails never costs results (the batch's DataFrame is built from memory; the store only
saves work for a later run):

- a file that is not a database, or a damaged one, is moved aside (``checkpoints.sqlite.corrupt-<time>``)
  with a warning naming both, and a new one is started;
- a home where it cannot be created or written (read-only) opens no store: ``open_store`` says why,
  and the batch runs without resume;
- a save that fails (disk full, locked by another process) warns once and is tried again with the next
  save; ``unsaved`` counts the chunks that never made it, for the batch's summary;
- a read that fails is a miss (the chunk is sent again).

No ``sqlite3`` or ``OSError`` leaves this module: each becomes a warning or the reason resume is off.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

MAX_AGE_SECONDS = 7 * 24 * 3600
BUSY_SECONDS = 2.0  # how long a save waits for another process's lock, until one fails; then 0.1 s
FILE_NAME = "checkpoints.sqlite"
TABLES = ("answers", "chunks")


class CheckpointWarning(UserWarning):
    """The checkpoint store failed in a way that costs resume, not results."""


def chunk_key(bundle_hash: str, fields: Sequence[str], texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([bundle_hash, list(fields)]).encode())
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def saves_as_text(answers: Sequence[str]) -> bool:
    """Whether ``CheckpointStore.put`` saves these answers' JSON as it is (else it encodes the outcomes)."""
    return bool(answers) and all(a.isascii() or _encodable(a) for a in answers)


class StoreUnavailable(Exception):
    """No store can be opened here (say, a read-only home); the message says why, for the summary."""


def open_store(home: Path) -> Tuple[Optional["CheckpointStore"], str]:
    """The store under ``home``, or None and why resume is off (a warning has said so too)."""
    try:
        return CheckpointStore(Path(home) / FILE_NAME), ""
    except StoreUnavailable as exc:
        note = f"off: {exc}"
        warnings.warn(f"resume is {note}; this batch runs and returns every row, but saves nothing for a later run",
                      CheckpointWarning, stacklevel=3)
        return None, note


class CheckpointStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.unsaved = 0  # chunks whose save failed and was not made good by a later one
        self._pending: List[Tuple[str, str, str, str, str]] = []  # (table, key, deployment, JSON, version)
        self._warned: Set[str] = set()
        self.db = self._open()

    # -- opening -------------------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create {self.path.parent} ({exc.strerror or exc})")
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            if not _damaged(exc):
                raise StoreUnavailable(f"cannot open {self.path} ({exc})")
            moved = self._move_aside()
            warnings.warn(f"the checkpoint store {self.path} is damaged ({exc}); it was moved aside to {moved.name} "
                          "and a new one started: this batch sends every chunk again", CheckpointWarning, stacklevel=4)
            try:
                return self._connect()
            except sqlite3.DatabaseError as again:
                raise StoreUnavailable(f"cannot open a new {self.path} ({again})")
        except OSError as exc:
            raise StoreUnavailable(f"cannot open {self.path} ({exc.strerror or exc})")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False)
        try:
            if self.path.exists() and self.path.stat().st_size:
                problem = db.execute("PRAGMA quick_check").fetchone()[0]
                if problem != "ok":
                    raise sqlite3.DatabaseError(f"database disk image is malformed: {problem}")
            db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a save survives the process being killed (what resuming is for), without an
            # fsync per chunk on the batch's main thread.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("CREATE TABLE IF NOT EXISTS chunks (key TEXT PRIMARY KEY, deployment TEXT, saved REAL, outcome TEXT)")
            columns = {row[1] for row in db.execute("PRAGMA table_info(chunks)")}
            if "version" not in columns:  # stores written before chunks said which version served them
                db.execute("ALTER TABLE chunks ADD COLUMN version TEXT")
            db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, deployment TEXT, saved REAL, "
                       "version TEXT, body TEXT)")
            db.execute("CREATE TABLE IF NOT EXISTS timing (hash TEXT PRIMARY KEY, seconds_per_text REAL, saved REAL)")
        except BaseException:
            db.close()
            raise
        try:
            self.path.chmod(0o600)
        except OSError:
            pass
        return db

    def _move_aside(self) -> Path:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(str(self.path) + suffix)
            if source.exists():
                try:
                    os.replace(source, Path(str(aside) + suffix))
                except OSError as exc:
                    raise StoreUnavailable(f"{self.path} is damaged and cannot be moved aside ({exc.strerror or exc})")
        return aside

    # -- chunks --------------------------------------------------------------------------------------
    def get(self, key: str) -> Optional[Tuple[List[Dict[str, Any]], str]]:
        """The saved outcomes of a chunk and the version that served them, or None (also when the read fails)."""
        try:
            row = self.db.execute("SELECT body, version FROM answers WHERE key = ?", (key,)).fetchone()
            outcomes = _answer_rows(row[0]) if row else None
            if outcomes is not None:
                return outcomes, row[1] or ""
            row = self.db.execute("SELECT outcome, version FROM chunks WHERE key = ?", (key,)).fetchone()
            return (json.loads(row[0]), row[1] or "") if row else None
        except (sqlite3.Error, ValueError) as exc:
            self._warn("read", f"could not read a saved chunk from {self.path} ({exc}); it is sent again")
            return None

    def put(self, key: str, deployment: str, outcome: List[Dict[str, Any]], version: str = "",
            answers: Optional[List[str]] = None) -> bool:
        """Save a chunk (with any earlier ones whose save failed); False when it could not be saved.
        ``answers``: the JSON texts of the answers that gave every one of its rows a result, in row order
        (``outcome`` is what they decoded to): saved as they are, not encoded again."""
        joined = "[" + ",".join(answers) + "]" if answers else ""
        if joined and saves_as_text(answers):
            self._pending.append(("answers", key, deployment, joined, version))
        else:
            self._pending.append(("chunks", key, deployment, json.dumps(outcome, separators=(",", ":")), version))
        return self._flush()

    def _flush(self) -> bool:
        if not self._pending:
            return True
        now = time.time()
        try:
            with _transaction(self.db):
                for table, column in (("answers", "body"), ("chunks", "outcome")):
                    rows = [(k, d, now, o, v) for t, k, d, o, v in self._pending if t == table]
                    if rows:
                        self.db.executemany(f"INSERT OR REPLACE INTO {table} (key, deployment, saved, {column}, version) "
                                            "VALUES (?, ?, ?, ?, ?)", rows)
        except sqlite3.Error as exc:
            self.unsaved = len(self._pending)
            self._warn("save", f"could not save finished chunks to {self.path} ({_reason(exc)}); the batch goes on and "
                       "returns every row, but a later run sends the unsaved chunks again")
            self._shorten_waits()
            return False
        self._pending.clear()
        self.unsaved = 0
        return True

    def count(self, deployment: Optional[str] = None) -> int:
        """Saved chunks (of either table; a key in both counts once for each)."""
        if deployment is None:
            return sum(self.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES)
        return sum(self.db.execute(f"SELECT COUNT(*) FROM {t} WHERE deployment = ?", (deployment,)).fetchone()[0]
                   for t in TABLES)

    def forget(self, deployment: str) -> None:
        with _transaction(self.db):
            for table in TABLES:
                self.db.execute(f"DELETE FROM {table} WHERE deployment = ?", (deployment,))

    def prune(self, max_age: float = MAX_AGE_SECONDS) -> None:
        try:
            for table in TABLES:
                self.db.execute(f"DELETE FROM {table} WHERE saved < ?", (time.time() - max_age,))
        except sqlite3.Error as exc:
            self._warn("prune", f"could not prune old chunks in {self.path} ({_reason(exc)}); saves may fail too")
            self._shorten_waits()

    # -- time per text, kept per version so a later run sizes its requests from the start ------------
    def timing(self, bundle_hash: str) -> Optional[float]:
        try:
            row = self.db.execute("SELECT seconds_per_text FROM timing WHERE hash = ?", (bundle_hash,)).fetchone()
        except sqlite3.Error:
            return None
        return float(row[0]) if row and row[0] else None

    def save_timing(self, bundle_hash: str, seconds_per_text: Optional[float]) -> None:
        if not seconds_per_text:
            return
        try:
            self.db.execute("INSERT OR REPLACE INTO timing VALUES (?, ?, ?)", (bundle_hash, seconds_per_text, time.time()))
        except sqlite3.Error:
            pass  # only a hint for the next run

    def close(self) -> None:
        self._flush()
        try:
            self.db.close()
        except sqlite3.Error:
            pass

    def _shorten_waits(self) -> None:
        """After a failed write, wait 0.1 s for a lock, not BUSY_SECONDS: a lock that stays must not stall
        every chunk of the batch."""
        try:
            self.db.execute("PRAGMA busy_timeout = 100")
        except sqlite3.Error:
            pass

    def _warn(self, kind: str, message: str) -> None:
        """Each kind of failure is said once per batch."""
        if kind not in self._warned:
            self._warned.add(kind)
            warnings.warn(message, CheckpointWarning, stacklevel=4)


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: Any, *_: Any) -> None:
        if kind is None:
            try:
                self.db.execute("COMMIT")
                return
            except sqlite3.Error:
                self._rollback()
                raise
        self._rollback()

    def _rollback(self) -> None:
        try:
            self.db.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def _answer_rows(body: str) -> Optional[List[Dict[str, Any]]]:
    """A saved ``answers`` row as the chunk's outcomes (what the batch made of those answers when they
    came), or None when it is not the list of answers it should be (then it is a miss)."""
    from .batch_runner import _row

    answers = json.loads(body)
    if not isinstance(answers, list) or not all(isinstance(a, dict) and isinstance(a.get("results"), list) for a in answers):
        return None
    return [_row(r) for answer in answers for r in answer["results"]]


def _encodable(text: str) -> bool:
    """SQLite takes UTF-8: a lone surrogate in an answer's text cannot be saved as it is."""
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    """Damage to the file itself (garbage, truncation), as opposed to a lock or a read-only place."""
    if not isinstance(exc, sqlite3.OperationalError):
        return True  # "file is not a database", "database disk image is malformed"
    text = str(exc).lower()
    return any(s in text for s in ("not a database", "malformed"))


def _reason(exc: sqlite3.Error) -> str:
    text = str(exc)
    if "full" in text.lower():
        return f"{text}: the disk is full"
    if "locked" in text.lower() or "busy" in text.lower():
        return f"{text}: another process holds it"
    return text


def forget_deployment(home: Path, name: str) -> None:
    """Forget one deployment's chunks, never raising (``destroy`` must not fail on the store): a damaged
    store is moved aside, an unwritable one is left alone, with a warning either way."""
    path = Path(home) / FILE_NAME
    if not path.exists():
        return
    try:
        store = CheckpointStore(path)
    except StoreUnavailable as exc:
        warnings.warn(f"could not forget the saved chunks of {name!r}: {exc}", CheckpointWarning, stacklevel=3)
        return
    try:
        store.forget(name)
    except sqlite3.Error as exc:
        warnings.warn(f"could not forget the saved chunks of {name!r} in {path} ({_reason(exc)}); they expire "
                      "within 7 days", CheckpointWarning, stacklevel=3)
    finally:
        store.close()
