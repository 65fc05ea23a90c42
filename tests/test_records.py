"""Typed, versioned records: the round trip, and the migration of a real schema-1 registry."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from nimbus_jupyter.core.records import RECORD_SCHEMA, DeploymentRecord, HistoryEntry
from nimbus_jupyter.core.registry import SCHEMA_VERSION, Registry
from nimbus_jupyter.targets.aws.state import AwsState
from nimbus_jupyter.targets.local.state import LocalState
from nimbus_jupyter.targets.registry import get_target

V1 = Path(__file__).with_name("fixtures") / "registry-v1.json"
MOTO_ARN = "arn:aws:sts::123456789012:user/moto"


def migrated(tmp_path: Path) -> Registry:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(V1, home / "registry.json")
    return Registry(home)


def test_a_record_and_its_history_round_trip_through_json() -> None:
    entry = HistoryEntry.rollback(1, 2, "ab" * 32, ["textcat"], "me", ref="7")
    record = DeploymentRecord("r", "local", version=1, hash="ab" * 32, components=["textcat"], history=[entry],
                              options={"workers": 2}, target_data={"port": 1234, "pid": 5, "workers": 2})
    text = json.dumps(record.to_json())
    assert DeploymentRecord.from_json(json.loads(text)) == record
    assert json.loads(text)["schema"] == RECORD_SCHEMA and json.loads(text)["history"][0]["kind"] == "rollback"
    assert (entry.from_version, entry.note, entry.ref) == (2, "rollback from v2", "7")


def test_a_newer_record_is_read_as_far_as_its_fields_are_known() -> None:
    record = DeploymentRecord.from_json({"schema": RECORD_SCHEMA + 1, "name": "r", "target": "local", "new_field": 1,
                                         "history": [{"kind": "deploy", "version": 1, "colour": "red"}]})
    assert (record.name, record.schema, record.history[0].version) == ("r", RECORD_SCHEMA + 1, 1)


def test_a_real_schema_1_registry_is_migrated_to_typed_records(tmp_path: Path) -> None:
    original = json.loads(V1.read_text())
    assert original["schema"] == 1 and set(original["deployments"]) == {"reviews", "reviews-aws"}
    registry = migrated(tmp_path)
    local, aws = registry.get("reviews"), registry.get("reviews-aws")

    old = original["deployments"]["reviews"]
    assert (local.target, local.version, local.hash, local.url, local.key_file) == (
        "local", old["version"], old["hash"], old["url"], old["key_file"])
    assert LocalState.of(local) == LocalState(old["port"], old["pid"], old["workers"])
    assert "dir" not in local.target_data and local.options == {}
    assert [(e.kind, e.version, e.from_version, e.who) for e in local.history] == [
        ("deploy", 1, None, "root"), ("deploy", 2, None, "root"), ("rollback", 1, 2, "root")]
    assert [e.when for e in local.history] == [e["created"] for e in old["history"]]

    old = original["deployments"]["reviews-aws"]
    state = AwsState.of(aws)
    assert (state.region, state.account, state.stack_name, state.function_name, state.alias_name) == (
        "us-east-1", "123456789012", "nimbus-reviews-aws", old["function_name"], "live")
    assert (state.lambda_version, state.timeout_s, state.model_mode) == (old["lambda_version"], 60, "inline")
    assert aws.options == old["options"] and aws.options["memory"] == 1024
    assert [(e.kind, e.version, e.from_version, e.who, e.ref) for e in aws.history] == [
        ("deploy", 1, None, MOTO_ARN, "1"), ("deploy", 2, None, MOTO_ARN, "2"), ("rollback", 1, 2, MOTO_ARN, "1")]


def test_the_migrated_registry_is_written_as_the_new_schema_and_reads_back_the_same(tmp_path: Path) -> None:
    registry = migrated(tmp_path)
    before = {r.name: r for r in registry.all()}
    with registry.edit():
        pass  # a write of what was read
    data = json.loads(registry.path.read_text())
    assert data["schema"] == SCHEMA_VERSION == RECORD_SCHEMA
    assert all(r["schema"] == RECORD_SCHEMA and "target_data" in r for r in data["deployments"].values())
    assert {r.name: r for r in Registry(registry.home).all()} == before
    assert json.loads(V1.read_text())["schema"] == 1  # the fixture itself is untouched


def test_the_targets_work_on_migrated_records(tmp_path: Path) -> None:
    registry = migrated(tmp_path)
    rows = get_target("local", registry).history(registry.get("reviews"))
    assert [(r.entry.kind, r.serving, r.available) for r in rows] == [
        ("deploy", False, False), ("deploy", False, False), ("rollback", True, False)]  # its bundles are gone
    transport = get_target("aws", registry).endpoint(registry.get("reviews-aws"))
    state = registry.get("reviews-aws").target_data
    assert transport.kind == "invoke" and state["function_name"].endswith(":live")
    # pinned: the function itself, at the Lambda version the record names (not the alias, which can move)
    assert (transport.function_name, transport.qualifier) == (state["lambda_function"], state["lambda_version"])
    transport.close()
