"""The warm job host (targets/local/jobs_host.py, jobs_host_server.py): a job after a deploy is run by a runner it forked, in
its own session and the job's directory; a runner outlives a killed host; a submit the host
cannot serve (killed, another PYTHONPATH, its code changed on disk, a file where its socket should be)
starts its runner as a new interpreter, and the job's rows are the same either way. Real servers,
real processes, real Parquet."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pandas as pd
import psutil
import pytest

import nimbus_jupyter as nj
from nimbus_jupyter.core.jobs import JobStore
from nimbus_jupyter.targets.local import jobs_host
from nimbus_jupyter.targets.local.hosts import _zygote_pid
from pipelines import sleepy_pipeline
from waiting import wait_for

FORKED, NEW_INTERPRETER = "nimbus_jupyter.targets.local.jobs_host_server", "nimbus_jupyter.targets.local.jobs_runner"


@pytest.fixture()
def host_on(monkeypatch):
    monkeypatch.setenv("NIMBUS_JOB_HOST", "1")
    monkeypatch.setenv("NIMBUS_JOB_HOST_DELAY", "0.01")  # not the 5 s a warm-up waits so a deploy has the CPU


@pytest.fixture()
def slow(nimbus_home, host_on):
    """A deployment whose rows take 4 ms each, so a job runs long enough to look at its runner."""
    deployment = nj.deploy(sleepy_pipeline(0.004), "hostslow", workers=2, show=False)
    yield deployment
    nj.destroy("hostslow")


def host_pid(home: Path) -> int:
    return wait_for(lambda: _zygote_pid(jobs_host.host_path(home)), "the job host to answer", 60)


def texts(n: int, seed: int) -> list:
    return [f"review {seed}-{i} of a phone in Berlin" for i in range(n)]


def runner_of(job) -> psutil.Process:
    """The job's runner while it runs (the pid it wrote), or the test fails."""
    state_file = JobStore().dir(job.id) / "state.json"
    pid = wait_for(lambda: json.loads(state_file.read_text()).get("pid"), "the runner to start", 60)
    return psutil.Process(int(pid))


def expected_rows(series: pd.Series) -> list:
    return [{"text": t, "error": ""} for t in series]


def finished(job) -> pd.DataFrame:
    status = job.wait(timeout=120, progress=False)
    assert status.state == "succeeded", status.text()
    return job.result()


def test_a_job_after_a_deploy_runs_in_a_runner_the_warm_host_forked(slow, nimbus_home):
    host = host_pid(nimbus_home)
    assert psutil.Process(host).num_threads() == 1  # what makes its fork safe
    series = pd.Series(texts(1500, 1), index=[f"r{i}" for i in range(1500)])
    job = nj.submit(series, "hostslow", shard_rows=500, quiet=True)
    runner = runner_of(job)
    assert FORKED in " ".join(runner.cmdline())  # forked, not a new interpreter
    assert runner.ppid() == host
    assert os.getsid(runner.pid) == runner.pid  # its own session: a kill of the host's group misses it
    assert Path(runner.cwd()) == JobStore().dir(job.id)
    frame = finished(job)
    assert list(frame.index) == list(series.index)
    assert frame[["text", "error"]].to_dict("records") == expected_rows(series)
    log = (JobStore().dir(job.id) / "runner.log").read_text()
    assert f"runner {runner.pid} starts job {job.id}" in log  # its output is the job's log, not the host's


def test_a_runner_outlives_its_killed_host_and_the_next_submit_starts_its_own(slow, nimbus_home):
    host = host_pid(nimbus_home)
    first = nj.submit(pd.Series(texts(1500, 2)), "hostslow", shard_rows=500, quiet=True)
    runner = runner_of(first)
    assert runner.ppid() == host
    os.kill(host, signal.SIGKILL)
    wait_for(lambda: not psutil.pid_exists(host) or psutil.Process(host).status() == psutil.STATUS_ZOMBIE,
             "the host to die", 30)
    second_texts = pd.Series(texts(600, 3))
    second = nj.submit(second_texts, "hostslow", shard_rows=300, quiet=True)  # its socket file is left, dead
    assert NEW_INTERPRETER in " ".join(runner_of(second).cmdline())
    assert finished(first)[["text", "error"]].to_dict("records") == expected_rows(pd.Series(texts(1500, 2)))
    assert finished(second)[["text", "error"]].to_dict("records") == expected_rows(second_texts)


def test_a_submit_with_another_pythonpath_does_not_use_the_host(slow, nimbus_home, monkeypatch, tmp_path):
    host_pid(nimbus_home)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # the host imported its code without this path
    job = nj.submit(pd.Series(texts(900, 4)), "hostslow", shard_rows=300, quiet=True)
    assert NEW_INTERPRETER in " ".join(runner_of(job).cmdline())
    assert len(finished(job)) == 900


def test_a_host_whose_code_changed_on_disk_refuses_and_exits(slow, nimbus_home):
    host = host_pid(nimbus_home)
    changed = Path(jobs_host.__file__).resolve().parents[2] / "core" / "job_data.py"
    before = changed.stat()
    os.utime(changed, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))  # as an upgrade would
    try:
        job = nj.submit(pd.Series(texts(900, 5)), "hostslow", shard_rows=300, quiet=True)
        assert NEW_INTERPRETER in " ".join(runner_of(job).cmdline())
        wait_for(lambda: not psutil.pid_exists(host) or psutil.Process(host).status() == psutil.STATUS_ZOMBIE,
                 "the stale host to exit", 30)
        assert len(finished(job)) == 900
    finally:
        os.utime(changed, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_a_file_in_place_of_the_socket_means_a_new_interpreter(nimbus_home, host_on, monkeypatch):
    monkeypatch.setenv("NIMBUS_JOB_HOST", "0")  # deploy without warming a host
    nj.deploy(sleepy_pipeline(0.0), "hostfile", workers=1, show=False)
    try:
        jobs_host.host_path(nimbus_home).write_text("not a socket")
        monkeypatch.setenv("NIMBUS_JOB_HOST", "1")
        job = nj.submit(pd.Series(texts(50, 6)), "hostfile", quiet=True)
        assert len(finished(job)) == 50
    finally:
        nj.destroy("hostfile")


def test_the_host_goes_with_the_last_local_deployment_and_when_idle(nimbus_home, host_on, monkeypatch):
    nj.deploy(sleepy_pipeline(0.0), "hostgone", workers=1, show=False)
    host = host_pid(nimbus_home)
    nj.destroy("hostgone")
    wait_for(lambda: not psutil.pid_exists(host) or psutil.Process(host).status() == psutil.STATUS_ZOMBIE,
             "the host to exit after the last deployment went", 30)
    assert not jobs_host.host_path(nimbus_home).exists()
    monkeypatch.setenv("NIMBUS_ZYGOTE_IDLE", "1")
    assert jobs_host.warm_job_host(nimbus_home)
    idle = host_pid(nimbus_home)
    wait_for(lambda: not psutil.pid_exists(idle) or psutil.Process(idle).status() == psutil.STATUS_ZOMBIE,
             "an idle host to exit", 30)
