"""Load and faults, briefly (bench/load.py runs 200 clients for 30 s): no error but 429 under
saturation, and a worker SIGKILLed under load costs only retriable 502s and is replaced."""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import requests

import nimbus_jupyter as nj
from pipelines import sleepy_pipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from loadgen import run_load  # noqa: E402


@pytest.fixture(scope="module")
def loaded(nimbus_home):
    return nj.deploy(sleepy_pipeline(0.002), "loaded", workers=2, show=False)


def health(d) -> dict:
    return requests.get(f"{d.url}/health", timeout=10).json()


def test_saturating_clients_get_only_200_and_429(loaded):
    result = run_load(loaded.url, loaded.api_key, ["a short review", "another one"], clients=40, seconds=3)
    assert not result.errors, result.errors
    assert set(result.codes) <= {200, 429} and result.codes[200] > 50 and result.codes[429] > 0, result.codes
    assert health(loaded)["workers"]["replaced"] == 0


def test_a_worker_killed_under_load_gives_only_retriable_errors_and_is_replaced(loaded):
    victim = health(loaded)
    worker = _status(loaded)["workers"][0]  # forked by the version's host, not the server's child
    threading.Timer(1.0, lambda: os.kill(worker, signal.SIGKILL)).start()
    result = run_load(loaded.url, loaded.api_key, ["text"], clients=20, seconds=3)
    assert not result.errors, result.errors
    assert set(result.codes) <= {200, 429, 502} and result.codes[200] > 50, result.codes
    deadline = time.time() + 30
    after = health(loaded)
    while after["workers"]["replaced"] == victim["workers"]["replaced"] and time.time() < deadline:
        time.sleep(0.2)  # the replacement loads the pipeline first
        after = health(loaded)
    assert not psutil.pid_exists(worker) or psutil.Process(worker).status() == psutil.STATUS_ZOMBIE
    assert after["workers"]["replaced"] == victim["workers"]["replaced"] + 1 and after["workers"]["size"] == 2


def _status(d) -> dict:
    import json

    from nimbus_jupyter.core.registry import Registry

    return json.loads((Registry().deployment_dir(d.name) / "status.json").read_text())
