"""The count of unexpected pipeline failures, as a CloudWatch metric written in the Embedded Metric Format.

Why a metric and not a raise: the handler answers an unexpected exception with a JSON 500, and a text
the pipeline raises on with its row's error in a 200 (the contract every client reads); Lambda's
``Errors`` metric counts neither. Raising instead would make API
Gateway answer a bare 502 without the request id, and batch see a FunctionError with no message. One EMF
line on stdout becomes a CloudWatch metric with no API call, no extra permission and no latency; the
stack's alarm watches it beside ``Errors`` (cdk_app/nimbus_stack.py imports these names).
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import IO, Optional

NAMESPACE = "Nimbus"
METRIC = "PipelineErrors"
DIMENSION = "Deployment"
DEPLOYMENT_ENV = "NIMBUS_DEPLOYMENT"


def emf_line(deployment: str, count: int = 1, now_ms: Optional[int] = None) -> str:
    """One Embedded Metric Format log line: ``count`` pipeline errors for ``deployment``."""
    return json.dumps({
        "_aws": {"Timestamp": int(time.time() * 1000) if now_ms is None else now_ms,
                 "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [[DIMENSION]],
                                        "Metrics": [{"Name": METRIC, "Unit": "Count"}]}]},
        DIMENSION: deployment, METRIC: count,
    }, separators=(",", ":"))


def record_pipeline_error(stream: Optional[IO[str]] = None, count: int = 1) -> None:
    """Count ``count`` unexpected failures (only on Lambda, where the log line becomes a metric): a request
    the handler answered 500, or the texts of a 200 whose rows are errors because the pipeline raised."""
    if not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return
    print(emf_line(os.environ.get(DEPLOYMENT_ENV) or "unknown", count), file=stream or sys.stdout, flush=True)
