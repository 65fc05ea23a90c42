"""The job commands: ``submit``, ``jobs``, ``job`` -- ``nimbus_jupyter.submit``, ``list_jobs`` and ``get_job``
for terminals and CI, over the same api and the same job store ($NIMBUS_HOME/jobs).

``nimbus submit`` prints the job's id on stdout (``JOB=$(nimbus submit ...)``), what it checked and what it
will cost (AWS) on stderr; ``--wait`` then follows it with a progress bar on stderr. ``nimbus job ID``
prints the status (``--json``: every field). Exit codes as everywhere: 0 done, 1 failed (the job failed,
or with ``--wait`` ended in any state but succeeded), 2 usage (a bad option, no such job or deployment,
``--max-cost`` exceeded: nothing was started). The api's own messages ("nimbus: ...", a runner started
again) go to stderr, so stdout stays the result.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Any, Iterator, Optional

import click

from .app import Failed, cli, emit, json_option, note


@contextlib.contextmanager
def _messages_to_stderr() -> Iterator[None]:
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _ended(status: Any, waited: bool) -> None:
    """Exit 1 for a failed job (or, after --wait, one that did not succeed)."""
    if status.state == "failed" or (waited and status.state != "succeeded"):
        raise Failed(f"job {status.id} is {status.state}" + (f": {status.detail}" if status.detail else ""))


@cli.command("submit")
@click.argument("source")
@click.option("--deployment", "-d", required=True, metavar="NAME", help="the deployment that scores the texts")
@click.option("--column", metavar="COL", help="the source's column that holds the texts")
@click.option("--fields", help="comma-separated fields: ents, cats, tokens, sents, spans (default: the pipeline's)")
@click.option("--output", metavar="PATH", help="a directory (s3://bucket/prefix/ for AWS) for the Parquet shards and "
              "the manifest (default: the job's own directory; AWS: its staging bucket)")
@click.option("--max-cost", type=click.FloatRange(min=0), metavar="USD",
              help="refuse the job, before anything runs, when its estimated cost is above this (AWS)")
@click.option("--concurrency", type=click.IntRange(min=1), help="requests (local) or shards (AWS) at once")
@click.option("--overwrite", is_flag=True, help="replace results already in --output")
@click.option("--wait", "wait", is_flag=True, help="follow the job to its end (progress on stderr); exit 1 unless it succeeded")
@json_option
def submit_command(source: str, deployment: str, column: Optional[str], fields: Optional[str], output: Optional[str],
                   max_cost: Optional[float], concurrency: Optional[int], overwrite: bool, wait: bool, as_json: bool) -> None:
    """Score SOURCE (a .csv, .jsonl or .parquet file, a directory of Parquet files, or s3://bucket/prefix for
    AWS) through a deployment as a detached job: it goes on after this command ends. Prints the job id."""
    from ...api import jobs as api_jobs

    with _messages_to_stderr():
        job = api_jobs.submit(source, deployment, column=column, fields=fields, output=output, concurrency=concurrency,
                              max_cost=max_cost, overwrite=overwrite)
        status = job.wait() if wait else job.status()
    if as_json:
        emit({"id": job.id, "deployment": job.deployment, "version": job.spec.version, "output": job.output,
              "estimate": job.spec.estimate, "status": status.to_json()}, True)
    else:
        emit(None, False, job.id)
        if wait:
            note(status.text())
    _ended(status, wait)


@cli.command("jobs")
@json_option
def jobs_command(as_json: bool) -> None:
    """Every job this machine knows (and AWS jobs of the account): id, deployment, version, state, progress,
    started, output. Unfinished local jobs whose runner stopped are started again (saying so)."""
    from ...api import jobs as api_jobs
    from ...core.display import text_table

    with _messages_to_stderr():
        frame = api_jobs.jobs_frame(api_jobs.list_jobs())
    if as_json:
        emit(frame.where(frame.notna(), None).to_dict(orient="records"), True)
        return
    if frame.empty:
        emit(None, False, "no jobs yet (nimbus submit SOURCE --deployment NAME starts one)")
        return
    columns = ["id", "deployment", "version", "state", "progress", "started", "output"]
    rows = [[f"v{r['version']}" if c == "version" else r[c] for c in columns] for r in frame.to_dict(orient="records")]
    emit(None, False, text_table(columns, rows, indent=""))
    for r in frame.to_dict(orient="records"):
        if r.get("detail"):
            note(f"{r['id']}: {r['detail']}")


@cli.command("job")
@click.argument("job_id", metavar="ID")
@click.option("--cancel", is_flag=True, help="stop the job; the shards it finished stay in the output")
@click.option("--wait", "wait", is_flag=True, help="follow the job to its end (progress on stderr); exit 1 unless it succeeded")
@json_option
def job_command(job_id: str, cancel: bool, wait: bool, as_json: bool) -> None:
    """A job's status: state, rows done/total/failed, rate, ETA, cost so far (AWS), output. Exits 1 when the job failed."""
    from ...api import jobs as api_jobs

    if cancel and wait:
        raise click.UsageError("--cancel and --wait together: a cancelled job has nothing to wait for")
    with _messages_to_stderr():
        job = api_jobs.get_job(job_id)
        status = job.cancel() if cancel else job.wait() if wait else job.status()
    emit(status.to_json() if as_json else status, as_json)
    _ended(status, wait)
