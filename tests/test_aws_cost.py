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
