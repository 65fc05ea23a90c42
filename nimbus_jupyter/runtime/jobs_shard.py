"""The shard work of an AWS job, run by the deployment's own Lambda function (its pinned version): read
one input shard from S3, score it with the runtime handler itself (the same ``POST /predict`` path and
checks as every request), write its Parquet result shard to the output prefix; and, at the end, the
job's manifest. The Distributed Map of the jobs stack sends the events (``lambda_entry`` routes them).

Why pyarrow is not in the layer: it is ~100 MB unzipped (libarrow alone 49 MB) and would push spaCy
layers toward Lambda's 250 MB limit for every deployment, jobs or not; adding it later would change the
function and publish a new version. So the trimmed pyarrow (``targets/aws/jobs_pyarrow.py``: no
Flight, no cloud filesystems, no headers or tests, stripped) is a zip in the staging bucket that the
first shard event of an execution environment unpacks into /tmp (512 MB by default), once.

Rows: a missing or empty text is its own error, unsent; a chunk the handler refuses (413 over
max_length, a 4xx, or 500 when the pipeline raised) is halved until the bad row is alone, so one bad
text fails one row. Results use the same columns and encoding as local jobs (``core.job_data``).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tempfile
import zipfile
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import handler as runtime

SHARD_EVENT, MANIFEST_EVENT = "nimbus_shard", "nimbus_manifest"
MANIFEST = "_nimbus_manifest.json"
CHUNK = 64
CHUNK_BYTES = 5_000_000
NATIVE = ("index", "text", "label", "score", "error")
EMPTY, MISSING = "empty text: nothing to score", "missing value (None/NaN): nothing to score"


def is_job_event(event: Any) -> bool:
    return isinstance(event, dict) and (SHARD_EVENT in event or MANIFEST_EVENT in event)


def handle(event: Dict[str, Any], context: Any = None, s3: Any = None) -> Dict[str, Any]:
    """A shard event -> ``{"number", "file", "rows", "failed"}``; a manifest event -> the counts."""
    s3 = s3 or _s3()
    job = event["job"]
    _check_version(job)
    if MANIFEST_EVENT in event:
        return write_manifest(event[MANIFEST_EVENT], job, s3)
    return score_shard(event[SHARD_EVENT], job, s3)


def _s3() -> Any:
    import boto3  # the Lambda runtime provides it

    return boto3.client("s3")


def _check_version(job: Dict[str, Any]) -> None:
    """The map invokes a version by number; this says so again from inside, in case of a wrong qualifier."""
    served = os.environ.get("NIMBUS_VERSION")
    if served is not None and str(job.get("version")) != served:
        raise RuntimeError(f"this is v{served} of the deployment; the job is pinned to v{job.get('version')}")


# -- pyarrow, from /tmp ---------------------------------------------------------------------------------
def pyarrow_modules(job: Dict[str, Any], s3: Any) -> Tuple[Any, Any]:
    """``(pyarrow, pyarrow.parquet)``: the installed ones, else the job's trimmed zip unpacked into /tmp."""
    try:
        import pyarrow
        import pyarrow.parquet
        return pyarrow, pyarrow.parquet
    except ImportError:
        pass
    where = job.get("pyarrow") or {}
    if not where:
        raise RuntimeError("pyarrow is not importable and the job names no pyarrow zip")
    home = os.path.join(tempfile.gettempdir(), "nimbus-pyarrow-" + hashlib.sha256(where["key"].encode()).hexdigest()[:16])
    if not os.path.isdir(home):
        partial = home + ".partial"
        data = s3.get_object(Bucket=where["bucket"], Key=where["key"])["Body"].read()
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.extractall(partial)
        os.replace(partial, home)
    sys.path.insert(0, home)
    import pyarrow
    import pyarrow.parquet
    return pyarrow, pyarrow.parquet


# -- one shard ------------------------------------------------------------------------------------------
def score_shard(shard: Dict[str, Any], job: Dict[str, Any], s3: Any) -> Dict[str, Any]:
    pa, pq = pyarrow_modules(job, s3)
    body = s3.get_object(Bucket=shard["bucket"], Key=shard["key"])["Body"].read()
    index, texts = _read(pa, body, shard)
    fields = list(job["fields"])
    outcomes = score_texts(texts, fields)
    table = result_table(pa, index, texts, outcomes, fields)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    name = f"part-{int(shard['number']):05d}.parquet"
    s3.put_object(Bucket=job["output_bucket"], Key=job["output_prefix"] + name, Body=sink.getvalue())  # one PUT: whole or absent
    failed = sum(1 for o in outcomes if "error" in o)
    return {"number": int(shard["number"]), "file": name, "rows": len(texts), "failed": failed}


def _read(pa: Any, body: bytes, shard: Dict[str, Any]) -> Tuple[List[Any], List[Any]]:
    kind, column, index_column = shard.get("format", "parquet"), shard["column"], shard.get("index_column")
    if kind == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(pa.BufferReader(body))
    elif kind == "csv":
        import pyarrow.csv as pcsv

        table = pcsv.read_csv(pa.BufferReader(body), convert_options=pcsv.ConvertOptions(
            strings_can_be_null=True, column_types={column: pa.string()}))
    else:
        import pyarrow.json as pjson

        table = pjson.read_json(pa.BufferReader(body))
    if column not in table.column_names:
        raise ValueError(f"the shard {shard['key']} has no column {column!r}")
    texts = table.column(column).to_pylist()
    first = int(shard.get("first_row") or 0)
    index = table.column(index_column).to_pylist() if index_column else list(range(first, first + len(texts)))
    return index, texts


def score_texts(texts: List[Any], fields: List[str], call: Optional[Callable[..., Dict[str, Any]]] = None) -> List[Dict[str, Any]]:
    """``{"result": {...}}`` or ``{"error": "..."}`` per text, in order, through the runtime handler."""
    call = call or runtime.handler
    outcomes: List[Optional[Dict[str, Any]]] = [None] * len(texts)
    batch: List[int] = []
    size = 0
    for i, text in enumerate(texts):
        if text is None or (isinstance(text, float) and text != text):
            outcomes[i] = {"error": MISSING}
            continue
        if not isinstance(text, str):
            outcomes[i] = {"error": f"a {type(text).__name__} is not text"}
            continue
        if not text.strip():
            outcomes[i] = {"error": EMPTY}
            continue
        length = len(text.encode("utf-8", "surrogatepass")) + 4
        if batch and (len(batch) >= CHUNK or size + length > CHUNK_BYTES):
            _send(batch, texts, fields, outcomes, call)
            batch, size = [], 0
        batch.append(i)
        size += length
    if batch:
        _send(batch, texts, fields, outcomes, call)
    return [o or {"error": "no result"} for o in outcomes]


def _send(positions: List[int], texts: List[Any], fields: List[str], outcomes: List[Optional[Dict[str, Any]]],
          call: Callable[..., Dict[str, Any]]) -> None:
    event = {"httpMethod": "POST", "path": "/predict", "resource": "/predict",
             "headers": {"content-type": "application/json"}, "isBase64Encoded": False,
             "body": json.dumps({"texts": [texts[i] for i in positions], "fields": fields}, ensure_ascii=False)}
    answer = call(event, None)
    status = int(answer.get("statusCode", 500))
    try:
        payload = json.loads(answer.get("body") or "{}")
    except ValueError:
        payload = {}
    if status == 200 and len(payload.get("results", [])) == len(positions):
        for i, result in zip(positions, payload["results"]):
            error = result.get("error") if isinstance(result, dict) and len(result) == 1 else None
            outcomes[i] = {"error": _row_error(error)} if isinstance(error, dict) else {"result": result}
        return
    if len(positions) > 1:  # somewhere in here is a row the handler refuses: find it by halving
        half = len(positions) // 2
        _send(positions[:half], texts, fields, outcomes, call)
        _send(positions[half:], texts, fields, outcomes, call)
        return
    outcomes[positions[0]] = {"error": f"{status}: {payload.get('message', '')}".strip()}


def _row_error(error: Dict[str, Any]) -> str:
    kind, message = error.get("type") or "Error", error.get("message") or ""
    return f"{kind}: {message}" if message else str(kind)


def result_columns(fields: List[str]) -> List[str]:
    columns = ["index", "text"]
    for f in fields:
        columns += ["cats", "label", "score"] if f == "cats" else [f]
    return columns + ["error"]


def result_table(pa: Any, index: List[Any], texts: List[Any], outcomes: List[Dict[str, Any]], fields: List[str]) -> Any:
    """The shard's table in the local jobs' layout: native index/text/label/score/error, fields as JSON text."""
    data: Dict[str, List[Any]] = {c: [] for c in result_columns(fields)}
    for key, text, outcome in zip(index, texts, outcomes):
        result = outcome.get("result") or {}
        data["index"].append(key)
        data["text"].append(text if isinstance(text, str) else None)
        for f in fields:
            if f == "cats":
                cats = result.get("cats")
                data["cats"].append(None if cats is None else json.dumps(cats, ensure_ascii=False))
                top = max(cats.items(), key=lambda kv: kv[1]) if cats else (None, None)
                data["label"].append(top[0])
                data["score"].append(None if top[1] is None else float(top[1]))
            else:
                value = result.get(f)
                data[f].append(None if value is None else json.dumps(value, ensure_ascii=False))
        data["error"].append(outcome.get("error", ""))
    arrays = []
    for name, values in data.items():
        if name == "index":
            try:
                arrays.append(pa.array(values))
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                arrays.append(pa.array([str(v) for v in values], pa.string()))
        elif name == "score":
            arrays.append(pa.array(values, pa.float64()))
        else:
            arrays.append(pa.array(values, pa.string()))
    return pa.Table.from_arrays(arrays, names=list(data))


# -- the manifest, last ------------------------------------------------------------------------------------
def write_manifest(items: List[Dict[str, Any]], job: Dict[str, Any], s3: Any) -> Dict[str, Any]:
    """What the map's items said, as the job's manifest (the same fields as a local job's)."""
    shards = sorted((i for i in items if i.get("file")), key=lambda i: int(i["number"]))
    failed_shards = sorted((i for i in items if not i.get("file")), key=lambda i: int(i.get("number", 0)))
    columns = result_columns(list(job["fields"]))
    manifest = {
        "job": job["id"], "deployment": job["deployment"], "version": int(job["version"]),
        "bundle_hash": job.get("bundle_hash", ""), "target": "aws", "fields": list(job["fields"]), "columns": columns,
        "json_columns": [c for c in columns if c not in NATIVE],
        "shards": [{"file": i["file"], "rows": int(i["rows"]), "failed": int(i["failed"])} for i in shards],
        "failed_shards": [{"number": i.get("number"), "rows": i.get("rows"), "error": i.get("error"),
                           "reason": str(i.get("reason", ""))[:1000]} for i in failed_shards],
        "rows": sum(int(i.get("rows") or 0) for i in items),
        "rows_failed": sum(int(i.get("failed") or 0) for i in items),
        "source": job.get("source", ""), "created": job.get("created", ""), "finished": _now(),
        "version_ref": job.get("version_ref"), "schema": 1,
    }
    s3.put_object(Bucket=job["output_bucket"], Key=job["output_prefix"] + MANIFEST,
                  Body=json.dumps(manifest, indent=2).encode("utf-8"))
    return {"rows": manifest["rows"], "rows_failed": manifest["rows_failed"], "failed_shards": len(failed_shards)}


def _now() -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
