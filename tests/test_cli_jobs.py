"""``nimbus submit``, ``nimbus jobs`` and ``nimbus job`` run as the installed console script in subprocesses,
against a real local deployment made by ``nimbus deploy``; results read back in this process.

Exit codes as the other commands: 0 done, 1 failed (with ``--wait``: the job did not succeed), 2 usage.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from nimbus_jupyter.core.registry import Registry
from nimbus_jupyter.runtime.fields import doc_to_result
from pipelines import textcat_pipeline

NIMBUS = Path(sys.executable).parent / "nimbus"
WORDS = ["great", "phone", "broken", "laptop", "love", "avoid", "fine", "slow", "Berlin", "Apple"]


def reviews(n: int, seed: int) -> list:
    import random

    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) + f" #{seed}-{i}" for i in range(n)]


def nimbus(env, *args, timeout=300):
    return subprocess.run([str(NIMBUS), *map(str, args)], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def ok(env, *args):
    done = nimbus(env, *args)
    assert done.returncode == 0, f"nimbus {' '.join(map(str, args))}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("cli_jobs_home")
    path = tmp_path_factory.mktemp("pipelines") / "reviews"
    textcat_pipeline().to_disk(path)
    env = {**os.environ, "NIMBUS_HOME": str(home), "COLUMNS": "200"}
    ok(env, "deploy", path, "--name", "clijobs", "--workers", "1", "--sample", "great phone", "--sample", "arrived broken")
    yield env
    from nimbus_jupyter.api import destroy

    registry = Registry(home)
    for record in registry.all():
        destroy(record.name, registry)


def test_submit_wait_prints_the_job_id_and_the_results_equal_nlp_pipe(env, textcat_nlp, tmp_path):
    import nimbus_jupyter as nj

    texts = reviews(700, seed=1)
    source = tmp_path / "reviews.csv"
    pd.DataFrame({"id": range(len(texts) + 1), "review": texts + [""]}).to_csv(source, index=False)
    done = ok(env, "submit", source, "--deployment", "clijobs", "--column", "review", "--output", tmp_path / "out",
              "--fields", "ents,cats", "--wait")
    job_id = done.stdout.strip()
    assert job_id.startswith("j-") and "\n" not in job_id, done.stdout  # stdout is the id alone: JOB=$(nimbus submit ...)
    assert "701 rows" in done.stderr and "succeeded" in done.stderr, done.stderr  # the plan and the end, on stderr
    job = nj.get_job(job_id, registry=Registry(Path(env["NIMBUS_HOME"])))
    frame = job.result()
    want = [doc_to_result(d, ["ents", "cats"]) for d in textcat_nlp.pipe(texts)]
    assert frame.ents.iloc[:700].tolist() == [w["ents"] for w in want]
    assert frame.cats.iloc[:700].tolist() == [w["cats"] for w in want]
    assert frame.error.iloc[700].startswith("missing value") and (frame.error.iloc[:700] == "").all()  # CSV: an empty cell is null

    status = json.loads(ok(env, "job", job_id, "--json").stdout)
    assert (status["state"], status["rows_done"], status["rows_total"], status["rows_failed"], status["done"]) == \
        ("succeeded", 701, 701, 1, True)
    assert status["output"] == str((tmp_path / "out").resolve())
    text = ok(env, "job", job_id).stdout
    assert text.startswith(f"job {job_id} (clijobs v1, local): succeeded, 701/701 rows (100%)"), text
    listed = json.loads(ok(env, "jobs", "--json").stdout)
    row = next(r for r in listed if r["id"] == job_id)
    assert (row["deployment"], row["version"], row["state"], row["progress"]) == ("clijobs", 1, "succeeded", "701/701")
    table = ok(env, "jobs").stdout.splitlines()
    assert table[0].split() == ["id", "deployment", "version", "state", "progress", "started", "output"]
    assert any(line.startswith(job_id) and "succeeded" in line for line in table[1:])


def test_submit_returns_at_once_and_job_cancel_stops_it_then_wait_exits_1(env, tmp_path):
    source = tmp_path / "many.parquet"
    pd.DataFrame({"review": reviews(40_000, seed=2)}).to_parquet(source)
    done = ok(env, "submit", source, "--deployment", "clijobs", "--column", "review", "--json")
    submitted = json.loads(done.stdout)
    assert submitted["status"]["state"] in ("queued", "running") and submitted["status"]["rows_total"] == 40_000
    job_id = submitted["id"]
    cancelled = json.loads(ok(env, "job", job_id, "--cancel", "--json").stdout)
    assert cancelled["state"] == "cancelled" and cancelled["rows_done"] < 40_000
    waited = nimbus(env, "job", job_id, "--wait")
    assert waited.returncode == 1, (waited.stdout, waited.stderr)  # it ended, but did not succeed
    assert "cancelled" in waited.stdout and f"job {job_id} is cancelled" in waited.stderr


@pytest.mark.parametrize("args, words", [
    (("submit", "x.csv", "--column", "c"), "Missing option '--deployment'"),
    (("submit", "{tmp}/nope.csv", "--deployment", "clijobs", "--column", "c"), "does not exist"),
    (("submit", "{tmp}/in.csv", "--deployment", "nosuch", "--column", "review"), "no deployment named 'nosuch'"),
    (("submit", "{tmp}/in.csv", "--deployment", "clijobs", "--column", "body"), "no column 'body'"),
    (("submit", "{tmp}/in.csv", "--deployment", "clijobs", "--column", "review", "--max-cost", "-1"), "--max-cost"),
    (("job", "nope"), "not a job id"),
    (("job", "j-20261201-000000-abcdef"), "no job 'j-20261201-000000-abcdef'"),
    (("job", "j-20261201-000000-abcdef", "--cancel", "--wait"), "--cancel and --wait together"),
])
def test_usage_mistakes_exit_2_and_start_nothing(env, tmp_path, args, words):
    pd.DataFrame({"review": ["great phone"]}).to_csv(tmp_path / "in.csv", index=False)
    jobs_dir = Path(env["NIMBUS_HOME"]) / "jobs"
    before = set(os.listdir(jobs_dir)) if jobs_dir.is_dir() else set()
    done = nimbus(env, *[a.format(tmp=tmp_path) for a in args])
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert words in done.stderr, done.stderr
    assert done.stdout == ""
    assert (set(os.listdir(jobs_dir)) if jobs_dir.is_dir() else set()) == before, "a refused submit left a job"
