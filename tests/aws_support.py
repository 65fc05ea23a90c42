"""AWS test support: a real ``moto_server`` on 127.0.0.1, and an environment with no real AWS in it.

The CDK CLI (Node) and boto3 both reach moto through ``AWS_ENDPOINT_URL=http://localhost:PORT``:
moto reads a ``127.0.0.1`` host as an S3 bucket name, so the host must be ``localhost``.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator

import requests

AWS_ENV_PREFIXES = ("AWS_",)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def moto_server(log_dir: Path) -> Iterator[str]:
    """A moto_server process bound to 127.0.0.1; yields its endpoint URL (with ``localhost``)."""
    port = free_port()
    log = open(log_dir / "moto.log", "wb")
    # moto.server plus the CloudFormation Lambda alias/version support it lacks (see moto_plus.py)
    process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("moto_plus.py")), "-H", "127.0.0.1", "-p", str(port)],
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"{url}/moto-api/", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"moto_server did not start; see {log_dir / 'moto.log'}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def fake_aws_env(tmp: Path, endpoint: str = "", region: str = "us-east-1") -> Dict[str, str]:
    """Environment variables for dummy credentials (and moto's endpoint), with no real profile files."""
    env = {"AWS_CONFIG_FILE": str(tmp / "aws-config-absent"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "aws-credentials-absent"),
           "AWS_EC2_METADATA_DISABLED": "true"}
    if region:
        env.update({"AWS_REGION": region, "AWS_DEFAULT_REGION": region})
    if endpoint:
        env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    return env


@contextmanager
def aws_environment(env: Dict[str, str]) -> Iterator[None]:
    """Replace every AWS_* variable of this process with ``env`` for the block."""
    saved = {k: v for k, v in os.environ.items() if k.startswith(AWS_ENV_PREFIXES)}
    for key in saved:
        del os.environ[key]
    os.environ.update(env)
    try:
        yield
    finally:
        for key in [k for k in os.environ if k.startswith(AWS_ENV_PREFIXES)]:
            del os.environ[key]
        os.environ.update(saved)
