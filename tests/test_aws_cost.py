"""The plan's cost lines, checked against the arithmetic done by hand on the dated price table."""
from __future__ import annotations

import pytest

from nimbus_jupyter.targets.aws.cost import estimate, usd


def test_cost_per_1000_texts_through_api_gateway() -> None:
    # 1,000 texts x 3.45 ms = 3.45 s; x 2 GB = 6.9 GB-s; x $0.0000166667 = $0.00011500023
    # 1,000 / 64 = 15.625 requests x ($0.20 + $3.50) per million = $0.0000578125
    found = estimate(0.00345, 2048, "x86_64", texts_per_request=64, through_api_gateway=True)
    assert found.per_1000_texts == pytest.approx(0.00011500023 + 0.0000578125, rel=1e-9)
    assert "$0.00017 per 1,000 texts, $0.17 per million, through API Gateway" in found.text()


def test_direct_invoke_on_arm_and_idle_storage() -> None:
    # 1,000 x 10 ms = 10 s; x 1 GB = 10 GB-s; x $0.0000133334 = $0.000133334; 10 requests x $0.20/M = $0.000002
    # idle: a 512 MiB model in S3 = 0.5 GB-month x $0.023 = $0.0115 a month
    found = estimate(0.010, 1024, "arm64", texts_per_request=100, stored_bytes=512 * 1024 ** 2)
    assert found.per_1000_texts == pytest.approx(0.000133334 + 0.000002, rel=1e-6)
    assert found.idle_per_month == pytest.approx(0.0115, rel=1e-6)
    assert "idle $0.01/month" in found.text()


@pytest.mark.parametrize("amount, shown", [(0, "$0.00"), (3.1e-05, "$0.000031"), (0.0042, "$0.0042"),
                                           (0.017, "$0.02"), (1234.5, "$1,234.50")])
def test_small_sums_keep_two_significant_digits(amount: float, shown: str) -> None:
    assert usd(amount) == shown


def test_init_billing_ephemeral_storage_and_the_alarm_by_hand() -> None:
    # 2 GB x86: 1,000 texts x 5 ms = 5 s x 2 GB x $0.0000166667 = $0.000166667
    # /tmp 2,048 MB: 1,536 MB over the free 512 = 1.5 GB x $0.0000000309 = $0.00000004635 per second
    #   x 5 s = $0.00000023175
    # INIT 3 s per cold start: 3 x (2 x 0.0000166667 + 0.00000004635) = $0.00010013925; 0.5 cold starts
    #   per 1,000 texts = $0.000050069625
    # requests: 1,000 / 100 = 10 x $0.20/M = $0.000002
    # alarm on 2 metrics (Errors + PipelineErrors) $0.20 + the custom metric $0.30 = $0.50 a month
    found = estimate(0.005, 2048, "x86_64", texts_per_request=100, ephemeral_mb=2048, init_seconds=3.0,
                     cold_starts_per_1000_texts=0.5, alarm_metrics=2, custom_metrics=1)
    assert found.init_per_cold_start == pytest.approx(0.00010013925, rel=1e-9)
    assert found.per_1000_texts == pytest.approx(0.000166667 + 0.00000023175 + 0.000050069625 + 0.000002, rel=1e-9)
    assert found.idle_per_month == pytest.approx(0.50, rel=1e-9) and found.alarm_per_month == pytest.approx(0.50)
    text = found.text()
    assert "idle $0.50/month (alarm $0.50)" in text and "each cold start $0.00010 (INIT billed since 2025-08-01)" in text


def test_no_extra_storage_cost_up_to_512_mb() -> None:
    plain = estimate(0.005, 2048, "arm64")
    assert estimate(0.005, 2048, "arm64", ephemeral_mb=512).per_1000_texts == plain.per_1000_texts
    assert plain.init_per_cold_start == 0 and "cold start" not in plain.text()
