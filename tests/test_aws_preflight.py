"""Pre-flight for the aws target: each missing piece gives its message and the command that fixes it,
and nothing is created (no registry entry, no files, no layer build, no stack)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import boto3
import pytest

from aws_support import aws_environment, fake_aws_env, free_port, moto_server
from nimbus_jupyter.api import run_deploy
from nimbus_jupyter.core.errors import UserInputError
from nimbus_jupyter.core.registry import Registry


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto")) as url:
        yield url


@pytest.fixture(autouse=True)
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache of its own per test, so 'no layer was built' and 'no CLI installed' can be seen."""
    monkeypatch.setenv("NIMBUS_CACHE", str(tmp_path / "cache"))


def _nothing_created(home: Path, endpoint: str = "") -> None:
    assert Registry(home).all() == []
    assert not (home / "deployments").exists() or not any((home / "deployments").iterdir())
    layers = Path(os.environ["NIMBUS_CACHE"]) / "layers"
    assert not layers.exists() or not any(layers.iterdir())
    if endpoint:
        stacks = boto3.client("cloudformation").describe_stacks()["Stacks"]
        assert [s["StackName"] for s in stacks] == []


def _deploy(nlp, **options):
    return run_deploy(nlp, "reviews", target="aws", samples=["good"], **options)


def test_no_credentials(nimbus_home: Path, textcat_nlp, tmp_path: Path) -> None:
    with aws_environment(fake_aws_env(tmp_path)):
        with pytest.raises(UserInputError) as caught:
            _deploy(textcat_nlp)
    assert "no AWS credentials found" in str(caught.value)
    assert "aws configure" in caught.value.todo
    _nothing_created(nimbus_home)


def test_unknown_profile(nimbus_home: Path, textcat_nlp, tmp_path: Path) -> None:
    with aws_environment(fake_aws_env(tmp_path)):
        with pytest.raises(UserInputError) as caught:
            _deploy(textcat_nlp, profile="team-prod")
    assert "no AWS profile named 'team-prod'" in str(caught.value)
    assert caught.value.todo.startswith("create it with: aws configure --profile team-prod")
    _nothing_created(nimbus_home)


def test_no_region(nimbus_home: Path, textcat_nlp, tmp_path: Path, moto: str) -> None:
    with aws_environment(fake_aws_env(tmp_path, endpoint=moto, region="")):
        with pytest.raises(UserInputError) as caught:
            _deploy(textcat_nlp)
    assert "no AWS region is set" in str(caught.value)
    assert "--region" in caught.value.todo
    _nothing_created(nimbus_home)


def test_aws_unreachable(nimbus_home: Path, textcat_nlp, tmp_path: Path) -> None:
    nowhere = f"http://localhost:{free_port()}"
    with aws_environment(fake_aws_env(tmp_path, endpoint=nowhere)):
        with pytest.raises(UserInputError) as caught:
            _deploy(textcat_nlp)
    assert "AWS could not be reached" in str(caught.value)
    assert "network" in caught.value.todo
    _nothing_created(nimbus_home)


def _path_without(tmp_path: Path, *names: str) -> str:
    """A PATH with every directory of the current one, minus the given programs (symlinked around)."""
    keep = tmp_path / "bin"
    keep.mkdir(exist_ok=True)
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for entry in os.listdir(directory):
            target = keep / entry
            if entry in names or target.exists():
                continue
            try:
                target.symlink_to(os.path.join(directory, entry))
            except OSError:
                pass
    return str(keep)


def test_node_missing(nimbus_home: Path, textcat_nlp, tmp_path: Path, moto: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", _path_without(tmp_path, "node", "nodejs", "cdk", "npm"))
    with aws_environment(fake_aws_env(tmp_path, endpoint=moto)):
        with pytest.raises(UserInputError) as caught:
            _deploy(textcat_nlp)
        _nothing_created(nimbus_home, moto)
    assert "Node.js is not installed" in str(caught.value)
    assert "apt-get install -y nodejs npm" in caught.value.todo


def test_cdk_cli_not_installable(nimbus_home: Path, textcat_nlp, tmp_path: Path, moto: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", _path_without(tmp_path, "npm", "cdk"))
    monkeypatch.delenv("NIMBUS_CDK", raising=False)
    with aws_environment(fake_aws_env(tmp_path, endpoint=moto)):
        with pytest.raises(UserInputError) as caught:
            _deploy(textcat_nlp)
        _nothing_created(nimbus_home, moto)
    assert "npm is not installed" in str(caught.value)
    assert "npm install -g aws-cdk@" in caught.value.todo


@pytest.mark.parametrize("option, value, says", [
    ("memory", 64, "memory must be a whole number from 128 to 10240"),
    ("arch", "sparc", "not a Lambda architecture"),
    ("timeout", 1200, "timeout must be a whole number from 1 to 900"),
    ("throttle_rate", -1, "throttle_rate must be a positive number"),
    ("colour", "blue", "unknown option(s) for the aws target: colour"),
])
def test_bad_options_are_refused_before_anything(nimbus_home: Path, textcat_nlp, option: str, value, says: str) -> None:
    with pytest.raises(UserInputError) as caught:
        _deploy(textcat_nlp, **{option: value})
    assert says in str(caught.value)
    _nothing_created(nimbus_home)


def test_aws_options_on_the_local_target_are_refused(nimbus_home: Path, textcat_nlp) -> None:
    with pytest.raises(UserInputError) as caught:
        run_deploy(textcat_nlp, "reviews", target="local", memory=4096)
    assert "option(s) of the aws target" in str(caught.value) and "--target aws" in caught.value.todo


def test_magic_reports_preflight_as_usage_error(nimbus_home: Path, ip, textcat_nlp, tmp_path: Path) -> None:
    from IPython.core.error import UsageError

    ip.user_ns["nlp"] = textcat_nlp
    with aws_environment(fake_aws_env(tmp_path)):
        with pytest.raises(UsageError, match="no AWS credentials found"):
            ip.run_line_magic("nimbus_deploy", "nlp --name reviews --target aws --region eu-west-1")
        with pytest.raises(UsageError, match="memory must be a whole number"):
            ip.run_line_magic("nimbus_deploy", "nlp --name reviews --target aws --memory 64")
    _nothing_created(nimbus_home)
