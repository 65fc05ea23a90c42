"""What the aws planner decides, through the real planner against moto (dry runs, as a user would make them):
``--python``, ``--snapstart``, ``--reserved-concurrency`` against GetAccountSettings, S3 model sizing from a
measured ``spacy.load``, and the cost line with INIT billing, extra /tmp and the alarm.

The layer, package and synthesis are real (the CDK CLI); moto answers the AWS reads (tests/moto_plus.py
adds Lambda's GetAccountSettings, which moto lacks).
"""
from __future__ import annotations

import re

from pathlib import Path
from typing import Any, List

import numpy as np
import pytest
import spacy

from nimbus_jupyter.api import run_deploy
from nimbus_jupyter.core.errors import UserInputError
from nimbus_jupyter.core.progress import StageEvent
from nimbus_jupyter.core.registry import Registry
from nimbus_jupyter.targets.aws import checks
from nimbus_jupyter.targets.aws.cost import estimate
from nimbus_jupyter.targets.aws.package import UNZIPPED_LIMIT_BYTES, UNZIPPED_MARGIN_BYTES
from nimbus_jupyter.targets.registry import check_options

pytestmark = pytest.mark.timeout(1200)
SAMPLES = ["great phone", "arrived broken"]
MB = 1024 * 1024


def _stages(events: List[Any]) -> List[str]:
    return [e.stage for e in events if isinstance(e, StageEvent) and e.state == "running"]


@pytest.fixture(scope="module")
def registry(nimbus_home: Path, moto_env: str) -> Registry:
    return Registry()


@pytest.fixture(scope="module")
def chosen(registry: Registry, textcat_nlp) -> Any:
    """A dry run with --python 3.13, --snapstart, --reserved-concurrency 50 and an alarm."""
    events: List[Any] = []
    plan = run_deploy(textcat_nlp, "wired", "aws", samples=SAMPLES, dry_run=True, registry=registry,
                      listeners=[events.append], python="3.13", snapstart=True, reserved_concurrency=50,
                      alarm_email="ops@example.com", memory=1024)
    return plan, events


def test_the_options_are_declared_on_the_target() -> None:
    checked = check_options("aws", {"python": "3.14", "snapstart": True, "auth": "iam"})
    assert (checked["python"], checked["snapstart"], checked["auth"]) == ("3.14", True, "iam")
    with pytest.raises(UserInputError, match="python must be one of 3.12, 3.13, 3.14"):
        check_options("aws", {"python": "3.11"})
    with pytest.raises(UserInputError, match="auth must be one of key, iam"):
        check_options("aws", {"auth": "cognito"})


def test_the_sidebar_and_the_magic_get_them_from_the_declaration(ip) -> None:
    from nimbus_jupyter.targets.aws.target import AwsTarget

    info = {o.name: o.info() for o in AwsTarget.options}
    assert info["python"] == {"name": "python", "flag": "--python", "type": "choice", "default": None,
                              "help": info["python"]["help"], "choices": ["3.12", "3.13", "3.14"], "metavar": "3.X"}
    assert (info["snapstart"]["type"], info["snapstart"]["default"]) == ("bool", False)
    assert (info["auth"]["choices"], info["auth"]["default"]) == (["key", "iam"], "key")
    doc = " ".join(ip.find_line_magic("nimbus_deploy").getdoc().split())  # what %nimbus_deploy? shows
    aws = doc[doc.index("aws target:"):]
    assert "--python <3.X>" in aws and "--snapstart SnapStart on published" in aws and "--auth <{key,iam}>" in aws


def test_python_asked_for_is_the_runtime_with_its_reason_in_the_plan(chosen) -> None:
    plan, _ = chosen
    choice = plan.data["runtime_choice"]
    assert (choice["runtime"], choice["how"], choice["why"]) == ("python3.13", "requested", "--python 3.13")
    assert plan.data["spec"]["python"] == "3.13" and plan.data["python"] == "3.13"
    assert plan.notes[0].startswith("runtime: python3.13 (Amazon Linux 2023, glibc 2.34, x86_64), requested")


def test_snapstart_goes_into_the_spec_and_the_notes(chosen) -> None:
    plan, _ = chosen
    assert plan.data["spec"]["snapstart"] is True and plan.data["stack_options"]["snapstart"] is True
    assert any(n.startswith("SnapStart on published versions") for n in plan.notes)


def test_reserved_concurrency_is_checked_against_get_account_settings(chosen) -> None:
    plan, _ = chosen
    # moto_plus: Lambda's default account, 1,000 concurrent executions, none reserved
    assert plan.facts["account_concurrency"] == {"limit": 1000, "unreserved": 1000, "function_reserved": 0}
    assert "reserved concurrency 50 of 900 reservable (1,000 unreserved of 1,000; 100 stay unreserved)" in plan.notes
    assert plan.data["spec"]["reserved_concurrency"] == 50


def test_a_reservation_the_account_cannot_give_is_refused_before_anything_is_built(registry, textcat_nlp) -> None:
    events: List[Any] = []
    with pytest.raises(UserInputError) as refused:
        run_deploy(textcat_nlp, "greedy", "aws", samples=SAMPLES, dry_run=True, registry=registry,
                   listeners=[events.append], reserved_concurrency=950)
    assert "at most 900 can be reserved" in refused.value.what and "Lambda keeps 100 unreserved" in refused.value.what
    assert "--reserved-concurrency 900 or less" in refused.value.todo
    assert "layer" not in _stages(events) and "synthesize" not in _stages(events)


def test_the_cost_line_bills_init_and_the_alarm(chosen) -> None:
    plan, _ = chosen
    data = plan.data
    costs = [n for n in plan.notes if n.startswith("cost: ")]
    assert len(costs) == 2 and all("(alarm $0.50)" in c and "(INIT billed since 2025-08-01)" in c for c in costs)
    assert data["init_seconds"] > checks.IMPORT_SECONDS and data["load_seconds"] is not None
    # the init estimate: imports + the measured load, stretched to 1,024 MB's share of a vCPU
    assert data["init_seconds"] == pytest.approx(checks.init_seconds(1024, data["load_seconds"]), abs=0.01)
    said = re.search(r"cold init ~([0-9.]+) s \(spacy\.load ([0-9.]+) s measured here\)", plan.text())
    assert said, plan.text()  # the figures as shown, rounded: compared within their last digit, not as strings
    assert abs(float(said.group(1)) - data["init_seconds"]) <= 0.051 and abs(float(said.group(2)) - data["load_seconds"]) <= 0.0051


# ------------------------------------------------------------------------------------------ S3 model mode

@pytest.fixture(scope="module")
def big_nlp(registry) -> Any:
    """A blank pipeline whose static vectors make the bundle too big for the function beside the layer of the
    runtime a deploy picks (built here as the planner builds it; the plan reuses it), and big enough that
    /tmp must grow past the free 512 MB to hold its download and unzip (215 MB at least)."""
    from nimbus_jupyter.core.paths import nimbus_cache
    from nimbus_jupyter.targets.aws.layer import build_layer
    from nimbus_jupyter.targets.aws.runtime_select import select_runtime

    choice, pins = select_runtime("x86_64")
    layer = build_layer(choice.python, "x86_64", nimbus_cache() / "layers", pins=pins, langs=["en"])
    budget = UNZIPPED_LIMIT_BYTES - UNZIPPED_MARGIN_BYTES
    rows = int(max(budget - layer.unzipped_bytes + 12 * MB, 215 * MB) / (300 * 4))
    nlp = spacy.blank("en")
    nlp.vocab.vectors = spacy.vectors.Vectors(data=np.zeros((rows, 300), dtype="float32"))
    return nlp


def test_an_s3_model_gets_memory_and_init_from_its_size_and_measured_load(registry, big_nlp) -> None:
    plan = run_deploy(big_nlp, "big", "aws", samples=SAMPLES, dry_run=True, registry=registry)
    spec, sizing = plan.data["spec"], plan.data["model_sizing"]
    assert spec["model_mode"] == "s3" and spec["ephemeral_storage_mb"] > 512  # download + unzipped model
    assert sizing["memory_mb"] == spec["memory_mb"] and sizing["memory_mb"] >= sizing["needed_mb"]
    model_mb = spec["model_size_bytes"] / MB
    assert sizing["needed_mb"] == int(np.ceil((checks.BASE_RSS_MB + checks.MODEL_RSS_FACTOR * model_mb)
                                              * checks.MEMORY_HEADROOM))
    assert plan.data["load_seconds"] is not None and plan.data["init_seconds"] == pytest.approx(sizing["init_seconds"],
                                                                                               abs=0.01)
    line = next(n for n in plan.notes if n.startswith(f"model {model_mb:,.0f} MB from S3: memory"))
    assert f"load {plan.data['load_seconds']:.1f} s" in line and "of Lambda's 10 s" in line
    # the cost: /tmp above 512 MB is billed for every second, INIT included, and no alarm here
    cost = next(n for n in plan.notes if n.startswith("cost: ") and "direct invoke" in n)
    expected = estimate(_timing(plan), spec["memory_mb"], spec["arch"],
                        stored_bytes=spec["model_size_bytes"], ephemeral_mb=spec["ephemeral_storage_mb"],
                        init_seconds=plan.data["init_seconds"]).text()
    assert cost == "cost: " + expected and "(alarm" not in cost


def _timing(plan: Any) -> float:
    """The kernel's measured seconds per text, as the cost line shows it (its ms figure)."""
    from nimbus_jupyter.api import orchestration

    return orchestration._TIMINGS[plan.bundle.hash]


def test_an_s3_model_over_the_memory_asked_for_is_refused_with_the_number(registry, big_nlp) -> None:
    with pytest.raises(UserInputError) as refused:
        run_deploy(big_nlp, "big", "aws", samples=SAMPLES, dry_run=True, registry=registry, memory=256)
    assert refused.value.what.startswith("--memory 256 is below the ~") and "MB model needs loaded" in refused.value.what
    assert refused.value.todo.startswith("pass --memory ") and refused.value.where == "pre-flight"


def test_snapstart_with_an_s3_models_tmp_is_refused(registry, big_nlp) -> None:
    with pytest.raises(UserInputError, match="SnapStart works only with /tmp of at most 512 MB"):
        run_deploy(big_nlp, "big", "aws", samples=SAMPLES, dry_run=True, registry=registry, snapstart=True)


def test_dry_runs_leave_no_record(registry) -> None:
    assert [r.name for r in registry.all()] == []
