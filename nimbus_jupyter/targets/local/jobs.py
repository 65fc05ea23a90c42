"""Jobs on the local target: a detached runner process per job (``jobs_runner``), its state on disk.

Why a process of its own, started like the local server (own session, stdin closed, output to a log):
it must outlive the kernel, the notebook and the process that submitted it. Only one runner runs a
job: it holds ``runner.lock`` (a ``filelock``, which the OS frees when the process dies, even by
SIGKILL), so "is a runner alive" is "is the lock held", never a pid that may have been reused.

``state.json`` is written by the runner alone (atomically) after each shard; before it starts, by
submit (``queued``); a cancel with no runner alive writes ``cancelled`` under the runner's lock.

State file (schema 1)::

    {"schema": 1, "state": "running", "rows_total": 100000, "rows_done": 40000, "rows_failed": 3,
     "shards_total": 25, "shards": {"0": {"rows": 4000, "failed": 1}, ...}, "failures": [...first 20],
     "rows_per_second": 1180.5, "started": ISO, "updated": ISO, "finished": "", "runs": 2,
     "pid": 1234, "detail": "", "sent": [shard numbers this run scored, in order]}
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Set

from filelock import FileLock, Timeout

from ...core.errors import UserInputError
from ...core.files import read_json, write_json_atomic
from ...core.job_data import clear_results, count_rows, holds_results, read_manifest, result_shards
from ...core.jobs import CANCELLED, OWNER, QUEUED, RUNNING, SUCCEEDED, TERMINAL, JobResult, JobSpec, JobStatus, JobStore
from ...core.records import DeploymentRecord, now_iso
from ...core.registry import Registry
from ..base import JobPlan

STATE_SCHEMA = 1
DEFAULT_SHARD_ROWS = 10_000  # measured: 4,096-row shards gave 0.81x the batch rate (per-shard checks and tails)
CANCEL_WAIT_SECONDS = 60.0  # a runner notices a cancel between chunks of its shard: seconds, not minutes


def state_path(job_dir: Path) -> Path:
    return job_dir / "state.json"


def read_state(job_dir: Path) -> Dict[str, Any]:
    return read_json(state_path(job_dir)) or {"schema": STATE_SCHEMA, "state": QUEUED}


def write_state(job_dir: Path, state: Dict[str, Any]) -> None:
    state = {**state, "schema": STATE_SCHEMA, "updated": now_iso()}
    write_json_atomic(state_path(job_dir), state)


def runner_lock(job_dir: Path) -> FileLock:
    return FileLock(str(job_dir / "runner.lock"), timeout=0)


def runner_alive(job_dir: Path) -> bool:
    """Is a runner holding this job's lock now, or starting up to take it? (Taking and dropping the lock is
    the test; the pid ``start_runner`` wrote counts only while that process runs this job's runner.)"""
    lock = runner_lock(job_dir)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return _starting(job_dir)


def _starting(job_dir: Path) -> bool:
    import psutil

    try:
        pid = int((job_dir / "runner.pid").read_text("utf-8"))
        process = psutil.Process(pid)
        return (process.status() != psutil.STATUS_ZOMBIE and "nimbus_jupyter.targets.local.jobs_runner" in process.cmdline()
                and str(job_dir) in process.cmdline())
    except (OSError, ValueError, psutil.Error):
        return False


class LocalJobs:
    """The ``Jobs`` capability of the local target (mixed into ``LocalTarget``)."""

    registry: Registry
    name: str

    def _store(self) -> JobStore:
        return JobStore(self.registry.home)

    # -- plan and submit --------------------------------------------------------------------------
    def plan_job(self, record: DeploymentRecord, spec: JobSpec, overwrite: bool) -> JobPlan:
        source = spec.source
        if source.kind == "s3" or source.uri.startswith("s3://"):
            raise UserInputError(f"the source {source.uri} is in S3, which the local target does not read",
                                 "download it first (aws s3 cp --recursive), or submit to an --target aws deployment")
        if spec.output.startswith("s3://"):
            raise UserInputError(f"the output {spec.output} is in S3; the local target writes local directories",
                                 "give a local directory (output='scored/'), or leave output out")
        output = Path(spec.output or self._store().dir(spec.id) / "output").expanduser().resolve()
        if output.exists() and not output.is_dir():
            raise UserInputError(f"the output {output} is a file", "give a directory for the Parquet shards")
        _check_owner(output, self._store(), spec.id)
        held = holds_results(output)
        if held and not overwrite:
            raise UserInputError(f"the output {output} already holds results ({', '.join(held[:3])}"
                                 f"{', ...' if len(held) > 3 else ''})",
                                 "choose another output, or pass overwrite=True to replace them")
        _check_writable(output)
        rows_total = spec.rows_total
        if rows_total is None and source.kind == "parquet":
            rows_total = count_rows(source)
        shard_rows = spec.shard_rows or DEFAULT_SHARD_ROWS
        spec = spec.evolve(output=str(output), rows_total=rows_total, shard_rows=shard_rows)
        total = f"{rows_total:,} rows" if rows_total is not None else "rows counted when it starts"
        lines = [f"job {spec.id}: {source.describe()} -> {output}",
                 f"{total} in shards of {shard_rows:,}, scored by {record.name} v{record.version} on the local "
                 "target (no cost)"]
        return JobPlan(spec, lines, None, {"overwrite": bool(held)})

    def submit_job(self, plan: JobPlan) -> JobSpec:
        spec = plan.spec
        output = Path(spec.output)
        output.mkdir(parents=True, exist_ok=True)
        if plan.data.get("overwrite"):
            clear_results(output)
        (output / OWNER).write_text(spec.id + "\n", "utf-8")
        job_dir = self._store().dir(spec.id)
        total = spec.rows_total
        write_state(job_dir, {"state": QUEUED, "rows_total": total, "rows_done": 0, "rows_failed": 0,
                              "shards_total": -(-total // spec.shard_rows) if total is not None else None,
                              "shards": {}, "failures": [], "runs": 0, "started": "", "finished": "", "detail": ""})
        self._store().save(spec)
        start_runner(job_dir)
        return spec

    # -- reading it ----------------------------------------------------------------------------------
    def job_status(self, spec: JobSpec) -> JobStatus:
        job_dir = self._store().dir(spec.id)
        state = read_state(job_dir)
        name = state.get("state", QUEUED)
        detail = state.get("detail", "")
        if name not in TERMINAL and not runner_alive(job_dir) and not detail:
            detail = "its runner is not running (it is started again on the next get_job/list_jobs/submit)"
        rate = state.get("rows_per_second")
        total, done = state.get("rows_total"), int(state.get("rows_done") or 0)
        eta = (total - done) / rate if rate and total is not None and name == RUNNING else None
        return JobStatus(spec.id, name, done, total, int(state.get("rows_failed") or 0), spec.deployment, spec.version,
                         spec.target, spec.output, len(state.get("shards") or {}), state.get("shards_total"),
                         rate, eta, list(state.get("failures") or []), None, spec.created,
                         state.get("started", ""), state.get("finished", ""), detail)

    def job_result(self, spec: JobSpec) -> JobResult:
        output = Path(spec.output)
        return JobResult(spec.output, list(result_shards(output).values()), read_manifest(output))

    def remote_jobs(self, known: Set[str]) -> List[JobSpec]:
        return []  # every local job is in this machine's store

    # -- changing it ---------------------------------------------------------------------------------
    def cancel_job(self, spec: JobSpec) -> JobStatus:
        """Ask the runner to stop (it finishes the chunk in flight, keeps finished shards), and wait for it;
        with no runner alive, mark the job cancelled under the runner's lock."""
        job_dir = self._store().dir(spec.id)
        if read_state(job_dir).get("state") in TERMINAL:
            return self.job_status(spec)
        (job_dir / "cancel").write_text(now_iso(), "utf-8")
        deadline = time.monotonic() + CANCEL_WAIT_SECONDS
        while time.monotonic() < deadline:
            if read_state(job_dir).get("state") in TERMINAL:
                return self.job_status(spec)
            lock = runner_lock(job_dir)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                time.sleep(0.1)
                continue
            try:  # no runner: we are the only writer now
                state = read_state(job_dir)
                if state.get("state") not in TERMINAL:
                    write_state(job_dir, {**state, "state": CANCELLED, "finished": now_iso(),
                                          "detail": "cancelled; the finished shards stay in the output"})
            finally:
                lock.release()
            return self.job_status(spec)
        raise UserInputError(f"the runner of job {spec.id} did not stop within {CANCEL_WAIT_SECONDS:.0f} s",
                             f"it stops after the chunk it is sending; check again with get_job({spec.id!r}).status()")

    def revive_job(self, spec: JobSpec) -> Optional[str]:
        """A job that is not finished and has no runner gets one again; it resumes after its last shard."""
        job_dir = self._store().dir(spec.id)
        state = read_state(job_dir)
        if state.get("state") in TERMINAL or runner_alive(job_dir):
            return None
        start_runner(job_dir)
        done, total = len(state.get("shards") or {}), state.get("shards_total")
        return (f"job {spec.id}: its runner had stopped ({done} of {total if total is not None else '?'} shards "
                "done); started it again, it goes on from there")

    def resume_job(self, spec: JobSpec) -> JobStatus:
        """A failed or cancelled job runs again from its last finished shard (after a rollback, a restart)."""
        job_dir = self._store().dir(spec.id)
        lock = runner_lock(job_dir)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return self.job_status(spec)  # its runner is running: nothing to resume
        try:
            state = read_state(job_dir)
            if state.get("state") == SUCCEEDED:
                return self.job_status(spec)
            (job_dir / "cancel").unlink(missing_ok=True)
            write_state(job_dir, {**state, "state": QUEUED, "finished": "", "detail": "resumed"})
        finally:
            lock.release()
        start_runner(job_dir)
        return self.job_status(spec)


def _check_owner(output: Path, store: JobStore, job_id: str) -> None:
    """Two unfinished jobs never write to one output."""
    owner_file = output / OWNER
    if not owner_file.is_file():
        return
    owner = owner_file.read_text("utf-8").strip()
    if owner == job_id:
        return
    try:
        other_dir = store.dir(owner)
    except UserInputError:
        return
    if other_dir.is_dir() and read_state(other_dir).get("state") not in TERMINAL:
        raise UserInputError(f"the output {output} is being written by job {owner}, which has not finished",
                             f"choose another output, or cancel it first: get_job({owner!r}).cancel()")


def _check_writable(output: Path) -> None:
    probe = output
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserInputError(f"cannot write to {probe} (for the output {output})",
                             "choose an output directory you can write to")


def start_runner(job_dir: Path) -> int:
    """The job's runner, detached (own session, stdin closed), like the local server: forked by the warm
    job host when one answers (``jobs_host``: its libraries already imported), else a new interpreter."""
    from .jobs_host import start_in_host

    forked = start_in_host(job_dir.parent.parent, job_dir)
    if forked is not None:
        (job_dir / "runner.pid").write_text(str(forked), "utf-8")
        return forked
    log = os.fdopen(os.open(job_dir / "runner.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")
    try:
        proc = subprocess.Popen([sys.executable, "-m", "nimbus_jupyter.targets.local.jobs_runner", str(job_dir)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, cwd=str(job_dir))
    finally:
        log.close()
    (job_dir / "runner.pid").write_text(str(proc.pid), "utf-8")
    _children.append(proc)
    for child in list(_children):  # reap runners that ended, so none stays a zombie of this process
        if child.poll() is not None:
            _children.remove(child)
    return proc.pid


_children: list = []
