"""The synthesized stack as the tools users run on it see it, and the stack features issue 12 added.

cfn-lint (no errors) and cdk-nag's AwsSolutions pack (no unacknowledged finding: each acknowledgement in
nimbus_stack.py carries its reason) on real syntheses of both model modes; a layer-only change publishes
a new Lambda version; stage access logs in their own log group; SnapStart where Lambda allows it.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aws_cdk")
pytest.importorskip("cdk_nag")
from aws_cdk import App, Validations  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from nimbus_jupyter.core.errors import UserInputError  # noqa: E402
from nimbus_jupyter.targets.aws.app_location import import_cdk_app  # noqa: E402
from nimbus_jupyter.targets.aws.runtimes import RUNTIMES  # noqa: E402
from test_cdk_stack import _one, _spec  # noqa: E402

NEWEST = RUNTIMES[-1].python


def _synth(root: Path, inline: bool, nag: bool = False, spec: Any = None, **changes: Any):
    spec = spec or _spec(root, inline)
    for key, value in changes.items():
        setattr(spec, key, value)
    app = App(outdir=str(root / "cdk.out"))
    _, stack = import_cdk_app().build(app, spec)
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()  # with the nag plugin, any unacknowledged AwsSolutions error fails the synthesis
    return stack, root / "cdk.out" / f"{spec.stack_name}.template.json"


def _nag_report(root: Path) -> list:
    report = json.loads((root / "cdk.out" / "validation-report.json").read_text())
    return [(v["ruleName"], [c.get("constructPath") for c in v.get("violatingConstructs", [])])
            for p in report.get("pluginReports", []) for v in p.get("violations", [])]


@pytest.mark.parametrize("inline,python,auth", [(True, NEWEST, "key"), (False, "3.12", "key"), (True, "3.11", "key"),
                                              (True, NEWEST, "iam")])
def test_cdk_nag_aws_solutions_has_no_unacknowledged_finding(tmp_path, inline, python, auth):
    root = tmp_path / "app"
    try:
        _synth(root, inline, nag=True, python=python, alarm_email="ops@example.com", auth=auth)
    except Exception as exc:  # jsii raises ValidationFailed and writes the report beside the assembly
        pytest.fail(f"cdk-nag findings: {_nag_report(root)} ({str(exc)[:200]})")


def test_cfn_lint_finds_no_error(tmp_path):
    for inline in (True, False):
        _, template = _synth(tmp_path / str(inline), inline, python=NEWEST, alarm_email="ops@example.com",
                             snapstart=inline, ephemeral_storage_mb=512 if inline else 2048,
                             auth="key" if inline else "iam")
        proc = subprocess.run([str(Path(sys.executable).with_name("cfn-lint")), "--format", "json", str(template)],
                              capture_output=True, text=True, timeout=300)
        findings = json.loads(proc.stdout or "[]")
        errors = [f for f in findings if f["Level"] == "Error"]
        assert not errors, [(f["Rule"]["Id"], f["Message"]) for f in errors]
        assert proc.returncode in (0, 4, 8), proc.stderr  # 4/8: warnings/informational only


def _version_id(template: Path) -> str:
    raw = json.loads(template.read_text())
    return _one(raw, "AWS::Lambda::Version")[0]


def test_a_layer_only_change_publishes_a_new_version(tmp_path):
    spec = _spec(tmp_path / "inputs", True)
    _, before = _synth(tmp_path / "a", True, spec=spec)
    _, same = _synth(tmp_path / "b", True, spec=spec)
    new_layer = _layer_with(tmp_path / "new-layer", "VERSION = '2'\n")  # the same spec but for the layer
    _, changed = _synth(tmp_path / "c", True, spec=spec, layer_dir=str(new_layer))
    assert _version_id(before) == _version_id(same)  # nothing changed: no new version
    assert _version_id(changed) != _version_id(before)  # recognizeLayerVersion: the layer is in the hash


def _layer_with(root: Path, text: str) -> Path:
    (root / "python" / "fake_dep").mkdir(parents=True)
    (root / "python" / "fake_dep" / "__init__.py").write_text(text)
    return root


def test_stage_access_logs_go_to_their_own_log_group_with_retention(tmp_path):
    _, path = _synth(tmp_path, True)
    raw = json.loads(path.read_text())
    logs_id, logs = _one(raw, "AWS::Logs::LogGroup", "AccessLogs")
    assert logs["Properties"]["RetentionInDays"] == 30 and logs["DeletionPolicy"] == "Delete"
    _, stage = _one(raw, "AWS::ApiGateway::Stage")
    setting = stage["Properties"]["AccessLogSetting"]
    assert setting["DestinationArn"] == {"Fn::GetAtt": [logs_id, "Arn"]}
    assert {"requestId", "status", "resourcePath"} <= set(json.loads(setting["Format"].replace("$context.", "")).keys())
    function_logs, _ = _one(raw, "AWS::Logs::LogGroup", "Logs")
    assert function_logs != logs_id
    _, account = _one(raw, "AWS::ApiGateway::Account")  # API Gateway writes logs with the account's role
    assert account["DeletionPolicy"] == "Retain"  # shared by every API of the account: kept on destroy


def test_snapstart_on_published_versions_where_lambda_allows_it(tmp_path):
    _, path = _synth(tmp_path / "on", True, python="3.12", snapstart=True, ephemeral_storage_mb=512)
    template = Template.from_json(json.loads(path.read_text()))
    template.has_resource_properties("AWS::Lambda::Function", {
        "SnapStart": {"ApplyOn": "PublishedVersions"}, "Environment": {"Variables": {"NIMBUS_SNAPSTART": "1"}}})
    _, off = _synth(tmp_path / "off", True, python="3.12")
    function = _one(json.loads(off.read_text()), "AWS::Lambda::Function")[1]["Properties"]
    assert "SnapStart" not in function and "NIMBUS_SNAPSTART" not in function["Environment"]["Variables"]


@pytest.mark.parametrize("changes,words", [({"python": "3.11"}, "python3.12 runtime or newer"),
                                           ({"python": "3.13", "ephemeral_storage_mb": 2048}, "at most 512 MB")])
def test_snapstart_refused_where_lambda_does_not_offer_it(tmp_path, changes, words):
    with pytest.raises(UserInputError, match=words) as info:
        _synth(tmp_path, True, snapstart=True, **changes)
    assert "without --snapstart" in str(info.value) or "--python 3.12" in str(info.value)
