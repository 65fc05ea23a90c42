"""Workers forked from a loaded host (targets/local/zygote.py): what a user relies on stays true.

A replaced worker serves the same version; a rollback through the warm host serves the old version's
exact predictions; nothing forks with threads or sockets open; each worker has its own random state;
a pipeline whose code starts a thread gets spawned workers instead. Timings are bench/startup.py's.
"""
from __future__ import annotations

import json
import os
import signal

import psutil
import pytest
import requests

import nimbus_jupyter as nj
from nimbus_jupyter.core.registry import Registry
from nimbus_jupyter.targets.local.files import DeploymentFiles
from nimbus_jupyter.targets.local.process import deployment_processes
from waiting import wait_for
from pipelines import random_pipeline, sleepy_pipeline, textcat_pipeline, threaded_pipeline

TEXTS = ["great phone, love it", "arrived broken, avoid this laptop", "fine", "the laptop is very good"]


def status(name: str) -> dict:
    return json.loads((Registry().deployment_dir(name) / "status.json").read_text())


def predict(d, texts=TEXTS, fields=("cats", "ents")) -> dict:
    r = requests.post(f"{d.url}/predict", json={"texts": list(texts), "fields": list(fields)},
                      headers={"x-api-key": d.api_key}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def socket_fds(pid: int) -> int:
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return count


@pytest.fixture(scope="module")
def reviews(nimbus_home):
    return nj.deploy(textcat_pipeline(epochs=3), "reviews", samples=TEXTS, workers=2, show=False)


def test_workers_are_forked_from_the_loaded_host_with_one_thread_and_only_their_own_socket(reviews):
    st = status("reviews")
    procs = deployment_processes(DeploymentFiles(Registry().deployment_dir("reviews")))
    assert st["hosts"]["1"]["how"] == "fork" and procs["hosts"] == [st["hosts"]["1"]["pid"]]
    assert len(procs["workers"]) == 2 and len(procs["zygote"]) == 1
    host = psutil.Process(procs["hosts"][0])
    assert host.ppid() == procs["zygote"][0]  # the base zygote forked the host, the host the workers
    for pid in procs["workers"]:
        worker = psutil.Process(pid)
        assert worker.ppid() == host.pid
        assert worker.num_threads() == 1
        assert worker.net_connections(kind="inet") == []  # the server's listening socket is not inherited
        assert socket_fds(pid) == 1  # its own channel to the server, nothing of the host's or the zygote's
    assert host.num_threads() == 1 and psutil.Process(procs["zygote"][0]).num_threads() == 1
    assert host.net_connections(kind="inet") == []


def test_each_forked_worker_leads_its_own_session_so_it_gets_its_own_cpu_share(reviews):
    # Under Linux's autogroup scheduler the CPU is shared fairly between sessions: workers left in the
    # zygote's session would split one share between them whenever anything else runs.
    procs = deployment_processes(DeploymentFiles(Registry().deployment_dir("reviews")))
    sessions = {pid: os.getsid(pid) for pid in procs["workers"]}
    assert all(sid == pid for pid, sid in sessions.items()), sessions
    assert os.getsid(procs["zygote"][0]) not in sessions.values()
    assert os.getsid(procs["server"][0]) not in sessions.values()


def test_each_forked_worker_has_its_own_random_state(nimbus_home):
    d = nj.deploy(random_pipeline(), "dice", samples=["x"], workers=2, show=False)
    draws = {}
    for _ in range(12):  # the pool hands requests to its idle workers in turn
        cats = predict(d, ["roll"], ["cats"])["results"][0]["cats"]
        draws.setdefault(int(cats["PID"]), {})[int(cats["N"])] = cats["DRAW"]
    assert len(draws) == 2, draws
    first, second = draws.values()
    common = sorted(set(first) & set(second))
    assert common, draws  # the same count of draws in both: equal state would give equal numbers
    assert all(first[n] != second[n] for n in common), (first, second)
    nj.destroy("dice")


def test_a_worker_killed_with_sigkill_is_replaced_by_a_fork_serving_the_same_version(reviews):
    before = predict(reviews)
    st = status("reviews")
    victim = st["workers"][0]
    os.kill(victim, signal.SIGKILL)

    def replaced() -> bool:  # a request finds the dead worker (or a 502 for one it was given) and replaces it
        code = requests.post(f"{reviews.url}/predict", json={"texts": ["x"]}, headers={"x-api-key": reviews.api_key},
                             timeout=30).status_code
        assert code in (200, 502)
        return requests.get(f"{reviews.url}/health", timeout=5).json()["workers"]["replaced"] >= 1

    wait_for(replaced, "the replacement")
    now = wait_for(lambda: (s := status("reviews")) and victim not in s["workers"] and len(s["workers"]) == 2 and s,
                   "the new worker in status.json")
    new = [pid for pid in now["workers"] if pid not in st["workers"]]
    assert len(new) == 1 and psutil.Process(new[0]).ppid() == st["hosts"]["1"]["pid"]
    for _ in range(4):  # both workers, the new one among them
        after = predict(reviews)
        assert after["version"] == "1" and after["results"] == before["results"]


def test_rollback_forks_from_the_warm_host_and_serves_the_old_versions_exact_predictions(nimbus_home):
    v1 = nj.deploy(textcat_pipeline(epochs=3), "roll", samples=TEXTS, workers=2, show=False)
    first = predict(v1)
    host1 = status("roll")["hosts"]["1"]["pid"]
    v2 = nj.deploy(textcat_pipeline(epochs=6), "roll", samples=TEXTS, workers=2, show=False)
    second = predict(v2)
    assert v2.version == 2 and second["version"] == "2" and second["results"] != first["results"]
    assert set(status("roll")["hosts"]) == {"1", "2"}  # the previous version stays loaded
    result = nj.rollback("roll")
    assert result.to_version == 1
    back = predict(v1)
    assert back["version"] == "1" and back["results"] == first["results"]
    st = status("roll")
    assert st["hosts"]["1"]["pid"] == host1  # the same host process: nothing loaded again
    assert all(psutil.Process(pid).ppid() == host1 for pid in st["workers"])
    nj.destroy("roll")


def test_only_two_versions_stay_loaded(nimbus_home):
    for epochs in (2, 3, 4):
        nj.deploy(textcat_pipeline(epochs=epochs), "keep", samples=TEXTS, workers=1, show=False)
    hosts = status("keep")["hosts"]
    assert set(hosts) == {"2", "3"}
    assert all(psutil.pid_exists(h["pid"]) for h in hosts.values())
    nj.destroy("keep")


def test_a_pipeline_that_starts_a_thread_while_loading_gets_spawned_workers(nimbus_home):
    d = nj.deploy(threaded_pipeline(), "threads", samples=["x"], workers=2, show=False)
    st = status("threads")
    assert st["hosts"]["1"]["how"] == "spawn"
    assert all(psutil.Process(pid).ppid() == st["pid"] for pid in st["workers"])  # the server's own children
    assert predict(d, ["still answers"], ["cats"])["results"][0]["cats"] == {"SLEPT": 1.0}
    log = (Registry().deployment_dir("threads") / "server.log").read_text()
    assert "unsafe to fork" in log and "threads are running" in log
    nj.destroy("threads")


def test_forking_can_be_turned_off(nimbus_home, monkeypatch):
    monkeypatch.setenv("NIMBUS_ZYGOTE", "0")
    d = nj.deploy(sleepy_pipeline(0.0), "spawned", workers=1, show=False)
    assert status("spawned")["hosts"]["1"]["how"] == "spawn"
    assert predict(d, ["x"], ["cats"])["version"] == "1"
    nj.destroy("spawned")


def test_destroying_the_last_local_deployment_stops_the_zygote(tmp_path, monkeypatch):
    monkeypatch.setenv("NIMBUS_HOME", str(tmp_path / "home"))
    nj.deploy(sleepy_pipeline(0.0), "last", workers=2, show=False)
    try:
        procs = deployment_processes(DeploymentFiles(Registry().deployment_dir("last")))
        assert len(procs["zygote"]) == 1 and len(procs["hosts"]) == 1 and len(procs["workers"]) == 2
    finally:
        nj.destroy("last")

    def gone(pid: int) -> bool:
        return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

    every = [pid for pids in procs.values() for pid in pids]
    wait_for(lambda: all(gone(pid) for pid in every), "the server, host, workers and zygote to exit", 15)
