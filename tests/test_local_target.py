"""The local target against real servers on 127.0.0.1: contract, security, versions, failures."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import requests

import nimbus_jupyter as nj
from nimbus_jupyter.core.errors import DeployFailed, UserInputError
from nimbus_jupyter.core.registry import Registry
from nimbus_jupyter.runtime.fields import doc_to_result
from nimbus_jupyter.runtime.limits import MAX_PAYLOAD_BYTES
from pipelines import failing_pipeline, sleepy_pipeline, textcat_pipeline

TEXTS = ["great phone, love it", "arrived broken, avoid this laptop", "fine"]


def status_file(name: str) -> dict:
    return json.loads((Registry().deployment_dir(name) / "status.json").read_text())


@pytest.fixture(scope="module")
def reviews(nimbus_home, textcat_nlp):
    return nj.deploy(textcat_nlp, "reviews", samples=TEXTS, workers=2)


def post(d, body, key=None, **kw):
    headers = {"x-api-key": d.api_key if key is None else key}
    return requests.post(f"{d.url}/predict", json=body, headers=headers, timeout=30, **kw)


def test_predictions_equal_the_kernels(reviews, textcat_nlp):
    answer = post(reviews, {"texts": TEXTS, "fields": ["cats", "ents"]})
    assert answer.status_code == 200
    expected = [doc_to_result(doc, ["cats", "ents"]) for doc in textcat_nlp.pipe(TEXTS)]
    got = answer.json()["results"]
    assert [r["ents"] for r in got] == [e["ents"] for e in expected]
    for mine, theirs in zip(expected, got):
        assert mine["cats"] == pytest.approx(theirs["cats"], abs=1e-6)
    assert answer.json()["version"] == "1"


def test_server_binds_loopback_only(reviews):
    status = status_file("reviews")
    conns = [c for c in psutil.Process(status["pid"]).net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN]
    assert [c.laddr.ip for c in conns] == ["127.0.0.1"]
    assert reviews.url == f"http://127.0.0.1:{status['port']}"


@pytest.mark.parametrize("key", ["", "nmb_wrong", "x" * 10_000])
def test_missing_or_wrong_key_is_401(reviews, key):
    answer = post(reviews, {"texts": ["hi"]}, key=key)
    assert answer.status_code == 401
    assert "x-api-key" in answer.json()["message"]


def test_health_needs_no_key_but_openapi_does(reviews):
    health = requests.get(f"{reviews.url}/health", timeout=5).json()
    assert health["status"] == "ok" and health["name"] == "reviews" and health["version"] == "1"
    assert requests.get(f"{reviews.url}/openapi.json", timeout=5).status_code == 401
    doc = requests.get(f"{reviews.url}/openapi.json", headers={"x-api-key": reviews.api_key}, timeout=5).json()
    assert doc["openapi"].startswith("3.") and {"/predict", "/health", "/openapi.json"} <= set(doc["paths"])


def test_key_file_is_private_and_repr_masks_it(reviews):
    assert oct(os.stat(reviews.key_file).st_mode & 0o777) == "0o600"
    assert oct(os.stat(Registry().path).st_mode & 0o777) == "0o600"
    assert reviews.api_key not in repr(reviews) and reviews.api_key[-4:] in repr(reviews)


def test_body_over_the_lambda_limit_is_413_and_the_server_stays_up(reviews):
    answer = post(reviews, {"texts": ["x" * (MAX_PAYLOAD_BYTES + 10)]})
    assert answer.status_code == 413 and answer.json()["error"] == "payload_too_large"
    assert post(reviews, {"texts": ["still fine"]}).status_code == 200


def test_unchanged_redeploy_is_a_noop(reviews, textcat_nlp):
    pid = status_file("reviews")["pid"]
    result = nj.deploy(textcat_nlp, "reviews", samples=TEXTS)
    assert result.unchanged and result.version == 1 and status_file("reviews")["pid"] == pid


def test_another_pipeline_under_a_taken_name_needs_force(reviews):
    with pytest.raises(UserInputError, match="(?s)taken by another pipeline.*--force"):
        nj.deploy(sleepy_pipeline(0.0), "reviews")
    assert nj.get_deployment("reviews").components == ["textcat", "entity_ruler"]


def test_a_new_shell_after_a_kernel_restart_sees_the_running_deployment(reviews):
    script = ("import nimbus_jupyter as nj; d = nj.get_deployment('reviews'); "
              "print(d.status, d.version, d.predict(['love it'], fields=['cats'])[0]['cats']['POS'] > 0)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["ready", "1", "True"]


def test_requests_in_flight_during_a_version_switch_all_succeed(nimbus_home):
    first = nj.deploy(sleepy_pipeline(0.05), "switch", workers=2)
    stop = threading.Event()
    seen = []

    def hammer():
        session = requests.Session()
        while not stop.is_set():
            r = session.post(f"{first.url}/predict", json={"texts": ["x"]}, headers={"x-api-key": first.api_key}, timeout=30)
            seen.append((r.status_code, r.json().get("version")))

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        second = nj.deploy(sleepy_pipeline(0.06), "switch", workers=2)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert second.version == 2 and second.url == first.url
    assert seen and all(code == 200 for code, _ in seen), [s for s in seen if s[0] != 200][:5]
    versions = [v for _, v in seen]
    assert versions[0] == "1" and versions[-1] == "2"
    nj.destroy("switch")


def test_saturated_server_answers_429_with_retry_after(nimbus_home):
    d = nj.deploy(sleepy_pipeline(0.5), "busy", workers=1)
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: post(d, {"texts": ["x"]}), range(6)))
    codes = sorted(a.status_code for a in answers)
    assert codes.count(200) >= 1 and codes.count(429) >= 1 and set(codes) <= {200, 429}
    throttled = next(a for a in answers if a.status_code == 429)
    assert throttled.headers["Retry-After"] == "1" and throttled.json()["error"] == "throttled"
    nj.destroy("busy")


def test_a_killed_worker_is_replaced(reviews):
    victim = status_file("reviews")["workers"][0]
    os.kill(victim, signal.SIGKILL)
    codes = []
    for _ in range(20):
        codes.append(post(reviews, {"texts": ["after the kill"]}).status_code)
        if codes[-1] == 200 and len(codes) > 2:
            break
        time.sleep(0.1)
    assert set(codes) <= {200, 502} and codes[-1] == 200
    health = requests.get(f"{reviews.url}/health", timeout=5).json()
    deadline = time.time() + 30
    while health["workers"]["replaced"] < 1 and time.time() < deadline:
        time.sleep(0.2)
        health = requests.get(f"{reviews.url}/health", timeout=5).json()
    assert health["workers"]["replaced"] == 1


def test_a_dead_server_is_reported_and_redeploy_restarts_it(nimbus_home, textcat_nlp):
    d = nj.deploy(textcat_nlp, "mortal", samples=TEXTS, workers=1)
    os.killpg(status_file("mortal")["pid"], signal.SIGKILL)
    time.sleep(0.2)
    dead = nj.get_deployment("mortal")
    assert dead.status == "dead" and "not running" in dead.detail and "%nimbus_deploy" in dead.detail
    listed = {x.name: x.status for x in nj.list_deployments()}
    assert listed["mortal"] == "dead"
    again = nj.deploy(textcat_nlp, "mortal", samples=TEXTS, workers=1)
    assert not again.unchanged and again.version == 1 and again.status == "ready"
    assert again.url == d.url  # the port is kept when it is free
    nj.destroy("mortal")


def test_two_concurrent_deploys_of_different_names(nimbus_home, textcat_nlp):
    other = textcat_pipeline(epochs=2)
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda args: nj.deploy(args[0], args[1], samples=TEXTS, workers=1),
                        [(textcat_nlp, "left"), (other, "right")])
    assert a.status == b.status == "ready"
    assert a.url != b.url and a.parity.ok and b.parity.ok
    names = [d.name for d in nj.list_deployments()]
    assert names.count("left") == 1 and names.count("right") == 1
    nj.destroy("left")
    nj.destroy("right")


def test_a_failed_first_deploy_leaves_nothing(nimbus_home):
    with pytest.raises(DeployFailed, match="refuses to load in a worker"):
        nj.deploy(failing_pipeline(), "broken", workers=1)
    assert Registry().get("broken") is None and not Registry().deployment_dir("broken").exists()
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(Registry().deployment_dir("broken")) in " ".join(p.info["cmdline"] or [])]


def test_a_failed_update_keeps_the_previous_version_serving(nimbus_home):
    d = nj.deploy(sleepy_pipeline(0.0), "steady", workers=1)
    nlp = sleepy_pipeline(0.0)
    nlp.add_pipe("nimbus_test_fails_in_worker")
    with pytest.raises(DeployFailed, match="previous version is still serving"):
        nj.deploy(nlp, "steady", force=True)
    still = nj.get_deployment("steady")
    assert still.version == 1 and still.status == "ready"
    assert post(d, {"texts": ["x"]}).json()["version"] == "1"
    assert not Registry().deployment_dir("steady").joinpath("versions", "2").exists()
    nj.destroy("steady")


def test_destroy_stops_the_server_and_removes_everything(nimbus_home):
    d = nj.deploy(sleepy_pipeline(0.0), "gone", workers=1)
    pid = status_file("gone")["pid"]
    message = nj.destroy("gone")
    assert "stopped the server" in message
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert Registry().get("gone") is None and not Registry().deployment_dir("gone").exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{d.url}/health", timeout=2)
    with pytest.raises(UserInputError, match="no deployment named 'gone'"):
        nj.destroy("gone")
