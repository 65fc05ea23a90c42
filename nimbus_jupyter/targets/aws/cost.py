"""What an endpoint costs: one dated price table and the arithmetic on it.

Prices are US East (N. Virginia), first pricing tier, the figures AWS publishes on
aws.amazon.com/lambda/pricing and aws.amazon.com/api-gateway/pricing. They were read on the date below
from stored copies of pages that quote them (this machine has no internet), not from AWS's live page:
check them there before relying on the cost lines. Other regions differ by a few percent.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

PRICES_READ_ON = "2026-11-30"
PRICES_REGION = "us-east-1"
LAMBDA_GB_SECOND = {"x86_64": 0.0000166667, "arm64": 0.0000133334}  # USD per GB-second
LAMBDA_REQUEST = 0.20 / 1_000_000  # USD per invocation
API_GATEWAY_REST_REQUEST = 3.50 / 1_000_000  # USD per REST API call (first 333 million a month)
S3_GB_MONTH = 0.023  # USD per GB-month, S3 Standard
LOGS_INGEST_GB = 0.50  # USD per GB of CloudWatch Logs ingested
# Lambda ephemeral storage above the free 512 MB, per GB-second (both architectures).
EPHEMERAL_GB_SECOND = 0.0000000309
EPHEMERAL_FREE_MB = 512
# CloudWatch: a standard-resolution alarm bills per metric it evaluates (a metric-math alarm on two
# metrics bills two), and a custom metric (the handler's EMF PipelineErrors) per metric-month.
ALARM_METRIC_MONTH = 0.10
CUSTOM_METRIC_MONTH = 0.30
# Since 2025-08-01 Lambda bills the INIT phase of on-demand functions on managed runtimes as duration
# (at the function's memory, the same GB-second price); before, INIT was free for them.
INIT_BILLED_SINCE = "2025-08-01"


@dataclass(frozen=True)
class CostEstimate:
    per_1000_texts: float  # USD, Lambda compute + requests (+ API Gateway when used)
    idle_per_month: float  # USD, with no traffic at all: model object storage only
    seconds_per_text: float
    memory_mb: int
    arch: str
    texts_per_request: int
    through_api_gateway: bool
    init_per_cold_start: float = 0.0  # USD, INIT billed as duration
    alarm_per_month: float = 0.0  # USD, included in idle_per_month

    def text(self) -> str:
        via = "through API Gateway" if self.through_api_gateway else "by direct invoke"
        return (f"about {usd(self.per_1000_texts)} per 1,000 texts, {usd(self.per_1000_texts * 1000)} per million, {via} "
                f"({self.memory_mb} MB {self.arch}, {self.seconds_per_text * 1000:.2g} ms/text measured in this kernel, "
                f"{self.texts_per_request} texts/request); "
                f"idle ${self.idle_per_month:.2f}/month"
                + (f" (alarm {usd(self.alarm_per_month)})" if self.alarm_per_month else "")
                + (f"; each cold start {usd(self.init_per_cold_start)} (INIT billed since {INIT_BILLED_SINCE})"
                   if self.init_per_cold_start else "")
                + f" (prices {PRICES_REGION}, read {PRICES_READ_ON})")


def usd(amount: float) -> str:
    """Dollars with two significant digits for small sums ($0.000031), cents for the rest ($12.40)."""
    if amount >= 0.01 or amount == 0:
        return f"${amount:,.2f}"
    return f"${amount:.2g}" if amount < 1e-6 else f"${amount:.{2 - int(math.floor(math.log10(amount))) - 1}f}"


def ephemeral_per_second(ephemeral_mb: int) -> float:
    """USD per second of duration for /tmp above the free 512 MB."""
    return max(0, ephemeral_mb - EPHEMERAL_FREE_MB) / 1024 * EPHEMERAL_GB_SECOND


def alarm_per_month(alarm_metrics: int, custom_metrics: int = 0) -> float:
    return alarm_metrics * ALARM_METRIC_MONTH + custom_metrics * CUSTOM_METRIC_MONTH


def estimate(seconds_per_text: float, memory_mb: int, arch: str, texts_per_request: int = 64,
             through_api_gateway: bool = False, stored_bytes: int = 0, ephemeral_mb: int = EPHEMERAL_FREE_MB,
             init_seconds: float = 0.0, cold_starts_per_1000_texts: float = 0.0, alarm_metrics: int = 0,
             custom_metrics: int = 0) -> CostEstimate:
    """Cost per 1,000 texts from a measured time per text; free tiers are left out (they are per account).

    ``init_seconds`` (a cold start's INIT, billed since 2025-08-01) is charged ``cold_starts_per_1000_texts``
    times; /tmp above 512 MB is charged for every billed second, INIT included; the alarm's metrics (and
    the custom EMF metric) are a monthly cost that traffic does not change, so they land in ``idle``.
    """
    requests = 1000 / max(1, texts_per_request)
    gb = memory_mb / 1024
    compute = 1000 * seconds_per_text * (gb * LAMBDA_GB_SECOND[arch] + ephemeral_per_second(ephemeral_mb))
    init_each = init_seconds * (gb * LAMBDA_GB_SECOND[arch] + ephemeral_per_second(ephemeral_mb))
    per_request = LAMBDA_REQUEST + (API_GATEWAY_REST_REQUEST if through_api_gateway else 0.0)
    alarm = alarm_per_month(alarm_metrics, custom_metrics)
    idle = stored_bytes / 1024 ** 3 * S3_GB_MONTH + alarm
    return CostEstimate(compute + requests * per_request + init_each * cold_starts_per_1000_texts, idle,
                        seconds_per_text, memory_mb, arch, texts_per_request, through_api_gateway, init_each, alarm)


@dataclass(frozen=True)
class MonthToDate:
    """What the deployment cost this month so far, from CloudWatch's sums and the table above."""

    usd: float
    compute_usd: float
    lambda_requests_usd: float
    api_gateway_usd: float
    gb_seconds: float
    invocations: int
    api_requests: int

    def text(self) -> str:
        return (f"${self.usd:.4f} this month: {self.gb_seconds:,.1f} GB-s compute ${self.compute_usd:.4f} + "
                f"{self.invocations:,} Lambda requests ${self.lambda_requests_usd:.4f} + {self.api_requests:,} API "
                f"Gateway requests ${self.api_gateway_usd:.4f} (prices {PRICES_REGION}, read {PRICES_READ_ON}; "
                "free tier, logs and the model's S3 storage not counted; CloudWatch's Duration leaves out INIT, "
                f"billed since {INIT_BILLED_SINCE})")


def month_to_date(duration_ms: float, invocations: int, api_requests: int, memory_mb: int, arch: str) -> MonthToDate:
    """Cost from the sum of the function's Duration (ms), its Invocations and API Gateway's Count.

    Duration stands in for billed duration (Lambda bills by the millisecond since 2020), so the two
    differ only by rounding up each invocation to a whole millisecond.
    """
    gb_seconds = duration_ms / 1000 * (memory_mb / 1024)
    compute = gb_seconds * LAMBDA_GB_SECOND[arch]
    lambda_requests = invocations * LAMBDA_REQUEST
    api = api_requests * API_GATEWAY_REST_REQUEST
    return MonthToDate(compute + lambda_requests + api, compute, lambda_requests, api, gb_seconds,
                       int(invocations), int(api_requests))
