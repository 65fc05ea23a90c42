"""Detached jobs on the local target, with real servers, real runner processes and real Parquet.

Submitted from a subprocess that is then SIGKILLed, read from this process; a runner SIGKILLed mid-job
is started again by the next get_job and sends only what was not finished; cancel; bad rows; and every
bad input refused before anything runs, with nothing left behind.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from IPython.core.error import UsageError

import nimbus_jupyter as nj
from nimbus_jupyter.core.errors import DeploymentNotFound, UserInputError
from nimbus_jupyter.core.jobs import MANIFEST, JobStore, shard_name
from nimbus_jupyter.runtime.fields import doc_to_result
from nimbus_jupyter.targets.local.jobs import runner_alive
from pipelines import sleepy_pipeline
from waiting import wait_for

TESTS = Path(__file__).resolve().parent
WORDS = ["great", "phone", "broken", "laptop", "love", "avoid", "fine", "slow", "fast", "cheap", "Berlin", "Apple"]


def reviews(n: int, seed: int = 0) -> list:
    import random

    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) + f" #{seed}-{i}" for i in range(n)]


def predicted(d) -> int:
    """/predict requests the server has answered (any status)."""
    return sum(requests.get(f"{d.url}/health", timeout=5).json()["requests"].values())


def job_state(job_id: str) -> dict:
    return json.loads((JobStore().dir(job_id) / "state.json").read_text())


@pytest.fixture(scope="module", autouse=True)
def job_host():
    """These jobs' runners are forked by the warm job host, as a user's are after a deploy (the runner
    started as a new interpreter is the path of tests/test_cli_jobs.py and tests/test_jobs_notebook.py)."""
    saved = os.environ.get("NIMBUS_JOB_HOST")
    os.environ["NIMBUS_JOB_HOST"] = "1"
    os.environ["NIMBUS_JOB_HOST_DELAY"] = "0.01"  # not the 5 s a warm-up waits so a deploy has the CPU
    yield
    os.environ.pop("NIMBUS_JOB_HOST_DELAY", None)
    if saved is None:
        os.environ.pop("NIMBUS_JOB_HOST", None)
    else:
        os.environ["NIMBUS_JOB_HOST"] = saved


@pytest.fixture(scope="module")
def fast(nimbus_home, textcat_nlp):
    return nj.deploy(textcat_nlp, "jobfast", workers=2, show=False)


@pytest.fixture(scope="module")
def slow(nimbus_home):
    return nj.deploy(sleepy_pipeline(0.004), "jobslow", workers=2, show=False)


def expected(nlp, texts, fields):
    return [doc_to_result(doc, fields) for doc in nlp.pipe(texts)]


def test_submitted_from_a_process_that_is_killed_the_job_finishes_and_another_reads_every_row(fast, textcat_nlp, tmp_path):
    texts = reviews(2500)
    bad = {2500: None, 2501: "", 2502: "   ", 2503: "x" * (textcat_nlp.max_length + 1)}
    column = texts + [bad[i] for i in sorted(bad)]
    source = tmp_path / "reviews.parquet"
    pq.write_table(pa.table({"id": list(range(len(column))), "review": pa.array(column, pa.string())}), source)
    script = textwrap.dedent(f"""
        import sys, time
        import nimbus_jupyter as nj
        job = nj.submit({str(source)!r}, "jobfast", column="review", output={str(tmp_path / 'out')!r}, shard_rows=600, quiet=True)
        print(job.id, flush=True)
        time.sleep(600)  # killed long before this
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        job_id = proc.stdout.readline().strip()
        assert job_id.startswith("j-"), job_id
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    job = nj.get_job(job_id)  # this process did not submit it
    status = job.wait(timeout=180, progress=False)
    assert status.state == "succeeded", status.text()
    assert (status.rows_done, status.rows_total, status.rows_failed) == (2504, 2504, 4)
    frame = job.result()
    assert list(frame.columns) == ["text", "ents", "cats", "label", "score", "error"]
    assert list(frame.index) == list(range(2504))
    want = expected(textcat_nlp, texts, ["ents", "cats"])
    assert frame.error.iloc[:2500].eq("").all()
    assert frame.ents.iloc[:2500].tolist() == [w["ents"] for w in want]
    assert frame.cats.iloc[:2500].tolist() == [w["cats"] for w in want]
    errors = frame.error.iloc[2500:].tolist()
    assert errors[0].startswith("missing value") and errors[1] == errors[2] == "empty text: nothing to score"
    assert "max_length" in errors[3]
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert manifest["deployment"] == "jobfast" and manifest["version"] == fast.version
    assert manifest["rows"] == 2504 and manifest["rows_failed"] == 4 and manifest["fields"] == ["ents", "cats"]
    assert [s["file"] for s in manifest["shards"]] == [shard_name(i) for i in range(5)]
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")], "no temporary file left"


def test_a_runner_killed_mid_job_is_started_again_and_sends_only_unfinished_shards(slow, tmp_path, capsys):
    texts = reviews(3000, seed=7)
    series = pd.Series(texts, index=[f"r{i}" for i in range(3000)])
    before = predicted(slow)
    job = nj.submit(series, "jobslow", shard_rows=300, output=str(tmp_path / "out"), quiet=True)
    wait_for(lambda: len(job_state(job.id).get("shards") or {}) >= 2, "two shards done", 120)
    pid = job_state(job.id)["pid"]
    os.kill(pid, signal.SIGKILL)
    # a killed process with threads shows as a zombie before its last thread (and its lock) is gone
    wait_for(lambda: not runner_alive(JobStore().dir(job.id)), "the killed runner to be gone", 60)
    finished = {k: (tmp_path / "out" / shard_name(int(k))).stat() for k in job_state(job.id)["shards"]}
    assert not nj.get_job(job.id).status().done
    assert "started it again" in capsys.readouterr().out  # get_job said so
    status = job.wait(timeout=180, progress=False)
    assert status.state == "succeeded" and status.rows_done == 3000 and status.rows_failed == 0
    state = job_state(job.id)
    assert state["runs"] == 2
    assert set(state["sent"]).isdisjoint(int(k) for k in finished), "a finished shard was sent again"
    assert sorted(state["sent"] + [int(k) for k in finished]) == list(range(10))
    for key, stat in finished.items():  # untouched: not rewritten
        now = (tmp_path / "out" / shard_name(int(key))).stat()
        assert (now.st_ino, now.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    per_shard = -(-300 // 64)
    chunks = 10 * per_shard
    sent = predicted(slow) - before
    # at most the shard being scored when the runner died is sent again: a job resumes by shard (a shard's
    # file is whole or absent; the runner keeps no chunk checkpoints of its own)
    assert chunks <= sent <= chunks + per_shard, sent
    frame = job.result()
    assert list(frame.index) == list(series.index) and frame.text.tolist() == texts


def test_the_runner_scores_the_next_shard_while_it_writes_the_one_before(fast, tmp_path, monkeypatch):
    """The runner in this process, each shard's write held until the next shard's scoring has begun (at most
    20 s): a runner that wrote a shard before scoring the next would leave the server idle during the write."""
    import threading

    from nimbus_jupyter.core.jobs import JobSource, JobSpec, new_job_id
    from nimbus_jupyter.core.records import now_iso
    from nimbus_jupyter.core.registry import Registry
    from nimbus_jupyter.targets.local import jobs_runner
    from nimbus_jupyter.targets.local.jobs import write_state

    texts = reviews(900, seed=11)
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"review": texts}), source)
    record = Registry().get("jobfast")
    spec = JobSpec(new_job_id(), "jobfast", "local", record.version, record.hash, JobSource("parquet", str(source), "review"),
                   str(tmp_path / "out"), ["ents"], None, 300, now_iso(), rows_total=900)
    store = JobStore()
    job_dir = store.create(spec)
    store.save(spec)
    (tmp_path / "out").mkdir()
    write_state(job_dir, {"state": "queued", "rows_total": 900, "shards": {}, "failures": [], "runs": 0})
    began = [threading.Event() for _ in range(4)]
    scored, real_score, real_write = [0], jobs_runner.Runner._score, jobs_runner.write_shard
    overlapped = {}

    def score(self, shard_texts):
        began[scored[0]].set()
        scored[0] += 1
        return real_score(self, shard_texts)

    def write(output, number, table):
        if number < 2:
            overlapped[number] = began[number + 1].wait(20)
        return real_write(output, number, table)

    monkeypatch.setattr(jobs_runner.Runner, "_score", score)
    monkeypatch.setattr(jobs_runner, "write_shard", write)
    runner = jobs_runner.Runner(job_dir)
    runner.run()
    assert runner.state["state"] == "succeeded", runner.state
    assert overlapped == {0: True, 1: True}, "a shard was written before the next one was being scored"
    state = job_state(spec.id)
    assert state["sent"] == [0, 1, 2] and state["rows_done"] == 900
    assert nj.get_job(spec.id).result().text.tolist() == texts


def test_cancel_stops_the_job_and_keeps_its_finished_shards(slow, tmp_path):
    job = nj.submit(pd.Series(reviews(6000, seed=3)), "jobslow", shard_rows=250, output=str(tmp_path / "out"), quiet=True)
    wait_for(lambda: len(job_state(job.id).get("shards") or {}) >= 1, "a shard done", 120)
    status = job.cancel()
    assert status.state == "cancelled" and status.done
    assert 250 <= status.rows_done < 6000
    assert not (tmp_path / "out" / MANIFEST).exists()
    with pytest.raises(UserInputError, match="cancelled"):
        job.result()
    partial = job.result(partial=True)
    assert len(partial) == status.rows_done and (partial.error == "").all()
    assert nj.get_job(job.id).status().state == "cancelled"  # and no runner is started for it again


def test_bad_input_is_one_error_before_anything_runs_and_leaves_nothing(fast, nimbus_home, tmp_path):
    jobs_before = set(os.listdir(nimbus_home / "jobs"))
    good = tmp_path / "good.csv"
    pd.DataFrame({"review": reviews(10)}).to_csv(good, index=False)
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet")
    full = tmp_path / "full"
    full.mkdir()
    (full / shard_name(0)).write_bytes(b"old results")
    cases = [
        ((tmp_path / "nope.csv", "jobfast"), {"column": "review"}, "does not exist"),
        ((corrupt, "jobfast"), {"column": "review"}, "cannot read"),
        ((good, "jobfast"), {"column": "body"}, "no column 'body'"),
        ((good, "jobfast"), {}, "say which column"),
        ((good, "jobfast"), {"column": "review", "output": str(full)}, "already holds results"),
        ((good, "jobfast"), {"column": "review", "output": "s3://bucket/x/"}, "local target writes local"),
        (("s3://bucket/in/", "jobfast"), {"column": "review"}, "local target does not read"),
        ((good, "jobfast"), {"column": "review", "fields": ["sents"]}, "not available"),
        ((good, "jobfast"), {"column": "review", "concurrency": 0}, "concurrency"),
        ((good, "nosuch"), {"column": "review"}, "no deployment named"),
    ]
    for args, kwargs, message in cases:
        with pytest.raises(UserInputError, match=message):
            nj.submit(*args, quiet=True, **kwargs)
    assert set(os.listdir(nimbus_home / "jobs")) == jobs_before, "a refused submit left a job behind"
    assert (full / shard_name(0)).read_bytes() == b"old results"
    job = nj.submit(good, "jobfast", column="review", output=str(full), overwrite=True, quiet=True)
    assert job.wait(timeout=60, progress=False).state == "succeeded"
    assert len(job.result()) == 10


def test_a_destroyed_deployment_takes_no_job(nimbus_home, textcat_nlp, tmp_path):
    nj.deploy(textcat_nlp, "jobgone", workers=1, show=False)
    nj.destroy("jobgone")
    with pytest.raises(DeploymentNotFound):
        nj.submit(pd.Series(["a text"]), "jobgone", quiet=True)


def test_a_new_version_mid_job_stops_it_without_mixing_versions(nimbus_home, tmp_path):
    nj.deploy(sleepy_pipeline(0.004), "jobpin", workers=2, show=False)
    job = nj.submit(pd.Series(reviews(4000, seed=5)), "jobpin", shard_rows=200, output=str(tmp_path / "out"), quiet=True)
    wait_for(lambda: len(job_state(job.id).get("shards") or {}) >= 1, "a shard done", 120)
    v2 = nj.deploy(sleepy_pipeline(0.003), "jobpin", workers=2, show=False)  # another pipeline: v2
    assert v2.version == 2
    status = job.wait(timeout=120, progress=False)
    assert status.state == "failed" and "pinned to jobpin v1" in status.detail and "v2 serves now" in status.detail
    kept = job.result(partial=True)
    assert 200 <= len(kept) < 4000 and (kept.error == "").all()
    nj.rollback("jobpin", to=1)
    assert job.resume().state in ("queued", "running", "succeeded")
    final = job.wait(timeout=180, progress=False)
    assert final.state == "succeeded" and final.rows_done == 4000
    assert json.loads((tmp_path / "out" / MANIFEST).read_text())["version"] == 1


def test_magics_list_show_cancel_and_detach(ip, fast, tmp_path, capsys):
    ip.user_ns["df"] = pd.DataFrame({"review": reviews(50, seed=9)})
    job = ip.run_cell(f'%%nimbus_batch jobfast --detach --column review --output {tmp_path / "m"}\ndf').result
    from nimbus_jupyter.api.jobs import Job

    assert isinstance(job, Job)
    job.wait(timeout=60, progress=False)
    frame = ip.run_line_magic("nimbus_jobs", "")
    assert list(frame.columns[:7]) == ["id", "deployment", "version", "state", "progress", "started", "output"]
    assert job.id in frame.id.tolist()
    shown = ip.run_line_magic("nimbus_job", job.id)  # no kernel here: the status, which displays itself
    assert shown.text().startswith(f"job {job.id} (jobfast v1, local): succeeded") and str(shown) == shown.text()
    bundle = job._repr_mimebundle_()
    assert bundle["text/plain"].startswith(f"job {job.id}") and "succeeded" in bundle["text/html"]
    assert "<table>" in bundle["text/html"]
    with pytest.raises(UsageError, match="--output is for --detach"):
        ip.run_cell_magic("nimbus_batch", f"jobfast --output {tmp_path / 'x'}", "df['review']")
    with pytest.raises(UsageError, match="not a job id"):
        ip.run_line_magic("nimbus_job", "nope")
