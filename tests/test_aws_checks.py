"""Account and model limits before anything is created (targets/aws/checks.py), with the numbers by hand."""
from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from nimbus_jupyter.core.errors import DeployFailed, UserInputError
from nimbus_jupyter.targets.aws.checks import (account_concurrency, check_reserved_concurrency, size_s3_model,
                                               wait_for_key)


def _settings(limit: int, unreserved: int) -> dict:
    client = boto3.client("lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response("get_account_settings", {"AccountLimit": {
            "TotalCodeSize": 80530636800, "CodeSizeUnzipped": 262144000, "CodeSizeZipped": 52428800,
            "ConcurrentExecutions": limit, "UnreservedConcurrentExecutions": unreserved},
            "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": 0}})
        found = account_concurrency(client)
        stub.assert_no_pending_responses()
    return found


def test_reserved_concurrency_within_what_the_account_can_reserve():
    limits = _settings(1000, 950)  # 50 reserved elsewhere
    assert limits == {"limit": 1000, "unreserved": 950}
    assert "of 850 reservable" in check_reserved_concurrency(850, limits)  # 950 - 100 kept unreserved
    assert check_reserved_concurrency(None, limits) is None


def test_reserved_concurrency_the_account_cannot_give_is_refused_with_the_most_it_can():
    limits = _settings(10, 10)  # a new account's default of 10: nothing can be reserved
    with pytest.raises(UserInputError) as info:
        check_reserved_concurrency(5, limits)
    assert "at most 0 can be reserved" in str(info.value) and "Service Quotas" in info.value.todo
    # an update gives back what the function holds: 150 unreserved + 20 held - 100 = 70
    assert check_reserved_concurrency(70, {"limit": 1000, "unreserved": 150}, current=20)
    with pytest.raises(UserInputError, match="at most 70"):
        check_reserved_concurrency(71, {"limit": 1000, "unreserved": 150}, current=20)


def test_s3_model_memory_and_init_by_hand():
    # 131 MiB model: needs (220 + 2 x 131) x 1.25 = 602.5 -> 603 MB; 2,048 MB given is kept (over 1,769: 1 vCPU)
    # init = 131/80 + 131/200 + (0.9 + 4.0) / 1.0 = 1.6375 + 0.655 + 4.9 = 7.1925 s -> advised (over 70 %)
    sizing = size_s3_model(131 * 1024 ** 2, 2048, load_seconds=4.0)
    assert (sizing.memory_mb, sizing.needed_mb) == (2048, 603)
    assert sizing.init_seconds == pytest.approx(7.1925)
    assert "init ~7.2 s" in sizing.lines[0] and "72% of the 10 s budget" in sizing.lines[1]


def test_s3_model_over_the_init_budget_is_refused_with_the_memory_that_fits():
    # at 1,024 MB: cpu 1024/1769 = 0.5789; init = 2.2925 + 4.9 / 0.5789 = 10.757 s > 10 s
    with pytest.raises(UserInputError) as info:
        size_s3_model(131 * 1024 ** 2, 1024, load_seconds=4.0)
    assert "about 10.8 s, over Lambda's 10 s init limit" in str(info.value)
    assert "--memory 1769" in info.value.todo and "init ~7.2 s" in info.value.todo


def test_s3_model_too_big_for_memory_or_for_the_given_memory():
    with pytest.raises(UserInputError, match="over Lambda's 10,240 MB"):
        size_s3_model(5000 * 1024 ** 2, 2048, load_seconds=1.0)
    with pytest.raises(UserInputError, match="pass --memory 603 or more"):
        size_s3_model(131 * 1024 ** 2, 512, load_seconds=1.0, memory_given=True)


def test_wait_for_a_new_key_is_bounded_and_says_so():
    now = [0.0]
    answers = iter([403, 403, 200])
    said = []
    tries = wait_for_key(lambda: next(answers), timeout_s=30, interval_s=5, on_wait=said.append,
                         clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert tries == 3 and now[0] == 10 and len(said) == 1 and "waiting up to 30 s" in said[0]
    now[0] = 0.0
    with pytest.raises(DeployFailed, match=r"still refused \(403\) after 30 s and 7 tries"):
        wait_for_key(lambda: 403, timeout_s=30, interval_s=5, clock=lambda: now[0],
                     sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert wait_for_key(lambda: 500, clock=lambda: 0.0, sleep=lambda s: None) == 1  # not a key problem: no wait
