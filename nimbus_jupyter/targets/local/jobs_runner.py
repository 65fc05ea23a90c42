"""The local job runner: ``python -m nimbus_jupyter.targets.local.jobs_runner JOB_DIR``, started detached.

It takes the job's lock (or exits: another runner has it), streams the source shard by shard, scores
each shard with the job's scorer -- the batch client's public function, named in the spec
(``JobSpec.scorer``, ``nimbus_jupyter.api.batching:batch`` unless a caller chose another with the same
signature), so retries, splitting, per-row errors and version pinning are the batch client's -- and
writes each shard's Parquet file atomically, then its progress -- in a writer thread, while the next
shard is already being scored, so the endpoint does not wait for the writes. A shard whose file exists is done:
a runner started again (after SIGKILL, a reboot) skips it and sends only the rest.

The job is pinned to the version live at submit: before and after every shard the runner checks the
registry record (version and content hash) and the server's ``/health`` version; any other version
stops the job before that shard's results are kept. A shard whose rows failed while the endpoint
went away is not kept either: those rows were never scored, and the job says how to resume.
"""
from __future__ import annotations

import importlib
import inspect
import sys
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from filelock import Timeout

from ...core.errors import NimbusError
from ...core.job_data import json_columns, shard_rows_on_disk, shard_table, shards, count_rows, write_manifest, write_shard
from ...core.jobs import (CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, TERMINAL, JobSpec, JobStore, Manifest,
                          shard_name)
from ...core.records import now_iso
from ...core.registry import Registry
from .jobs import read_state, runner_lock, write_state

MAX_FAILURES_KEPT = 20
EMPTY_TEXT = "empty text: nothing to score"


class Stop(Exception):
    """The job cannot go on (its version went away, its endpoint died): state failed, with what to do."""


class Cancelled(Exception):
    pass


def resolve(scorer: str) -> Callable[..., Any]:
    module, _, name = scorer.partition(":")
    return getattr(importlib.import_module(module), name)


class Runner:
    def __init__(self, job_dir: Path) -> None:
        self.dir = job_dir
        self.registry = Registry(job_dir.parent.parent)
        spec = JobStore(self.registry.home).get(job_dir.name)
        if spec is None:
            raise SystemExit(f"no job.json in {job_dir}")
        self.spec: JobSpec = spec
        self.state: Dict[str, Any] = read_state(job_dir)
        self.output = Path(spec.output)
        self.score = resolve(spec.scorer)
        parameters = inspect.signature(self.score).parameters
        self.pass_version = "version" in parameters
        # The job resumes by shard (a shard's file is whole or absent), so the batch's own chunk checkpoints
        # would be saved for nothing: 12% of the runner's CPU (py-spy), taken from the workers on 2 cores,
        # and a lock shared with the notebook's batches in the same store.
        self.pass_resume = "resume" in parameters
        self.fields: Optional[List[str]] = None
        self.columns: Optional[List[str]] = None

    # -- the run -------------------------------------------------------------------------------------
    def run(self) -> None:
        state = self.state
        if state.get("state") in TERMINAL:
            return
        state["runs"] = int(state.get("runs") or 0) + 1
        state["pid"] = _pid()
        state["sent"] = []
        state["detail"] = ""
        try:
            if self._cancel_asked():
                raise Cancelled()
            if state.get("rows_total") is None:
                state["rows_total"] = count_rows(self.spec.source)
                state["shards_total"] = -(-state["rows_total"] // self.spec.shard_rows)
            state["state"] = RUNNING
            state["started"] = state.get("started") or now_iso()
            self._save()
            self._shards()
            self._finish()
        except Cancelled:
            self._end(CANCELLED, "cancelled; the finished shards stay in the output")
        except Stop as exc:
            self._end(FAILED, str(exc))
        except NimbusError as exc:
            self._end(FAILED, f"{exc.what}" + (f"; {exc.todo}" if exc.todo else ""))
        except Exception as exc:  # say it in the state, and keep the traceback in runner.log
            traceback.print_exc()
            self._end(FAILED, f"the runner failed: {type(exc).__name__}: {exc} (see {self.dir / 'runner.log'})")

    def _shards(self) -> None:
        """Score shard after shard while the one before is written (``_keep`` in the writer thread): the
        server is never idle while a shard's Parquet file is encoded and written (measured: 6-10% of a
        shard's time here). At most one shard waits to be written, so memory stays at two shards."""
        done: Dict[str, Dict[str, int]] = self.state.setdefault("shards", {})
        self._scored_rows, self._started = 0, time.perf_counter()
        writer = ThreadPoolExecutor(1, thread_name_prefix="nimbus-job-writer")
        writing: Optional[Future] = None
        try:
            for number, first, index, texts in shards(self.spec.source, self.spec.shard_rows):
                key = str(number)
                if key in done and shard_rows_on_disk(self.output, number) == len(texts):
                    continue
                if self._cancel_asked():
                    raise Cancelled()
                self._check_version("before shard %d" % number)
                frame = self._score(texts)
                self._check_version("while shard %d ran" % number)
                self._check_endpoint(frame, number)
                self.columns = self.columns or list(frame.columns)
                if writing is not None:
                    writing.result()  # the shard before is on disk (or its error is raised here)
                writing = writer.submit(self._keep, number, first, index, texts, frame)
        finally:
            # a scored shard is kept even when the job stops after it (cancel, a version change);
            # a write that failed is the job's error
            try:
                if writing is not None:
                    writing.result()
            finally:
                writer.shutdown(wait=True)

    def _keep(self, number: int, first: int, index: List[Any], texts: List[Any], frame: Any) -> None:
        """Write one scored shard atomically, then its progress (the writer thread; the only state writer
        while shards run)."""
        write_shard(self.output, number, shard_table(frame, index))
        failed = frame["error"].astype(bool)
        self.state["shards"][str(number)] = {"rows": len(texts), "failed": int(failed.sum()), "first_row": first}
        failures = self.state.setdefault("failures", [])
        for position in [i for i, bad in enumerate(failed.tolist()) if bad][: max(0, MAX_FAILURES_KEPT - len(failures))]:
            failures.append({"shard": number, "index": _plain(index[position]), "error": frame["error"].iloc[position]})
        self.state["sent"].append(number)
        self._scored_rows += len(texts)
        self.state["rows_per_second"] = round(self._scored_rows / max(1e-9, time.perf_counter() - self._started), 1)
        self._count()
        self._save()

    def _score(self, texts: List[Any]) -> Any:
        """The shard through the scorer; empty texts are the rows' own errors and are not sent."""
        empty = [isinstance(t, str) and not t.strip() for t in texts]
        send = [None if e else t for t, e in zip(texts, empty)]
        kwargs: Dict[str, Any] = {"fields": self.spec.fields, "progress": False, "registry": self.registry}
        if self.spec.concurrency:
            kwargs["concurrency"] = self.spec.concurrency
        if self.pass_version:
            kwargs["version"] = self.spec.version
        if self.pass_resume:
            kwargs["resume"] = False
        frame = self.score(send, self.spec.deployment, **kwargs)
        if any(empty):
            frame = frame.copy()
            positions = [i for i, e in enumerate(empty) if e]
            frame.iloc[positions, frame.columns.get_loc("text")] = [texts[i] for i in positions]
            frame.iloc[positions, frame.columns.get_loc("error")] = EMPTY_TEXT
        return frame

    # -- the pin and the endpoint ----------------------------------------------------------------------
    def _check_version(self, when: str) -> None:
        spec = self.spec
        record = self.registry.get(spec.deployment)
        if record is None:
            raise Stop(f"the deployment {spec.deployment!r} was destroyed {when}; the finished shards stay in "
                       f"{spec.output}. Deploy it again and submit a new job for the rest")
        served = self._served_version(record)
        if record.version != spec.version or record.hash != spec.bundle_hash or (served is not None and served != str(spec.version)):
            now = served if served is not None else str(record.version)
            raise Stop(f"the job is pinned to {spec.deployment} v{spec.version}, but v{now} serves now (it changed "
                       f"{when}); rows are never mixed across versions, so the job stopped with "
                       f"{len(self.state.get('shards') or {})} shards done with v{spec.version}. Serve v{spec.version} "
                       f"again (nimbus_jupyter.rollback({spec.deployment!r}, to={spec.version})) and resume "
                       f"(get_job({spec.id!r}).resume()), or submit a new job on v{now}")

    def _served_version(self, record: Any) -> Optional[str]:
        from ..base import read_key
        from ...endpoint.transport import HttpTransport, TransportDown

        transport = HttpTransport(record.url, read_key(record), retries=0)
        try:
            reply = transport.check("GET", "/health")
        except TransportDown:
            return None  # the batch client says what is wrong with an endpoint that does not answer
        finally:
            transport.close()
        payload = reply.payload if isinstance(reply.payload, dict) else {}
        return str(payload["version"]) if "version" in payload else None

    def _check_endpoint(self, frame: Any, number: int) -> None:
        """Rows that failed because the endpoint went away were never scored: keep nothing of the shard."""
        if not frame["error"].astype(bool).any():
            return
        record = self.registry.get(self.spec.deployment)
        if record is not None and self._served_version(record) is not None:
            return  # the endpoint answers: these are the rows' own errors
        raise Stop(f"the endpoint of {self.spec.deployment!r} stopped answering during shard {number}; that shard "
                   f"was not kept. Restart it (%nimbus_deploy PIPELINE --name {self.spec.deployment}), then resume: "
                   f"get_job({self.spec.id!r}).resume()")

    # -- state -----------------------------------------------------------------------------------------
    def _cancel_asked(self) -> bool:
        return (self.dir / "cancel").exists()

    def _count(self) -> None:
        done = self.state.get("shards") or {}
        self.state["rows_done"] = sum(s["rows"] for s in done.values())
        self.state["rows_failed"] = sum(s["failed"] for s in done.values())

    def _save(self) -> None:
        write_state(self.dir, self.state)

    def _end(self, name: str, detail: str) -> None:
        self._count()
        self.state.update(state=name, detail=detail, finished=now_iso())
        self._save()

    def _finish(self) -> None:
        spec, done = self.spec, self.state.get("shards") or {}
        shard_list = [{"file": shard_name(int(k)), "rows": v["rows"], "failed": v["failed"]}
                      for k, v in sorted(done.items(), key=lambda kv: int(kv[0]))]
        columns = ["index"] + (self.columns or self._columns_on_disk())
        fields = _fields_of(columns)
        self._count()
        write_manifest(self.output, Manifest(
            spec.id, spec.deployment, spec.version, spec.bundle_hash, spec.target, fields, columns,
            json_columns(columns), shard_list, int(self.state["rows_done"]), int(self.state["rows_failed"]),
            spec.source.describe(), spec.created, now_iso(), spec.version_ref))
        self.state.update(state=SUCCEEDED, finished=now_iso(), detail="")
        self._save()

    def _columns_on_disk(self) -> List[str]:
        import pyarrow.parquet as pq

        for number in sorted(int(k) for k in self.state.get("shards") or {}):
            path = self.output / shard_name(number)
            if path.exists():
                return [c for c in pq.ParquetFile(str(path)).schema_arrow.names if c != "index"]
        return ["text", "error"]


def _fields_of(columns: List[str]) -> List[str]:
    return [c for c in columns if c not in ("index", "text", "error", "label", "score")]


def _plain(value: Any) -> Any:
    return value if isinstance(value, (int, str, float)) else str(value)


def _pid() -> int:
    import os

    return os.getpid()


def main(argv: List[str], locked: Optional[Callable[[bool], None]] = None) -> int:
    """Run the job in ``argv[0]`` under its lock; ``locked`` hears whether this runner got it (the job
    host answers its submitter only then)."""
    job_dir = Path(argv[0]).resolve()
    lock = runner_lock(job_dir)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if locked:
            locked(False)
        print(f"{now_iso()} another runner holds {job_dir.name}; this one exits", flush=True)
        return 0
    if locked:
        locked(True)
    try:
        runner = Runner(job_dir)
        print(f"{now_iso()} runner {_pid()} starts job {job_dir.name} (state {runner.state.get('state', QUEUED)})", flush=True)
        runner.run()
        print(f"{now_iso()} runner {_pid()} ends: {runner.state.get('state')} {runner.state.get('detail', '')}", flush=True)
    finally:
        lock.release()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
