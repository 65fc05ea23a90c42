"""Which Lambda Python runtime a deployment gets: AWS's dated table, the block dates, and the wheels.

The wheel answers come from the real package index (PyPI's simple API) for real pins; the dates are
the table's, so each case names the day it is judged on.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from nimbus_jupyter.core.errors import UserInputError
from nimbus_jupyter.targets.aws import runtimes
from nimbus_jupyter.targets.aws.runtimes import RUNTIMES, check_requested, choose, runtime_for, verdict
from nimbus_jupyter.targets.aws.wheels import WheelIndex, loadable, platforms

TODAY = dt.date(2026, 12, 1)
# A Python 3.11 kernel as pip gives it today: numpy 2.4 / thinc 8.3.14 ship manylinux_2_27/2_28 wheels only.
TODAYS_PINS = ["numpy==2.4.1", "thinc==8.3.14", "spacy==3.8.18", "srsly==2.5.2", "blis==1.3.3"]


def test_table_has_every_python_runtime_with_dates_in_order_and_its_os():
    assert [r.identifier for r in RUNTIMES] == [f"python3.{m}" for m in range(9, 15)]
    for r in RUNTIMES:
        assert r.ga < r.deprecation < r.block_create < r.block_update, r
        assert r.architectures == ("x86_64", "arm64")
    assert runtime_for("3.11").glibc == (2, 26) and runtime_for("3.12").glibc == (2, 34)
    assert runtime_for("3.14").block_create == "2029-07-31"
    assert "Lambda runtimes" in runtimes.SOURCE and runtimes.READ_ON in runtimes.SOURCE


def test_block_create_refuses_a_new_stack_block_update_an_existing_one():
    r310 = runtime_for("3.10")  # block create 2027-02-01, block update 2027-03-03
    assert verdict(r310, dt.date(2027, 2, 1), existing=False).level == "blocked"
    assert verdict(r310, dt.date(2027, 2, 1), existing=True).level == "warn"  # updates still allowed, 30 days left
    assert verdict(r310, dt.date(2027, 3, 3), existing=True).level == "blocked"
    assert verdict(runtime_for("3.13"), TODAY, existing=False).level == "ok"


def test_warns_within_90_days_of_the_block_and_says_what_to_do():
    v = verdict(runtime_for("3.10"), TODAY, existing=False)  # 62 days before 2027-02-01
    assert v.level == "warn" and "2027-02-01" in v.message and "in 62 days" in v.message and "--python 3.14" in v.todo
    assert verdict(runtime_for("3.11"), dt.date(2027, 5, 2), existing=False).level == "warn"  # 90 days
    assert verdict(runtime_for("3.11"), dt.date(2027, 5, 1), existing=False).level == "ok"  # 91 days


def test_requested_runtime_past_its_block_date_is_refused_with_the_fix():
    with pytest.raises(UserInputError) as info:
        check_requested("3.9", "x86_64", dt.date(2027, 2, 2), existing=False)
    assert "blocks creating functions on python3.9 since 2027-02-01" in str(info.value)
    assert "--python 3.14" in info.value.todo
    choice = check_requested("3.12", "arm64", TODAY, existing=True)
    assert (choice.runtime, choice.how, choice.warnings) == ("python3.12", "requested", [])
    with pytest.raises(UserInputError, match="has no Python 3.8 runtime"):
        check_requested("3.8", "x86_64", TODAY, existing=False)


def _fake(missing_for: dict):
    return lambda pins, python, arch, glibc: missing_for.get(python, [])


def test_choose_takes_the_newest_unblocked_runtime_with_every_wheel_and_says_why():
    choice = choose(["a==1", "b==2"], "x86_64", TODAY, False, _fake({"3.14": ["b==2"]}), current="python3.11")
    assert choice.runtime == "python3.13" and choice.how == "chosen"
    assert "python3.14 (no wheel for b==2)" in choice.why and "moves to python3.13" in choice.why
    assert [c["runtime"] for c in choice.considered] == ["python3.14", "python3.13"]
    assert choice.lines()[0].startswith("runtime: python3.13 (Amazon Linux 2023, glibc 2.34, x86_64), chosen:")


def test_choose_passes_over_blocked_runtimes_and_refuses_when_none_fits():
    late = dt.date(2029, 8, 1)  # 3.13 and 3.14 blocked for new functions; 3.12 blocked since 2028-11-30
    with pytest.raises(UserInputError) as info:
        choose(["a==1"], "arm64", late, False, _fake({}))
    assert "python3.14: AWS blocks creating" in str(info.value) and "python3.9:" in str(info.value)


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> WheelIndex:
    return WheelIndex(tmp_path_factory.mktemp("wheel-index"))


def test_a_311_kernel_with_todays_numpy_gets_a_al2023_runtime(index):
    for arch in ("x86_64", "arm64"):
        assert index.missing(TODAYS_PINS, "3.11", arch, (2, 26)) == ["numpy==2.4.1", "thinc==8.3.14"]
        choice = choose(TODAYS_PINS, arch, TODAY, False, index.missing)
        assert choice.python in ("3.13", "3.14") and choice.glibc == "2.34", choice.why
        assert choice.python != "3.11"


def test_index_answers_are_cached(index, tmp_path):
    again = WheelIndex(index.cache_dir, fetch=lambda name: pytest.fail(f"asked the index again for {name}"))
    assert again.missing(TODAYS_PINS, "3.13", "x86_64", (2, 34)) == []
    assert again.requests == 0


def test_yanked_release_still_counts_for_an_exact_pin_not_for_a_range(tmp_path):
    files = ["pkg-2.0-cp313-cp313-manylinux_2_28_x86_64.whl (yanked)", "pkg-1.0-cp313-cp313-manylinux_2_17_x86_64.whl"]
    idx = WheelIndex(tmp_path, fetch=lambda name: files)
    assert idx.has_wheel("pkg==2.0", "3.13", "x86_64", (2, 34))
    assert not idx.has_wheel("pkg>=2", "3.13", "x86_64", (2, 34))
    assert not idx.has_wheel("pkg==2.0", "3.11", "x86_64", (2, 26))  # 2_28 on glibc 2.26


def test_loadable_follows_glibc_arch_and_abi():
    names = ["x-1-cp313-cp313-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl", "x-1-cp39-abi3-manylinux2014_x86_64.whl",
             "x-1-py3-none-any.whl", "x-1-cp313-cp313-musllinux_1_2_x86_64.whl"]
    assert loadable(names, "3.13", "arm64", (2, 34)) == [names[0], names[2]]
    assert loadable(names, "3.13", "arm64", (2, 26)) == [names[2]]
    assert loadable(names, "3.12", "x86_64", (2, 26)) == [names[1], names[2]]
    assert platforms((2, 26), "arm64")[0] == "manylinux_2_26_aarch64"
