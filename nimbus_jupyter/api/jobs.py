"""Batch jobs that outlive the notebook: ``submit`` returns a ``Job`` at once; ``get_job`` and ``list_jobs``
find it again from any process (any machine with the account's credentials, for AWS jobs).

The api speaks only the target contract's ``Jobs`` protocol: how a job runs (a detached local runner,
Step Functions) is the target's. What is the same everywhere is checked here, before anything runs:
the deployment exists and is ready (its version and content hash are pinned into the spec), the
fields are ones it can produce and the key works (an empty batch through the batch client's own
pre-flight sends no row), the source and its column exist, and the output holds no results.
"""
from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..core.display import Displayable
from ..core.errors import EndpointError, UserInputError
from ..core.job_data import check_local_source, read_results
from ..core.jobs import SUCCEEDED, JobSource, JobSpec, JobStatus, JobStore, check_job_id, new_job_id
from ..core.records import now_iso
from ..core.registry import Registry
from ..targets.base import Jobs
from ..targets.registry import catalog, get_target
from .batching import batch
from .deployments import get_deployment, get_record

POLL_SECONDS = 0.05  # wait() returns this soon after the runner writes its end state (a status read: 0.4 ms of CPU)
STAGED_FILE = "input.parquet"


def _jobs_target(target_name: str, registry: Registry, deployment: str = "") -> Any:
    target = get_target(target_name, registry)
    if not isinstance(target, Jobs):
        raise UserInputError(f"the {target_name} target{f' of {deployment!r}' if deployment else ''} cannot run jobs",
                             "score it in the notebook with %%nimbus_batch (nimbus_jupyter.batch) instead")
    return target


def _say(text: str) -> None:
    print(f"nimbus: {text}", file=sys.stdout, flush=True)


class Job(Displayable):
    """A submitted job. ``status()``, ``wait()``, ``result()``, ``cancel()``; it displays itself (its status
    read when shown: ``text()``, ``html()``)."""

    def __init__(self, spec: JobSpec, registry: Optional[Registry] = None) -> None:
        self.spec = spec
        self.registry = registry or Registry()

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def deployment(self) -> str:
        return self.spec.deployment

    @property
    def output(self) -> str:
        return self.spec.output

    def _target(self) -> Any:
        return _jobs_target(self.spec.target, self.registry, self.spec.deployment)

    def status(self) -> JobStatus:
        """State (queued, running, succeeded, failed, cancelled), rows done/total/failed, rate, ETA, cost."""
        return self._target().job_status(self.spec)

    def wait(self, timeout: Optional[float] = None, progress: bool = True) -> JobStatus:
        """Block until the job ends (or ``timeout`` seconds pass) with a progress bar; returns the status.

        Ctrl-C (KeyboardInterrupt) stops the waiting, not the job: it goes on, and ``wait()`` again
        picks it up."""
        deadline = None if timeout is None else time.monotonic() + timeout
        status = self.status()
        bar = None
        try:
            if progress and not status.done:
                from tqdm.auto import tqdm

                bar = tqdm(total=status.rows_total, unit="rows", desc=f"job {self.id}", initial=status.rows_done)
            while not status.done and (deadline is None or time.monotonic() < deadline):
                time.sleep(POLL_SECONDS if deadline is None else max(0.0, min(POLL_SECONDS, deadline - time.monotonic())))
                status = self.status()
                if bar is not None:
                    if status.rows_total is not None and bar.total != status.rows_total:
                        bar.total = status.rows_total
                    bar.update(status.rows_done - bar.n)
                    bar.set_postfix(state=status.state, failed=status.rows_failed, refresh=False)
        except KeyboardInterrupt:
            _say(f"stopped waiting; job {self.id} goes on ({status.progress} rows). "
                 f"nimbus_jupyter.get_job({self.id!r}).wait() waits again")
        finally:
            if bar is not None:
                bar.close()
        return status

    def result(self, partial: bool = False) -> Any:
        """The DataFrame a batch would give (the input's index, text, the fields' columns, error), read
        from the output. A job that has not succeeded has none, unless ``partial=True`` (its finished shards)."""
        status = self.status()
        if status.state != SUCCEEDED and not partial:
            todo = ("wait for it: job.wait()" if not status.done else
                    f"resume it (get_job({self.id!r}).resume()), or read what finished with result(partial=True)")
            raise UserInputError(f"job {self.id} is {status.state} ({status.progress} rows): it has no complete result", todo)
        found = self._target().job_result(self.spec)
        frame = read_results(found.files, found.manifest)
        frame.attrs["nimbus"] = found.manifest
        return frame

    def cancel(self) -> JobStatus:
        """Stop the job; the shards it finished stay in the output."""
        return self._target().cancel_job(self.spec)

    def resume(self) -> JobStatus:
        """Run a failed or cancelled job again: only the shards it has not finished are sent."""
        return self._target().resume_job(self.spec)

    def text(self) -> str:
        """Its status now, as text (a repr must not raise: an unreadable status says why)."""
        try:
            return self.status().text()
        except Exception as exc:
            return f"job {self.id} ({self.deployment}): status unknown: {type(exc).__name__}: {exc}"

    def html(self) -> str:
        try:
            return self.status().html()
        except Exception:
            return super().html()

    def __repr__(self) -> str:
        return self.text()


# -- submit ------------------------------------------------------------------------------------------------
def submit(source: Any, deployment: Any, *, column: Optional[str] = None, fields: Optional[Sequence[str]] = None,
           output: Optional[str] = None, concurrency: Optional[int] = None, max_cost: Optional[float] = None,
           overwrite: bool = False, registry: Optional[Registry] = None, shard_rows: Optional[int] = None,
           quiet: bool = False) -> Job:
    """Score ``source`` through ``deployment`` as a detached job; returns the ``Job`` at once.

    ``source``: a DataFrame (with ``column``) or a Series (staged by nimbus), the path of a CSV, JSONL or
    Parquet file (or a directory of Parquet files) with ``column``, or ``s3://bucket/prefix`` (AWS).
    ``output``: a directory (``s3://`` for AWS) for one Parquet file per shard plus a manifest;
    default: the job's own directory (AWS: its staging bucket). Everything is checked first: a problem
    is one error before anything runs, and nothing is left behind.
    """
    registry = registry or Registry()
    concurrency = _whole("concurrency", concurrency)
    shard_rows = _whole("shard_rows", shard_rows)
    if max_cost is not None and (isinstance(max_cost, bool) or not isinstance(max_cost, (int, float)) or max_cost < 0):
        raise UserInputError(f"max_cost must be a number of dollars, not {max_cost!r}", "e.g. max_cost=0.50")
    if isinstance(fields, str):
        fields = [f.strip() for f in fields.split(",") if f.strip()]
    name = deployment.name if hasattr(deployment, "name") and not isinstance(deployment, str) else deployment
    if not isinstance(name, str):
        raise UserInputError(f"deployment must be a name or a Deployment, not {type(deployment).__name__}",
                             "e.g. deployment='reviews'")
    record = get_record(name, registry)
    target = _jobs_target(record.target, registry, name)
    revive_all(registry)
    live = get_deployment(name, registry)
    if live.status != "ready":
        raise EndpointError(f"deployment {name!r} is {live.status}: {live.detail}",
                            f"start it again with %nimbus_deploy PIPELINE --name {name}; nothing was submitted",
                            where="submit")
    record = live.record or record
    # The batch client's own pre-flight with no rows: ready, key accepted, fields available; no row sent.
    probe = batch([], name, fields=fields, progress=False, registry=registry)
    resolved = _fields_of(list(probe.columns))
    store = JobStore(registry.home)
    job_id = new_job_id()
    spec = JobSpec(job_id, name, record.target, record.version, record.hash, JobSource("parquet", "", "text"),
                   output or "", resolved, concurrency, shard_rows or 0, now_iso())
    job_dir = store.create(spec)
    try:
        spec = spec.evolve(**_source(source, column, job_dir))
        store.save(spec)
        plan = target.plan_job(record, spec, overwrite)
        if not quiet:
            for line in plan.lines:
                _say(line)
        if max_cost is not None and plan.estimate_usd is not None and plan.estimate_usd > max_cost:
            raise UserInputError(f"the job would cost about ${plan.estimate_usd:.4f}, over max_cost=${max_cost:.4f}",
                                 "raise max_cost, or score fewer rows; nothing was started")
        spec = plan.spec.evolve(max_cost=max_cost)
        store.save(spec)
        spec = target.submit_job(plan.__class__(spec, plan.lines, plan.estimate_usd, plan.data))
        store.save(spec)
    except BaseException:
        shutil.rmtree(job_dir, ignore_errors=True)
        raise
    if not quiet:
        _say(f"submitted job {spec.id}: nimbus_jupyter.get_job({spec.id!r}) finds it from any process")
    return Job(spec, registry)


def _whole(name: str, value: Any) -> Optional[int]:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise UserInputError(f"{name} must be a whole number of at least 1, not {value!r}", f"e.g. {name}=4")
    return value


def _fields_of(columns: List[str]) -> List[str]:
    """The fields a batch's columns came from (``cats`` brings ``label`` and ``score``)."""
    return [c for c in columns if c not in ("text", "error", "label", "score")]


def _source(source: Any, column: Optional[str], job_dir: Path) -> Dict[str, Any]:
    """The spec's source (and rows_total when known): a frame is staged as Parquet in the job's directory."""
    import pandas as pd

    if isinstance(source, (str, Path)):
        text = str(source)
        if text.startswith("s3://"):
            if not column:
                raise UserInputError(f"say which column of the files under {text} holds the texts", "pass column='review'")
            return {"source": JobSource("s3", text, column)}
        return {"source": check_local_source(text, column)}
    if isinstance(source, pd.DataFrame):
        if column is None:
            raise UserInputError(f"the source is a DataFrame; say which column holds the texts (columns: "
                                 f"{list(source.columns)[:20]})", "pass column='review' (--column)")
        if column not in source.columns:
            raise UserInputError(f"the DataFrame has no column {column!r} (columns: {list(source.columns)[:20]})",
                                 "check column=")
        source = source[column]
    elif column is not None and not isinstance(source, pd.Series):
        raise UserInputError(f"column={column!r} is for a DataFrame or a file; this is a {type(source).__name__}",
                             "leave column out, or pass the DataFrame")
    if isinstance(source, (list, tuple)):
        source = pd.Series(list(source))
    if not isinstance(source, pd.Series):
        raise UserInputError(f"cannot submit a {type(source).__name__}",
                             "pass a DataFrame with column=, a Series, a list of texts, or a file path")
    path = job_dir / STAGED_FILE
    _stage(source, path)
    return {"source": JobSource("parquet", str(path), "text", index_column="index", staged=True),
            "rows_total": len(source)}


def _stage(series: Any, path: Path) -> None:
    """Index and texts to Parquet; a cell that is not text is staged as missing (its row's error)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..core.files import write_atomic
    from ..core.job_data import index_array

    texts = [v if isinstance(v, str) else None for v in series.tolist()]
    table = pa.Table.from_arrays([index_array(list(series.index)), pa.array(texts, pa.string())], names=["index", "text"])
    write_atomic(path, lambda tmp: pq.write_table(table, tmp))


# -- finding jobs ------------------------------------------------------------------------------------------
def _targets(registry: Registry) -> List[Any]:
    found = []
    for name in catalog().classes:
        target = get_target(name, registry)
        if isinstance(target, Jobs):
            found.append(target)
    return found


def revive_all(registry: Registry, specs: Optional[List[JobSpec]] = None) -> List[str]:
    """Start again the runners of unfinished jobs that stopped (saying so); what was said."""
    said = []
    for spec in specs if specs is not None else JobStore(registry.home).all():
        try:
            note = _jobs_target(spec.target, registry).revive_job(spec)
        except UserInputError:
            continue
        if note:
            _say(note)
            said.append(note)
    return said


def get_job(job_id: str, registry: Optional[Registry] = None) -> Job:
    """The job ``job_id`` submitted from any process on this machine (or, for AWS, any machine)."""
    registry = registry or Registry()
    check_job_id(job_id)
    spec = JobStore(registry.home).get(job_id)
    if spec is None:
        for target in _targets(registry):
            found = [s for s in target.remote_jobs(set()) if s.id == job_id]
            if found:
                spec = found[0]
                break
    if spec is None:
        raise UserInputError(f"no job {job_id!r} on this machine (or in the AWS account)",
                             "list the jobs with %nimbus_jobs (nimbus_jupyter.list_jobs())")
    revive_all(registry, [spec])
    return Job(spec, registry)


def list_jobs(registry: Optional[Registry] = None, remote: bool = True) -> List[Job]:
    """Every job this machine knows, oldest first (with ``remote``, also AWS jobs submitted elsewhere);
    stopped runners of unfinished jobs are started again, saying so."""
    registry = registry or Registry()
    specs = JobStore(registry.home).all()
    revive_all(registry, specs)
    if remote:
        known = {s.id for s in specs}
        for target in _targets(registry):
            specs += target.remote_jobs(known)
            known = {s.id for s in specs}
    return [Job(s, registry) for s in sorted(specs, key=lambda s: s.id)]


def jobs_frame(jobs: List[Job]) -> Any:
    """The jobs as a DataFrame: id, deployment, version, state, progress, started, output (and more)."""
    import pandas as pd

    rows = []
    for job in jobs:
        try:
            s = job.status()
            rows.append({"id": job.id, "deployment": job.deployment, "version": job.spec.version, "state": s.state,
                         "progress": s.progress, "failed": s.rows_failed, "started": s.started or job.spec.created,
                         "output": s.output or job.output, "target": job.spec.target, "detail": s.detail})
        except Exception as exc:  # one unreadable job must not hide the others
            rows.append({"id": job.id, "deployment": job.deployment, "version": job.spec.version, "state": "unknown",
                         "progress": "", "failed": None, "started": job.spec.created, "output": job.output,
                         "target": job.spec.target, "detail": f"{type(exc).__name__}: {exc}"})
    return pd.DataFrame(rows, columns=["id", "deployment", "version", "state", "progress", "started", "output", "failed",
                                       "target", "detail"])
