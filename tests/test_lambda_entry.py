"""The Lambda entry module, run in a fresh interpreter the way Lambda's init phase runs it.

The function code is a real ``build_function_code`` output (put first on PYTHONPATH, like /var/task),
the bundle a real trained pipeline's. Inline mode loads from the code's bundle/ at import; s3 mode
downloads the zip the CDK asset would be from S3 (moto's server, a real upload) into /tmp and loads it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict

import pytest

from nimbus_jupyter.core.bundle import build_bundle
from nimbus_jupyter.targets.aws.package import build_function_code

NAME = "reviews"
# Run inside the Lambda-like process: import the entry (this is the init), then answer two events.
PROBE = r"""
import json, sys, time
started = time.perf_counter()
import nimbus_jupyter.runtime.lambda_entry as entry
init_s = time.perf_counter() - started
from nimbus_jupyter.runtime import handler as runtime
loaded_at_import = runtime._loaded is not None
event = {"httpMethod": "POST", "path": "/predict", "resource": "/predict",
         "headers": {"Content-Type": "application/json", "x-api-key": "k"},
         "body": json.dumps({"texts": ["very happy with this phone", "arrived broken, avoid"], "fields": ["cats", "ents"]}),
         "isBase64Encoded": False, "requestContext": {"requestId": "r1", "stage": "v1"}}
predict = entry.handler(event, None)
health = entry.handler({"httpMethod": "GET", "path": "/health", "headers": {}}, None)
print(json.dumps({"loaded_at_import": loaded_at_import, "entry_file": entry.__file__,
                  "bundle_dir": str(runtime._loaded.manifest.get("name")),
                  "predict": predict, "health": health,
                  "modules": sorted(m for m in sys.modules if m.startswith("nimbus_jupyter") or m == "boto3"),
                  "cli_stack": sorted(m for m in CLI_STACK if m in sys.modules)}))
"""
# What spaCy's command line imports and serving never uses (spacy.cli._util: typer, weasel, ...).
CLI_STACK = ("spacy.cli._util", "spacy.cli.download", "spacy.cli.init_config", "typer", "click", "weasel", "requests",
             "httpx")
PROBE = PROBE.replace("CLI_STACK", repr(CLI_STACK))


@pytest.fixture(scope="module")
def bundle(textcat_nlp, tmp_path_factory):
    return build_bundle(textcat_nlp, tmp_path_factory.mktemp("bundle") / NAME, NAME, namespace={})


def _lambda_env(code: Path, tmp: Path, **extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NIMBUS_", "AWS_"))}
    env.update(PYTHONPATH=str(code), AWS_LAMBDA_FUNCTION_NAME="nimbus-reviews", TMPDIR=str(tmp),
               NIMBUS_DEPLOYMENT=NAME, NIMBUS_VERSION="7", **extra)
    return env


def _run(code: Path, env: Dict[str, str], script: str = PROBE) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script], cwd=code, env=env, capture_output=True, text=True, timeout=300)


def _check_answers(out: dict, code: Path, textcat_nlp) -> None:
    assert out["loaded_at_import"] is True  # the init phase loaded it, not the first request
    assert Path(out["entry_file"]).resolve().is_relative_to(code.resolve())  # the shipped copy ran
    assert out["predict"]["statusCode"] == 200
    body = json.loads(out["predict"]["body"])
    assert body["version"] == "7"
    expected = [max(d.cats, key=d.cats.get) for d in textcat_nlp.pipe(["very happy with this phone", "arrived broken, avoid"])]
    assert [max(r["cats"], key=r["cats"].get) for r in body["results"]] == expected
    assert [e["text"] for e in body["results"][0]["ents"]] == ["phone"]
    assert json.loads(out["health"]["body"])["name"] == NAME
    # Only the runtime was imported: nothing else of the package (it is not shipped).
    assert all(m in ("nimbus_jupyter", "boto3") or m.startswith("nimbus_jupyter.runtime") for m in out["modules"])


def test_inline_loads_at_import_and_answers_api_gateway_events(bundle, tmp_path, textcat_nlp):
    code = build_function_code(bundle.path, tmp_path / "task", inline=True)
    proc = _run(code, _lambda_env(code, tmp_path, NIMBUS_BUNDLE_DIR=str(code / "bundle")))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    _check_answers(out, code, textcat_nlp)
    assert "boto3" not in out["modules"]  # spaCy + stdlib only in inline mode
    assert out["cli_stack"] == []  # init skipped spaCy's CLI (lambda_entry.defer_spacy_cli)


def test_init_imports_spacys_cli_when_told_not_to_defer_it_and_answers_the_same(bundle, tmp_path, textcat_nlp):
    code = build_function_code(bundle.path, tmp_path / "task", inline=True)
    env = _lambda_env(code, tmp_path, NIMBUS_BUNDLE_DIR=str(code / "bundle"), NIMBUS_DEFER_SPACY_CLI="0")
    proc = _run(code, env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    _check_answers(out, code, textcat_nlp)
    assert out["cli_stack"] == sorted(CLI_STACK)  # what `import spacy` does by itself


CLI_AFTER_INIT = r"""
import json, sys
import nimbus_jupyter.runtime.lambda_entry
import spacy
deferred = type(sys.modules["spacy.cli"]).__name__
from spacy.cli import download, setup_cli  # the package runs first, then its deferred submodule
from spacy.cli._util import app
commands = sorted(c.name or c.callback.__name__ for c in app.registered_commands)
info = spacy.info()  # spaCy's own info(), through the forwarder
print(json.dumps({"deferred": deferred, "info_version": info["spacy_version"], "download": download.__module__,
                  "commands": commands, "cli_is_module": type(spacy.cli).__name__,
                  "info_module": type(sys.modules["spacy.cli.info"]).__name__}))
"""


def test_spacys_cli_still_works_after_a_deferred_init(bundle, tmp_path):
    import spacy
    from spacy.cli._util import app

    code = build_function_code(bundle.path, tmp_path / "task", inline=True)
    proc = _run(code, _lambda_env(code, tmp_path, NIMBUS_BUNDLE_DIR=str(code / "bundle")), CLI_AFTER_INIT)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["deferred"] == "_Deferred"
    assert out["info_version"] == spacy.__version__ and out["download"] == "spacy.cli.download"
    assert out["cli_is_module"] == out["info_module"] == "module"  # both ran for real on first use
    # every command registered, as in this (normally imported) process
    assert out["commands"] == sorted(c.name or c.callback.__name__ for c in app.registered_commands)


def test_import_off_lambda_loads_nothing(tmp_path, bundle):
    code = build_function_code(bundle.path, tmp_path / "task", inline=False)
    env = _lambda_env(code, tmp_path)
    del env["AWS_LAMBDA_FUNCTION_NAME"]
    script = ("import nimbus_jupyter.runtime.lambda_entry as e; from nimbus_jupyter.runtime import handler as h;"
              "print(h._loaded is None, callable(e.handler))")
    proc = _run(code, env, script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True"]


@pytest.fixture(scope="module")
def moto_s3():
    """moto's S3 on 127.0.0.1 (a real HTTP server the subprocess reaches through AWS_ENDPOINT_URL)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _zip_like_a_cdk_asset(directory: Path, dest: Path) -> Path:
    """The bundle directory's contents at the zip's root, as CDK zips a directory asset."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(directory).as_posix())
    return dest


def _s3_env(code: Path, tmp: Path, endpoint: str, bucket: str, key: str) -> Dict[str, str]:
    return _lambda_env(code, tmp, NIMBUS_MODEL_BUCKET=bucket, NIMBUS_MODEL_KEY=key, AWS_ENDPOINT_URL=endpoint,
                       AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")


def test_s3_mode_downloads_unzips_to_tmp_and_loads(bundle, tmp_path, moto_s3, textcat_nlp):
    s3 = _s3_client(moto_s3)
    s3.create_bucket(Bucket="cdk-assets")
    key = "0123abcd.zip"
    s3.upload_file(str(_zip_like_a_cdk_asset(bundle.path, tmp_path / "model.zip")), "cdk-assets", key)
    code = build_function_code(bundle.path, tmp_path / "task", inline=False)
    lambda_tmp = tmp_path / "lambda-tmp"
    lambda_tmp.mkdir()
    proc = _run(code, _s3_env(code, lambda_tmp, moto_s3, "cdk-assets", key))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    _check_answers(out, code, textcat_nlp)
    unpacked = lambda_tmp / "nimbus-bundle"
    assert (unpacked / "manifest.json").read_bytes() == (bundle.path / "manifest.json").read_bytes()
    assert sorted(p.name for p in lambda_tmp.iterdir()) == ["nimbus-bundle"]  # the zip is gone


def test_s3_init_failure_says_what_and_where_on_stderr(bundle, tmp_path, moto_s3):
    _s3_client(moto_s3).create_bucket(Bucket="empty-assets")
    code = build_function_code(bundle.path, tmp_path / "task", inline=False)
    proc = _run(code, _s3_env(code, tmp_path, moto_s3, "empty-assets", "missing.zip"))
    assert proc.returncode != 0
    first = next(line for line in proc.stderr.splitlines() if line.startswith("nimbus:"))
    assert "init failed" in first and "s3://empty-assets/missing.zip" in first
    assert not (tmp_path / "nimbus-bundle").exists()


def test_snapstart_registers_an_after_restore_hook_that_reseeds(monkeypatch):
    import random
    import sys
    import types

    from nimbus_jupyter.runtime import lambda_entry

    registered = []
    monkeypatch.setitem(sys.modules, "snapshot_restore_py",
                        types.SimpleNamespace(register_after_restore=registered.append))
    monkeypatch.delenv(lambda_entry.SNAPSTART_ENV, raising=False)
    assert lambda_entry.register_snapstart_hooks() is False and registered == []
    monkeypatch.setenv(lambda_entry.SNAPSTART_ENV, "1")
    assert lambda_entry.register_snapstart_hooks() is True and registered == [lambda_entry.after_restore]
    random.seed(7)
    first = random.random()
    random.seed(7)
    lambda_entry.after_restore()  # as in every restored environment: not the snapshot's sequence any more
    assert random.random() != first
