"""What an AWS job costs, before it runs: Lambda compute and requests (``cost.py``'s dated table) plus
Step Functions (a STANDARD parent, EXPRESS children) and S3 requests. Prices: us-east-1, read on the
same date as ``cost.py`` from stored copies of aws.amazon.com/step-functions/pricing and /s3/pricing.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Dict

from .cost import LAMBDA_GB_SECOND, LAMBDA_REQUEST, PRICES_READ_ON, PRICES_REGION, usd

SFN_STANDARD_TRANSITION = 0.025 / 1000  # USD per state transition (the parent execution)
SFN_EXPRESS_REQUEST = 1.00 / 1_000_000  # USD per EXPRESS execution (one per shard)
SFN_EXPRESS_GB_SECOND = 0.00001667  # USD per GB-second of EXPRESS duration, billed in 64 MB steps
SFN_EXPRESS_MEMORY_GB = 64 / 1024
S3_PUT = 0.005 / 1000  # USD per PUT/COPY/POST/LIST
S3_GET = 0.0004 / 1000  # USD per GET
PARENT_TRANSITIONS = 4  # start, the map, the manifest task, end
DEFAULT_MS_PER_TEXT = 4.0  # when it cannot be measured: bench/RESULTS.md's 3.55 ms/text on the layer, rounded up


@dataclass(frozen=True)
class JobCost:
    usd: float
    lambda_compute: float
    lambda_requests: float
    step_functions: float
    s3: float
    rows: int
    shards: int
    ms_per_text: float
    memory_mb: int
    arch: str
    measured: str  # how ms_per_text was found

    @property
    def per_shard(self) -> float:
        return self.usd / self.shards if self.shards else 0.0

    def text(self) -> str:
        return (f"estimated cost {usd(self.usd)}: Lambda {usd(self.lambda_compute)} compute + {usd(self.lambda_requests)} "
                f"requests, Step Functions {usd(self.step_functions)}, S3 {usd(self.s3)} ({self.rows:,} rows in "
                f"{self.shards:,} shards, {self.ms_per_text:.2f} ms/text {self.measured}, {self.memory_mb} MB "
                f"{self.arch}; prices {PRICES_REGION}, read {PRICES_READ_ON})")

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)


def job_cost(rows: int, shards: int, ms_per_text: float, memory_mb: int, arch: str, measured: str = "measured",
             staged_input: bool = True) -> JobCost:
    """rows x ms/text x memory x the GB-s price, one invoke per shard (+1 for the manifest), the parent's
    transitions (one per shard and a few), an EXPRESS child per shard, and S3: the shard list, each
    shard's input (PUT by nimbus when staged, GET by the function) and output PUT, the manifest."""
    seconds = rows * ms_per_text / 1000
    compute = seconds * (memory_mb / 1024) * LAMBDA_GB_SECOND[arch]
    requests = (shards + 1) * LAMBDA_REQUEST
    child_seconds = seconds / max(1, shards) + 0.1  # a child lasts its invoke, plus a little
    step = ((PARENT_TRANSITIONS + shards) * SFN_STANDARD_TRANSITION + shards * SFN_EXPRESS_REQUEST
            + shards * math.ceil(child_seconds * 10) / 10 * SFN_EXPRESS_MEMORY_GB * SFN_EXPRESS_GB_SECOND)
    s3 = (shards * (S3_GET + S3_PUT) + (shards * S3_PUT if staged_input else 0) + 3 * S3_PUT + 2 * S3_GET)
    return JobCost(compute + requests + step + s3, compute, requests, step, s3, rows, shards, ms_per_text, memory_mb,
                   arch, measured)
