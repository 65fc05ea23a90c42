"""Plans are values, on the local target (tests/test_aws_moto.py does the same on aws): the plan a dry
run prints is, as JSON, the plan the deploy then applies; a dry run of an unchanged deployment says
"nothing to change", of a changed one "update"; staging directories never outlive their run."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List

import pytest

import nimbus_jupyter as nj
from nimbus_jupyter.api import run_deploy
from nimbus_jupyter.core.errors import NimbusError
from nimbus_jupyter.core.plan import KEEP, PlanMade, Plan
from nimbus_jupyter.core.progress import SKIPPED, StageEvent
from nimbus_jupyter.core.registry import Registry
from pipelines import textcat_pipeline

SAMPLES = ["great phone", "arrived broken"]


def as_json(plan: Plan) -> str:
    return json.dumps(plan.to_json(), sort_keys=True)


@pytest.fixture(scope="module")
def first(nimbus_home: Path, textcat_nlp) -> Any:
    events: List[Any] = []
    dry = run_deploy(textcat_nlp, "planned", samples=SAMPLES, dry_run=True, workers=1, listeners=[events.append])
    deployed = nj.deploy(textcat_nlp, "planned", samples=SAMPLES, workers=1, show=False)
    yield dry, deployed, events
    nj.destroy("planned")


def test_the_dry_run_plan_is_the_plan_the_deploy_applied(first: Any) -> None:
    dry, deployed, _ = first
    assert isinstance(dry, Plan) and as_json(dry) == as_json(deployed.plan)
    assert dry.version == 1 and [c.action for c in dry.changes] == ["create"] * 3
    assert dry.options == {"workers": 1, "max_queue": 1} and dry.facts == {"server": "none yet"}
    assert dry.bundle.path == "bundle" and dry.bundle.hash == deployed.bundle_hash


def test_a_dry_run_announces_its_plan_and_skips_every_stage_after_it(first: Any) -> None:
    dry, _, events = first
    assert [e.plan for e in events if isinstance(e, PlanMade)] == [dry]
    skipped = [(e.stage, e.detail) for e in events if isinstance(e, StageEvent) and e.state == SKIPPED]
    assert skipped == [("package", "dry run"), ("start", "dry run"), ("smoke test", "dry run")]


def test_a_dry_run_of_the_unchanged_deployment_says_nothing_to_change(first: Any, textcat_nlp) -> None:
    plan = run_deploy(textcat_nlp, "planned", samples=SAMPLES, dry_run=True)
    assert plan.noop and all(c.action == KEEP for c in plan.changes) and plan.facts == {"server": "running"}
    assert plan.text().startswith("Plan for 'planned' on target 'local': nothing to change (v1 serves this pipeline)")
    again = nj.deploy(textcat_nlp, "planned", samples=SAMPLES, show=False)
    assert again.unchanged and as_json(again.plan) == as_json(plan)


def test_a_dry_run_of_a_changed_pipeline_says_update_and_changes_nothing(first: Any) -> None:
    plan = run_deploy(textcat_pipeline(epochs=2), "planned", samples=SAMPLES, dry_run=True)
    assert plan.version == 2 and "update  local server at http://127.0.0.1:" in plan.text() and "v1 -> v2" in plan.text()
    restart = run_deploy(textcat_pipeline(epochs=2), "planned", samples=SAMPLES, dry_run=True, workers=2)
    assert "start   local server for v2 with 2 worker(s)" in restart.text() and "workers 1 -> 2" in restart.text()
    assert Registry().get("planned").version == 1 and nj.get_deployment("planned").status == "ready"


def test_plans_round_trip_through_json_and_their_artifacts_live_only_as_long_as_their_run(first: Any) -> None:
    dry, deployed, _ = first
    again = Plan.from_json(json.loads(as_json(dry)))
    assert as_json(again) == as_json(dry) and again.current is None and again.bundle == dry.bundle
    with pytest.raises(NimbusError, match="staged artifacts live only as long as the deploy or dry run"):
        dry.path("bundle")
    staging = Registry().home / "staging"
    assert staging.is_dir() and list(staging.iterdir()) == []


def test_a_deploy_that_fails_leaves_no_staging_behind(nimbus_home: Path) -> None:
    from pipelines import failing_pipeline

    with pytest.raises(NimbusError):
        nj.deploy(failing_pipeline(), "fails-to-load", workers=1, show=False)
    assert list((Registry().home / "staging").iterdir()) == []
    assert Registry().get("fails-to-load") is None
