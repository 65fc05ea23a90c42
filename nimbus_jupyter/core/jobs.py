"""Jobs as values: what a job is (``JobSpec``, fixed at submit), how far it got (``JobStatus``), and where
jobs are kept on this machine (``JobStore``: ``$NIMBUS_HOME/jobs/<id>/``).

A job scores a whole source (a staged DataFrame, a CSV/JSONL/Parquet file, an S3 prefix) through one
deployment, pinned to the version that served when it was submitted, and writes Parquet shards plus a
manifest (``MANIFEST``) to its output. Targets run jobs (the ``Jobs`` capability in ``targets.base``);
these records are the same for every target, so the api and the faces read any job the same way.

Layout of a job's directory (mode 0700; files 0600, written atomically)::

    job.json      the JobSpec (written once, at submit)
    state.json    the local runner's progress (targets/local/jobs.py owns its fields)
    runner.lock   held by the one runner that runs the job (the OS frees it when the runner dies)
    runner.log    the runner's own output
    cancel        present once cancelling was asked for
    input.parquet a DataFrame/Series source, staged at submit (index + text)
"""
from __future__ import annotations

import html
import re
import secrets
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Dict, List, Optional

from .display import Displayable
from .errors import UserInputError
from .files import read_json, write_json_atomic
from .paths import nimbus_home, private_dir

JOB_SCHEMA = 1
QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)
MANIFEST = "_nimbus_manifest.json"  # in the output, written last: its presence means the job finished
OWNER = "_nimbus_job"  # in the output from submit on: which job writes there
SHARD_PATTERN = re.compile(r"^part-(\d{5,})\.parquet$")
DEFAULT_SCORER = "nimbus_jupyter.api.batching:batch"  # the batch client's public function
_ID = re.compile(r"^j-\d{8}-\d{6}-[0-9a-f]{6}$")


def shard_name(number: int) -> str:
    return f"part-{number:05d}.parquet"


def new_job_id() -> str:
    """Sortable by submit time, unique across machines: ``j-20261201-101500-a1b2c3``."""
    return time.strftime("j-%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(3)


def check_job_id(job_id: Any) -> str:
    if not isinstance(job_id, str) or not _ID.match(job_id):
        raise UserInputError(f"{job_id!r} is not a job id (they look like j-20261201-101500-a1b2c3)",
                             "list the jobs with %nimbus_jobs (nimbus_jupyter.list_jobs())")
    return job_id


@dataclass(frozen=True)
class JobSource:
    """Where the texts are. ``kind``: parquet | csv | jsonl (a local file or directory) | s3 (a prefix)."""

    kind: str
    uri: str  # a local path, or s3://bucket/prefix
    column: str  # the column of texts
    index_column: Optional[str] = None  # a staged DataFrame keeps its index here; files use the row number
    staged: bool = False  # nimbus wrote it (from a DataFrame/Series) and removes it with the job

    def describe(self) -> str:
        return "a DataFrame (staged)" if self.staged else f"{self.uri} (column {self.column!r})"


@dataclass(frozen=True)
class JobSpec:
    """A job as submitted. Nothing in it changes while the job runs."""

    id: str
    deployment: str
    target: str
    version: int  # the deployment's version at submit: the job scores with it or not at all
    bundle_hash: str  # that version's content hash
    source: JobSource
    output: str  # a local directory or s3://bucket/prefix/
    fields: Optional[List[str]]  # None: the deployment's default fields
    concurrency: Optional[int]
    shard_rows: int
    created: str
    rows_total: Optional[int] = None  # known at submit for Parquet and staged sources
    max_cost: Optional[float] = None
    version_ref: Optional[str] = None  # the target's own name of that version (aws: the Lambda version number)
    scorer: str = DEFAULT_SCORER  # "module:function" the local runner scores each shard with
    target_data: Dict[str, Any] = field(default_factory=dict)  # the target's own facts (aws: execution ARN, ...)
    estimate: Optional[Dict[str, Any]] = None  # the cost estimate shown at submit (aws)
    schema: int = JOB_SCHEMA

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "JobSpec":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        source = dict(values.get("source") or {})
        values["source"] = JobSource(**{k: v for k, v in source.items() if k in {f.name for f in fields(JobSource)}})
        values["target_data"] = dict(values.get("target_data") or {})
        return cls(**values)

    def evolve(self, **changes: Any) -> "JobSpec":
        return replace(self, **changes)


@dataclass(frozen=True)
class JobStatus(Displayable):
    """How far a job got, read now. ``state`` is one of ``STATES``. It displays itself: ``text()`` (terminals,
    nbconvert, ``nimbus job``), ``html()`` (a notebook: a progress bar and a table)."""

    id: str
    state: str
    rows_done: int
    rows_total: Optional[int]
    rows_failed: int
    deployment: str = ""
    version: int = 0
    target: str = ""
    output: str = ""
    shards_done: int = 0
    shards_total: Optional[int] = None
    rows_per_second: Optional[float] = None
    eta_seconds: Optional[float] = None
    failures: List[Dict[str, Any]] = field(default_factory=list)  # {"shard", "index"|"reason", "error"}, the first few
    cost_usd: Optional[float] = None  # so far (aws); None where there is no cost
    created: str = ""
    started: str = ""
    finished: str = ""
    detail: str = ""  # why it failed, what it is waiting for, what was done on the way (a restart)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    @property
    def progress(self) -> str:
        total = f"{self.rows_total:,}" if self.rows_total is not None else "?"
        return f"{self.rows_done:,}/{total}"

    def text(self) -> str:
        parts = [f"job {self.id} ({self.deployment} v{self.version}, {self.target}): {self.state}, {self.progress} rows"]
        if self.rows_total:
            parts[0] += f" ({self.rows_done / self.rows_total:.0%})"
        extra = []
        if self.rows_failed:
            extra.append(f"{self.rows_failed:,} failed")
        if self.rows_per_second:
            extra.append(f"{self.rows_per_second:,.0f} rows/s")
        if self.eta_seconds is not None and not self.done:
            extra.append(f"ETA {_duration(self.eta_seconds)}")
        if self.shards_total:
            extra.append(f"shards {self.shards_done}/{self.shards_total}")
        if self.cost_usd is not None:
            extra.append(f"cost so far ${self.cost_usd:.4f}")
        lines = [parts[0] + (": " + ", ".join(extra) if extra else "")]
        if self.output:
            lines.append(f"  output: {self.output}")
        if self.detail:
            lines.append(f"  {self.detail}")
        for failure in self.failures[:5]:
            where = f"shard {failure.get('shard')}" + (f", row {failure['index']}" if "index" in failure else "")
            lines.append(f"  failed: {where}: {failure.get('error') or failure.get('reason')}")
        return "\n".join(lines)

    def to_json(self) -> Dict[str, Any]:
        """What ``nimbus job --json`` prints: every field, and ``done``."""
        return {**asdict(self), "done": self.done}

    def html(self) -> str:
        fraction = (self.rows_done / self.rows_total) if self.rows_total else (1.0 if self.state == SUCCEEDED else 0.0)
        colour = {SUCCEEDED: "#2e7d32", FAILED: "#c62828", CANCELLED: "#757575"}.get(self.state, "#1565c0")
        rows = [("deployment", f"{self.deployment} v{self.version} ({self.target})"), ("rows", self.progress),
                ("failed", f"{self.rows_failed:,}")]
        if self.rows_per_second:
            rows.append(("rate", f"{self.rows_per_second:,.0f} rows/s"))
        if self.eta_seconds is not None and not self.done:
            rows.append(("ETA", _duration(self.eta_seconds)))
        if self.cost_usd is not None:
            rows.append(("cost so far", f"${self.cost_usd:.4f}"))
        rows += [("output", self.output), ("started", self.started or "-"), ("finished", self.finished or "-")]
        if self.detail:
            rows.append(("detail", self.detail))
        body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>"
                       f"{html.escape(str(v))}</td></tr>" for k, v in rows)
        failures = "".join(f"<li>shard {html.escape(str(f.get('shard')))}"
                           f"{', row ' + html.escape(str(f['index'])) if 'index' in f else ''}: "
                           f"{html.escape(str(f.get('error') or f.get('reason')))}</li>" for f in self.failures[:5])
        return (f"<div class='nimbus-job'><b>job {html.escape(self.id)}</b> "
                f"<span style='color:{colour}'>{html.escape(self.state)}</span>"
                f"<div style='background:#eee;width:20em;height:0.6em'><div style='background:{colour};"
                f"width:{fraction * 100:.1f}%;height:100%'></div></div><table>{body}</table>"
                + (f"<ul>{failures}</ul>" if failures else "") + "</div>")


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


@dataclass(frozen=True)
class Manifest:
    """``_nimbus_manifest.json`` in a job's output, written last (atomically): a reader that finds it
    knows every shard it lists is complete. ``json_columns`` hold JSON text (a field's records)."""

    job: str
    deployment: str
    version: int
    bundle_hash: str
    target: str
    fields: List[str]
    columns: List[str]  # in order: index, text, the fields' columns, error
    json_columns: List[str]
    shards: List[Dict[str, Any]]  # {"file": "part-00000.parquet", "rows": N, "failed": M}
    rows: int
    rows_failed: int
    source: str
    created: str
    finished: str
    version_ref: Optional[str] = None
    schema: int = JOB_SCHEMA

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "Manifest":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class JobResult:
    """A job's results as local files: the shards in order and the manifest (None until it finished)."""

    location: str  # the output as the user named it (a directory, s3://...)
    files: List[Path]
    manifest: Optional[Manifest]


class JobStore:
    """The jobs this machine knows, one directory each under ``<home>/jobs``."""

    def __init__(self, home: Optional[Path] = None) -> None:
        self.home = Path(home) if home else nimbus_home()
        self.root = self.home / "jobs"

    def dir(self, job_id: str) -> Path:
        return self.root / check_job_id(job_id)

    def create(self, spec: JobSpec) -> Path:
        private_dir(self.root)
        path = self.dir(spec.id)
        path.mkdir(mode=0o700)
        return path

    def save(self, spec: JobSpec) -> None:
        write_json_atomic(self.dir(spec.id) / "job.json", spec.to_json())

    def get(self, job_id: str) -> Optional[JobSpec]:
        data = read_json(self.dir(job_id) / "job.json")
        return JobSpec.from_json(data) if data else None

    def all(self) -> List[JobSpec]:
        if not self.root.is_dir():
            return []
        found = []
        for path in sorted(self.root.iterdir()):
            if _ID.match(path.name):
                data = read_json(path / "job.json")
                if data:
                    found.append(JobSpec.from_json(data))
        return found
