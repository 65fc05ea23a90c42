"""The shard function of an AWS job (what each item of the Distributed Map invokes on the pinned function
version) under the real Lambda harness: awslambdaric against the Runtime API emulator (tests/lambda_harness.py),
in the runtime a deploy of this kernel gets (runtime_select; native arch only), with the layer a deploy
ships and the function code of ``build_function_code``; S3 is moto_server on 127.0.0.1.

One shard in (Parquet in S3, as ``submit`` stages it), one Parquet result shard out, equal to in-process
``nlp.pipe``; bad rows (missing, empty, over ``max_length``) are per-row errors; then the manifest event.

Lambda's Python runtime provides boto3 in /var/runtime; the harness's runtime directory holds awslambdaric
only, so boto3 and its pure-Python dependencies are copied into the task root (botocore with only the S3
and STS models), which Lambda puts first on sys.path. pyarrow is not in the layer: the function loads the
trimmed zip (targets/aws/jobs_pyarrow.py, built from PyPI for the runtime's Python) from the staging bucket.
"""
from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lambda_harness as lh
from nimbus_jupyter.core.bundle import build_bundle
from nimbus_jupyter.runtime.fields import doc_to_result
from nimbus_jupyter.targets.aws.jobs_pyarrow import build_pyarrow_zip
from nimbus_jupyter.targets.aws.layer import build_layer
from nimbus_jupyter.targets.aws.package import build_function_code

pytestmark = pytest.mark.timeout(1500)
BOTO = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py")
FIELDS = ["ents", "cats"]


def _runtime(arch: str) -> str:
    from nimbus_jupyter.targets.aws.runtime_select import select_runtime

    return select_runtime(arch)[0].python


def _copy_boto(code: Path) -> None:
    """boto3 as Lambda's runtime has it, into the task root (service models: S3 and STS only)."""
    site = Path(boto3.__file__).resolve().parents[1]

    def models(folder: str, names: list) -> list:
        if Path(folder).name == "data" and Path(folder).parent.name == "botocore":
            return [n for n in names if (Path(folder) / n).is_dir() and n not in ("s3", "sts")]
        return [n for n in names if n == "__pycache__"]

    for name in BOTO:
        source = site / name
        if source.is_dir():
            shutil.copytree(source, code / name, ignore=models)
        else:
            shutil.copy2(source, code / name)


@pytest.fixture(scope="module")
def shard_function(moto_env, textcat_nlp, shared_cache, tmp_path_factory):
    arch = lh.HOST_ARCH
    python = _runtime(arch)
    try:
        lh.interpreter(python, arch)
        lh.compile_python(python)
    except lh.HarnessUnavailable as exc:
        if "CI" in os.environ:
            raise
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("shardfn")
    layer = build_layer(python, arch, shared_cache / "layers", langs=["en"])
    bundle = build_bundle(textcat_nlp, root / "bundle", "reviews")
    code = build_function_code(bundle.path, root / "code", inline=True)
    _copy_boto(code)
    built = build_pyarrow_zip(python, arch, shared_cache / "pyarrow")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="staging")
    s3.upload_file(str(built.path), "staging", "nimbus/pyarrow/" + built.key)
    aws = {k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN") if k in os.environ}
    env = lh.Environment(layer_dir=layer.path, code_dir=code, python=python, arch=arch, timeout_s=120,
                         env={"NIMBUS_BUNDLE_DIR": "/var/task/bundle", "NIMBUS_DEPLOYMENT": "reviews", "NIMBUS_VERSION": "1",
                              # the runtime's root has no /etc/hosts entry for localhost: the address itself
                              "AWS_ENDPOINT_URL_S3": moto_env.replace("localhost", "127.0.0.1"), **aws})
    with lh.RuntimeApi(timeout_s=env.timeout_s) as api:
        function = lh.LambdaFunction(env, api, root / "function.log")
        try:
            function.start()
            yield {"function": function, "api": api, "python": python, "pyarrow_key": "nimbus/pyarrow/" + built.key}
        finally:
            function.close()


def test_a_shard_in_s3_comes_out_as_parquet_equal_to_nlp_pipe_with_bad_rows_as_row_errors(shard_function, textcat_nlp):
    function, api = shard_function["function"], shard_function["api"]
    good = ["Apple opened a shop in Berlin.", "great phone", "arrived broken, avoid", "Sara flew to Paris on Monday."]
    texts = [good[0], None, "", good[1], "x" * (textcat_nlp.max_length + 1), good[2], good[3]]
    sink = io.BytesIO()
    pq.write_table(pa.table({"index": [f"r{i}" for i in range(len(texts))], "text": pa.array(texts, pa.string())}), sink)
    s3 = boto3.client("s3")
    s3.put_object(Bucket="staging", Key="jobs/j/input/part-00002.parquet", Body=sink.getvalue())
    job = {"id": "j", "deployment": "reviews", "version": "1", "fields": FIELDS, "output_bucket": "staging",
           "output_prefix": "jobs/j/output/", "pyarrow": {"bucket": "staging", "key": shard_function["pyarrow_key"]}}
    shard = {"number": 2, "rows": len(texts), "bucket": "staging", "key": "jobs/j/input/part-00002.parquet",
             "format": "parquet", "column": "text", "index_column": "index", "first_row": 0}
    inv = function.invoke({"nimbus_shard": shard, "job": job})
    assert inv.status == "ok", (inv.error_type, inv.payload, function.log_tail())
    assert inv.payload == {"number": 2, "file": "part-00002.parquet", "rows": 7, "failed": 3}
    table = pq.read_table(io.BytesIO(s3.get_object(Bucket="staging", Key="jobs/j/output/part-00002.parquet")["Body"].read()))
    assert table.column_names == ["index", "text", "ents", "cats", "label", "score", "error"]
    rows = table.to_pylist()
    assert [r["index"] for r in rows] == [f"r{i}" for i in range(len(texts))] and [r["text"] for r in rows] == texts
    want = [json.loads(json.dumps(doc_to_result(d, FIELDS))) for d in textcat_nlp.pipe(good)]
    scored = [rows[i] for i in (0, 3, 5, 6)]
    assert [json.loads(r["ents"]) for r in scored] == [w["ents"] for w in want]
    assert [json.loads(r["cats"]) for r in scored] == [w["cats"] for w in want]
    assert [r["label"] for r in scored] == [max(w["cats"], key=w["cats"].get) for w in want]
    assert [r["error"] for r in scored] == ["", "", "", ""]
    assert rows[1]["error"].startswith("missing value") and rows[2]["error"].startswith("empty text")
    assert rows[4]["error"].startswith("413") and "max_length" in rows[4]["error"]
    assert rows[4]["ents"] is None and rows[4]["label"] is None
    log = function.log_text()
    assert "Traceback" not in log, log[-3000:]
    assert api.errors == 0

    # a warm invoke of the manifest event: the map's results (one failed item) as the job's manifest
    inv = function.invoke({"nimbus_manifest": [{"number": 2, "file": "part-00002.parquet", "rows": 7, "failed": 3},
                                               {"number": 3, "rows": 5, "failed": 5, "error": "Lambda.Unknown",
                                                "reason": "timed out"}], "job": job})
    assert inv.status == "ok", (inv.error_type, inv.payload)
    assert inv.payload == {"rows": 12, "rows_failed": 8, "failed_shards": 1}
    manifest = json.loads(s3.get_object(Bucket="staging", Key="jobs/j/output/_nimbus_manifest.json")["Body"].read())
    assert manifest["failed_shards"] == [{"number": 3, "rows": 5, "error": "Lambda.Unknown", "reason": "timed out"}]
    assert manifest["json_columns"] == ["ents", "cats"] and manifest["version"] == 1
    assert function.cold_starts == 1, "the pyarrow zip is unpacked once per execution environment"


def test_a_shard_for_another_version_is_refused_by_the_function(shard_function):
    function = shard_function["function"]
    inv = function.invoke({"nimbus_shard": {"number": 0}, "job": {"version": "7"}})
    assert inv.status == "error" and "pinned to v7" in json.dumps(inv.payload)
