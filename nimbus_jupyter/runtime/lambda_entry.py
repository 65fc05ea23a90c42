"""The Lambda function's handler module (``nimbus_jupyter.runtime.lambda_entry.handler``).

It loads the model at import, in Lambda's init phase (full CPU, its own 10 s budget), so the first
request does not pay for it:
- inline: the bundle is in the function code, at ``$NIMBUS_BUNDLE_DIR`` (``/var/task/bundle``);
- s3: the bundle is the zip object ``s3://$NIMBUS_MODEL_BUCKET/$NIMBUS_MODEL_KEY`` (the CDK asset), unzipped
  into ``/tmp/nimbus-bundle``. This is the one place the runtime uses something beyond spaCy and the
  standard library: boto3, which the Lambda Python runtime provides; it is imported only in s3 mode.

It loads only on Lambda (``AWS_LAMBDA_FUNCTION_NAME`` is set) or when ``NIMBUS_LOAD_AT_IMPORT=1``, so tests
and tools can import it. A failure at init prints one line saying what failed to stderr (CloudWatch
Logs) and re-raises, so Lambda reports the init error instead of serving without a model.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

MODEL_BUCKET_ENV, MODEL_KEY_ENV = "NIMBUS_MODEL_BUCKET", "NIMBUS_MODEL_KEY"
LOAD_ENV = "NIMBUS_LOAD_AT_IMPORT"
S3_BUNDLE_NAME = "nimbus-bundle"  # under /tmp (tempfile.gettempdir(): /tmp on Lambda)


def fetch_bundle(bucket: str, key: str, dest: Path) -> Path:
    """Download the bundle zip from S3 and unzip it to ``dest`` (replacing it); return ``dest``.

    The zip is deleted once unpacked, so /tmp holds both only for a moment.
    """
    import boto3  # only in s3 mode: the Lambda runtime provides it; spaCy + stdlib otherwise

    dest = Path(dest)
    archive = dest.with_name(dest.name + ".zip")
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    boto3.client("s3").download_file(bucket, key, str(archive))
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(partial)  # extractall drops absolute paths and '..' parts
    finally:
        archive.unlink(missing_ok=True)
    shutil.rmtree(dest, ignore_errors=True)  # a retried init in the same environment
    partial.rename(dest)
    return dest


def bundle_location() -> str:
    """Where the bundle is: s3 mode fetches it first; inline mode reads ``NIMBUS_BUNDLE_DIR``."""
    bucket, key = os.environ.get(MODEL_BUCKET_ENV), os.environ.get(MODEL_KEY_ENV)
    if bucket and key:
        return str(fetch_bundle(bucket, key, Path(tempfile.gettempdir()) / S3_BUNDLE_NAME))
    path = os.environ.get(runtime.BUNDLE_ENV)
    if not path:
        raise RuntimeError(f"neither {runtime.BUNDLE_ENV} nor {MODEL_BUCKET_ENV}+{MODEL_KEY_ENV} is set; "
                           "this function was not created by the nimbus CDK app")
    return path


def init() -> Any:
    """Load the model now (idempotent): the handler's state object."""
    return runtime.load(bundle_location())


def _describe_source() -> str:
    bucket, key = os.environ.get(MODEL_BUCKET_ENV), os.environ.get(MODEL_KEY_ENV)
    if bucket and key:
        return f"s3://{bucket}/{key}"
    return os.environ.get("NIMBUS_BUNDLE_DIR") or "(no model location in the function's environment)"


_LOAD_NOW = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or os.environ.get(LOAD_ENV) == "1")
try:
    from . import handler as runtime  # inline on Lambda, this import already loads the bundle

    if _LOAD_NOW:
        init()
except Exception as exc:
    if _LOAD_NOW:
        print(f"nimbus: init failed: could not load the model from {_describe_source()}: "
              f"{type(exc).__name__}: {exc} (the traceback follows)",
              file=sys.stderr, flush=True)
    raise

def handler(event: Any, context: Any = None) -> Any:
    """API Gateway events go to the runtime handler; a job's shard events (Step Functions) to jobs_shard."""
    if jobs_shard.is_job_event(event):
        return jobs_shard.handle(event, context)
    return runtime.handler(event, context)


from . import jobs_shard  # noqa: E402  (after the model loaded: a shard scores with it)
