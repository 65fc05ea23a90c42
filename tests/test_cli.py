"""The installed ``nimbus`` console script, run in subprocesses against real local deployments.

Exit codes: 0 done, 1 failed, 2 usage mistake. Results on stdout (``--json`` parsed here), progress on stderr.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import spacy
from spacy.language import Language

from pipelines import textcat_pipeline

NIMBUS = Path(sys.executable).parent / "nimbus"


@Language.component("nimbus_test_only_in_this_process", assigns=["doc.cats"])
def only_here(doc):
    doc.cats["HERE"] = 1.0
    return doc


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("cli_home")
    yield {**os.environ, "NIMBUS_HOME": str(home), "COLUMNS": "200"}
    from nimbus_jupyter.api import destroy
    from nimbus_jupyter.core.registry import Registry

    registry = Registry(home)
    for record in registry.all():
        destroy(record.name, registry)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("pipelines") / "reviews"
    textcat_pipeline().to_disk(path)
    return path


def nimbus(env, *args, stdin=subprocess.DEVNULL, timeout=180):
    return subprocess.run([str(NIMBUS), *map(str, args)], env=env, capture_output=True, text=True, stdin=stdin,
                          timeout=timeout)


def ok(env, *args):
    done = nimbus(env, *args)
    assert done.returncode == 0, f"nimbus {' '.join(map(str, args))}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def deployed(env, saved):
    return ok(env, "deploy", saved, "--name", "cli", "--workers", "1", "--sample", "great phone, love it",
              "--sample", "arrived broken")


def test_the_console_script_is_installed_and_lists_its_commands(env):
    assert NIMBUS.is_file()
    out = ok(env, "--help").stdout
    for command in ("deploy", "list", "status", "logs", "history", "rollback", "destroy", "batch", "submit", "jobs", "job"):
        assert command in out
    assert "0 done, 1 failed, 2 usage mistake" in out


def test_deploy_help_has_a_section_per_target_generated_from_their_options(env):
    out = ok(env, "deploy", "--help").stdout
    assert "local target (Local (127.0.0.1)), with --target local:" in out and "--workers N" in out
    assert "aws target" in out and "--alarm-email ADDRESS" in out and "--arch [x86_64|arm64]" in out
    assert "components defined in notebook cells are a notebook matter" in " ".join(out.split())


def test_deploy_prints_the_result_on_stdout_and_the_stages_on_stderr(deployed):
    assert "cli: ready on local, version 1" in deployed.stdout and "deployed 'cli' v1 to local in" in deployed.stdout
    assert "parity: OK, 2 sample(s)" in deployed.stdout and "'great phone, love it' -> ents: phone/PRODUCT" in deployed.stdout
    for stage in ("serialize", "package", "start", "smoke test"):
        assert f"✔ {stage}" in deployed.stderr and f"✔ {stage}" not in deployed.stdout


def test_list_and_status_as_text_and_json(env, deployed):
    [row] = [d for d in json.loads(ok(env, "list", "--json").stdout) if d["name"] == "cli"]
    assert row["status"] == "ready" and row["target"] == "local" and row["version"] == 1 and "api_key" not in row
    assert "cli  " in ok(env, "list").stdout
    status = json.loads(ok(env, "status", "cli", "--json").stdout)
    assert status["health"] == "ok" and status["last_hour"]["requests"] >= 1 and status["checked_at"]
    text = ok(env, "status", "cli").stdout
    assert text.startswith("cli: ok in ") and "last hour" in text and "StatusReport(" not in text


@pytest.mark.parametrize("suffix_in, suffix_out", [(".csv", ".parquet"), (".jsonl", ".csv"), (".parquet", ".jsonl")])
def test_batch_reads_and_writes_csv_jsonl_and_parquet(env, deployed, tmp_path, suffix_in, suffix_out):
    frame = pd.DataFrame({"id": [1, 2, 3], "review": ["great phone, love it", "the laptop arrived broken", "fine"]})
    source, target = tmp_path / f"in{suffix_in}", tmp_path / f"out{suffix_out}"
    {".csv": lambda: frame.to_csv(source, index=False),
     ".jsonl": lambda: frame.to_json(source, orient="records", lines=True),
     ".parquet": lambda: frame.to_parquet(source)}[suffix_in]()
    done = ok(env, "batch", "cli", "--input", source, "--column", "review", "--output", target, "--json")
    summary = json.loads(done.stdout)
    assert (summary["rows"], summary["failed"], summary["output"]) == (3, 0, str(target))
    assert "3 rows in" in done.stderr and "rows/s" in done.stderr  # tqdm's bar and the summary
    out = {".csv": pd.read_csv, ".jsonl": lambda p: pd.read_json(p, lines=True), ".parquet": pd.read_parquet}[suffix_out](target)
    assert list(out.columns) == ["id", "review", "ents", "cats", "label", "score", "error"]
    assert [str(v) for v in out.id] == ["1", "2", "3"] and set(out.label) <= {"POS", "NEG"}
    ents = out.ents[1] if suffix_out != ".csv" else json.loads(out.ents[1])
    assert [e["label"] for e in ents] == ["PRODUCT"]


def test_a_batch_with_failed_rows_writes_them_and_exits_1(env, deployed, tmp_path):
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    pd.DataFrame({"review": ["good", None]}).to_csv(source, index=False)
    done = nimbus(env, "batch", "cli", "--input", source, "--column", "review", "--output", target)
    assert done.returncode == 1 and "1 of 2 rows failed" in done.stderr
    assert list(pd.read_csv(target, keep_default_na=False).error) == ["", "missing value (None/NaN): nothing to score"]


def test_history_rollback_and_logs(env, deployed, tmp_path):
    retrained = tmp_path / "retrained"
    textcat_pipeline(epochs=2).to_disk(retrained)
    ok(env, "deploy", retrained, "--name", "cli", "--sample", "fine")
    history = json.loads(ok(env, "history", "cli", "--json").stdout)
    assert [(h["kind"], h["version"], h["serving"]) for h in history] == [("deploy", 1, False), ("deploy", 2, True)]
    assert "▶ deploy" in ok(env, "history", "cli").stdout
    rolled = json.loads(ok(env, "rollback", "cli", "--to", "1", "--json").stdout)
    assert (rolled["from_version"], rolled["to_version"]) == (2, 1)
    lines = [json.loads(line) for line in ok(env, "logs", "cli", "--json", "--limit", "50").stdout.splitlines()]
    assert any("POST /predict 200" in line["message"] for line in lines) and all(line["time"] for line in lines)


def test_logs_follow_streams_until_interrupted(env, deployed):
    process = subprocess.Popen([str(NIMBUS), "logs", "cli", "--follow", "--since", "1h"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()  # the lines of the last hour come first
        assert "GET" in first or "POST" in first
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        process.stdout.close()
        process.stderr.close()


def test_the_same_path_may_change_its_components_another_pipeline_needs_force(env, tmp_path):
    grown = tmp_path / "grown"
    nlp = textcat_pipeline(epochs=1)
    nlp.to_disk(grown)
    ok(env, "deploy", grown, "--name", "grown", "--workers", "1", "--sample", "fine")
    nlp.add_pipe("sentencizer")
    nlp.to_disk(grown)
    done = ok(env, "deploy", grown, "--name", "grown", "--sample", "fine")
    assert "version 2" in done.stdout and "components + sentencizer" in done.stdout
    stranger = tmp_path / "stranger"
    blank = spacy.blank("en")
    blank.add_pipe("sentencizer")
    blank.to_disk(stranger)
    refused = nimbus(env, "deploy", stranger, "--name", "grown", "--sample", "fine")
    assert refused.returncode == 2 and "taken by another pipeline" in refused.stderr and "--force" in refused.stderr
    assert f"deployed from nimbus deploy {grown}" in refused.stderr
    ok(env, "deploy", stranger, "--name", "grown", "--sample", "fine", "--force")
    ok(env, "destroy", "grown", "--yes")


def test_without_samples_the_deploy_says_they_are_generic(env, saved):
    done = ok(env, "deploy", saved, "--name", "generic", "--workers", "1", "--json")
    result = json.loads(done.stdout)
    assert "the samples are generic" in result["samples_note"] and '--sample "a text like yours"' in result["samples_note"]
    assert result["deployment"]["name"] == "generic" and [s["state"] for s in result["stages"]] == ["done"] * 4
    ok(env, "destroy", "generic", "--yes")


def test_dry_run_prints_the_plan(env, deployed, saved):
    out = ok(env, "deploy", saved, "--name", "planned", "--dry-run").stdout
    assert "Plan for 'planned' on target 'local': version 1 will serve" in out
    plan = json.loads(ok(env, "deploy", saved, "--name", "planned", "--dry-run", "--json").stdout)
    assert plan["name"] == "planned" and plan["version"] == 1 and plan["changes"]
    assert "planned" not in ok(env, "list").stdout


@pytest.mark.parametrize("args, words", [
    (("status", "nowhere"), "no deployment named 'nowhere'"),
    (("deploy", "/nonexistent/model", "--name", "x"), "neither a directory nor an installed spaCy pipeline package"),
    (("deploy", "MODEL", "--name", "Bad_Name"), "is not a valid deployment name"),
    (("deploy", "MODEL", "--name", "x", "--workers", "0"), "at least 1"),
    (("deploy", "MODEL", "--name", "x", "--target", "mars"), "unknown target 'mars'"),
    (("deploy", "MODEL", "--name", "x", "--bogus"), "No such option '--bogus'"),
    (("batch", "cli", "--input", "in.txt", "--column", "c", "--output", "out.csv"), "cannot tell its format"),
    (("rollback", "nowhere"), "no deployment named 'nowhere'"),
])
def test_usage_mistakes_exit_2_and_say_what_to_do(env, saved, args, words):
    done = nimbus(env, *[str(saved) if a == "MODEL" else a for a in args])
    assert done.returncode == 2, done.stderr
    assert words in done.stderr and "Traceback" not in done.stderr and "%nimbus" not in done.stderr


def test_a_pipeline_with_notebook_defined_components_is_a_notebook_matter(env, tmp_path):
    path = tmp_path / "notebooky"
    nlp = spacy.blank("en")
    nlp.add_pipe("nimbus_test_only_in_this_process")
    nlp.to_disk(path)
    done = nimbus(env, "deploy", path, "--name", "notebooky")
    assert done.returncode == 2 and "notebook matter" in done.stderr and "%nimbus_deploy" in done.stderr


def test_destroy_asks_and_refuses_without_a_terminal_then_destroys_with_yes(env, deployed):
    refused = nimbus(env, "destroy", "cli")
    assert refused.returncode == 2 and "add --yes" in refused.stderr
    assert json.loads(ok(env, "status", "cli", "--json").stdout)["health"] == "ok"
    done = ok(env, "destroy", "cli", "--yes")
    assert "destroyed 'cli'" in done.stdout
    assert nimbus(env, "status", "cli").returncode == 2


def test_a_dead_endpoint_makes_status_exit_1(env, saved):
    from nimbus_jupyter.core.registry import Registry
    from nimbus_jupyter.targets.local.files import DeploymentFiles
    from nimbus_jupyter.targets.local.process import stop_server

    ok(env, "deploy", saved, "--name", "dead", "--workers", "1", "--sample", "fine")
    stop_server(DeploymentFiles(Registry(Path(env["NIMBUS_HOME"])).deployment_dir("dead")))
    done = nimbus(env, "status", "dead")
    assert done.returncode == 1 and "dead: down" in done.stdout
    ok(env, "destroy", "dead", "--yes")


def test_the_readme_table_names_real_commands_and_flags(env):
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| `nimbus ")]
    assert len(rows) == 11  # deploy, list, status, logs, history, rollback, destroy, submit, jobs, job, batch
    for row in rows:
        usage = row.split("`")[1]
        command = usage.split()[1]
        help_text = ok(env, command, "--help").stdout
        for flag in re.findall(r"--[a-z][a-z-]*", row.split(" | ")[0]):
            assert flag in help_text, f"{flag} of `nimbus {command}` is in the README but not in its help"
