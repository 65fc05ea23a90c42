"""Shared fixtures: an isolated Nimbus home per test module, and real trained pipelines."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from aws_support import aws_environment, fake_aws_env, moto_server
from pipelines import core_pipeline, textcat_pipeline

# Tests never see the developer's real AWS set-up (listings would find real stacks, deploys would cost
# money); the `aws`-marked tests get it back through the `real_aws` fixture.
REAL_AWS_ENV = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
# A base zygote whose home a failed test left behind exits after a minute without hosts (default 10).
os.environ.setdefault("NIMBUS_ZYGOTE_IDLE", "60")
# Loading the magics warms the default target (a zygote in NIMBUS_HOME); tests/test_prewarm.py turns it on.
os.environ.setdefault("NIMBUS_PREWARM", "0")
# Every local deploy warms a job host (pandas and pyarrow imported, ~0.7 s of CPU) for the jobs that may
# follow; the suite deploys hundreds of times, so it is off here and on in the job tests that use it
# (tests/test_jobs_local.py, tests/test_job_host.py).
os.environ.setdefault("NIMBUS_JOB_HOST", "0")


@pytest.fixture(scope="session", autouse=True)
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cache of rebuildable artifacts (Lambda layers, the CDK CLI) for the whole session: built once."""
    cache = Path(os.environ.get("NIMBUS_TEST_CACHE") or tmp_path_factory.mktemp("nimbus_cache"))
    old = os.environ.get("NIMBUS_CACHE")
    os.environ["NIMBUS_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("NIMBUS_CACHE", None)
    else:
        os.environ["NIMBUS_CACHE"] = old


@pytest.fixture(scope="session", autouse=True)
def no_real_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with aws_environment(fake_aws_env(tmp_path_factory.mktemp("aws"), region="")):
        yield


@pytest.fixture(scope="module")
def moto_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto_server of the module's own, with this process's AWS environment pointed at it."""
    tmp = tmp_path_factory.mktemp("moto")
    with moto_server(tmp) as url, aws_environment(fake_aws_env(tmp, endpoint=url)):
        yield url


@pytest.fixture
def real_aws() -> Iterator[None]:
    """The developer's own AWS environment; skips when it has no credentials."""
    with aws_environment(REAL_AWS_ENV):
        import boto3

        if boto3.Session().get_credentials() is None:
            pytest.skip("needs real AWS credentials (aws configure, or AWS_PROFILE)")
        yield


def _destroy_all(home: Path) -> None:
    from nimbus_jupyter.api import destroy
    from nimbus_jupyter.core.registry import Registry

    registry = Registry(home)
    for record in registry.all():
        try:
            destroy(record.name, registry)
        except Exception:
            pass


@pytest.fixture(scope="module")
def nimbus_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """NIMBUS_HOME in a fresh directory; every server started in it is stopped afterwards."""
    home = tmp_path_factory.mktemp("nimbus_home")
    old = os.environ.get("NIMBUS_HOME")
    os.environ["NIMBUS_HOME"] = str(home)
    try:
        yield home
    finally:
        _destroy_all(home)
        if old is None:
            os.environ.pop("NIMBUS_HOME", None)
        else:
            os.environ["NIMBUS_HOME"] = old


@pytest.fixture(scope="session")
def textcat_nlp():
    return textcat_pipeline()


@pytest.fixture(scope="session")
def core_nlp():
    return core_pipeline()


@pytest.fixture(scope="session")
def ip():
    """A real IPython shell; cells run through it are registered in linecache as in a notebook."""
    from IPython.testing.globalipapp import start_ipython

    shell = start_ipython()
    shell.run_cell("%load_ext nimbus_jupyter")
    return shell
